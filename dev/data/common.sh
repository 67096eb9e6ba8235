# dev/data/common.sh: sourced by the dev/data/*.sh scripts (not run on its own).
# shellcheck shell=bash disable=SC2034  # (the variables are for the scripts that source this)
#
# Settings (environment):
#   VOCAB_NAME       vocabulary every data set is tokenized with (default wr30k):
#                      wr30k              our own WordPiece vocabulary, trained by dev/data/vocab.sh
#                      bert-base-uncased  the original BERT vocabulary (copied by dev/data/vocab.sh)
#                      anything else      whatever vocab.txt you put in $OUT/$VOCAB_NAME/
#   WELLREAD_DATA    the shared data folder (default <repo>/../shared/data)
#   WELLREAD_OUT     output root (default <repo>/out, git-ignored)
#   PREPARE_THREADS  prepare --threads (default 0 = all cores)
#
# Layout: $OUT/$VOCAB_NAME/vocab.txt, $OUT/$VOCAB_NAME/<data set>/..., prepare's output of each
# step in $OUT/$VOCAB_NAME/logs/<data set>[.<part>].log (dev/data/all.sh builds its table from
# them). Cleaned text copies, the same for every vocabulary, go to $OUT/clean/<data set>/.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DATA=${WELLREAD_DATA:-$REPO/../shared/data}
OUT=${WELLREAD_OUT:-$REPO/out}
VOCAB_NAME=${VOCAB_NAME:-wr30k}
THREADS=${PREPARE_THREADS:-0}
PREPARE=$REPO/prepare
VDIR=$OUT/$VOCAB_NAME
VOCAB=$VDIR/vocab.txt
LOGS=$VDIR/logs
CLEAN=$OUT/clean

die() { echo "error: $*" >&2; exit 1; }

[ -x "$PREPARE" ] || die "$PREPARE is missing: run make first (make prepare)"
[ -d "$DATA" ] || die "data folder $DATA is missing (set WELLREAD_DATA to the shared data folder)"
DATA=$(cd "$DATA" && pwd)

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# timed LABEL COMMAND...: runs COMMAND and prints its wall time.
timed() {
    local label=$1 t0
    shift
    t0=$(now)
    "$@"
    echo "[$label: $(since "$t0") s]"
}

# need_vocab: every script but vocab.sh tokenizes with $VOCAB.
need_vocab() {
    [ -f "$VOCAB" ] || die "$VOCAB is missing: run VOCAB_NAME=$VOCAB_NAME dev/data/vocab.sh first"
}

# fresh DIR: an empty output folder (old shards would otherwise linger when a split shrinks).
fresh() {
    rm -rf "$1"
    mkdir -p "$1"
}

# prep LOGNAME COMMAND ARGS...: ./prepare COMMAND ARGS (with --threads), output shown and kept
# in $LOGS/LOGNAME.log. --vocab is added for every command but `vocab`, --overwrite to those that
# refuse an existing output.
prep() {
    local name=$1 cmd=$2
    shift 2
    local args=(--threads "$THREADS")
    mkdir -p "$LOGS"
    [ "$cmd" = vocab ] || args+=(--vocab "$VOCAB")
    case $cmd in vocab | cls | unlabeled) args+=(--overwrite) ;; esac  # these scripts remake what they made
    echo "+ prepare $cmd $*"
    timed "$name" _prep "$LOGS/$name.log" "$cmd" "${args[@]}" "$@"
}
_prep() {
    local log=$1
    shift
    "$PREPARE" "$@" | tee "$log"
}

# start DATASET: checks the vocabulary, empties $VDIR/DATASET and the data set's old logs,
# prints a heading; the script's total time is printed at exit.
start() {
    need_vocab
    DS=$1
    fresh "$VDIR/$DS"
    rm -f "$LOGS/$DS.log" "$LOGS/$DS".*.log
    echo "== $DS ($VOCAB_NAME) -> $VDIR/$DS"
    T_START=$(now)
    trap '[ $? -ne 0 ] || echo "[$DS total: $(since "$T_START") s]"' EXIT
}
