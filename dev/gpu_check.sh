#!/usr/bin/env bash
# dev/gpu_check.sh: everything the CUDA path must show on a GPU, in one command, about 5 minutes on one H100
# from a bare machine (CUDA toolkit, PyTorch and transformers installed, no network):
#
#   a_build   nvidia-smi -L, nvcc --version; make -j$(nproc) CUDA_ARCH=${CUDA_ARCH:-90}, build/test_wellread
#   b_tests   the GPU tests (Cuda*) and the CPU model tests (Model*): counts, failures, worst errors
#   c_curves  tiny preset on the built-in corpus, $CURVE_STEPS steps, same flags and seed on the GPU
#             (bf16, and fp32) and on the CPU; final validation loss within 3% (bf16) / 1% (fp32),
#             every step within 10% (bf16) / the first 10 steps within 1e-4 (fp32)
#   d_resume  on the GPU: 2N steps straight against N steps, then --resume to 2N: identical losses
#             and checkpoint (N = $RESUME_STEPS, constant learning rate)
#   e_bench   dev/bench_gpu.py, short: tokens/s and MFU, ours against PyTorch (torch.compile)
#   then one table, printed last: dev/gpu_check_lib.sh's summary_table
#
# Each stage's full log goes to $OUT (when set; else a folder under /tmp, named at the start) as
# <stage>.log, with summary.md (the table, rewritten after every stage), benchmarks.md (docs/ with
# the GPU section made here) and details.tar.gz (the runs' log.jsonl, raw test output): 8 files.
# A stage that fails does not stop the others. Exit 0 when no check failed; 1 otherwise, also
# when there is no GPU (then only the environment is printed, and the table says so).
#
# Settings (environment): CUDA_ARCH (90), CURVE_STEPS (300), RESUME_STEPS (50), BENCH_ARGS
# ("--steps 20 --warmup-steps 5 --torch-timeout 150"), GPU_CHECK_DEBS (.gpu_debs: .deb files of
# build prerequisites the machine lacks, unpacked into a private folder, never into /).
set -euo pipefail
cd "$(dirname "$0")/.."
. dev/gpu_check_lib.sh

CUDA_ARCH=${CUDA_ARCH:-90}
CURVE_STEPS=${CURVE_STEPS:-300}
RESUME_STEPS=${RESUME_STEPS:-50}
BENCH_ARGS=${BENCH_ARGS:---steps 20 --warmup-steps 5 --torch-timeout 150}
DEBS=${GPU_CHECK_DEBS:-.gpu_debs}
NPROC=$(nproc)
CPU_THREADS=$(((NPROC + 1) / 2))                 # the CPU curve run, beside the tests (stage b)
TEST_THREADS=$((NPROC - CPU_THREADS > 0 ? NPROC - CPU_THREADS : 1))
GPU_THREADS=4                                    # host threads of the GPU training runs

