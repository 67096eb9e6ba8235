#!/usr/bin/env bash
# dev/gpu_check.sh: everything the CUDA path must show on a GPU, in one command of at most
# $GPU_CHECK_BUDGET seconds (480 by default), on a bare machine (CUDA toolkit, g++, Python with
# PyTorch and transformers; no network, none of our Debian packages: they come in .gpu_bundle/,
# made beforehand by dev/gpu_bundle.sh on the development machine):
#
#   bash dev/gpu_check.sh          the checks, stages ordered by value:
#     a_build      nvidia-smi; the build prerequisites (from the bundle), then make for sm_$CUDA_ARCH
#     b_tests      the GPU tests (Cuda*): counts, failures, and the printed errors nearest their bounds
#     c_sanitizer  compute-sanitizer: memcheck over the CUDA ops tests (CudaOps*), racecheck over the
#                  attention kernels' tests (CudaAttention*) at small sizes (WR_GPU_TEST_SMALL=1)
#     d_curves     tiny preset on the built-in corpus, $CURVE_STEPS steps with the same flags and seed
#                  on the GPU and on the CPU (started in the background after the build): bf16 final
#                  validation loss within 3% and every step within 10%; then fp32 (1%, and the first
#                  10 steps within 1e-4)
#     e_resume     on the GPU: 2N steps straight against N steps, then --resume to 2N: identical
#   bash dev/gpu_check.sh bench    a_build (make all), then f_bench: dev/bench_gpu.py, short
#
# The first line printed is nvcc's version and whether the toolkit's include folder has cublasLt.h,
# cub/ and nvtx3/. Each stage's limit is what is left of the budget (less 5 s to write the table),
# at most its own cap; a stage with under $GPU_CHECK_MIN_S s left is not run, and the table says so;
# a stage stopped at its limit has a row "out of time". TERM, INT (Ctrl-C) or HUP stops the stage running
# and still writes the table and the logs. The table is printed last, and rewritten after every
# stage to $OUT/summary.md (when OUT is set; else to a folder under /tmp, named at the start) beside
# each stage's log (<stage>.log) and details.tar.gz (the runs' log.jsonl, the raw test output): at
# most 8 files. A stage that fails does not stop the others. Exit 0 when every check ran and passed.
#
# Settings (environment): GPU_CHECK_BUDGET (480), GPU_CHECK_MIN_S (30), GPU_CHECK_BUNDLE
# (.gpu_bundle), CUDA_ARCH (90), CURVE_STEPS (300), RESUME_STEPS (50), BENCH_ARGS ("--steps 20
# --warmup-steps 5 --torch-timeout 150"). GPU_CHECK_DRY_RUN=1 rehearses all of it on a machine
# without a GPU: nvidia-smi, compute-sanitizer, the test binary, train_mlm and the benchmark are the
# stubs of dev/gpu_check_stubs/, and the build is replaced by the prerequisites' probe against the
# bundle alone (which must be there), which is the part a bare machine tests.
set -euo pipefail
cd "$(dirname "$0")/.."
. dev/gpu_check_lib.sh

MODE=${1:-check}
case $MODE in check | bench) ;; *) echo "usage: bash dev/gpu_check.sh [check|bench]" >&2; exit 2 ;; esac
DRY=${GPU_CHECK_DRY_RUN:-0}
BUDGET=${GPU_CHECK_BUDGET:-480}
MIN_S=${GPU_CHECK_MIN_S:-30}
RESERVE=5                                        # seconds kept for the table and the logs
BUNDLE=${GPU_CHECK_BUNDLE:-.gpu_bundle}
CUDA_ARCH=${CUDA_ARCH:-90}
CURVE_STEPS=${CURVE_STEPS:-300}
RESUME_STEPS=${RESUME_STEPS:-50}
BENCH_ARGS=${BENCH_ARGS:---steps 20 --warmup-steps 5 --torch-timeout 150}
NPROC=$(nproc)
CPU_THREADS=$(((NPROC + 1) / 2))                 # the CPU curve run, beside the tests and the sanitizer
TEST_THREADS=$((NPROC - CPU_THREADS > 0 ? NPROC - CPU_THREADS : 1))
GPU_THREADS=4                                    # host threads of the GPU training runs

now() { printf '%(%s)T' -1; }
START=$(now)
END_AT=$((START + BUDGET))

