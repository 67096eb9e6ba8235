// model/checkpoint.h: what a training run leaves on disk, and how --init and --resume read it back.
// Every byte of both formats is described in docs/checkpoints.md.
//
//   Checkpoint      (ckpt_00000100.bin, best.bin): the model's weights. A 64-byte header (magic,
//                   version, kind, vocabulary fingerprint, parameter count, checksums), the full
//                   BertConfig, a table of named tensors (name, shape, offset), the fp32 parameters.
//                   The table lets a later program take tensors by name: a classifier takes the
//                   encoder of an MLM checkpoint (copy_matching_tensors).
//   Training state  (state_00000100.bin): what --resume needs besides the weights: the step, the
//                   AdamW moments m and v, the data loader's position (opaque bytes), the run's RNG
//                   words, the best validation loss so far, and the parameter checksum of the
//                   checkpoint it belongs to, so a state paired with another checkpoint is refused.
//   CheckpointKeeper: the output folder's bookkeeping: ckpt/state pairs per step, the `latest`
//                   pointer, the last K pairs kept, best.bin by validation loss.
//
// Readers validate everything before anything is used (header length, magic, version, field
// ranges, the exact file length in 128-bit arithmetic, the checksum, then the contents) and throw
// wr::Error naming the file and the field. Writers go through write_file_atomic: a crash leaves
// the old file or the complete new one. Loading into a model checks everything first and only
// then copies, so a failed load leaves the model as it was.
// Not here: the trainer's loop, what the RNG words mean (the trainer's business), device copies.
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "model/bert.h"

namespace wr {

// ---------------------------------------------------------------------------------------------
// Checkpoints

constexpr char kCheckpointMagic[8] = {'W', 'R', 'C', 'H', 'K', 'P', 'N', 'T'};
constexpr uint32_t kCheckpointVersion = 1;

// What the tensors are for. Kind 1 holds a BertForMaskedLM (encoder + MLM head); kind 2 is kept
// for the classifier (encoder + pooler + classifier over num_labels outputs).
enum class CheckpointKind : uint32_t { Mlm = 1, Classifier = 2 };

// The weights to save, by reference (nothing is copied): the config, the tensor table (contiguous,
// in buffer order, as ParamLayout makes it), the flat parameter buffer, and what kind of model.
struct WeightsView {
    const BertConfig& config;
    const std::vector<TensorSpec>& tensors;
    const float* params;  // [param_count]
    int64_t param_count;
    CheckpointKind kind = CheckpointKind::Mlm;
    int num_labels = 0;   // 0 for Mlm, the number of outputs for Classifier
};
WeightsView weights_of(const BertModel& model);  // kind and num_labels from model.config

// The checksum of a parameter buffer (wr::Checksum over its bytes). A checkpoint stores it and a
// training state names the checkpoint it belongs to by it.
uint64_t params_checksum(const float* params, int64_t n);

// Writes the checkpoint atomically; returns the parameters' checksum.
uint64_t save_checkpoint(const std::string& path, const WeightsView& weights, uint64_t vocab_fingerprint);
uint64_t save_checkpoint(const std::string& path, const BertConfig& config, uint64_t vocab_fingerprint,
                         const ParamLayout& layout, const float* params);

struct Checkpoint {
    std::string path;
    CheckpointKind kind = CheckpointKind::Mlm;
    int num_labels = 0;
    BertConfig config;
    uint64_t vocab_fingerprint = 0;
    std::vector<TensorSpec> tensors;  // as saved: offsets index `params`
    std::vector<float> params;
    uint64_t params_checksum = 0;

