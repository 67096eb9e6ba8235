#!/usr/bin/env bash
# dev/distill_sst2.sh: the real-data check of "Well-Read Students Learn Better" on SST-2.
# Teacher: a classifier fine-tuned on SST-2 by ./finetune. Transfer set: the SST-2 training
# sentences without labels plus unlabeled IMDB reviews (prepared by the commands below). For each
# student size it runs the paper's four rows:
#   fine-tune      the pretrained student fine-tuned on SST-2 labels alone
#   distill        distillation from random weights
#   PD             pretrained distillation: the pretrained student distilled
#   PD + fine-tune PD followed by fine-tuning on the labels
# and prints one markdown table (dev accuracy, minutes, machine). Everything lands in $RUNS.
#
# Inputs (made earlier, see README "Real data"): the wr30k vocabulary and SST-2 shards in out/wr30k,
# the transfer shard $TRANSFER (prepare unlabeled over the SST-2 sentences and IMDB unsup lines),
# pretrained students (train_mlm on Wikipedia + Gutenberg) and the teacher checkpoint.
#
#   TEACHER=runs/sst2_mini/best.bin STUDENTS="tiny:runs/tiny_wiki_gut/best.bin" bash dev/distill_sst2.sh
set -euo pipefail
VOCAB=${VOCAB:-out/wr30k/vocab.txt}
TRAIN=${TRAIN:-out/wr30k/sst2/train.bin}
DEV=${DEV:-out/wr30k/sst2/dev.bin}
TRANSFER=${TRANSFER:-out/distill/sst2_imdb5k_transfer.bin}
TEACHER=${TEACHER:-runs/sst2_mini/best.bin}
STUDENTS=${STUDENTS:-"tiny:runs/tiny_wiki_gut/best.bin mini:runs/mini_wiki_gut/best.bin"}
RUNS=${RUNS:-runs/distill_sst2}
THREADS=${THREADS:-2}
FT_FLAGS=${FT_FLAGS:-"--epochs 1 --lr 1e-4 --batch 32"}
DISTILL_FLAGS=${DISTILL_FLAGS:-"--epochs 1 --lr 3e-4 --batch 32 --bucket"}
BIN=${BIN:-.}   # where the programs are (a copy keeps a long run independent of rebuilds)
COMMON="--threads $THREADS --device cpu --vocab $VOCAB --overwrite"
mkdir -p "$RUNS"
ROWS=()

# run NAME COMMAND...: runs it with its output in $RUNS/NAME.txt, records minutes and the best dev accuracy.
run() {
    local name=$1; shift
    local t0=$(date +%s)
    "$@" > "$RUNS/$name.txt" 2>&1
    local minutes=$(awk -v s=$(( $(date +%s) - t0 )) 'BEGIN { printf "%.1f", s / 60 }')
    local acc=$(grep -o 'best dev accuracy [0-9.]*' "$RUNS/$name.txt" | tail -1 | awk '{print $4}')
    local agree=$(grep -o 'agreement with the teacher [0-9.]*' "$RUNS/$name.txt" | tail -1 | awk '{print $5}')
    echo "$name: dev accuracy ${acc:-?} agreement ${agree:--} (${minutes} min)"
    ROWS+=("| $name | ${acc:-?} | ${agree:--} | $minutes |")
}

run cache $BIN/distill cache --teacher "$TEACHER" --transfer "$TRANSFER" --out "$RUNS/teacher_logits.bin" --threads "$THREADS" \
    --device cpu --vocab "$VOCAB"
for entry in $STUDENTS; do
    size=${entry%%:*} pretrained=${entry#*:}
    run "$size fine-tune" $BIN/finetune $COMMON --init "$pretrained" --train "$TRAIN" --dev "$DEV" $FT_FLAGS --out "$RUNS/${size}_ft"
    run "$size distill" $BIN/distill train $COMMON --teacher "$TEACHER" --cache "$RUNS/teacher_logits.bin" --transfer "$TRANSFER" \
        --dev "$DEV" --preset "$size" $DISTILL_FLAGS --out "$RUNS/${size}_distill"
    run "$size PD" $BIN/distill train $COMMON --teacher "$TEACHER" --cache "$RUNS/teacher_logits.bin" --transfer "$TRANSFER" \
        --dev "$DEV" --init "$pretrained" $DISTILL_FLAGS --out "$RUNS/${size}_pd"
    run "$size PD + fine-tune" $BIN/finetune $COMMON --init "$RUNS/${size}_pd/best.bin" --train "$TRAIN" --dev "$DEV" $FT_FLAGS \
        --out "$RUNS/${size}_pd_ft"
done

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($cpu), $THREADS threads; teacher $TEACHER; transfer $TRANSFER"
echo
echo "| run | SST-2 dev accuracy | agreement with the teacher | minutes |"
echo "|---|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
