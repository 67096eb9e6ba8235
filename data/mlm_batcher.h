// data/mlm_batcher.h: masked-language-model batches from token shards (data/shards.h), the data
// side of MLM pretraining. docs/mlm_batches.md explains the choices; in short:
//
//   Sequences (RoBERTa's FULL-SENTENCES packing): each shard's documents are concatenated into
//   one stream with a [SEP] between documents and cut into windows of T - 2 tokens; sequence w
//   of a shard is [CLS] window_w [SEP], only a shard's last one shorter. No sequence spans two
//   shards. Sequences are numbered shard by shard: global index 0 .. N-1.
//
//   Masking (BERT), drawn afresh every time a sequence is used: k = max(1, round(0.15 * n)) of
//   the sequence's n non-special tokens are selected (none when n = 0), each selected
//   token becomes [MASK] with probability 0.8, a random non-special id with 0.1, and stays
//   itself with 0.1. Whole-word masking selects whole words (a piece and the '##' pieces that
//   follow it) until k tokens are selected, then draws 80/10/10 per token, as Google's BERT.
//
//   Training order: all N sequences, shuffled per epoch (Fisher-Yates); batches run on from one
//   epoch into the next, so every batch is full. The masks of a sequence are a function of
//   (seed, epoch, sequence index) and the order a function of (seed, epoch): nothing else is
//   random, so the state is just (seed, epoch, position) and a restored batcher continues bit
//   for bit, whatever batch sizes were used before or after.
//
//   Validation: sequences in index order, masks a function of (validation_seed, index) only:
//   the same masked set in every run, whatever the training seed and whatever was drawn before.
//
// Random numbers: splitmix64 streams and integer arithmetic only (no std:: distributions), so the
// batches are the same with every compiler and standard library. Not here: sentence-pair (NSP)
// inputs, prefetching in a background thread.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/loader_state.h"
#include "data/shards.h"
#include "data/tokenizer.h"

namespace wr {

// One batch, B sequences padded to T. The model reads input_ids, token_types and lengths (the
// attention mask), and runs the MLM head only on masked_positions.
struct MlmBatch {
    static constexpr int32_t kNoTarget = -100;  // mlm_targets where nothing is predicted (PyTorch's ignore_index)

    int B = 0, T = 0;                       // B: sequences in this batch (a last validation batch may be short)
    std::vector<int32_t> input_ids;         // [B, T] masked inputs, [PAD] from lengths[b] on
    std::vector<int32_t> token_types;       // [B, T] all 0 (one segment)
    std::vector<int32_t> lengths;           // [B]    valid tokens of row b, [CLS] ... [SEP] (3..T)
    std::vector<int32_t> mlm_targets;       // [B, T] original id at masked positions, kNoTarget elsewhere
    std::vector<int32_t> masked_positions;  // [M]    flat index b * T + t of every masked position, ascending
    std::vector<int32_t> masked_targets;    // [M]    the original id at masked_positions[i]
    std::vector<int64_t> sequence_index;    // [B]    the global index of the sequence in row b

    int M() const { return (int)masked_positions.size(); }
    int64_t token_count() const;  // sum of lengths
    // Rows first .. first+count-1 as a batch of their own in `out` (a data-parallel rank's part of
    // the global batch): T kept, masked positions renumbered from row `first`.
    void rows(int first, int count, MlmBatch& out) const;
};

struct MlmBatcherOptions {
    int batch_size = 32;                  // B
    int seq_len = 128;                    // T, at least 3 ([CLS], one token, [SEP])
    uint64_t seed = 1;                    // training order and masks
    uint64_t validation_seed = 0x5eed;    // validation masks; keep the default to compare runs
    double mask_fraction = 0.15;          // of a sequence's non-special tokens
    double mask_token_fraction = 0.8;     // of selected tokens: [MASK]
    double random_token_fraction = 0.1;   // of selected tokens: a random non-special id (rest unchanged)
    bool whole_word = false;              // select whole words ('##' continuations with their word)
};

// The training position, everything a batcher needs to continue exactly (see to_bytes for the
// 56-byte form the training-state file stores).
// The position (data/loader_state.h), position: the next sequence of this epoch's order, 0 .. N-1; setup: fingerprint of the
// data and the masking options.
struct MlmBatcherState : LoaderState {
    std::string to_bytes() const;
    // Throws wr::Error naming `source` on a wrong size, magic, version or checksum.
    static MlmBatcherState from_bytes(const std::string& bytes, const std::string& source);
};

class MlmBatcher {
  public:
    // Opens and validates every shard against `vocab` (size and fingerprint). Throws wr::Error
    // naming the file and the problem: no shards, a shard with no tokens, T < 3, bad options.
    MlmBatcher(const std::vector<std::string>& shard_paths, const Tokenizer& vocab, const MlmBatcherOptions& options);

    int64_t sequence_count() const { return sequence_count_; }  // N: sequences in one epoch
    const MlmBatcherOptions& options() const { return options_; }
    const std::vector<TokenShard>& shards() const { return shards_; }

    // Training: the next batch_size sequences of the shuffled order, freshly masked.
    void next_batch(MlmBatch& batch);
    int64_t epoch() const { return epoch_; }
    int64_t position() const { return position_; }
    double epochs_done() const { return (double)epoch_ + (double)position_ / (double)sequence_count_; }

    MlmBatcherState state() const;
    // Continue from `state` (from this batcher or another made with the same shards and options;
    // the seed is taken from the state). Throws wr::Error if the state belongs to other data or
    // options, or its position is out of range.
    void restore(const MlmBatcherState& state);

    // Validation: batch k of ceil(N / B), sequences k*B .. in index order with their fixed masks.
    // Const: it neither depends on nor changes the training position.
    int64_t validation_batch_count() const;
    void validation_batch(int64_t k, MlmBatch& batch) const;

    // Sequence `index` unmasked: [CLS] window [SEP] (for tests and inspection).
    void sequence(int64_t index, std::vector<int32_t>& ids) const;

  private:
    struct ShardLayout {
        int64_t stream_length;   // tokens + one [SEP] between consecutive documents
        int64_t first_sequence;  // global index of the shard's first sequence
        int64_t sequences;
    };
    void begin_batch(MlmBatch& batch, int rows) const;
    void fill_row(MlmBatch& batch, int row, int64_t index, uint64_t mask_seed) const;
    void mask_row(MlmBatch& batch, int row, uint64_t mask_seed) const;
    void make_order(int64_t epoch);
    uint64_t setup_fingerprint() const;

    MlmBatcherOptions options_;
    int32_t pad_id_, cls_id_, sep_id_, mask_id_;
    std::vector<uint8_t> is_special_;       // [V] the five special tokens
    std::vector<uint8_t> is_continuation_;  // [V] "##" pieces
    std::vector<int32_t> random_ids_;       // every non-special id, for random replacements
    std::vector<TokenShard> shards_;
    std::vector<ShardLayout> layout_;
    int64_t sequence_count_ = 0;
    uint64_t setup_ = 0;

    int64_t epoch_ = 0, position_ = 0;
    std::vector<int64_t> order_;  // this epoch's permutation of 0 .. N-1
    int64_t order_epoch_ = -1;    // the epoch order_ was made for
};

}  // namespace wr
