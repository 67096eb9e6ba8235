#!/usr/bin/env bash
# dev/data/wikipedia.sh: MLM token shards (D_LM) from 3,541 Wikipedia articles.
#   in:  wikipedia/enwiki_train.txt.gz (train), enwiki_valid.txt.gz (validation); one paragraph
#        per line, a blank line between articles: one document = one article.
#   out: $OUT/$VOCAB_NAME/wikipedia/train_000.bin, val_000.bin
# shellcheck source=dev/data/common.sh
source "$(dirname "$0")/common.sh"
start wikipedia
prep wikipedia mlm --input "$DATA/wikipedia/enwiki_train.txt.gz" --val-input "$DATA/wikipedia/enwiki_valid.txt.gz" \
    --out "$VDIR/wikipedia"