if [ "$DRY" = 1 ]; then
    STUBS=$PWD/dev/gpu_check_stubs
    export PATH=$STUBS:$PATH
    TEST_BIN=$STUBS/test_wellread
    TRAIN_MLM=$STUBS/train_mlm
    BENCH=("$STUBS/bench_gpu")
else
    TEST_BIN=./build/test_wellread
    TRAIN_MLM=./train_mlm
    BENCH=(python3 dev/bench_gpu.py)
    # a toolkit that is installed but not on PATH
    command -v nvcc >/dev/null || [ ! -x /usr/local/cuda/bin/nvcc ] || export PATH=/usr/local/cuda/bin:$PATH
fi

# The first line: the toolkit.
TOOLKIT=$(toolkit_line) || true
echo "$TOOLKIT"
# The toolkit's cuBLASLt, which our programs load, where the dynamic linker would not find it.
cublaslt_found() {
    local d
    ldconfig -p 2>/dev/null | grep 'libcublasLt\.so' >/dev/null && return 0
    for d in ${LD_LIBRARY_PATH//:/ }; do compgen -G "$d/libcublasLt.so*" >/dev/null && return 0; done
    return 1
}
if [ "$DRY" != 1 ] && command -v nvcc >/dev/null && ! cublaslt_found; then
    for d in lib64 lib targets/x86_64-linux/lib; do
        d=$(dirname "$(readlink -f "$(command -v nvcc)")")/../$d
        compgen -G "$d/libcublasLt.so*" >/dev/null || continue
        LD_LIBRARY_PATH=$(cd "$d" && pwd)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
        export LD_LIBRARY_PATH
        echo "gpu_check: the dynamic linker's cache has no libcublasLt: LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
        break
    done
fi

WORK=$(mktemp -d /tmp/gpu_check.XXXXXX)
LOGS=${OUT:-$WORK/logs}
RUNS=$WORK/runs
ROWS=$WORK/rows.tsv
mkdir -p "$LOGS" "$RUNS"
: >"$ROWS"
# The curve runs' flags: the same on both devices (tiny, the built-in corpus, default schedule).
CURVE_FLAGS=(--preset tiny --seq-len 128 --batch 32 --steps "$CURVE_STEPS" --eval-every $((CURVE_STEPS / 3)) --seed 1 --overwrite)

GPU_WHY=""
if GPU_LIST=$(timeout 60 nvidia-smi -L 2>&1) && grep -q '^GPU ' <<<"$GPU_LIST"; then
    GPU=$(sed -n '1s/^GPU [0-9]*: \(.*\) (UUID.*$/\1/p' <<<"$GPU_LIST")
    GPU=${GPU:-$(head -n 1 <<<"$GPU_LIST")}
else
    GPU=""
    GPU_WHY=$(head -n 1 <<<"${GPU_LIST:-nvidia-smi printed nothing}")
    command -v nvidia-smi >/dev/null || GPU_WHY="nvidia-smi not found"
fi

# The build prerequisites: from the bundle when it is there (the compiler and the linker look there
# first; make's prerequisite check looks at the bundle instead of the Debian packages).
if [ -d "$BUNDLE" ]; then
    BUNDLE=$(cd "$BUNDLE" && pwd)
    export CPATH=$BUNDLE/include${CPATH:+:$CPATH}
    export LIBRARY_PATH=$BUNDLE/lib${LIBRARY_PATH:+:$LIBRARY_PATH}
    export WR_PREREQ_BUNDLE=$BUNDLE
    PREREQ_FROM="$BUNDLE ($(sed -n '2,$s/ (.*//p' "$BUNDLE/MANIFEST" 2>/dev/null | paste -sd, - | sed 's/,/, /g'))"
else
    PREREQ_FROM="the system (no bundle at $BUNDLE)"
fi
DRY_NOTE=$([ "$DRY" = 1 ] && echo ", DRY RUN (stubs for the GPU)" || true)
TITLE="$([ "$MODE" = bench ] && echo "bench, ")${GPU:-no GPU}$DRY_NOTE, $(date '+%Y-%m-%d %H:%M'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "gpu_check: ${GPU:-no GPU ($GPU_WHY)}$DRY_NOTE; build prerequisites from $PREREQ_FROM"
echo "gpu_check: budget $BUDGET s; logs in $LOGS"

# ---- Stages and their limits ----

STAGE_START=0      # when the running stage started (epoch seconds)
STAGE_END=0        # when it must be over
STAGE_PID=""
CURRENT=""         # the index of the running stage in STAGES
STAGES=()          # "ID|TITLE|FUNCTION|CAP"

# Runs CMD with the running stage's deadline, at most CAP s; 124 when the deadline stopped it. Its
# pid is in $WORK/cmd.pid meanwhile, for the signal handler.
limited() {  # [-c CAP] CMD...
    local cap=0 t rc=0
    if [ "$1" = -c ]; then cap=$2; shift 2; fi
    t=$((STAGE_END - $(now)))
    [ "$cap" -gt 0 ] && [ "$cap" -lt "$t" ] && t=$cap
    [ "$t" -ge 1 ] || return 124
    timeout -k 5 "$t" "$@" &
    echo $! >"$WORK/cmd.pid"
    wait $! || rc=$?
    : >"$WORK/cmd.pid"
    [ "$rc" = 137 ] && [ "$(now)" -ge $((STAGE_END - 1)) ] && rc=124
    return "$rc"
}

# One stage in a subshell with errexit, its output into $LOGS/ID.log; its exit status: 0 ok, 77
# skipped or not run (it has recorded why), 124 out of time, anything else failed (recorded here
# unless the stage recorded a row that says so).
run_stage() {  # INDEX
    local id title fn cap log t0 left limit rc=0 before
    IFS='|' read -r id title fn cap <<<"${STAGES[$1]}"
    log=$LOGS/$id.log
    t0=$(now)
    left=$((END_AT - RESERVE - t0))
    if [ "$left" -lt "$MIN_S" ]; then
        row_add "$ROWS" "$title" "not run" "the budget was spent: $((left > 0 ? left : 0)) s of $BUDGET s left, a stage needs $MIN_S s"
        echo "== $id: $title: not run ($((left > 0 ? left : 0)) s of the budget left)"
        return
    fi
    limit=$left
    [ "$cap" -gt 0 ] && [ "$cap" -lt "$limit" ] && limit=$cap
    STAGE_START=$t0
    STAGE_END=$((t0 + limit))
    CURRENT=$1
    before=$(wc -l <"$ROWS")
    echo "== $id: $title ($(date +%H:%M:%S), at most $limit s)"
    (set -e; "$fn") >"$log" 2>&1 &
    STAGE_PID=$!
    wait "$STAGE_PID" || rc=$?
    STAGE_PID=""
    if [ "$rc" = 124 ] && ! tail -n +$((before + 1)) "$ROWS" | cut -f2 | grep -x 'out of time' >/dev/null; then
        row_add "$ROWS" "$title" "out of time" "stopped at its limit of $limit s (see $id.log)"
    elif [ "$rc" != 0 ] && [ "$rc" != 77 ] && [ "$rc" != 124 ] && ! tail -n +$((before + 1)) "$ROWS" | cut -f2 | grep -x FAIL >/dev/null; then
        row_add "$ROWS" "$title" FAIL "stopped with exit code $rc after $(($(now) - t0)) s (see $id.log)"
    fi
    if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
        echo "   last lines of $id.log:"
        tail -n 12 "$log" | sed 's/^/   | /'
    fi
    tail -n +$((before + 1)) "$ROWS" | awk -F'\t' '{ printf "   %-40s %-11s %s\n", $1, $2, $3 }'
    echo "   ($(($(now) - t0)) s)"
    CURRENT=""
    summary_table "$ROWS" "$TITLE (partial, after $id)" >"$LOGS/summary.md" || true
}

no_gpu() {  # LABEL...: records the checks as skipped
    local label
    for label in "$@"; do row_add "$ROWS" "$label" skipped "no GPU"; done
}

built() {  # PROGRAM: it is there to run (in a dry run: the build stage passed, and the stub stands in)
    if [ "$DRY" = 1 ]; then [ -e "$WORK/built" ]; else [ -x "$1" ]; fi
}

not_built() {  # LABEL...: records the checks as not run, the build having failed
    local label
    for label in "$@"; do row_add "$ROWS" "$label" "not run" "nothing to run: the build failed (see a_build.log)"; done
}

# One run of train_mlm: its output goes to $WORK/train_NAME.txt, its main lines to the stage log.
train() {  # NAME FLAGS...
    local name=$1 rc=0
    shift
    echo "\$ $TRAIN_MLM $*"
    limited "$TRAIN_MLM" "$@" >"$WORK/train_$name.txt" 2>&1 || rc=$?
    grep -E '^(device|train_mlm|done|eval at)' "$WORK/train_$name.txt" || true
    [ "$rc" = 0 ] || { echo "exit code $rc:"; tail -n 5 "$WORK/train_$name.txt"; }
    return "$rc"
}

on_gpu() {  # NAME: that run said it trained on the GPU
    grep -q '^device: cuda' "$WORK/train_$1.txt"
}

# The prerequisites as the build will find them: from the bundle alone when there is one (with
# libgtest.a compiled here from the bundle's sources if the prebuilt one does not link).
check_prerequisites() {
    local out rc=0
    if [ ! -d "$BUNDLE" ]; then
        if [ "$DRY" = 1 ]; then
            row_add "$ROWS" "build prerequisites" FAIL "no bundle at $BUNDLE: a dry run builds against one (make it with: bash dev/gpu_bundle.sh)"
            return 1
        fi
        out=$(deps_probe "$WORK/probe") || rc=$?
    else
        out=$(deps_probe "$WORK/probe" "$BUNDLE") || rc=$?
        if [ "$rc" = 2 ] && [ -f "$BUNDLE/src/googletest/src/gtest-all.cc" ]; then
            echo "$out"
            echo "the probe did not link or run: compiling libgtest.a here from $BUNDLE/src/googletest, then again"
            # (a folder named lib: gcc searches each LIBRARY_PATH entry's ../lib first, the bundle's lib/ too)
            if build_gtest "$BUNDLE/src/googletest" "$WORK/gtest/lib" >"$WORK/gtest_build.txt" 2>&1; then
                export LIBRARY_PATH=$WORK/gtest/lib:$LIBRARY_PATH
                GTEST_NOTE=" (libgtest.a compiled here from its sources: the prebuilt one did not link)"
                rc=0
                out=$(deps_probe "$WORK/probe" "$BUNDLE" "$WORK/gtest/lib") || rc=$?
            else
                tail -n 5 "$WORK/gtest_build.txt"
            fi
        fi
    fi
    echo "$out"
    if [ "$rc" != 0 ]; then
        row_add "$ROWS" "build prerequisites" FAIL "$(tail -n 1 <<<"$out" | sed 's/^FAIL: //')$([ -d "$BUNDLE" ] || echo "; no bundle at $BUNDLE: make one with bash dev/gpu_bundle.sh where apt-get works, and carry it")"
        return 1
    fi
    row_add "$ROWS" "build prerequisites" ok "gtest, nlohmann/json, utf8proc, zlib: all from $([ -d "$BUNDLE" ] && echo "the bundle $(basename "$BUNDLE")" || echo "the system")${GTEST_NOTE:-}"
}

stage_build() {
    echo "date: $(date '+%Y-%m-%d %H:%M:%S %Z'); $(uname -srm); $NPROC CPUs; $(free -g 2>/dev/null | awk '/^Mem:/ { print $2 " GiB memory" }')"
    echo "$TOOLKIT"
    echo "\$ nvidia-smi -L"
    echo "${GPU_LIST:-}"
    if [ -n "$GPU" ]; then
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
    fi
    if [ -z "$GPU" ]; then
        row_add "$ROWS" "GPU" FAIL "no GPU: $GPU_WHY"
        no_gpu "build prerequisites" "build (sm_$CUDA_ARCH)"
        return 77
    fi
    row_add "$ROWS" "GPU" ok "$GPU"
    echo "build prerequisites from $PREREQ_FROM:"
    [ ! -f "$BUNDLE/MANIFEST" ] || sed 's/^/  /' "$BUNDLE/MANIFEST"
    if ! check_prerequisites; then
        row_add "$ROWS" "build (sm_$CUDA_ARCH)" "not run" "its prerequisites are missing"
        return 1
    fi
    if [ "$DRY" = 1 ]; then
        echo "dry run: no make; the program above was compiled, linked and run with the bundle alone"
        : >"$WORK/built"
        row_add "$ROWS" "build (sm_$CUDA_ARCH)" ok "dry run: not built (the stubs stand in for the programs)"
        return 0
    fi
    command -v nvcc >/dev/null || { row_add "$ROWS" "build (sm_$CUDA_ARCH)" FAIL "nvcc not found"; return 1; }
    local t0 rc=0 warnings targets="all build/test_wellread" missing=""
    [ "$MODE" = check ] || targets="all"
    t0=$(now)
    echo "\$ make -k -j$NPROC CUDA_ARCH=$CUDA_ARCH $targets"
    limited make -k -j"$NPROC" CUDA_ARCH="$CUDA_ARCH" $targets >"$WORK/make.txt" 2>&1 || rc=$?
    cat "$WORK/make.txt"
    if [ "$rc" = 124 ]; then
        row_add "$ROWS" "build (sm_$CUDA_ARCH)" "out of time" "make stopped after $(($(now) - t0)) s, at the stage's limit"
        return 124
    fi
    for f in $TRAIN_MLM $([ "$MODE" = check ] && echo "$TEST_BIN"); do [ -x "$f" ] || missing="$missing ${f#./}"; done
    if [ "$rc" != 0 ] || [ -n "$missing" ]; then
        row_add "$ROWS" "build (sm_$CUDA_ARCH)" FAIL "make failed after $(($(now) - t0)) s${missing:+ (not built:$missing)}: $(grep -m 1 -E 'error|Error' "$WORK/make.txt" | cut -c1-160)"
        return 1
    fi
    : >"$WORK/built"
    warnings=$(grep -Eci 'warning( #| ?:)' "$WORK/make.txt" || true)
    row_add "$ROWS" "build (sm_$CUDA_ARCH)" "$([ "$warnings" = 0 ] && echo ok || echo FAIL)" \
        "$(($(now) - t0)) s with $NPROC jobs; $warnings compiler warnings"
}

# The CPU curve run is long next to the GPU ones: it runs in the background from the end of the
# build, on half the cores, until the budget's end at most; stage d_curves waits for it.
start_cpu_curve_run() {
    local left=$((END_AT - RESERVE - $(now)))
    [ "$MODE" = check ] && [ -n "$GPU" ] && built "$TRAIN_MLM" && [ "$left" -gt 5 ] || return 0
    (
        timeout -k 5 "$left" "$TRAIN_MLM" "${CURVE_FLAGS[@]}" --device cpu --precision fp32 --threads "$CPU_THREADS" \
            --out "$RUNS/cpu" >"$WORK/train_cpu.txt" 2>&1 &
        echo $! >"$WORK/cpu.pid"
        rc=0
        wait $! || rc=$?
        echo "$rc" >"$WORK/train_cpu.rc"
    ) 2>/dev/null &
}

stop_cpu_curve_run() {  # (and wait for it, at most 7 s: its timeout gives it 5 s after TERM)
    local pid i
    pid=$(cat "$WORK/cpu.pid" 2>/dev/null || true)
    [ -n "$pid" ] && [ ! -e "$WORK/train_cpu.rc" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 70; i++)); do [ ! -e "$WORK/train_cpu.rc" ] || break; sleep 0.1; done
}

