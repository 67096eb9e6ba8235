#!/usr/bin/env bash
# dev/data/all.sh [SCRIPT...]: the vocabulary, then every data set (or only the named scripts,
# e.g. `dev/data/all.sh sst2 imdb`), then a table of what was made: per output, documents or
# examples, tokens, [UNK] rate, length percentiles, prepare's seconds; and each script's wall
# time (cleaning included). The table is built from prepare's logs in $OUT/$VOCAB_NAME/logs/ (so
# it also covers data sets prepared earlier) and written to $OUT/$VOCAB_NAME/summary.md.
#   VOCAB_NAME=bert-base-uncased dev/data/all.sh    the same with the original BERT vocabulary
# shellcheck source=dev/data/common.sh
source "$(dirname "$0")/common.sh"
HERE=$REPO/dev/data
ALL=(vocab wikipedia gutenberg wikitext2 imdb sst2 biomed chemprot)
for s in "${@:-${ALL[@]}}"; do
    [ -f "$HERE/$s.sh" ] || die "no script dev/data/$s.sh (scripts: ${ALL[*]})"
done
mkdir -p "$LOGS"
for s in "${@:-${ALL[@]}}"; do
    t0=$(now)
    bash "$HERE/$s.sh"
    since "$t0" >"$LOGS/$s.seconds"
done

# One table row per split written: prepare's summary lines, parsed.
rows() {  # LOG
    awk -v name="$(basename "$1" .log | tr . ' ')" '
    function commas(n,   s) { s = ""; while (n >= 1000) { s = sprintf(",%03d", n % 1000) s; n = int(n / 1000) } return n s }
    function stats(label, s,   f, a, b, c) {  # s: "N units, M tokens, [UNK] x%, tokens per units p50 . p90 . p99 . max ."
        split(s, f, ", "); split(f[1], a, " "); split(f[2], b, " "); split(f[4], c, " ")
        if (a[1] + 0 == 0) return
        sub(/^\[UNK\] /, "", f[3])
        n++; lab[n] = label; cnt[n] = commas(a[1]) " " a[2]; tok[n] = commas(b[1]); unk[n] = f[3]; len[n] = c[5] " / " c[9] " / " c[11]
    }
    /^train: / { sub(/^train: */, ""); stats("train", $0) }
    /^val: /   { sub(/^val: */, ""); stats("val", $0) }
    /^held-out text: / { sub(/^held-out text: */, ""); stats("held-out wikipedia valid", $0) }
    /^[0-9]+ examples, / { stats("", $0) }
    /^wrote .* in [0-9.]+ s/ { for (i = 1; i < NF; i++) if ($(i + 1) == "s" || $(i + 1) == "s:") secs = $i }
    /^vocab: counted / { for (i = 1; i < NF; i++) if ($(i + 1) == "s," || $(i + 1) == "s") secs += $i }
    END {
        for (i = 1; i <= n; i++) {
            label = name; if (n > 1 || lab[i] ~ /held-out/) label = label " " lab[i]
            printf "| %s | %s | %s | %s | %s | %s |\n", label, cnt[i], tok[i], unk[i], len[i], i == 1 ? secs : "(above)"
        }
    }' "$1"
}

{
    echo "# Prepared data, vocabulary $VOCAB_NAME"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), vocabulary $VOCAB ($(wc -l <"$VOCAB") tokens)."
    echo "Seconds: prepare's own time; an MLM run's time covers its train and val splits."
    echo
    echo "| data set | documents / examples | tokens | [UNK] | tokens p50 / p99 / max | seconds |"
    echo "|---|---:|---:|---:|---:|---:|"
    for s in "${ALL[@]}"; do
        # the data set's logs in the order they were written
        while IFS= read -r log; do rows "$log"; done < <(ls -1tr "$LOGS/$s.log" "$LOGS/$s".*.log 2>/dev/null || true)
    done
    echo
    echo "| script | wall seconds |"
    echo "|---|---:|"
    for s in "${ALL[@]}"; do
        if [ -f "$LOGS/$s.seconds" ]; then echo "| dev/data/$s.sh | $(cat "$LOGS/$s.seconds") |"; fi
    done
} >"$VDIR/summary.md"
echo
cat "$VDIR/summary.md"
