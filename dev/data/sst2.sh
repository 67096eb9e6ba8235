#!/usr/bin/env bash
# dev/data/sst2.sh: GLUE SST-2 sentences (D_L), and its train sentences as a transfer set.
#   in:  sst2/train.tsv (67,349), dev.tsv (872); header `sentence label`, lowercased and
#        PTB-tokenized (the trailing space before the tab is harmless: the tokenizer drops it).
#   out: $OUT/$VOCAB_NAME/sst2/
#        train.bin, dev.bin   labeled example shards, labels 0 and 1 (ids 0, 1), --max-len 128
#                             (the longest sentence is far shorter: see the summary's max)
#        transfer.bin         the train sentences without labels: unlabeled example shard, the
#                             distillation transfer set
# shellcheck source=dev/data/common.sh
source "$(dirname "$0")/common.sh"
start sst2
prep sst2.train cls --input "$DATA/sst2/train.tsv" --text sentence --label label --max-len 128 --out "$VDIR/sst2/train.bin"
prep sst2.dev cls --input "$DATA/sst2/dev.tsv" --text sentence --label label --labels-from "$VDIR/sst2/train.bin" \
    --max-len 128 --out "$VDIR/sst2/dev.bin"
prep sst2.transfer unlabeled --input "$DATA/sst2/train.tsv" --format tsv --text sentence --max-len 128 \
    --out "$VDIR/sst2/transfer.bin"