# What a test run stopped by its limit was doing: the test it was in, and how many had passed.
stopped_in() {  # OUTPUT
    local test passed
    test=$(sed -n 's/^\[ RUN      \] //p' "$1" | tail -n 1)
    passed=$(grep -c '^\[       OK \]' "$1" || true)
    echo "stopped at the limit, $(($(now) - STAGE_START)) s into the stage, ${test:+in $test, }after $passed tests had passed"
}

# The test binary under the stage's limit: a row with counts and failed tests, or "out of time"
# naming the test it was in. Its output is in $WORK/tests_NAME.txt and in the stage log.
run_tests() {  # LABEL FILTER NAME
    local rc=0 counts failed status p f s
    echo "\$ $TEST_BIN --gtest_filter='$2'"
    OMP_NUM_THREADS=$TEST_THREADS limited "$TEST_BIN" --gtest_filter="$2" >"$WORK/tests_$3.txt" 2>&1 || rc=$?
    cat "$WORK/tests_$3.txt"
    if [ "$rc" = 124 ]; then
        row_add "$ROWS" "$1" "out of time" "$(stopped_in "$WORK/tests_$3.txt")"
        return 124
    fi
    if ! counts=$(test_counts "$WORK/tests_$3.txt"); then
        row_add "$ROWS" "$1" FAIL "no result line: exit code $rc"
        return 1
    fi
    read -r p f s <<<"$counts"
    failed=$(failed_tests "$WORK/tests_$3.txt")
    status=ok
    [ "$rc" = 0 ] && [ "$f" = 0 ] && [ "$p" -gt 0 ] || status=FAIL
    row_add "$ROWS" "$1" "$status" "$p passed, $f failed, $s skipped${failed:+: $failed}"
    [ "$status" = ok ]
}

