#!/usr/bin/env bash
# dev/data/imdb.sh: IMDB movie reviews, labeled (D_L) and unlabeled (D_T).
#   in:  imdb/train.tsv.gz, test.tsv.gz (25,000 each; header `label rating id text`, label 1 =
#        positive, 0 = negative), unsup.txt.gz (50,000 unlabeled reviews, one per line).
#   cleaning (copies in $OUT/clean/imdb/): HTML breaks `<br />` -> a space. The labeled files come
#        sorted negative then positive: their rows are shuffled with a fixed seed, so that the
#        shards hold the examples in random order (any prefix is a fair sample; trainers still
#        shuffle per epoch). Other rare HTML (<i>, 16 in all) is left as is.
#   out: $OUT/$VOCAB_NAME/imdb/
#        train.bin, test.bin   labeled example shards, labels 0 and 1 (ids 0, 1), --max-len 512
#        unsup.bin             unlabeled example shard: the distillation transfer set, --max-len 512
#        mlm/train_000.bin, val_000.bin   MLM shards of the unlabeled reviews (TAPT / DAPT), one
#                              review = one document, 2% of them held out
# shellcheck source=dev/data/common.sh
source "$(dirname "$0")/common.sh"
command -v openssl >/dev/null || die "openssl is needed for the seeded shuffle"
start imdb
C=$CLEAN/imdb
mkdir -p "$C"
unbreak() { zcat "$1" | sed -E 's#<br */?># #gI'; }
seeded_bytes() { openssl enc -aes-256-ctr -pass pass:"$1" -nosalt </dev/zero 2>/dev/null; }  # GNU shuf's manual
for split in train test; do
    unbreak "$DATA/imdb/$split.tsv.gz" >"$C/$split.sorted.tsv"
    { head -n 1 "$C/$split.sorted.tsv"; tail -n +2 "$C/$split.sorted.tsv" | shuf --random-source=<(seeded_bytes "$split"); } >"$C/$split.tsv"
    rm "$C/$split.sorted.tsv"
done
unbreak "$DATA/imdb/unsup.txt.gz" >"$C/unsup.txt"
prep imdb.train cls --input "$C/train.tsv" --text text --label label --max-len 512 --out "$VDIR/imdb/train.bin"
prep imdb.test cls --input "$C/test.tsv" --text text --label label --labels-from "$VDIR/imdb/train.bin" \
    --max-len 512 --out "$VDIR/imdb/test.bin"
prep imdb.unsup unlabeled --input "$C/unsup.txt" --max-len 512 --out "$VDIR/imdb/unsup.bin"
prep imdb.mlm mlm --input "$C/unsup.txt" --one-per-line --val-fraction 0.02 --out "$VDIR/imdb/mlm"
