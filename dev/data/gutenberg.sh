#!/usr/bin/env bash
# dev/data/gutenberg.sh: MLM token shards (D_LM, books) from 114 Project Gutenberg books.
#   in:  gutenberg/train.txt.gz (108 books), valid.txt.gz (6 books); one paragraph per line, a
#        blank line between books: one document = one book (long; the batcher cuts sequences).
#   out: $OUT/$VOCAB_NAME/gutenberg/train_000.bin, val_000.bin
# shellcheck source=dev/data/common.sh
source "$(dirname "$0")/common.sh"
start gutenberg
prep gutenberg mlm --input "$DATA/gutenberg/train.txt.gz" --val-input "$DATA/gutenberg/valid.txt.gz" \
    --out "$VDIR/gutenberg"