stage_tests() {
    [ -n "$GPU" ] || { no_gpu "GPU tests (Cuda*)"; return 77; }
    built "$TEST_BIN" || { not_built "GPU tests (Cuda*)"; return 77; }
    local rc=0 worst status=ok n over
    run_tests "GPU tests (Cuda*)" 'Cuda*' cuda || rc=$?
    [ "$rc" != 124 ] || return 124
    worst=$(worst_errors "$WORK/tests_cuda.txt" 1)
    read -r n over <<<"$(errors_over_bound "$WORK/tests_cuda.txt")"
    echo "errors the GPU tests reported, nearest to their bounds first:"
    worst_errors "$WORK/tests_cuda.txt" 10
    [ "$over" = 0 ] || status=FAIL
    [ "$n" -gt 0 ] || status=incomplete  # no line the parser knows ("rel err X (bound B)", ...)
    row_add "$ROWS" "worst GPU test errors" "$status" "${worst:-no error lines found in the test output}; $over of $n reported errors above their bounds"
    return "$rc"
}

# One compute-sanitizer tool over one filter of the GPU tests: its findings and the tests' results.
sanitize() {  # LABEL TOOL FILTER CAP
    local rc=0 out=$WORK/sanitizer_$2.txt result counts p f s status=ok
    echo "\$ WR_GPU_TEST_SMALL=1 compute-sanitizer --tool $2 --report-api-errors no --error-exitcode 99 $TEST_BIN --gtest_filter='$3'"
    # (--report-api-errors no: the CUDA calls' own errors are the tests' to see; libraries such as
    # cuBLASLt may probe with calls that fail, which the tool would count)
    WR_GPU_TEST_SMALL=1 OMP_NUM_THREADS=$TEST_THREADS limited -c "$4" "$SANITIZER" --tool "$2" --report-api-errors no \
        --error-exitcode 99 "$TEST_BIN" --gtest_filter="$3" >"$out" 2>&1 || rc=$?
    cat "$out"
    if [ "$rc" = 124 ]; then
        row_add "$ROWS" "$1" "out of time" "$(stopped_in "$out")"
        return 124
    fi
    if ! result=$(sanitizer_result "$out"); then
        row_add "$ROWS" "$1" FAIL "no summary from compute-sanitizer (exit code $rc; see c_sanitizer.log)"
        return 1
    fi
    read -r e w <<<"${result%%$'\t'*}"
    counts=$(test_counts "$out") || counts="0 0 0"
    read -r p f s <<<"$counts"
    [ "$e" = 0 ] && [ "$rc" = 0 ] && [ "$f" = 0 ] && [ "$p" -gt 0 ] || status=FAIL
    row_add "$ROWS" "$1" "$status" "$e errors, $w warnings; tests: $p passed, $f failed, $s skipped$([ -z "${result#*$'\t'}" ] || echo "; first: ${result#*$'\t'}")"
    [ "$status" = ok ]
}

stage_sanitizer() {
    local labels=("memcheck (CudaOps*)" "racecheck (CudaAttention*, small sizes)") rc=0 nvcc_dir
    [ -n "$GPU" ] || { no_gpu "${labels[@]}"; return 77; }
    built "$TEST_BIN" || { not_built "${labels[@]}"; return 77; }
    nvcc_dir=$(dirname "$(readlink -f "$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)")")
    SANITIZER=$(command -v compute-sanitizer || true)
    for f in "$nvcc_dir/compute-sanitizer" "$nvcc_dir/../compute-sanitizer/compute-sanitizer"; do
        [ -n "$SANITIZER" ] || [ ! -x "$f" ] || SANITIZER=$f
    done
    if [ -z "$SANITIZER" ]; then
        for l in "${labels[@]}"; do row_add "$ROWS" "$l" "not run" "compute-sanitizer not found (PATH, $nvcc_dir)"; done
        return 77
    fi
    # memcheck gets half of the stage's time, racecheck the rest
    sanitize "${labels[0]}" memcheck 'CudaOps*' $(((STAGE_END - $(now)) / 2)) || rc=$?
    sanitize "${labels[1]}" racecheck 'CudaAttention*' 0 || rc=$?
    return "$rc"
}

