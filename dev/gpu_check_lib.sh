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
#   sanitizer_result OUTPUT         "errors warnings<TAB>first finding" from compute-sanitizer's output
#   bench_rows TSV                  summary rows from dev/bench_gpu.py --tsv
#   toolkit_line                    one line: nvcc's version, and whether its include folder has what the build needs
#   deps_probe DIR [ROOT...]        where the compiler finds gtest, nlohmann/json, utf8proc and zlib (under a ROOT?)
#   build_gtest SRC DIR             DIR/libgtest.a from googletest's sources, with this machine's compiler
#   row_add ROWS LABEL STATUS TEXT  appends one row of the summary (status: ok, FAIL, out of time, interrupted,
#                                   not run, skipped, below goal, incomplete)
#   summary_table ROWS [TITLE]      the markdown table of the rows; exit 1 unless every check ran and none failed

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

# Every error a line of test output reports, in the forms the GPU tests print:
#   "rel err X", "relative error X", "rel diff X" (singular): one error; its bound is the "(bound B)"
#     or "(tolerance B)" right after it, and a ", NAME Y" after that bound is another error under
#     the same bound ("logits rel err X (bound B), evaluation forward Y");
#   "relative errors (tolerance B): NAME X  NAME Y ...": one error per NAME, all under B;
#   a line that ends in two or more "NAME X" pairs, X in e-notation ("out 1.2e-03  lse 4.0e-04"),
#     and a line "worst X": errors without a bound of their own.
# An error printed without a bound takes its test's bound when every bounded error of that test
# names the same one (the per-case lines of a test whose summary line states the tolerance).
# One TSV line each: error/bound (-1 where there is no bound; 1e300 for inf or nan), error, bound,
# the test running then (from "[ RUN      ] Suite.Name"), and what the line says the error is of.
error_records() {  # OUTPUT
    tr -d '\r' <"$1" | awk '
        BEGIN {
            NUM = "([-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?|[-+]?([iI][nN][fF]|[nN][aA][nN]))"
            POS = "([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?"
            ENUM = "([0-9]+[.]?[0-9]*[eE][-+]?[0-9]+|[iI][nN][fF]|[nN][aA][nN])"
            NAME = "[A-Za-z][A-Za-z0-9_+=.-]*"
            KW = "rel(ative)?[ _](err(or)?|diff(erence)?)s?"
            BOUND = "^[ \t]*[(]?(bound|tolerance)[ :=<]*" POS
            PAIR = "[ \t]+" NAME "[ \t]+" ENUM
            test = "?"; n = 0
        }
        function clean(c) {
            sub(/^\[ +worst +\] */, "", c); gsub(/[ \t]+/, " ", c); sub(/^[ ,;:)]+/, "", c); sub(/[ ,:;(]+$/, "", c)
            return c
        }
        function add(err, bound, ctx) {
            if (length(ctx) > 60) ctx = substr(ctx, 1, 57) "..."
            n++; e[n] = err; b[n] = bound; c[n] = ctx
        }
        function last_token(s) { sub(/[ \t]+$/, "", s); sub(/.*[ \t]/, "", s); return s }
        function first_token(s) { sub(/^[ \t,;]+/, "", s); sub(/[ \t].*/, "", s); return s }
        function take_bound(   m) {  # a bound at the start of rest: its value, rest after it
            if (!match(rest, BOUND)) return "-"
            m = substr(rest, RSTART, RLENGTH); rest = substr(rest, RSTART + RLENGTH); sub(/^[ \t]*[)]/, "", rest)
            sub(/^.*[ :=<(]/, "", m)
            return m
        }
        function flush(   i, bounds, nb, only) {  # the records of one test, unbounded ones completed
            nb = 0
            for (i = 1; i <= n; i++) if (b[i] != "-" && !(b[i] in bounds)) { bounds[b[i]] = 1; nb++; only = b[i] }
            for (i = 1; i <= n; i++) {
                if (b[i] == "-" && nb == 1) b[i] = only
                if (e[i] ~ /[iInN]/) ratio = 1e300
                else if (b[i] != "-" && b[i] + 0 > 0) ratio = (e[i] + 0) / (b[i] + 0)
                else ratio = -1
                printf "%.6g\t%s\t%s\t%s\t%s\n", ratio, e[i], b[i], test, c[i]
            }
            n = 0
        }
        /^\[ RUN      \] / { flush(); test = $4; next }
        {
            line = $0; rest = line; found = 0
            tag = ""
            if (match(line, /^[ \t]*\[[A-Za-z0-9_]+\]/)) { tag = substr(line, RSTART, RLENGTH); sub(/^[ \t]+/, "", tag) }
            while (match(rest, KW)) {
                found = 1
                kw = substr(rest, RSTART, RLENGTH); ctx = clean(substr(rest, 1, RSTART - 1)); rest = substr(rest, RSTART + RLENGTH)
                if (tag != "" && substr(ctx, 1, 1) != "[") ctx = tag " " ctx
                if (kw ~ /s$/) {  # a list: "relative errors (tolerance B): NAME X  NAME Y"
                    bound = take_bound()
                    if (!match(rest, /^[ \t]*:/)) continue
                    rest = substr(rest, RSTART + RLENGTH)
                    while (match(rest, "^[ \t,;]*" NAME "[ \t]+" NUM)) {
                        item = substr(rest, RSTART, RLENGTH); rest = substr(rest, RSTART + RLENGTH)
                        add(last_token(item), bound, ctx ": " first_token(item))
                    }
                    continue
                }
                if (!match(rest, "^[ \t:=]*" NUM)) continue
                err = last_token(substr(rest, RSTART, RLENGTH)); rest = substr(rest, RSTART + RLENGTH)
                bound = take_bound()
                what = ""
                if (match(rest, /^[ \t]*:[ \t]*[^ \t]/)) { what = clean(substr(rest, RSTART + RLENGTH - 1)); rest = "" }
                add(err, bound, ctx (what == "" ? "" : ": " what))
                if (bound == "-") continue
                pre = (match(ctx, /.*: /) ? substr(ctx, 1, RLENGTH) : (tag == "" ? "" : tag " "))
                while (match(rest, "^[ \t]*,[ \t]*[A-Za-z][A-Za-z ]*[A-Za-z][ \t]+" NUM "[ \t]*([,;)]|$)")) {
                    item = substr(rest, RSTART, RLENGTH); rest = substr(rest, RSTART + RLENGTH)
                    sub(/[ \t]*[,;)]$/, "", item); sub(/^[ \t]*,[ \t]*/, "", item)
                    err = last_token(item); sub(/[ \t]+[^ \t]+$/, "", item)
                    add(err, bound, pre item)
                }
            }
            if (found) next
            if (match(line, /worst[ :=]+/) && match(substr(line, RSTART + RLENGTH), "^" NUM)) {
                match(line, /worst[ :=]+/)
                ctx = clean(substr(line, 1, RSTART - 1)); rest = substr(line, RSTART + RLENGTH)
                match(rest, "^" NUM)
                add(substr(rest, 1, RLENGTH), "-", ctx)
            } else if (match(line, "(" PAIR ")(" PAIR ")+[ \t]*$")) {  # "... out 1.2e-03  lse 4.0e-04"
                ctx = clean(substr(line, 1, RSTART - 1)); rest = substr(line, RSTART)
                while (match(rest, "^" PAIR)) {
                    item = substr(rest, RSTART, RLENGTH); rest = substr(rest, RSTART + RLENGTH)
                    add(last_token(item), "-", ctx ": " first_token(item))
                }
            }
        }
        END { flush() }'
}

