# Makefile for wellread.
#   make          every program that exists, plus the built-in default corpus (build/default/)
#   make test     the GoogleTest suite (tests/), run from the repository root
#   make bench    the benchmarks in dev/ (they compare against PyTorch / Hugging Face; they refuse
#                 to write their tables when the machine is not quiet)
#   make fuzz     libFuzzer targets for every file reader, with their seed corpora (build/fuzz/)
#   make fuzz-run run each of them for FUZZ_SECONDS (default 20); a finding fails
#   make clean
# nvcc is used for the .cu programs when it is on PATH; without it they are built by g++ as
# CPU-only C++ (no CUDA headers needed). Library code in common/ and data/ is plain C++.
# With nvcc, the CUDA ops (kernels/*.cu) and the GPU model (model/*.cu) go into a second library,
# and the GPU tests (tests/*.cu) join the test binary; they skip themselves where no GPU is.

CXX      ?= g++
NVCC     := $(shell command -v nvcc 2>/dev/null)
# One portable build: everything for a baseline x86-64 level, tuned generically, so the programs
# run on any machine of that level, including one they were not built on. The baseline is
# x86-64-v3 (AVX2 + FMA: Intel since 2013, AMD since 2015); on an older CPU the programs stop at
# start-up with a message, and `make BASE_ARCH=-march=x86-64-v2` builds for it. The hot kernels
# are compiled again for other instruction sets in files of their own, named by suffix, and
# chosen at run time from cpuid (common/cpu_isa.h). Never -march=native: a build must not depend
# on the machine it was made on (and GCC 12 miscompiles some wide constants with the tuning
# -march=native brings on AVX-512 machines: docs/decisions.md).
BASE_ARCH ?= -march=x86-64-v3 -mtune=generic
CXXFLAGS ?= -O3
# -ffp-contract=off: no multiply-add is fused unless the code says so (std::fma, FMA intrinsics), so
# a vector loop, its remainder and its AVX-512 copy round alike (kernels/parallel.h).
# -fno-trapping-math, -fno-math-errno: no program here traps on floating-point exceptions or reads
# errno after a math function, so the compiler may evaluate both sides of a select
# (`x < -87 ? -87 : x`) and inline sqrt, and vectorize the loops around them; neither changes a
# result (no reassociation, no contraction).
CXXFLAGS += $(BASE_ARCH) -ffp-contract=off -fno-trapping-math -fno-math-errno -std=c++17 -fopenmp -fPIC -Wall -Wextra -Wno-unused-parameter -I. -MMD -MP
LDLIBS   := -lutf8proc -lz -fopenmp
# MPI (optional): where `mpicxx` is found (Open MPI: dev/prerequisites.sh mpi), common/distributed.cpp
# is compiled with WR_MPI and every program links libmpi, so `mpirun -np R ./train_mlm ...` trains
# data-parallel (docs/distributed.md); elsewhere the programs are single-process, nothing else
# changes. Only that one file includes <mpi.h>.
# (The flags come from Open MPI's `mpicxx --showme`; with another MPI, give MPI_CFLAGS="-DWR_MPI -I..."
# and MPI_LIBS="-L... -lmpi" on the make command line.)
MPICXX   := $(shell command -v mpicxx 2>/dev/null)
ifneq ($(MPICXX),)
ifneq ($(shell $(MPICXX) --showme:compile 2>/dev/null),)
MPI_CFLAGS ?= -DWR_MPI $(shell $(MPICXX) --showme:compile 2>/dev/null)
MPI_LIBS   ?= $(patsubst %,-L%,$(shell $(MPICXX) --showme:libdirs 2>/dev/null)) -lmpi
endif
endif
LDLIBS   += $(MPI_LIBS)
# GCC 12 miscompiles 256-bit constants copied with AVX-512 moves (docs/decisions.md): files built
# for AVX-512 copy and store at most 128 bits at a time where the compiler has these flags.
NARROW_MOVES   := $(shell $(CXX) -mmove-max=128 -mstore-max=128 -E -x c++ /dev/null >/dev/null 2>&1 && echo -mmove-max=128 -mstore-max=128)
ISA_generic    := -march=x86-64-v2 -mtune=generic
ISA_avx2       := -march=x86-64-v3 -mtune=generic
ISA_avx512     := -march=x86-64-v4 -mtune=generic $(NARROW_MOVES)
ISA_avx512bf16 := $(ISA_avx512) -mavx512bf16
ISA_amx        := $(ISA_avx512bf16) -mamx-tile -mamx-bf16

