#!/usr/bin/env bash
# dev/data/biomed.sh: MLM token shards (biomedical domain text, for DAPT) from 36.6k PubMed
# abstract sentences.
#   in:  biomed_text/biomed_sentences.txt: one tokenized sentence per line, a blank line between
#        documents (3,260 abstracts): one document = one abstract; 5% of them held out.
#   out: $OUT/$VOCAB_NAME/biomed/train_000.bin, val_000.bin
# shellcheck source=dev/data/common.sh
source "$(dirname "$0")/common.sh"
start biomed
prep biomed mlm --input "$DATA/biomed_text/biomed_sentences.txt" --val-fraction 0.05 --out "$VDIR/biomed"