stage_curves() {
    local labels=("curves: GPU bf16 vs CPU" "curves: GPU fp32 vs CPU")
    [ -n "$GPU" ] || { no_gpu "${labels[@]}"; return 77; }
    built "$TRAIN_MLM" || { not_built "${labels[@]}"; return 77; }
    local rc=0 verdict name tolerances
    for name in bf16 fp32; do
        if [ "$name" = bf16 ]; then tolerances=(0.03 0.10); else tolerances=(0.01 1e-4); fi
        train "gpu_$name" "${CURVE_FLAGS[@]}" --device cuda --precision "$name" --threads "$GPU_THREADS" --out "$RUNS/gpu_$name" || rc=$?
        if [ "$rc" = 124 ]; then
            row_add "$ROWS" "curves: GPU $name vs CPU" "out of time" "the GPU run stopped at the stage's limit"
            return 124
        fi
        if [ ! -e "$WORK/train_cpu.rc" ]; then
            echo "waiting for the CPU run (started after the build, $CPU_THREADS threads)"
            while [ ! -e "$WORK/train_cpu.rc" ] && [ "$(now)" -lt "$STAGE_END" ]; do sleep 1; done
        fi
        grep -E '^(device|train_mlm|done|eval at)' "$WORK/train_cpu.txt" 2>/dev/null || true
        if [ ! -e "$WORK/train_cpu.rc" ]; then
            row_add "$ROWS" "curves: GPU $name vs CPU" "out of time" "the CPU run had not finished at the stage's limit ($(grep -c '"train"' "$RUNS/cpu/log.jsonl" 2>/dev/null || echo 0) of $CURVE_STEPS steps)"
            return 124
        fi
        if [ "$(cat "$WORK/train_cpu.rc")" != 0 ]; then
            row_add "$ROWS" "curves: GPU $name vs CPU" FAIL "the CPU run failed: $(tail -n 1 "$WORK/train_cpu.txt" 2>/dev/null)"
            return 1
        fi
        if ! [ -f "$RUNS/gpu_$name/log.jsonl" ] || ! on_gpu "gpu_$name"; then
            row_add "$ROWS" "curves: GPU $name vs CPU" FAIL "the GPU run failed or ran elsewhere (see d_curves.log)"
            rc=1
            continue
        fi
        echo "GPU $name against the CPU:"
        if [ "$name" = bf16 ]; then
            compare_curves "$RUNS/gpu_$name/log.jsonl" "$RUNS/cpu/log.jsonl" | tee "$WORK/curves_$name.kv" || true
        else  # the train steps compared: the first 10 (rounding differences grow over a run)
            compare_curves "$RUNS/gpu_$name/log.jsonl" "$RUNS/cpu/log.jsonl" 10 | tee "$WORK/curves_$name.kv" || true
        fi
        verdict=$(judge_curves "${tolerances[@]}" <"$WORK/curves_$name.kv")
        row_add "$ROWS" "curves: GPU $name vs CPU" "${verdict%%$'\t'*}" "${verdict#*$'\t'}"
        [ "${verdict%%$'\t'*}" = ok ] || rc=1
    done
    return "$rc"
}

