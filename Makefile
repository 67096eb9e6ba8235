# Makefile for wellread.
#   make          every program that exists, plus the built-in default corpus (build/default/)
#   make test     the GoogleTest suite (tests/), run from the repository root
#   make bench    the benchmarks in dev/ (they compare against PyTorch / Hugging Face)
#   make clean
# nvcc is used for the .cu programs when it is on PATH; without it they are built by g++ as
# CPU-only C++ (no CUDA headers needed). Library code in common/ and data/ is plain C++.
# With nvcc, the CUDA ops (kernels/*.cu) and the GPU model (model/*.cu) go into a second library,
# and the GPU tests (tests/*.cu) join the test binary; they skip themselves where no GPU is.

CXX      ?= g++
NVCC     := $(shell command -v nvcc 2>/dev/null)
CXXFLAGS ?= -O3 -march=native
CXXFLAGS += -std=c++17 -fopenmp -Wall -Wextra -Wno-unused-parameter -I. -MMD -MP
LDLIBS   := -lutf8proc -lz -fopenmp
# GCC 12.2 (Debian 12's compiler) miscompiles some constant vectors when AVX-512 is on: it turns
# {6, 6, 0, 0} into a broadcast of 6 (seen in tests/test_metrics.cpp; docs/decisions.md). With
# GCC 12, AVX-512 is used only where we wrote it by hand: the matmul kernel.
GCC_MAJOR := $(shell $(CXX) -dumpversion 2>/dev/null | cut -d. -f1)
ifeq ($(GCC_MAJOR),12)
NO_AVX512 := -mno-avx512f
CXXFLAGS  += $(NO_AVX512)
$(BUILD)/obj/kernels/matmul.o: CXXFLAGS := $(filter-out $(NO_AVX512),$(CXXFLAGS))
endif

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
NVCCFLAGS   ?= -O3 -arch=sm_$(CUDA_ARCH)
NVCCFLAGS   += -std=c++17 -I. -MMD -MP -Xcompiler -fopenmp,-Wall,-Wextra,-Wno-unused-parameter
CUDA_LIBS   := -lcublasLt -lcublas
ifneq ($(NVCC),)
CUDA_SRC    := $(wildcard kernels/*.cu model/*.cu)
CUDA_OBJ    := $(CUDA_SRC:%.cu=$(BUILD)/obj/%.cu.o)
CUDA_LIB    := $(BUILD)/libwellread_cuda.a
TEST_OBJ    += $(patsubst %.cu,$(BUILD)/obj/%.cu.o,$(wildcard tests/*.cu))
endif

.PHONY: all test bench clean
all: $(PROGRAMS) $(DEFAULT)

$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(BUILD)/obj/%.cu.o: %.cu
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
	$(NVCC) $(NVCCFLAGS) -MF $(BUILD)/obj/$@.d $< $(CUDA_LIB) $(LIB) -o $@ $(CUDA_LIBS) -lutf8proc -lz
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
	$(NVCC) $(NVCCFLAGS) $^ -o $@ $(CUDA_LIBS) -lutf8proc -lz -lgtest -lpthread
else
$(TEST_BIN): $(TEST_OBJ) $(LIB)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS) -lgtest -lpthread
endif

test: $(TEST_BIN) $(PROGRAMS) $(DEFAULT)
	./$(TEST_BIN)

BENCH_BIN := $(BUILD)/bench_tokenizer
$(BENCH_BIN): $(BUILD)/obj/dev/bench_tokenizer.o $(LIB)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS)

# dev/check_minilm.py runs this on imported Hugging Face weights; not part of all or test.
ENCODER_OUTPUTS_BIN := $(BUILD)/encoder_outputs
$(ENCODER_OUTPUTS_BIN): $(BUILD)/obj/dev/encoder_outputs.o $(LIB)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS)

bench: $(BENCH_BIN) train_mlm $(DEFAULT)
	python3 dev/bench_tokenizer.py --ours ./$(BENCH_BIN)
	python3 dev/bench_train.py --ours ./train_mlm

clean:
	rm -rf $(BUILD) $(PROGRAMS)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
