// model/training.h: the parts of a training run that train_mlm, finetune and distill share, so
// that each program's loop is only what is particular to it:
//   OptimizerOptions  the optimizer and schedule flags, declared once for every program
//   ModelSizeOptions  the model-size flags (--preset, --layers, ...) of a model made from scratch
//   Optimizer         clip -> learning rate from the schedule -> AdamW, over the flat buffers
//   StepResults       a step's StepInfo and the results of its training forwards
//   RunLog            one printed line per step (with the time left) and per evaluation, and the same as JSON lines
//                     in the output folder (dev/plot_log.py draws them)
//   StopRequest       Ctrl-C sets a flag; the loop finishes its step, saves, and exits
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "common/flags.h"
#include "common/schedule.h"
#include "kernels/optimizer.h"
#include "model/bert.h"
#include "model/checkpoint.h"

namespace wr {

struct OptimizerOptions {
    double lr = 1e-3;                // peak learning rate
    int64_t warmup = 0;              // warmup steps
    std::string schedule = "linear"; // linear or cosine decay after warmup
    double final_fraction = 0.0;     // the learning rate at the last step, as a fraction of the peak
    double weight_decay = 0.01;
    double clip = 1.0;               // global gradient norm limit; 0 turns clipping off
    double beta1 = 0.9, beta2 = 0.999, eps = 1e-6;
    int max_skipped = 5;             // updates in a row skipped for a non-finite gradient before the run stops

    void add_flags(Flags& flags);
};

// --preset and its overrides, for the programs that build a model from scratch (train_mlm, and
// distill's students).
struct ModelSizeOptions {
    std::string preset = "tiny";
    int layers = 0, hidden = 0, heads = 0, ffn = 0;  // 0: the preset's

    void add_flags(Flags& flags);
    void note_given(const Flags& flags);  // after parsing: which of these flags the user gave
    bool any_given() const { return !given.empty(); }
    // The preset with the overrides (a new hidden size also sets heads = hidden / 64 and F = 4C
    // unless --heads / --ffn say otherwise).
    BertConfig config(int vocab_size) const;
    // A model that comes from a checkpoint keeps the checkpoint's sizes; each size flag the user
    // gave must agree with them, else an error naming the checkpoint and the field.
    void check_agrees(const BertConfig& checkpoint_config, const std::string& checkpoint_path) const;

    std::vector<std::string> given;
};

class Optimizer {
  public:
    Optimizer(const OptimizerOptions& options, int64_t param_count, DecayRanges decay_ranges, int64_t total_steps);

    struct StepInfo {
        double lr = 0, grad_norm = 0;
        bool skipped = false;  // the gradient was not finite: parameters left unchanged
    };
    // One update from the accumulated gradients (which it may scale when clipping).
    StepInfo step(float* params, float* grads);
    // After every step (on either device): a skipped update is reported; after --max-skipped-steps
    // of them in a row the run cannot make progress (the step count does not move), so this
    // throws wr::Error naming the step. Checkpoints written before stay as they were.
    void after_step(const StepInfo& info);

    // For a model that applies the update itself (the GPU keeps parameters and moments on the
    // device): the settings of the next update, its learning rate from the schedule at steps_done.
    AdamWConfig adamw_config() const;
    double clip() const { return options_.clip; }
    const DecayRanges& decay_ranges() const { return decay_ranges_; }

    int64_t steps_done = 0;  // updates made so far (restored on resume)
    std::vector<float> m, v; // AdamW moments, mirroring the parameter buffer

  private:
    OptimizerOptions options_;
    DecayRanges decay_ranges_;
    LrSchedule schedule_;
    int skipped_in_a_row_ = 0;
};

// What one training step reports (Engine::step): the optimizer's StepInfo and the results of the
// step's training forwards (Engine::train_forward_mlm / train_forward_classify since the last
// step), in order. On the GPU they are read back together, once, at the end of the step.
struct StepResults {
    Optimizer::StepInfo info;
    std::vector<MlmResult> mlm;
    std::vector<ClsResult> cls;
};

class RunLog {
  public:
    // Appends to DIR/log.jsonl. A resumed run passes the step it resumes from: records of later
    // steps (written after the last checkpoint by a run that was then killed) are dropped first,
    // so every step appears once.
    explicit RunLog(const std::string& dir, int64_t resume_step = -1);
    ~RunLog();
    RunLog(const RunLog&) = delete;
    RunLog& operator=(const RunLog&) = delete;

    void train_step(int64_t step, int64_t total, double loss, double accuracy, double lr, double grad_norm, double ms,
                    double tokens_per_second);
    void evaluation(int64_t step, double loss, double accuracy);
    // Any other record: one JSON object (written as given, one line), e.g. finetune's metrics.
    void record(const std::string& json_object);

    // "4m05s": the time the remaining steps take at the pace of the steps logged so far by this
    // process (the first one excluded: it warms up), "" before there is a pace.
    std::string eta(int64_t step, int64_t total) const;

  private:
    FILE* file_ = nullptr;
    std::string path_;
    double first_step_seconds_ = 0;  // when the first step of this process was logged
    int64_t first_step_ = -1;
};

// --resume: the training state saved with the resumed checkpoint, into the optimizer (AdamW
// moments, steps done). Returns the rest of the state: the loader's position (opaque bytes), the
// best validation loss so far, and the run's seed, which every program saves as its one RNG word
// (an error naming the state file otherwise). Call before the engine is made (a GPU engine copies
// the moments when it is made).
struct RestoredRun {
    std::string loader_state;
    double best_val_loss = kNoValidationLoss;
    uint64_t seed = 0;
};
RestoredRun restore_training_state(const ResumePoint& point, const Checkpoint& checkpoint, Optimizer& optimizer);

// SIGINT handling: the first Ctrl-C asks the loop to stop after the current step (and save); a
// second one ends the program at once.
struct StopRequest {
    static void install();
    static bool requested();
};

}  // namespace wr
