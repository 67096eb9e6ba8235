# dev/gpu_check_lib.sh: the log parsing, comparisons and summary table behind dev/gpu_check.sh, in
# bash and POSIX awk only: the GPU machine may lack jq, and `make test` (tests/test_gpu_check.cpp)
# runs these on fabricated files without Python or a GPU. Source it: `. dev/gpu_check_lib.sh`.
#
#   log_losses LOG KIND             "step loss" of each train or eval record of a log.jsonl
#   compare_curves A B [MAX_STEP]   key=value lines: how far log A's losses are from log B's
#   judge_curves VAL_TOL STEP_TOL   (reads compare_curves' output) "ok|FAIL<TAB>what it found"
#   same_losses A B                 exit 0 when both logs hold the same steps with the same losses
#   at_most VALUE LIMIT             exit 0 when VALUE is a number <= LIMIT
#   test_counts OUTPUT              "passed failed skipped" from the test binary's last line
#   failed_tests OUTPUT             the names of the failed tests, comma-separated
#   error_records OUTPUT            one TSV line per error a test printed (ratio, error, bound, test, context)
#   worst_errors OUTPUT [K]         the K errors nearest to (or over) their bounds, one per line
#   errors_over_bound OUTPUT        "reported over": how many errors were printed, how many above their bound
#   bench_rows TSV                  summary rows from dev/bench_gpu.py --tsv
#   row_add ROWS LABEL STATUS TEXT  appends one row of the summary (status: ok, FAIL, skipped, below goal, incomplete)
#   summary_table ROWS [TITLE]      the markdown table of the rows; exit 1 when a row is FAIL or there is none

# shellcheck shell=bash
# The awk helpers every parser below shares.
_GC_AWK_LIB='
function field(line, key,   s) {  # the value of "key" in one line of JSON (flat objects only)
    if (!match(line, "\"" key "\" *: *[^,}]*")) return ""
    s = substr(line, RSTART, RLENGTH)
    sub(/^[^:]*: */, "", s)
    gsub(/"/, "", s)
    sub(/ +$/, "", s)
    return s
}
function is_num(v) { return v ~ /^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$/ }
function abs(x) { return x < 0 ? -x : x }
function rel(a, b) {  # |a - b| / |b|; 1e300 stands for infinity (a value that is not a number)
    if (!is_num(a) || !is_num(b)) return 1e300
    a += 0; b += 0
    if (b == 0) return a == 0 ? 0 : 1e300
    return abs(a - b) / abs(b)
}
function show(x) { return x >= 1e300 ? "inf" : sprintf("%.8g", x) }
'

log_losses() {  # LOG KIND
    awk "$_GC_AWK_LIB"'field($0, "kind") == kind { print field($0, "step"), field($0, "loss") }' kind="$2" "$1"
}

# Relative differences of log A's losses from log B's (B is the reference), over the train steps
# both logs hold (only steps <= MAX_STEP when it is given and not 0), and of the last evaluation
# both hold. Prints train_steps, train_max_rel, train_max_rel_step, train_last_step, val_step,
# val_a, val_b, val_rel (val_* are "-" when the logs share no evaluation). Exit 1 when they share
# no train step.
compare_curves() {  # A B [MAX_STEP]
    local f
    for f in "$1" "$2"; do
        [ -f "$f" ] || { echo "compare_curves: $f does not exist" >&2; return 2; }
    done
    awk "$_GC_AWK_LIB"'
        { kind = field($0, "kind"); step = field($0, "step") + 0; loss = field($0, "loss"); a = FILENAME == first }
        kind == "train" && (max_step == 0 || step <= max_step) { if (a) ta[step] = loss; else tb[step] = loss }
        kind == "eval" { if (a) ea[step] = loss; else eb[step] = loss }
        END {
            n = 0; worst = -1; worst_step = 0; last = 0
            for (s in tb) if (s in ta) {
                n++; r = rel(ta[s], tb[s])
                if (r > worst || (r == worst && s + 0 < worst_step)) { worst = r; worst_step = s + 0 }
                if (s + 0 > last) last = s + 0
            }
            vs = -1
            for (s in eb) if ((s in ea) && s + 0 > vs) vs = s + 0
            print "train_steps=" n
            print "train_max_rel=" (n ? show(worst) : "-")
            print "train_max_rel_step=" (n ? worst_step : "-")
            print "train_last_step=" (n ? last : "-")
            if (vs >= 0) {
                print "val_step=" vs; print "val_a=" ea[vs]; print "val_b=" eb[vs]; print "val_rel=" show(rel(ea[vs], eb[vs]))
            } else {
                print "val_step=-"; print "val_a=-"; print "val_b=-"; print "val_rel=-"
            }
            exit (n == 0)
        }' first="$1" max_step="${3:-0}" "$1" "$2"
}

kv_get() {  # KEY < key=value lines: the last value of KEY
    awk -v key="$1" 'index($0, key "=") == 1 { v = substr($0, length(key) + 2) } END { print v }'
}

at_most() {  # VALUE LIMIT
    awk -v v="$1" -v l="$2" "$_GC_AWK_LIB"'BEGIN { exit !(is_num(v) && is_num(l) && v + 0 <= l + 0) }'
}

fmt_rel() {  # a relative difference as a percentage, or in e-notation when tiny
    awk -v x="$1" "$_GC_AWK_LIB"'BEGIN {
        if (!is_num(x)) print x; else if (x + 0 < 1e-3 && x + 0 > 0) printf "%.2e\n", x; else printf "%.2f%%\n", 100 * x }'
}