BUILD    := build
LIB_SRC  := $(wildcard common/*.cpp kernels/*.cpp model/*.cpp) $(filter-out data/prepare.cpp,$(wildcard data/*.cpp))
LIB_OBJ  := $(LIB_SRC:%.cpp=$(BUILD)/obj/%.o)
LIB      := $(BUILD)/libwellread.a
TEST_SRC := $(wildcard tests/*.cpp)
TEST_OBJ := $(TEST_SRC:%.cpp=$(BUILD)/obj/%.o)
TEST_BIN := $(BUILD)/test_wellread
DEFAULT  := $(BUILD)/default/.done

# The model programs are CUDA sources; without nvcc they build as CPU-only C++ (their CUDA parts
# sit behind #ifdef __CUDACC__).
CU_PROGRAMS := $(patsubst %.cu,%,$(wildcard train_mlm.cu finetune.cu distill.cu))
PROGRAMS    := prepare $(CU_PROGRAMS)
CUDA_ARCH   ?= 90
# -lineinfo: Nsight Compute and compute-sanitizer map each instruction to its source line (no
# effect on the code generated).
NVCCFLAGS   ?= -O3 -arch=sm_$(CUDA_ARCH) -lineinfo
NVCCFLAGS   += -std=c++17 -I. -MMD -MP -Xcompiler -fopenmp,-Wall,-Wextra,-Wno-unused-parameter
CUDA_LIBS   := -lcublasLt -lcublas
# NCCL (the GPUs' gradient all-reduce, kernels/nccl.cu) where the toolkit beside nvcc has both its
# header and its library; elsewhere a data-parallel GPU run is refused with a message.
ifneq ($(NVCC),)
CUDA_HOME_DIR := $(dir $(NVCC))..
NCCL_LIB      := $(firstword $(wildcard $(addprefix $(CUDA_HOME_DIR)/,lib/libnccl.so lib64/libnccl.so targets/x86_64-linux/lib/libnccl.so)))
ifneq ($(and $(wildcard $(CUDA_HOME_DIR)/include/nccl.h),$(NCCL_LIB)),)
NVCCFLAGS   += -DWR_NCCL
CUDA_LIBS   += -L$(dir $(NCCL_LIB)) -Xlinker -rpath=$(dir $(NCCL_LIB)) -lnccl  # found at run time wherever the toolkit sits
endif
endif
ifneq ($(NVCC),)
CUDA_SRC    := $(wildcard kernels/*.cu model/*.cu)
CUDA_OBJ    := $(CUDA_SRC:%.cu=$(BUILD)/obj/%.cu.o)
CUDA_LIB    := $(BUILD)/libwellread_cuda.a
TEST_OBJ    += $(patsubst %.cu,$(BUILD)/obj/%.cu.o,$(wildcard tests/*.cu))
endif

.PHONY: all test bench clean
all: $(PROGRAMS) $(DEFAULT)

# The Debian packages the build needs (dev/prerequisites.sh: checks, installs where it can, else
# names the command), once, before the first compile.
PREREQUISITES := $(BUILD)/.prerequisites
$(PREREQUISITES): dev/prerequisites.sh
	@bash dev/prerequisites.sh
	@mkdir -p $(dir $@) && touch $@

$(BUILD)/obj/%.o: %.cpp | $(PREREQUISITES)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

# kernels/NAME_ISA.cpp: the same rule with the instruction set's flags last (they override -march).
define isa_rule
$(BUILD)/obj/%_$(1).o: %_$(1).cpp | $$(PREREQUISITES)
	@mkdir -p $$(dir $$@)
	$$(CXX) $$(CXXFLAGS) $$(ISA_$(1)) -c $$< -o $$@
endef
$(foreach isa,generic avx2 avx512 avx512bf16 amx,$(eval $(call isa_rule,$(isa))))
$(BUILD)/obj/common/distributed.o: CXXFLAGS += $(MPI_CFLAGS)

$(BUILD)/obj/%.cu.o: %.cu | $(PREREQUISITES)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	ar rcs $@ $^

$(CUDA_LIB): $(CUDA_OBJ)
	@mkdir -p $(dir $@)
	ar rcs $@ $^

prepare: $(BUILD)/obj/data/prepare.o $(LIB)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS)

ifneq ($(NVCC),)
$(CU_PROGRAMS): %: %.cu $(CUDA_LIB) $(LIB)
	@mkdir -p $(BUILD)/obj
	$(NVCC) $(NVCCFLAGS) -MF $(BUILD)/obj/$@.d $< $(CUDA_LIB) $(LIB) -o $@ $(CUDA_LIBS) -lutf8proc -lz $(MPI_LIBS)
else
$(CU_PROGRAMS): %: %.cu $(LIB)
	$(CXX) $(CXXFLAGS) -x c++ $< -x none $(LIB) -o $@ $(LDLIBS)
endif

# The built-in default corpus: generated text -> vocabulary -> shards, deterministic, seconds.
$(DEFAULT): prepare
	./prepare default --out $(BUILD)/default
	@touch $@

ifneq ($(NVCC),)
$(TEST_BIN): $(TEST_OBJ) $(CUDA_LIB) $(LIB)
	$(NVCC) $(NVCCFLAGS) $^ -o $@ $(CUDA_LIBS) -lutf8proc -lz -lgtest -lpthread $(MPI_LIBS)
else
$(TEST_BIN): $(TEST_OBJ) $(LIB)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS) -lgtest -lpthread
endif

test: $(TEST_BIN) $(PROGRAMS) $(DEFAULT)
	./$(TEST_BIN)

BENCH_BIN := $(BUILD)/bench_tokenizer
$(BENCH_BIN): $(BUILD)/obj/dev/bench_tokenizer.o $(LIB)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS)

# dev/bench_matmul.py loads this with ctypes (the CPU GEMM, in the process that also runs PyTorch).
$(BUILD)/bench_matmul.so: $(BUILD)/obj/dev/bench_matmul.o $(LIB)
	$(CXX) $(CXXFLAGS) -shared $^ -o $@

# dev/check_minilm.py runs this on imported Hugging Face weights; not part of all or test.
ENCODER_OUTPUTS_BIN := $(BUILD)/encoder_outputs
$(ENCODER_OUTPUTS_BIN): $(BUILD)/obj/dev/encoder_outputs.o $(LIB)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS)

bench: $(BENCH_BIN) $(BUILD)/bench_matmul.so train_mlm $(DEFAULT)
	python3 dev/bench_tokenizer.py --ours ./$(BENCH_BIN)
	python3 dev/bench_matmul.py
	python3 dev/bench_train.py --ours ./train_mlm

# Fuzzing (docs/fuzzing.md): one libFuzzer target per reader of a file (fuzz/NAME.cpp ->
# build/fuzz/bin/fuzz_NAME), built by clang with AddressSanitizer and UndefinedBehaviorSanitizer
# into build/fuzz/, apart from the g++ build. Only the readers and what they link are compiled
# again: the model's compute (kernels/, model/bert.cpp) reads no file. clang and its runtimes are
# prerequisites of `make fuzz` only (dev/prerequisites.sh fuzz).
FUZZ_CXX      ?= clang++
FUZZ_BUILD    := $(BUILD)/fuzz
# -O1 -g: the sanitizers' usual build. -fno-sanitize-recover=all: undefined behaviour aborts, so
# that libFuzzer reports it as a finding (UBSan alone prints and goes on).
FUZZ_FLAGS    := $(BASE_ARCH) -std=c++17 -O1 -g -fno-omit-frame-pointer -fopenmp -Wall -Wextra -Wno-unused-parameter -I. -MMD -MP \
                 -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_LIB_SRC  := common/binary_io.cpp common/distributed.cpp common/metrics.cpp common/tensor_file.cpp common/util.cpp \
                 data/loader_state.cpp data/logit_cache.cpp data/shards.cpp data/tokenizer.cpp \
                 model/bert_config.cpp model/checkpoint.cpp model/task.cpp
FUZZ_LIB_OBJ  := $(FUZZ_LIB_SRC:%.cpp=$(FUZZ_BUILD)/obj/%.o)
FUZZ_NAMES    := $(patsubst fuzz/%.cpp,%,$(wildcard fuzz/*.cpp))
FUZZ_BINS     := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/bin/fuzz_%)
FUZZ_SEEDS    := $(FUZZ_BUILD)/seeds/.done
FUZZ_SECONDS  ?= 20
FUZZ_PREREQUISITES := $(BUILD)/.prerequisites-fuzz

.PHONY: fuzz fuzz-run
fuzz: $(FUZZ_BINS) $(FUZZ_SEEDS)

# Every target for FUZZ_SECONDS in turn (fuzz/run.sh: logs, findings and the growing corpus in
# build/fuzz/); exit status 1 when any of them found something.
fuzz-run: fuzz
	bash fuzz/run.sh $(FUZZ_SECONDS)

$(FUZZ_PREREQUISITES): dev/prerequisites.sh
	@bash dev/prerequisites.sh fuzz
	@mkdir -p $(dir $@) && touch $@

# Objects are instrumented for coverage (fuzzer-no-link); only the link adds libFuzzer's main.
# They are kept (make would delete them as intermediates of the pattern rules).
.SECONDARY: $(FUZZ_LIB_OBJ) $(FUZZ_NAMES:%=$(FUZZ_BUILD)/obj/fuzz/%.o)
$(FUZZ_BUILD)/obj/%.o: %.cpp | $(FUZZ_PREREQUISITES)
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BUILD)/bin/fuzz_%: $(FUZZ_BUILD)/obj/fuzz/%.o $(FUZZ_LIB_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -fsanitize=fuzzer $^ -o $@ -lutf8proc -lz

# The seed corpora (build/fuzz/seeds/NAME/): valid files written by the programs themselves on a
# small generated text (fuzz/make_seeds.sh, seconds), plus the text seeds of fuzz/seeds/NAME/.
$(FUZZ_SEEDS): fuzz/make_seeds.sh $(PROGRAMS) $(wildcard fuzz/seeds/*/*)
	bash fuzz/make_seeds.sh $(FUZZ_BUILD)/seeds
	@touch $@

clean:
	rm -rf $(BUILD) $(PROGRAMS)

-include $(shell find $(BUILD)/obj $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)
