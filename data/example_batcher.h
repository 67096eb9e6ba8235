// data/example_batcher.h: classifier batches from an example shard (data/shards.h), the data side
// of fine-tuning and distillation. docs/classification_batches.md explains the choices; in short:
//
//   Rows: example i as stored, [CLS] A [SEP] (B [SEP]), never cut or changed. A batch is padded
//   with [PAD] to its own longest example (T varies from batch to batch), token type 0 up to B's
//   first token and 1 from there (pairs only), 0 on padding, as Hugging Face.
//
//   Training order: all N examples shuffled per epoch (Fisher-Yates from a splitmix64 stream
//   seeded by (seed, epoch)) and cut into batches of B; the last batch of an epoch holds the
//   N mod B remaining examples (kept by default; drop_last drops N mod B random examples
//   instead). Batches never span two epochs: an epoch is exactly ceil(N / B) (or floor) batches.
//   Optional length bucketing (see ExampleBatcherOptions::bucket) groups examples of similar
//   length to cut padding, then shuffles the batches.
//
//   Evaluation order: the shard's own order, batches of eval_batch_size, every example once.
//
//   The order of epoch e is a function of (seed, epoch, data, options): the state is just
//   (seed, epoch, batch position), and a restored batcher continues with identical batches.
//
// Random numbers: splitmix64 (common/random.h) with integer range mapping only, no std::
// distributions, so the batches are the same with every compiler and standard library.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/loader_state.h"

#include "data/shards.h"
#include "data/tokenizer.h"

namespace wr {

// One batch of B examples padded to T = the longest of them.
struct ExampleBatch {
    static constexpr int32_t kNoLabel = -1;  // labels of unlabeled (and regression) examples

    int B = 0, T = 0;
    std::vector<int32_t> input_ids;      // [B, T] the example's ids, [PAD] from lengths[b] on
    std::vector<int32_t> token_types;    // [B, T] 0 before second_start, 1 from it (pairs), 0 on padding
    std::vector<int32_t> lengths;        // [B]    tokens of row b (the attention mask), 2..T
    std::vector<int32_t> labels;         // [B]    class index (LabelKind::Class), else kNoLabel
    std::vector<float> values;           // [B]    regression target (LabelKind::Regression), else 0
    std::vector<int64_t> example_index;  // [B]    the example's index in the shard

    int64_t token_count() const;                                       // sum of lengths
    int64_t padding_count() const { return (int64_t)B * T - token_count(); }  // [PAD] positions
    // Rows first .. first+count-1 as a batch of their own in `out` (a data-parallel rank's part of
    // the global batch), T kept.
    void rows(int first, int count, ExampleBatch& out) const;
};

struct ExampleBatcherOptions {
    int batch_size = 32;       // B of training batches
    int eval_batch_size = 0;   // B of evaluation batches; 0: batch_size
    uint64_t seed = 1;         // training order
    bool drop_last = false;    // drop the N mod B left over each epoch (random ones) instead of a short batch
    // Length bucketing (finetune --bucket): after the shuffle, take windows of bucket_window x B
    // consecutive examples, sort each window by length (stable: equal lengths keep their shuffled
    // order), cut it into batches of B, and shuffle all the epoch's batches. Why: T is the longest
    // example of a batch, so a batch of similar lengths wastes little compute on [PAD]; the window
    // keeps batches random (a batch draws from a random 100 x B slice of the epoch, not from the
    // same length class every epoch) and the batch shuffle keeps the epoch from running short to
    // long. Windows are whole multiples of B, so only the epoch's last window leaves a short batch.
    bool bucket = false;
    int bucket_window = 100;   // window = bucket_window x batch_size examples
};

// The training position, everything a batcher needs to continue exactly (see to_bytes for the
// 56-byte form a training-state file stores).
// The position (data/loader_state.h), position: batches of this epoch already given, 0 .. batches_per_epoch - 1; setup:
// fingerprint of the examples and of the options that decide the batches.
struct ExampleBatcherState : LoaderState {
    std::string to_bytes() const;
    // Throws wr::Error naming `source` on a wrong size, magic, version or checksum.
    static ExampleBatcherState from_bytes(const std::string& bytes, const std::string& source);
};

class ExampleBatcher {
  public:
    // Takes the examples (move them in) and checks them; every problem is a wr::Error naming
    // `source` (the shard's path) and, for an example, its index:
    //   - the set's vocabulary size and fingerprint must equal `vocab`'s (pad_id comes from it);
    //   - no examples; an example with fewer than 2 tokens, an id outside the vocabulary, or a
    //     second_start that is not 0 or in [2, n - 1];
    //   - an example longer than max_positions (the model's position table);
    //   - LabelKind::Class: every label in [0, num_labels) (num_labels: the model's outputs);
    //     LabelKind::Regression: num_labels must be 1; LabelKind::None (a transfer set): labels
    //     are ignored, rows get kNoLabel. Whether the label *names* match the model's is the caller's check.
    //   - bad options; drop_last with fewer than batch_size examples (an epoch of no batches).
    ExampleBatcher(ExampleSet set, const std::string& source, const Tokenizer& vocab, int num_labels,
                   int max_positions, const ExampleBatcherOptions& options);

    const ExampleSet& examples() const { return set_; }
    int64_t example_count() const { return (int64_t)set_.examples.size(); }  // N
    const ExampleBatcherOptions& options() const { return options_; }
    const std::string& source() const { return source_; }
    int32_t max_example_length() const { return max_length_; }

    // Training: the next batch of the current epoch; after an epoch's last batch the next call
    // starts the next epoch (position() is 0 again).
    void next_batch(ExampleBatch& batch);
    int64_t batches_per_epoch() const;  // ceil(N / B), or floor with drop_last
    int64_t epoch() const { return epoch_; }
    int64_t position() const { return position_; }
    double epochs_done() const { return (double)epoch_ + (double)position_ / (double)batches_per_epoch(); }

    ExampleBatcherState state() const;
    // Continue from `state` (from this batcher or another made with the same examples and
    // options; the seed is taken from the state). Throws wr::Error naming the source if the state
    // belongs to other examples or options (batch size, bucketing, drop_last), or its position is
    // out of range.
    void restore(const ExampleBatcherState& state);

    // Evaluation: batch k of ceil(N / eval_batch_size), examples k * eval_batch_size .. in shard
    // order. Const: independent of the training position.
    int64_t eval_batch_count() const;
    void eval_batch(int64_t k, ExampleBatch& batch) const;

    // A batch of the given examples, in the given order (prediction, tests).
    void make_batch(const int64_t* indices, int count, ExampleBatch& batch) const;

  private:
    void make_epoch(int64_t epoch);
    uint64_t setup_fingerprint() const;

    ExampleSet set_;
    std::string source_;
    ExampleBatcherOptions options_;
    int32_t pad_id_ = 0;
    int32_t max_length_ = 0;
    uint64_t setup_ = 0;

    int64_t epoch_ = 0, position_ = 0;
    std::vector<int64_t> order_;        // this epoch's examples, batch after batch
    std::vector<int64_t> batch_begin_;  // batch j is order_[batch_begin_[j] .. batch_begin_[j + 1])
    int64_t order_epoch_ = -1;          // the epoch order_ was made for
};

}  // namespace wr
