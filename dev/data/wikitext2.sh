#!/usr/bin/env bash
# dev/data/wikitext2.sh: MLM evaluation shards from WikiText-2 (valid and test; no train split).
#   in:  wikitext2/wiki.valid.tokens, wiki.test.tokens: the tokenized release, one paragraph per
#        line, ` = Title = ` article headings and ` = = Section = = ` headings between blank lines.
#   cleaning (copies in $OUT/clean/wikitext2/, the layout of the wikipedia D_LM text):
#        blank lines dropped; ` = Title = ` (between blank lines) -> a blank line (one document = one article, title
#        dropped as in wikipedia/); ` = = Section = = ` -> `Section.` (a paragraph line, as the
#        wikipedia text keeps its headings); ` @-@ ` ` @,@ ` ` @.@ ` -> `-` `,` `.` (rejoined);
#        `<unk>` -> `[UNK]`, which the tokenizer reads as the [UNK] token: the original word is
#        gone, and spelled out `<unk>` would become 4 easy-to-predict pieces (< un ##k >).
#        These [UNK]s count in the [UNK] rate of the summary.
#   out: $OUT/$VOCAB_NAME/wikitext2/val_000.bin (from valid), test_000.bin (from test)
# shellcheck source=dev/data/common.sh
source "$(dirname "$0")/common.sh"
start wikitext2
mkdir -p "$CLEAN/wikitext2"
# A ` = Title = ` line is an article title only between two blank lines: formula lines inside
# articles look the same (` = 1 <unk> and <unk> C = ` in test) but are not set apart. awk marks
# the real titles, then sed drops blank lines and turns the marks into document breaks.
for split in valid test; do
    awk '{ line[NR] = $0 }
         END { for (i = 1; i <= NR; i++) {
                   blank_before = i == 1 || line[i - 1] ~ /^[[:space:]]*$/
                   blank_after = i == NR || line[i + 1] ~ /^[[:space:]]*$/
                   print (line[i] ~ /^ = [^=].* = *$/ && blank_before && blank_after) ? "@@TITLE@@" : line[i] } }' \
        "$DATA/wikitext2/wiki.$split.tokens" |
        sed -E -e '/^[[:space:]]*$/d' -e 's/^@@TITLE@@$//' -e 's/^ *(= )+= (.*[^ =]) =( =)+ *$/\2./' \
            -e 's/ @([-,.])@ /\1/g' -e 's/<unk>/[UNK]/g' >"$CLEAN/wikitext2/$split.txt"
done
echo "cleaned: $(grep -o '\[UNK\]' "$CLEAN/wikitext2/valid.txt" | wc -l) <unk> in valid, $(grep -o '\[UNK\]' "$CLEAN/wikitext2/test.txt" | wc -l) in test"
# prepare mlm writes train_*/val_*: each split goes whole to val_* (--val-fraction 1), the test
# split in a scratch folder, then renamed.
prep wikitext2.val mlm --input "$CLEAN/wikitext2/valid.txt" --val-fraction 1 --out "$VDIR/wikitext2"
prep wikitext2.test mlm --input "$CLEAN/wikitext2/test.txt" --val-fraction 1 --out "$VDIR/wikitext2/tmp"
for f in "$VDIR"/wikitext2/tmp/val_*.bin; do mv "$f" "$VDIR/wikitext2/test_${f##*/val_}"; done
rmdir "$VDIR/wikitext2/tmp"