stage_resume() {
    [ -n "$GPU" ] || { no_gpu "resume on the GPU"; return 77; }
    built "$TRAIN_MLM" || { not_built "resume on the GPU"; return 77; }
    local n=$RESUME_STEPS same ckpt rc=0
    local flags=(--preset tiny --seq-len 128 --batch 32 --warmup 0 --final-lr-fraction 1 --eval-every "$n" --seed 1
        --device cuda --precision bf16 --threads "$GPU_THREADS")
    ckpt=$(printf 'ckpt_%08d.bin' $((2 * n)))
    train straight "${flags[@]}" --steps $((2 * n)) --out "$RUNS/resume_straight" --overwrite &&
        train first_half "${flags[@]}" --steps "$n" --out "$RUNS/resume_split" --overwrite &&
        train second_half "${flags[@]}" --steps $((2 * n)) --resume "$RUNS/resume_split" || rc=$?
    if [ "$rc" = 124 ]; then
        row_add "$ROWS" "resume on the GPU" "out of time" "a run stopped at the stage's limit"
        return 124
    elif [ "$rc" != 0 ]; then
        row_add "$ROWS" "resume on the GPU" FAIL "a run failed (see e_resume.log)"
        return 1
    fi
    if ! same=$(same_losses "$RUNS/resume_straight/log.jsonl" "$RUNS/resume_split/log.jsonl"); then
        row_add "$ROWS" "resume on the GPU" FAIL "no: losses $same (resumed after step $n)"
        return 1
    fi
    if ! cmp "$RUNS/resume_straight/$ckpt" "$RUNS/resume_split/$ckpt"; then
        row_add "$ROWS" "resume on the GPU" FAIL "no: losses $same, but $ckpt differs or is missing (resumed after step $n)"
        return 1
    fi
    row_add "$ROWS" "resume on the GPU" ok "yes: losses $same, and the same $ckpt (resumed after step $n)"
}

