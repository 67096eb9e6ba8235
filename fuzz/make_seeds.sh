#!/usr/bin/env bash
# fuzz/make_seeds.sh OUT: the seed corpora of the fuzz targets (OUT/NAME/ for fuzz/NAME.cpp):
# valid files of every format, written by the programs themselves (prepare, train_mlm, finetune,
# distill) from a small generated text and a model of a few thousand parameters, so they stay
# small; a tensor file of the tests' fixtures; plus the committed seeds of fuzz/seeds/NAME/ (text
# seeds, and inputs of findings kept as regression tests). A few seconds.
# Run from the repository root after `make` (the Makefile's fuzz rule does).
set -euo pipefail
out=${1:?usage: fuzz/make_seeds.sh OUT}
work=$out/.work
rm -rf "$out"
mkdir -p "$work"
run() { "$@" >>"$work/log.txt" 2>&1 || { echo "make_seeds: failed: $*  (log: $work/log.txt)" >&2; tail -20 "$work/log.txt" >&2; exit 1; }; }
cpu=(--device cpu --precision fp32 --threads 1)

# The text: 60 short documents (blank lines between them) and a labeled table, from a few words.
words=(the a fox dog reads writes quick lazy brown river stone light quietly never always film book good bad story)
{
    for d in $(seq 0 59); do
        for s in 0 1 2; do
            line=""
            for w in 0 1 2 3 4 5; do line+="${words[$(((d * 7 + s * 5 + w * w * 3 + d * w) % ${#words[@]}))]} "; done
            echo "${line% }."
        done
        echo
    done
} >"$work/corpus.txt"
{
    printf 'sentence\tother\tlabel\tscore\n'
    for i in $(seq 0 23); do
        printf '%s %s %s\t%s %s\t%s\t%s.%s\n' "${words[$((i % 20))]}" "${words[$(((i * 3) % 20))]}" "${words[$(((i * 7) % 20))]}" \
            "${words[$(((i * 11) % 20))]}" "${words[$(((i * 13) % 20))]}" "$([ $((i % 3)) = 0 ] && echo negative || echo positive)" $((i % 5)) $((i % 10))
    done
} >"$work/labeled.tsv"
grep -v -m 30 '^$' "$work/corpus.txt" >"$work/unlabeled.txt"

# Vocabulary and shards.
run ./prepare vocab --input "$work/corpus.txt" --size 120 --out "$work/vocab.txt" --threads 1
v=(--vocab "$work/vocab.txt")
run ./prepare mlm "${v[@]}" --input "$work/corpus.txt" --out "$work/mlm" --val-fraction 0.2 --threads 1
run ./prepare cls "${v[@]}" --input "$work/labeled.tsv" --text sentence --label label --max-len 12 --out "$work/class.bin" --threads 1
run ./prepare cls "${v[@]}" --input "$work/labeled.tsv" --text sentence --text-b other --label label --max-len 16 \
    --out "$work/pairs.bin" --threads 1
run ./prepare cls "${v[@]}" --input "$work/labeled.tsv" --text sentence --label score --regression --max-len 12 \
    --out "$work/regression.bin" --threads 1
run ./prepare unlabeled "${v[@]}" --input "$work/unlabeled.txt" --out "$work/unlabeled.bin" --threads 1

# Checkpoints and training states: an MLM model (L1, H16) and a classifier fine-tuned from it.
model=(--layers 1 --hidden 16 --heads 2 --ffn 32)
run ./train_mlm --train "$work/mlm/train_*.bin" --val "$work/mlm/val_*.bin" "${v[@]}" "${model[@]}" --batch 2 --seq-len 16 \
    --steps 2 --warmup 1 --eval-every 2 --eval-batches 1 --out "$work/mlm_run" "${cpu[@]}"
run ./finetune --init "$work/mlm_run/best.bin" --train "$work/class.bin" --dev "$work/class.bin" "${v[@]}" --batch 8 --epochs 1 \
    --out "$work/class_run" "${cpu[@]}"

# Teacher-logit caches: class logits in fp32 and fp16, MLM top-k in fp32 and fp16.
run ./distill cache --teacher "$work/class_run/best.bin" --transfer "$work/unlabeled.bin" "${v[@]}" --chunk 8 --batch 8 \
    --out "$work/logits.bin" "${cpu[@]}"
run ./distill cache --teacher "$work/class_run/best.bin" --transfer "$work/unlabeled.bin" "${v[@]}" --chunk 8 --batch 8 --fp16 \
    --out "$work/logits_fp16.bin" "${cpu[@]}"
for type in fp32 fp16; do
    run ./distill cache --mlm --teacher "$work/mlm_run/best.bin" --transfer "$work/mlm/val_*.bin" "${v[@]}" --topk 3 --seq-len 16 \
        --chunk 16 --batch 4 $([ $type = fp16 ] && echo --fp16) --out "$work/topk_$type.bin" "${cpu[@]}"
done

# Into the corpora, by target.
seeds() {  # seeds NAME FILE...
    mkdir -p "$out/$1"
    local name=$1 file
    shift
    for file in "$@"; do
        local relative=${file#"$work"/}
        cp "$file" "$out/$name/${relative//\//_}"
    done
}
seeds token_shard "$work"/mlm/*.bin
seeds example_shard "$work"/class.bin "$work"/pairs.bin "$work"/regression.bin "$work"/unlabeled.bin
seeds checkpoint "$work"/mlm_run/best.bin "$work"/class_run/best.bin
seeds training_state "$work"/mlm_run/state_*.bin "$work"/class_run/state_*.bin
seeds logit_cache "$work"/logits.bin "$work"/logits_fp16.bin
seeds mlm_topk_cache "$work"/topk_fp32.bin "$work"/topk_fp16.bin
seeds vocab "$work"/vocab.txt
seeds task "$work"/class_run/task.json
seeds tensor_file tests/fixtures/hf/expected.bin  # a reference fixture of the tests (dev/hf_fixture.py)
# What a killed `distill cache` leaves: whole caches (killed while finishing), a complete chunk
# and a torn one after it, the header alone, part of the header.
seeds logit_cache_partial "$work"/logits.bin "$work"/logits_fp16.bin "$work"/topk_fp32.bin "$work"/topk_fp16.bin
head -c $((72 + 8 * 2 * 4 + 5)) "$work/logits.bin" >"$out/logit_cache_partial/torn_chunk.bin"
head -c 72 "$work/logits.bin" >"$out/logit_cache_partial/header_only.bin"
head -c 40 "$work/logits.bin" >"$out/logit_cache_partial/header_part.bin"
head -c $((144 + 3 * 60)) "$work/topk_fp32.bin" >"$out/logit_cache_partial/topk_torn.bin"
for dir in fuzz/seeds/*/; do
    mkdir -p "$out/$(basename "$dir")"
    cp "$dir"* "$out/$(basename "$dir")/"
done
rm -rf "$work"
echo "fuzz seeds: $(find "$out" -type f | wc -l) files in $out"