# Judges compare_curves' output: the final validation losses within VAL_TOL and every compared
# train step within STEP_TOL (relative). Prints "ok" or "FAIL", a tab, and the figures.
judge_curves() {  # VAL_TOL STEP_TOL < compare_curves output
    local kv steps max step last val_a val_b val_rel status=ok
    kv=$(cat)
    steps=$(kv_get train_steps <<<"$kv"); max=$(kv_get train_max_rel <<<"$kv"); step=$(kv_get train_max_rel_step <<<"$kv")
    last=$(kv_get train_last_step <<<"$kv")
    val_a=$(kv_get val_a <<<"$kv"); val_b=$(kv_get val_b <<<"$kv"); val_rel=$(kv_get val_rel <<<"$kv")
    at_most "$val_rel" "$1" || status=FAIL
    at_most "$max" "$2" || status=FAIL
    [ "${steps:-0}" -gt 0 ] || status=FAIL
    printf '%s\tfinal val loss %s vs %s: %s (tolerance %s); train losses at %s steps (up to step %s): max diff %s at step %s (tolerance %s)\n' \
        "$status" "${val_a:--}" "${val_b:--}" "$(fmt_rel "${val_rel:--}")" "$(fmt_rel "$1")" "${steps:-0}" "${last:--}" \
        "$(fmt_rel "${max:--}")" "${step:--}" "$(fmt_rel "$2")"
}

# Both logs' records (kind, step, loss as printed) in order; exit 0 when they are the same.
same_losses() {  # A B
    local a b
    a=$(awk "$_GC_AWK_LIB"'{ print field($0, "kind"), field($0, "step"), field($0, "loss") }' "$1") || return 2
    b=$(awk "$_GC_AWK_LIB"'{ print field($0, "kind"), field($0, "step"), field($0, "loss") }' "$2") || return 2
    if [ -z "$a" ]; then
        echo "no records in $1"
        return 1
    fi
    if [ "$a" == "$b" ]; then
        echo "identical: $(grep -c '^train' <<<"$a") train steps, $(grep -c '^eval' <<<"$a") evaluations"
        return 0
    fi
    paste -d '|' <(echo "$a") <(echo "$b") |
        awk -F'|' '$1 != $2 { printf "differ: first at record %d: %s vs %s\n", NR, ($1 == "" ? "(none)" : $1), ($2 == "" ? "(none)" : $2); exit }'
    return 1
}

test_counts() {  # OUTPUT of the test binary
    tr -d '\r' <"$1" | awk '/^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$/ { line = $1 " " $3 " " $5 } END { if (line == "") exit 1; print line }'
}

failed_tests() {  # OUTPUT
    awk '/^\[  FAILED  \] [^ ]+[.][^ ]+/ && !seen[$4]++ { names = names (names == "" ? "" : ", ") $4 } END { print names }' "$1"
}