stage_bench() {
    [ -n "$GPU" ] || { no_gpu "benchmark"; return 77; }
    built "$TRAIN_MLM" || { not_built "benchmark"; return 77; }
    local rc=0
    [ -f docs/benchmarks.md ] && cp docs/benchmarks.md "$LOGS/benchmarks.md"
    echo "\$ ${BENCH[*]} $BENCH_ARGS"
    # shellcheck disable=SC2086  # BENCH_ARGS holds several arguments
    PYTHONUNBUFFERED=1 limited env -u CPATH -u LIBRARY_PATH "${BENCH[@]}" $BENCH_ARGS --tsv "$WORK/bench.tsv" \
        --markdown "$LOGS/benchmarks.md" || rc=$?
    [ -s "$WORK/bench.tsv" ] && bench_rows "$WORK/bench.tsv" >>"$ROWS"
    if [ "$rc" = 124 ]; then
        row_add "$ROWS" "benchmark" "out of time" "stopped at the stage's limit; the rows above are what it had measured"
        return 124
    fi
    [ -s "$WORK/bench.tsv" ] || row_add "$ROWS" "benchmark" FAIL "no figures (exit code $rc; see f_bench.log)"
    return "$rc"
}

# ---- The end: the table, whatever happened ----

finish() {  # EXIT_CODE (empty: from the table)
    local rc=0 elapsed=$(($(now) - START))
    stop_cpu_curve_run
    (cd "$WORK" && tar czf "$LOGS/details.tar.gz" --exclude='*.bin' --exclude=latest --exclude=logs --exclude=gtest \
        --exclude=probe --exclude='*.o' --exclude=details.tar.gz . 2>/dev/null) || true
    summary_table "$ROWS" "$TITLE, $((elapsed / 60)) min $((elapsed % 60)) s of a $BUDGET s budget" >"$LOGS/summary.md" || rc=1
    echo "logs: $LOGS"
    [ -n "$GPU" ] || echo "gpu_check: no GPU ($GPU_WHY): nothing was checked"
    echo
    cat "$LOGS/summary.md"
    [ -z "${OUT:-}" ] || rm -rf "$WORK"  # everything worth keeping is in $OUT
    exit "${1:-$rc}"
}

