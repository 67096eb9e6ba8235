#!/usr/bin/env bash
# fuzz/run.sh [SECONDS [NAME...]]: runs the fuzz targets built by `make fuzz` (all, or those named:
# token_shard, checkpoint, ...) one after the other for SECONDS each (default 20), from the
# repository root, and prints one line per target. Per target NAME, in build/fuzz/:
#   corpus/NAME/     the inputs libFuzzer found interesting, kept for the next run
#   seeds/NAME/      the seed corpus (read only; make_seeds.sh)
#   logs/NAME.log    libFuzzer's output
#   findings/NAME/   the input of a finding (crash-..., timeout-..., oom-...), to replay with
#                    build/fuzz/bin/fuzz_NAME FILE
# Exit status 1 when any target had a finding (the others still run).
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
shift || true
build=build/fuzz
if [ $# -gt 0 ]; then
    names=("$@")
else
    names=()
    for bin in "$build"/bin/fuzz_*; do names+=("${bin##*/fuzz_}"); done
fi

# -timeout: an input that takes longer is a hang. -rss_limit_mb (and malloc_limit_mb, which
# follows it): a reader that asks for more memory than a file of at most -max_len bytes (the
# largest seed) could justify is a finding too.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
failed=0
for name in "${names[@]}"; do
    bin=$build/bin/fuzz_$name
    if [ ! -x "$bin" ]; then
        echo "fuzz_$name: no such target (make fuzz builds $build/bin/fuzz_*)" >&2
        failed=1
        continue
    fi
    mkdir -p "$build/corpus/$name" "$build/findings/$name" "$build/logs"
    log=$build/logs/$name.log
    start=$(date +%s)
    "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$build/findings/$name/" "$build/corpus/$name" "$build/seeds/$name" >"$log" 2>&1
    status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    coverage=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    if [ $status -eq 0 ]; then
        echo "fuzz_$name: ${runs:-?} runs in $(($(date +%s) - start)) s, ${coverage:-cov: ?}, no finding"
    else
        echo "fuzz_$name: FINDING (exit status $status) after ${runs:-?} runs; log $log, input:" \
            "$(ls -t "$build/findings/$name" | head -1 | sed "s|^|$build/findings/$name/|")"
        grep -m1 -E 'ERROR|runtime error|fuzz finding|terminate called' "$log" || tail -5 "$log"
        failed=1
    fi
done
exit $failed