worst_errors() {  # OUTPUT [K]
    error_records "$1" | sort -t "$(printf '\t')" -k1,1gr | head -n "${2:-3}" |
        awk -F'\t' '{ printf "%s (bound %s) in %s%s\n", $2, $3, $4, ($5 == "" ? "" : ": " $5) }'
}

errors_over_bound() {  # OUTPUT
    error_records "$1" | awk -F'\t' '{ n++ } $1 + 0 > 1 { over++ } END { print n + 0, over + 0 }'
}

# compute-sanitizer's verdict from its output: the errors and warnings of its summary lines
# ("ERROR SUMMARY: N errors"; racecheck's "RACECHECK SUMMARY: H hazards displayed (E errors, W
# warnings)"), a tab, and its first finding. Exit 1 when the output has no summary line (the tool
# did not run to its end).
sanitizer_result() {  # OUTPUT
    tr -d '\r' <"$1" | awk '
        /^========= ERROR SUMMARY: [0-9]+ error/ { errors += $4; seen = 1 }
        /^========= RACECHECK SUMMARY: / {
            seen = 1
            if (match($0, /[(][0-9]+ error/)) errors += substr($0, RSTART + 1, RLENGTH - 1) + 0
            if (match($0, /[0-9]+ warning/)) warnings += substr($0, RSTART, RLENGTH) + 0
        }
        first == "" && /^========= +(Invalid|Error|Warning|Race|Program hit|Barrier|Uninitialized|Potential|Leaked)/ {
            first = $0; sub(/^=+ +/, "", first); gsub(/[ \t]+/, " ", first)
            if (length(first) > 120) first = substr(first, 1, 117) "..."
        }
        END { if (!seen) exit 1; printf "%d %d\t%s\n", errors, warnings, first }'
}

# The nvcc on PATH, in one line: its version and folder, and whether the toolkit's include folder
# has what the build includes from it (cublasLt.h; cub/, which CUDA 13 keeps in include/cccl/;
# nvtx3/). Exit 1 when nvcc is not found or one of them is missing.
toolkit_line() {
    local nvcc top inc version have rc=0 cub
    if ! nvcc=$(command -v nvcc); then
        echo "nvcc: not found on PATH"
        return 1
    fi
    version=$(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\), *\(V[0-9.]*\).*/\1 (\2)/p')
    top=$(cd "$(dirname "$(readlink -f "$nvcc")")/.." && pwd)
    inc=$top/include
    [ -d "$inc" ] || inc=$top/targets/x86_64-linux/include
    if [ -f "$inc/cublasLt.h" ]; then have="cublasLt.h yes"; else have="cublasLt.h NO"; rc=1; fi
    if [ -d "$inc/cub" ]; then cub="cub/ yes"; elif [ -d "$inc/cccl/cub" ]; then cub="cub/ yes (cccl/cub)"; else cub="cub/ NO"; rc=1; fi
    have="$have, $cub"
    if [ -d "$inc/nvtx3" ]; then have="$have, nvtx3/ yes"; else have="$have, nvtx3/ NO"; rc=1; fi
    echo "nvcc ${version:-(no version printed)} at $nvcc; $inc: $have"
    return "$rc"
}

# Where the compiler and the linker, with this environment (CPATH, LIBRARY_PATH), find the four
# libraries the build takes from outside the CUDA toolkit: compiles, links and runs a program that
# uses each, in DIR (g++ -H names every header it opens, ld --trace every library it takes). Prints
# "gtest/gtest.h: PATH" ... "-lz: PATH", one line each. Given ROOTs, each of these headers (and the
# ones of the same library they include) and libraries must be found under one of them: the bundle
# is then known to be what the build uses, whatever the machine has installed. On failure the last
# line is "FAIL: " and what is missing or found elsewhere; exit 1 (a header), 2 (a library: the
# link or the program failed).
deps_probe() {  # DIR [ROOT...]
    local dir=$1 cxx=${CXX:-g++} h path missing="" elsewhere="" r lib
    local -a roots=()
    shift
    for r in "$@"; do roots+=("$(readlink -f "$r")"); done
    mkdir -p "$dir"
    _under_roots() {  # PATH: under one of the roots (or there are none)
        local p r
        [ ${#roots[@]} = 0 ] && return 0
        p=$(readlink -f "$1")
        for r in "${roots[@]}"; do [ "${p#"$r"/}" != "$p" ] && return 0; done
        return 1
    }
    for h in gtest/gtest.h nlohmann/json.hpp utf8proc.h zlib.h; do
        if ! printf '#include <%s>\n' "$h" | "$cxx" -std=c++17 -x c++ -H -E -o /dev/null - 2>"$dir/headers.txt"; then
            missing="$missing $h"
            continue
        fi
        path=$(sed -n '1s/^\. //p' "$dir/headers.txt")
        echo "$h: $path"
        if ! _under_roots "$path"; then
            elsewhere="$elsewhere $h ($path)"
            continue
        fi
        # the headers of its library it includes (gtest/internal/..., zconf.h): the first one elsewhere
        path=$(sed -n 's/^\.* //p' "$dir/headers.txt" | grep -E '/(gtest|nlohmann)/|/(utf8proc|zlib|zconf)\.h$' |
            while read -r p; do _under_roots "$p" || { echo "$p"; break; }; done)
        [ -z "$path" ] || elsewhere="$elsewhere $path (included by $h)"
    done
    if [ -n "$missing" ]; then
        echo "FAIL: the compiler does not find$missing${roots[0]:+ (not in ${roots[*]})}"
        return 1
    fi
    if [ -n "$elsewhere" ]; then
        echo "FAIL: found outside ${roots[*]}:$elsewhere"
        return 1
    fi
    printf '%s\n' '// The build'"'"'s libraries, one call each (dev/gpu_check_lib.sh, deps_probe).' \
        '#include <gtest/gtest.h>' '#include <nlohmann/json.hpp>' '#include <utf8proc.h>' '#include <zlib.h>' \
        'int main() {' \
        '    return nlohmann::json::parse("[1]").size() == 1 && utf8proc_version()[0] && zlibVersion()[0] && !testing::TempDir().empty() ? 0 : 1;' \
        '}' >"$dir/probe.cpp"
    if ! "$cxx" -std=c++17 -O0 -c "$dir/probe.cpp" -o "$dir/probe.o" >"$dir/compile.txt" 2>&1; then
        echo "FAIL: the probe program does not compile: $(grep -m 1 -i 'error' "$dir/compile.txt")"
        return 1
    fi
    if ! "$cxx" "$dir/probe.o" -o "$dir/probe" -lgtest -lutf8proc -lz -lpthread -Wl,--trace >"$dir/link.txt" 2>&1; then
        missing=$(sed -n 's/.*cannot find \(-l[a-z0-9_]*\).*/\1/p' "$dir/link.txt" | sort -u | tr '\n' ' ')
        if [ -n "$missing" ]; then
            echo "FAIL: the linker does not find ${missing% }${roots[0]:+ (not in ${roots[*]})}"
        else
            echo "FAIL: the probe program does not link: $(grep -m 1 -iE 'undefined reference|error' "$dir/link.txt")"
        fi
        return 2
    fi
    for lib in gtest utf8proc z; do
        path=$(grep -oE "[^ ()]*/lib$lib\.(a|so)[^ ()]*" "$dir/link.txt" | head -n 1)
        echo "-l$lib: $path"
        _under_roots "$path" || elsewhere="$elsewhere $path"
    done
    if [ -n "$elsewhere" ]; then
        echo "FAIL: found outside ${roots[*]}:$elsewhere"
        return 2
    fi
    if ! "$dir/probe" >"$dir/run.txt" 2>&1; then
        echo "FAIL: the probe program links but does not run: $(head -n 1 "$dir/run.txt")"
        return 2
    fi
}

# DIR/libgtest.a compiled from googletest's sources (SRC holds include/ and src/gtest-all.cc) with
# this machine's compiler: for a machine whose C++ library cannot link the prebuilt one.
build_gtest() {  # SRC DIR
    mkdir -p "$2"
    "${CXX:-g++}" -std=c++17 -O1 -pthread -isystem "$1/include" -I "$1" -c "$1/src/gtest-all.cc" -o "$2/gtest-all.o" &&
        ar rcs "$2/libgtest.a" "$2/gtest-all.o"
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
    # Overall: FAIL when a check failed, ran out of time or was interrupted; incomplete when one
    # did not run (the budget was spent, or what it needs failed); ok otherwise.
    awk -F'\t' '
        function add(list, x) { return list (list == "" ? "" : ", ") x }
        NF >= 2 {
            printf "| %s | %s | %s |\n", $1, $2, $3; n++
            if ($2 == "FAIL") failed = add(failed, $1)
            if ($2 == "out of time") late = add(late, $1)
            if ($2 == "interrupted") stopped = add(stopped, $1)
            if ($2 == "not run") not_run++
            if ($2 == "below goal") below++
            if ($2 == "skipped") skipped++
            if ($2 == "incomplete") incomplete++
        }
        END {
            if (n == 0) { print "| overall | FAIL | no check ran |"; exit 1 }
            note = (below ? ", " below " below the benchmark goals" : "") (incomplete ? ", " incomplete " incomplete" : "")
            note = note (not_run ? ", " not_run " not run" : "") (skipped ? ", " skipped " skipped" : "")
            bad = (failed == "" ? "" : "failed: " failed)
            if (late != "") bad = bad (bad == "" ? "" : "; ") "out of time: " late
            if (stopped != "") bad = bad (bad == "" ? "" : "; ") "interrupted: " stopped
            if (bad != "") { printf "| overall | FAIL | %s%s |\n", bad, note; exit 1 }
            if (not_run) { printf "| overall | incomplete | %d checks%s |\n", n, note; exit 1 }
            printf "| overall | ok | %d checks%s |\n", n, note
        }' "$1"
}