# TERM or INT: the stage running is stopped (its command first), it and the stages after it get
# their rows, and the table and the logs are written as at the end.
on_signal() {  # SIGNAL CODE
    trap '' TERM INT HUP
    local pid i id title fn cap
    echo
    echo "gpu_check: $1 received: stopping"
    pid=$(cat "$WORK/cmd.pid" 2>/dev/null || true)
    [ -z "$pid" ] || kill -TERM "$pid" 2>/dev/null || true
    [ -z "$STAGE_PID" ] || kill -TERM "$STAGE_PID" 2>/dev/null || true
    stop_cpu_curve_run
    for ((i = 0; i < 60; i++)); do [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    for ((i = ${CURRENT:-$NEXT_TO_RUN}; i < ${#STAGES[@]}; i++)); do
        IFS='|' read -r id title fn cap <<<"${STAGES[$i]}"
        if [ "$i" = "${CURRENT:-}" ]; then
            row_add "$ROWS" "$title" interrupted "$1 after $(($(now) - START)) s, during this stage (see $id.log)"
        else
            row_add "$ROWS" "$title" "not run" "interrupted ($1) before it started"
        fi
    done
    finish "$2"
}
NEXT_TO_RUN=0
trap 'on_signal TERM 143' TERM
trap 'on_signal INT 130' INT
trap 'on_signal HUP 129' HUP

if [ "$MODE" = check ]; then
    STAGES=("a_build|build|stage_build|0" "b_tests|GPU tests|stage_tests|240" "c_sanitizer|compute-sanitizer|stage_sanitizer|180"
        "d_curves|training curves, GPU against CPU|stage_curves|150" "e_resume|resume on the GPU|stage_resume|90")
else
    STAGES=("a_build|build|stage_build|0" "f_bench|benchmark|stage_bench|0")
fi
for ((i = 0; i < ${#STAGES[@]}; i++)); do
    NEXT_TO_RUN=$i
    run_stage "$i"
    NEXT_TO_RUN=$((i + 1))
    [ "$i" != 0 ] || start_cpu_curve_run
done
finish