# Every line of test output that reports an error: "rel err X", "relative error X", "rel diff X"
# or "worst X", with its bound when the line names one ("bound B", "tolerance B"). One TSV line
# each: error/bound (-1 where no bound is given; 1e300 for inf or nan), error, bound, the test
# running then (from "[ RUN      ] Suite.Name"), and the line's text before the error.
error_records() {  # OUTPUT
    tr -d '\r' <"$1" | awk '
        /^\[ RUN      \] / { test = $4; next }
        {
            line = $0
            if (match(line, /rel(ative)?[ _](err(or)?|diff(erence)?)[ :=]*/) || match(line, /worst[ :=]+/)) {
                ctx = substr(line, 1, RSTART - 1); rest = substr(line, RSTART + RLENGTH)
            } else next
            if (!match(rest, /^([-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?|[-+]?([iI][nN][fF]|[nN][aA][nN]))/)) next
            err = substr(rest, RSTART, RLENGTH)
            bound = "-"
            if (match(line, /(bound|tolerance)[ :=<]*/)) {
                after = substr(line, RSTART + RLENGTH)
                if (match(after, /^([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?/)) bound = substr(after, RSTART, RLENGTH)
            }
            if (err ~ /[iInN]/) ratio = 1e300
            else if (bound != "-" && bound + 0 > 0) ratio = (err + 0) / (bound + 0)
            else ratio = -1
            sub(/^\[ +worst +\] */, "", ctx); gsub(/[ \t]+/, " ", ctx); sub(/^ /, "", ctx); sub(/[ ,:;(]+$/, "", ctx)
            if (length(ctx) > 60) ctx = substr(ctx, 1, 57) "..."
            printf "%.6g\t%s\t%s\t%s\t%s\n", ratio, err, bound, (test == "" ? "?" : test), ctx
        }'
}

worst_errors() {  # OUTPUT [K]
    error_records "$1" | sort -t "$(printf '\t')" -k1,1gr | head -n "${2:-3}" |
        awk -F'\t' '{ printf "%s (bound %s) in %s%s\n", $2, $3, $4, ($5 == "" ? "" : ": " $5) }'
}

errors_over_bound() {  # OUTPUT
    error_records "$1" | awk -F'\t' '{ n++ } $1 + 0 > 1 { over++ } END { print n + 0, over + 0 }'
}

# Rows for the summary from dev/bench_gpu.py's TSV (a header line, then: preset layers hidden
# batch ours_tps ours_mfu torch_tps torch_mfu torch_mode; "-" where a figure is missing). The
# goals of the CUDA path: L12-H768 at least 50% MFU; mini at least 1.5x PyTorch's tokens/s.
bench_rows() {  # TSV
    awk -F'\t' '
        function tps(x) { return x >= 1e6 ? sprintf("%.2fM", x / 1e6) : x >= 1e3 ? sprintf("%.1fk", x / 1e3) : sprintf("%.0f", x) }
        function pct(x) { return sprintf("%.1f%%", 100 * x) }
        NR == 1 { next }
        {
            preset = $1; L = $2; H = $3; B = $4; ours = $5; ours_mfu = $6; pt = $7; pt_mfu = $8; mode = $9
            label = "bench " preset (preset ~ /^L[0-9]+-H[0-9]+$/ ? "" : " (L" L "-H" H ")") ", B " B
            if (ours == "-") { printf "%s\tFAIL\tours: no figure (see e_bench.log)%s\n", label, (pt == "-" ? "" : "; PyTorch " tps(pt) " tok/s"); next }
            text = "ours " tps(ours) " tok/s, MFU " pct(ours_mfu)
            status = "ok"
            if (pt == "-") { text = text "; PyTorch: no figure (" mode ")"; status = "incomplete" }
            else {
                ratio = ours / pt
                text = text "; PyTorch (" mode ") " tps(pt) " tok/s, MFU " pct(pt_mfu) "; ours/PyTorch " sprintf("%.2fx", ratio)
            }
            if (L == 12 && H == 768) { goal = "MFU >= 50%"; met = ours_mfu + 0 >= 0.5 }
            else if (preset == "mini") { goal = "ours/PyTorch >= 1.5x"; met = pt != "-" && ratio >= 1.5 }
            else goal = ""
            if (goal != "") {
                text = text " (goal " goal ")"
                if (!met && status == "ok") status = "below goal"
            }
            printf "%s\t%s\t%s\n", label, status, text
        }' "$1"
}

row_add() {  # ROWS LABEL STATUS TEXT (tabs and newlines become spaces; | is escaped for markdown)
    local label=$2 text=$4
    label=${label//[$'\t\n']/ } text=${text//[$'\t\n']/ }
    printf '%s\t%s\t%s\n' "${label//|/\\|}" "$3" "${text//|/\\|}" >>"$1"
}

summary_table() {  # ROWS [TITLE]
    echo "## dev/gpu_check.sh${2:+: $2}"
    echo
    echo "| check | status | result |"
    echo "|---|---|---|"
    if [ ! -s "$1" ]; then
        echo "| overall | FAIL | no check ran |"
        return 1
    fi
    awk -F'\t' '
        NF >= 2 {
            printf "| %s | %s | %s |\n", $1, $2, $3; n++
            if ($2 == "FAIL") failed = failed (failed == "" ? "" : ", ") $1
            if ($2 == "below goal") below++
            if ($2 == "skipped") skipped++
            if ($2 == "incomplete") incomplete++
        }
        END {
            if (n == 0) { print "| overall | FAIL | no check ran |"; exit 1 }
            note = (below ? ", " below " below the benchmark goals" : "") (incomplete ? ", " incomplete " incomplete" : "") (skipped ? ", " skipped " skipped" : "")
            if (failed != "") { printf "| overall | FAIL | failed: %s%s |\n", failed, note; exit 1 }
            printf "| overall | ok | %d checks%s |\n", n, note
        }' "$1"
}
