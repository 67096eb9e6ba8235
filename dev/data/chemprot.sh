#!/usr/bin/env bash
# dev/data/chemprot.sh: ChemProt chemical-protein relations (D_L, 13 labels), and its train
# sentences as MLM text (TAPT).
#   in:  chemprot/train.jsonl (4,169), dev.jsonl (2,427), test.jsonl (3,469): JSON lines
#        {"text", "label", "metadata"}; the two entities are marked inline as `<< ... >>` and
#        `[[ ... ]]`. The markers are kept as they are in the labeled shards: they become
#        punctuation tokens (< < ... > >, [ [ ... ] ]) that tell the classifier which pair is meant.
#        Labels are heavily imbalanced (INHIBITOR 1,642 of 4,169 in train, AGONIST-INHIBITOR 4; dev
#        and test lack one label each): report micro-F1. Label ids: the 13 train labels, sorted by name.
#   out: $OUT/$VOCAB_NAME/chemprot/
#        train.bin, dev.bin, test.bin   labeled example shards, --max-len 512 so that none is cut (a
#                                       cut could drop an entity; a few pass 256); dev/test reuse
#                                       the train label ids
#        mlm/train_000.bin, val_000.bin MLM shards (TAPT) of the train sentences, one per line,
#                                       markers removed and duplicates dropped (one sentence holds
#                                       several marked pairs: 4,169 texts, 1,653 sentences), 5% held out
# shellcheck source=dev/data/common.sh
source "$(dirname "$0")/common.sh"
command -v jq >/dev/null || die "jq is needed to read the JSON lines (apt-get install jq)"
start chemprot
mkdir -p "$CLEAN/chemprot"
prep chemprot.train cls --input "$DATA/chemprot/train.jsonl" --text text --label label --max-len 512 \
    --out "$VDIR/chemprot/train.bin"
for split in dev test; do
    prep "chemprot.$split" cls --input "$DATA/chemprot/$split.jsonl" --text text --label label \
        --labels-from "$VDIR/chemprot/train.bin" --max-len 512 --out "$VDIR/chemprot/$split.bin"
done
jq -r '.text | gsub("[\n\t]"; " ")' "$DATA/chemprot/train.jsonl" | sed -E 's/<< | >>|\[\[ | \]\]//g' |
    awk '!seen[$0]++' >"$CLEAN/chemprot/train_sentences.txt"
prep chemprot.mlm mlm --input "$CLEAN/chemprot/train_sentences.txt" --one-per-line --val-fraction 0.05 \
    --out "$VDIR/chemprot/mlm"