WORK=$(mktemp -d /tmp/gpu_check.XXXXXX)
LOGS=${OUT:-$WORK/logs}
RUNS=$WORK/runs
ROWS=$WORK/rows.tsv
mkdir -p "$LOGS" "$RUNS"
: >"$ROWS"
START=$SECONDS
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
# Build prerequisites carried along as packages (a machine that cannot fetch them): unpacked into
# a private folder that the compiler, the linker and the programs are pointed at.
UNPACKED=""
if [ -n "$GPU" ] && compgen -G "$DEBS/*.deb" >/dev/null; then
    for deb in "$DEBS"/*.deb; do dpkg -x "$deb" "$WORK/sysroot"; done
    export CPATH=$WORK/sysroot/usr/include${CPATH:+:$CPATH}
    export LIBRARY_PATH=$WORK/sysroot/usr/lib/x86_64-linux-gnu${LIBRARY_PATH:+:$LIBRARY_PATH}
    export LD_LIBRARY_PATH=$WORK/sysroot/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    UNPACKED="unpacked $(compgen -G "$DEBS/*.deb" | wc -l) packages from $DEBS into $WORK/sysroot"
fi
TITLE="${GPU:-no GPU}, $(date '+%Y-%m-%d %H:%M'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "gpu_check: ${GPU:-no GPU}; logs in $LOGS"

# Runs one stage in a subshell with errexit, its output into $LOGS/ID.log; its exit status: 0 ok,
# 77 skipped (it has recorded why), anything else failed (recorded here unless it recorded a FAIL).
run_stage() {  # ID TITLE FUNCTION
    local id=$1 title=$2 log=$LOGS/$1.log t0=$SECONDS rc before
    before=$(wc -l <"$ROWS")
    echo "== $id: $title ($(date +%H:%M:%S))"
    set +e
    (set -e; "$3") >"$log" 2>&1
    rc=$?
    set -e
    if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
        tail -n +$((before + 1)) "$ROWS" | cut -f2 | grep -qx FAIL ||
            row_add "$ROWS" "$title" FAIL "stopped with exit code $rc after $((SECONDS - t0)) s (see $id.log)"
        echo "   last lines of $id.log:"
        tail -n 12 "$log" | sed 's/^/   | /'
    fi
    tail -n +$((before + 1)) "$ROWS" | awk -F'\t' '{ printf "   %-34s %-10s %s\n", $1, $2, $3 }'
    echo "   ($((SECONDS - t0)) s)"
    summary_table "$ROWS" "$TITLE (partial, after $id)" >"$LOGS/summary.md" || true
}

no_gpu() {  # LABEL...: records the checks as skipped
    local label
    for label in "$@"; do row_add "$ROWS" "$label" skipped "no GPU"; done
}

# One run of train_mlm: its output goes to $WORK/train_NAME.txt, its main lines to the stage log.
train() {  # NAME FLAGS...
    local name=$1 rc=0
    shift
    echo "\$ ./train_mlm $*"
    timeout 300 ./train_mlm "$@" >"$WORK/train_$name.txt" 2>&1 || rc=$?
    grep -E '^(device|train_mlm|done|eval at)' "$WORK/train_$name.txt" || true
    [ "$rc" = 0 ] || { echo "exit code $rc:"; tail -n 5 "$WORK/train_$name.txt"; }
    return "$rc"
}

on_gpu() {  # NAME: that run said it trained on the GPU
    grep -q '^device: cuda' "$WORK/train_$1.txt"
}

missing_prerequisites() {  # headers the build needs that the compiler cannot find
    local h
    for h in gtest/gtest.h utf8proc.h zlib.h nlohmann/json.hpp; do
        printf '#include <%s>\n' "$h" | g++ -std=c++17 -E -x c++ - >/dev/null 2>&1 || printf '%s ' "$h"
    done
}

stage_build() {
    echo "date: $(date '+%Y-%m-%d %H:%M:%S %Z'); $(uname -srm); $NPROC CPUs; $(free -g 2>/dev/null | awk '/^Mem:/ { print $2 " GiB memory" }')"
    echo "\$ nvidia-smi -L"
    echo "${GPU_LIST:-}"
    if [ -n "$GPU" ]; then
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
    fi
    echo "\$ nvcc --version"
    nvcc --version 2>&1 || echo "nvcc: not found"
    if [ -z "$GPU" ]; then
        row_add "$ROWS" "GPU" FAIL "no GPU: $GPU_WHY"
        no_gpu "build"
        return 77
    fi
    row_add "$ROWS" "GPU" ok "$GPU"
    [ -z "$UNPACKED" ] || echo "$UNPACKED"
    local missing t0=$SECONDS warnings
    missing=$(missing_prerequisites)
    [ -z "$missing" ] || echo "the compiler does not find: $missing(libgtest-dev, libutf8proc-dev, zlib1g-dev, nlohmann-json3-dev; see GPU_CHECK_DEBS above)"
    command -v nvcc >/dev/null || { row_add "$ROWS" "build (sm_$CUDA_ARCH)" FAIL "nvcc not found"; return 1; }
    echo "\$ make -j$NPROC CUDA_ARCH=$CUDA_ARCH all build/test_wellread"
    if ! timeout 900 make -j"$NPROC" CUDA_ARCH="$CUDA_ARCH" all 2>&1 | tee "$WORK/make.txt"; then
        row_add "$ROWS" "build (sm_$CUDA_ARCH)" FAIL "make failed after $((SECONDS - t0)) s (see a_build.log)${missing:+; missing: $missing}"
        return 1
    fi
    if ! timeout 900 make -j"$NPROC" CUDA_ARCH="$CUDA_ARCH" build/test_wellread 2>&1 | tee -a "$WORK/make.txt"; then
        row_add "$ROWS" "build (sm_$CUDA_ARCH)" FAIL "programs built; build/test_wellread failed after $((SECONDS - t0)) s${missing:+; missing: $missing}"
        return 1
    fi
    warnings=$(grep -Eci 'warning( #| ?:)' "$WORK/make.txt" || true)
    row_add "$ROWS" "build (sm_$CUDA_ARCH)" "$([ "$warnings" = 0 ] && echo ok || echo FAIL)" \
        "$((SECONDS - t0)) s with $NPROC jobs; $warnings compiler warnings"
}

# The CPU curve run is long next to the GPU ones: it runs in the background during stage b, on
# half the cores (the tests get the other half), and stage c waits for it.
start_cpu_curve_run() {
    [ -n "$GPU" ] && [ -x ./train_mlm ] || return 0
    (set +e; timeout 400 ./train_mlm "${CURVE_FLAGS[@]}" --device cpu --precision fp32 --threads "$CPU_THREADS" --out "$RUNS/cpu" \
        >"$WORK/train_cpu.txt" 2>&1; echo $? >"$WORK/train_cpu.rc") &
}

run_tests() {  # LABEL FILTER NAME
    local rc=0 counts failed status
    echo "\$ ./build/test_wellread --gtest_filter='$2'"
    timeout 420 ./build/test_wellread --gtest_filter="$2" 2>&1 | tee "$WORK/tests_$3.txt" || rc=$?
    if ! counts=$(test_counts "$WORK/tests_$3.txt"); then
        row_add "$ROWS" "$1" FAIL "no result line: $([ "$rc" = 124 ] && echo "timed out" || echo "exit code $rc")"
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
    [ -n "$GPU" ] || { no_gpu "GPU tests (Cuda*)" "CPU model tests (Model*)"; return 77; }
    [ -x build/test_wellread ] || { row_add "$ROWS" "tests" FAIL "build/test_wellread was not built"; return 1; }
    local rc=0 worst status=ok
    OMP_NUM_THREADS=$TEST_THREADS run_tests "GPU tests (Cuda*)" 'Cuda*' cuda || rc=1
    OMP_NUM_THREADS=$TEST_THREADS run_tests "CPU model tests (Model*)" 'Model*' model || rc=1
    worst=$(worst_errors "$WORK/tests_cuda.txt" 1)
    read -r n over <<<"$(errors_over_bound "$WORK/tests_cuda.txt")"
    echo "errors the GPU tests reported, nearest to their bounds first:"
    worst_errors "$WORK/tests_cuda.txt" 10
    [ "$over" = 0 ] || status=FAIL
    [ "$n" -gt 0 ] || status=incomplete  # no line the parser knows ("rel err X (bound B)", ...)
    row_add "$ROWS" "worst GPU test errors" "$status" "${worst:-no error lines found in the test output}; $over of $n reported errors above their bounds"
    return "$rc"
}

stage_curves() {
    [ -n "$GPU" ] || { no_gpu "curves: GPU bf16 vs CPU" "curves: GPU fp32 vs CPU"; return 77; }
    [ -x ./train_mlm ] || { row_add "$ROWS" "curves" FAIL "./train_mlm was not built"; return 1; }
    local rc=0 verdict deadline=$((SECONDS + 400))
    train gpu_bf16 "${CURVE_FLAGS[@]}" --device cuda --precision bf16 --threads "$GPU_THREADS" --out "$RUNS/gpu_bf16" || rc=1
    train gpu_fp32 "${CURVE_FLAGS[@]}" --device cuda --precision fp32 --threads "$GPU_THREADS" --out "$RUNS/gpu_fp32" || rc=1
    echo "waiting for the CPU run (started after the build, $CPU_THREADS threads)"
    while [ ! -e "$WORK/train_cpu.rc" ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 1; done
    grep -E '^(device|train_mlm|done|eval at)' "$WORK/train_cpu.txt" 2>/dev/null || true
    if [ "$(cat "$WORK/train_cpu.rc" 2>/dev/null)" != 0 ]; then
        row_add "$ROWS" "curves: CPU run" FAIL "$(tail -n 1 "$WORK/train_cpu.txt" 2>/dev/null || echo 'did not finish')"
        return 1
    fi
    local name tolerances
    for name in bf16 fp32; do
        if [ "$name" = bf16 ]; then tolerances=(0.03 0.10); else tolerances=(0.01 1e-4); fi
        if ! [ -f "$RUNS/gpu_$name/log.jsonl" ] || ! on_gpu "gpu_$name"; then
            row_add "$ROWS" "curves: GPU $name vs CPU" FAIL "the GPU run failed or ran elsewhere (see c_curves.log)"
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
    [ -x ./train_mlm ] || { row_add "$ROWS" "resume on the GPU" FAIL "./train_mlm was not built"; return 1; }
    local n=$RESUME_STEPS same ckpt
    local flags=(--preset tiny --seq-len 128 --batch 32 --warmup 0 --final-lr-fraction 1 --eval-every "$n" --seed 1
        --device cuda --precision bf16 --threads "$GPU_THREADS")
    ckpt=$(printf 'ckpt_%08d.bin' $((2 * n)))
    if ! train straight "${flags[@]}" --steps $((2 * n)) --out "$RUNS/resume_straight" --overwrite ||
        ! train first_half "${flags[@]}" --steps "$n" --out "$RUNS/resume_split" --overwrite ||
        ! train second_half "${flags[@]}" --steps $((2 * n)) --resume "$RUNS/resume_split"; then
        row_add "$ROWS" "resume on the GPU" FAIL "a run failed (see d_resume.log)"
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
    [ -x ./train_mlm ] || { row_add "$ROWS" "benchmark" FAIL "./train_mlm was not built"; return 1; }
    local rc=0
    [ -f docs/benchmarks.md ] && cp docs/benchmarks.md "$LOGS/benchmarks.md"
    echo "\$ python3 dev/bench_gpu.py $BENCH_ARGS"
    # shellcheck disable=SC2086  # BENCH_ARGS holds several arguments
    PYTHONUNBUFFERED=1 timeout 420 python3 dev/bench_gpu.py $BENCH_ARGS --tsv "$WORK/bench.tsv" \
        --markdown "$LOGS/benchmarks.md" || rc=$?
    if [ -s "$WORK/bench.tsv" ]; then
        bench_rows "$WORK/bench.tsv" >>"$ROWS"
    else
        row_add "$ROWS" "benchmark" FAIL "no figures (exit code $rc; see e_bench.log)"
    fi
    return "$rc"
}

finish() {
    local rc=0 elapsed=$((SECONDS - START))
    (cd "$WORK" && tar czf "$LOGS/details.tar.gz" --exclude='*.bin' --exclude=latest --exclude=logs \
        --exclude=sysroot --exclude=details.tar.gz . 2>/dev/null) || true
    summary_table "$ROWS" "$TITLE, $((elapsed / 60)) min $((elapsed % 60)) s" >"$LOGS/summary.md" || rc=1
    echo "logs: $LOGS"
    [ -n "$GPU" ] || echo "gpu_check: no GPU ($GPU_WHY): nothing was checked"
    echo
    cat "$LOGS/summary.md"
    [ -z "${OUT:-}" ] || rm -rf "$WORK"  # everything worth keeping is in $OUT
    exit "$rc"
}

run_stage a_build "environment and build" stage_build
start_cpu_curve_run
run_stage b_tests "GPU and model tests" stage_tests
run_stage c_curves "training curves, GPU against CPU" stage_curves
run_stage d_resume "resume on the GPU" stage_resume
run_stage e_bench "benchmark" stage_bench
finish