    const TensorSpec* find(const std::string& name) const;  // nullptr when absent
};

// Reads and validates a whole checkpoint.
Checkpoint load_checkpoint(const std::string& path);

// The checkpoint's config must equal `model_config` in every field; the first that differs is
// the error: "ckpt.bin: field 'hidden': checkpoint has 256, the model 128".
void check_same_config(const Checkpoint& checkpoint, const BertConfig& model_config);

// The checkpoint's vocabulary fingerprint must be `expected` (that of the vocabulary file at
// vocab_path); the error names both files and both fingerprints.
void check_vocab_fingerprint(const Checkpoint& checkpoint, uint64_t expected, const std::string& vocab_path = "");

// Copies every tensor of `dst_tensors` that the checkpoint has under the same name into
// dst_params (laid out by dst_tensors); returns the names copied, in dst_tensors order. A tensor
// of the same name but another shape is an error, raised before anything is copied. The caller
// checks the config and vocabulary (the MLM -> classifier case: the encoder's tensors match).
std::vector<std::string> copy_matching_tensors(const Checkpoint& checkpoint,
                                               const std::vector<TensorSpec>& dst_tensors, float* dst_params);

// --init and --resume: the config, the vocabulary and every tensor of the model must match; then
// the parameters are copied. On any error the model is left untouched.
void load_into(BertModel& model, const Checkpoint& checkpoint, uint64_t expected_vocab_fingerprint, const std::string& vocab_path = "");

// ---------------------------------------------------------------------------------------------
// Training state

constexpr char kTrainingStateMagic[8] = {'W', 'R', 'T', 'S', 'T', 'A', 'T', 'E'};
constexpr uint32_t kTrainingStateVersion = 1;
constexpr double kNoValidationLoss = std::numeric_limits<double>::infinity();

// Everything of a training state except the AdamW moments (the trainer owns those buffers).
struct TrainingProgress {
    int64_t step = 0;                         // optimizer steps done
    double best_val_loss = kNoValidationLoss; // lowest validation loss so far (+inf: none yet)
    std::vector<uint64_t> rng_state;          // the run's seeds / RNG words; the trainer defines them
    std::string loader_state;                 // opaque bytes (MlmBatcherState::to_bytes())
};

struct TrainingState {
    TrainingProgress progress;
    uint64_t params_checksum = 0;  // of the checkpoint this state belongs to
    std::vector<float> m, v;       // AdamW moments [param_count] each
};

// Writes the state atomically. params_checksum: what save_checkpoint returned for the weights
// saved with it.
void save_training_state(const std::string& path, const TrainingProgress& progress, uint64_t params_checksum,
                         const float* m, const float* v, int64_t param_count);

// Reads and validates a state; its parameter count and checksum must be the expected ones (those
// of the checkpoint at checkpoint_path, which the error names beside the state's own path).
TrainingState load_training_state(const std::string& path, int64_t expected_param_count,
                                  uint64_t expected_params_checksum, const std::string& checkpoint_path);
TrainingState load_training_state(const std::string& path, const Checkpoint& checkpoint);

// ---------------------------------------------------------------------------------------------
// The output folder

// Where --resume DIR continues: the newest complete pair, as `DIR/latest` names it.
struct ResumePoint {
    int64_t step = 0;
    std::string checkpoint_path, state_path;
};

// Throws wr::Error naming the folder when it has no `latest` (nothing to resume), naming
// `latest` when it is malformed, and naming the missing file when the pair is incomplete.
ResumePoint find_latest(const std::string& dir);

// --resume: the state of the pair `at`, read with the pair's checkpoint. Besides the checks of
// load_training_state above, the state's step must be the pair's step (the one `latest` and both
// file names give); a state of another step is an error naming both files and both steps.
TrainingState load_training_state(const ResumePoint& at, const Checkpoint& checkpoint);

// Saves checkpoint/state pairs into an output folder:
//   DIR/ckpt_00000100.bin, DIR/state_00000100.bin   one pair per saved step (8 digits or more)
//   DIR/latest                                      "100\n": the newest complete pair
//   DIR/best.bin                                    a copy of the checkpoint with the lowest
//                                                   validation loss seen
// A save writes, each atomically and in this order: the checkpoint, the state, best.bin (when
// the validation loss is a new best), `latest`; only then are pairs older than the newest
// keep_last deleted. A crash at any point leaves `latest` naming a complete pair. The keeper
// deletes nothing but files named exactly like its own pairs (not best.bin, not temporaries,
// not pairs of steps after the one saved, not any other file).
class CheckpointKeeper {
  public:
    // Creates the folder if needed. best_val_loss: the best so far when resuming
    // (TrainingProgress::best_val_loss of the resumed state).
    CheckpointKeeper(std::string dir, int keep_last, double best_val_loss = kNoValidationLoss);

    // progress.step names the files; progress.best_val_loss is replaced by the keeper's own.
    // val_loss: this step's validation loss, or NaN when it was not evaluated. Returns true when
    // it was a new best (best.bin updated).
    bool save(const WeightsView& weights, uint64_t vocab_fingerprint, const float* m, const float* v,
              TrainingProgress progress, double val_loss);

    // The files of DIR that a keeper owns (its pairs, `latest`, best.bin), sorted; what a new run
    // may remove before reusing the folder. Nothing else, not even files named almost like them.
    static std::vector<std::string> own_files(const std::string& dir);

    double best_val_loss() const { return best_val_loss_; }
    const std::string& dir() const { return dir_; }
    std::string checkpoint_path(int64_t step) const;
    std::string state_path(int64_t step) const;

  private:
    void delete_old_pairs(int64_t newest_step) const;

    std::string dir_;
    int keep_last_;
    double best_val_loss_;
};

}  // namespace wr
