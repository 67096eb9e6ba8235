// model/classifier.h: what finetune and distill share around the classifier head (model/bert.h):
//   Task           (model/task.h) label names, classes or regression, pairs, maximum length
//   classifier_from_checkpoint   a classifier model from an MLM checkpoint (fresh head; pooler
//                  taken over where the checkpoint has one) or from a classifier checkpoint
//   inputs_of      an example batch as the model's ClsInputs
//   evaluate_classifier   loss and metrics over a dev shard (and agreement with a teacher)
//   save_classifier       a checkpoint and training state through the keeper, best.bin by a metric
//   train_classifier      the training loop itself: step, log, evaluate, save, Ctrl-C
//   checks         label sets of two shards, the --best-metric name
#pragma once
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "data/example_batcher.h"
#include "data/shards.h"
#include "data/tokenizer.h"
#include "model/bert.h"
#include "model/checkpoint.h"
#include "model/engine.h"
#include "model/task.h"
#include "model/training.h"

namespace wr {

// The task of a labeled shard (an unlabeled one is an error naming the file).
Task task_of(const ExampleSet& set, const std::string& path);

// A shard must label the same classes with the same ids as `task` (which comes from `against`, a
// training shard or a checkpoint), and hold single sentences or pairs as the task does.
void check_same_labels(const Task& task, const ExampleSet& set, const std::string& set_path, const std::string& against);
// Whether the examples of an unlabeled set (a transfer set) are pairs as the task's are.
void check_same_segments(const Task& task, const ExampleSet& set, const std::string& set_path, const std::string& against);

// --best-metric: one of `allowed` (an error on the command line otherwise).
void check_metric(const std::string& metric, const std::vector<std::string>& allowed);
std::vector<std::string> classifier_metrics(bool regression);  // accuracy, macro_f1, ... / pearson, spearman, loss

struct ClassifierInit {
    float dropout = 0.1f, attention_dropout = 0.1f;
    uint64_t seed = 1;         // initialization of the fresh parts
    std::FILE* say = stdout;   // where the line saying which parts are fresh goes
};
// The model of checkpoint `ck` (read from `path`) with a classifier of `num_labels` outputs:
// encoder from the checkpoint (its vocabulary must be `vocab`'s); pooler from the checkpoint where
// it has one; classifier from a classifier checkpoint (whose outputs must be num_labels), else
// fresh. Prints one line saying which parts are fresh.
BertModel classifier_from_checkpoint(const Checkpoint& ck, const std::string& path, const Tokenizer& vocab, int num_labels,
                                     const ClassifierInit& init);

// A model of the size flags' configuration with random weights (init.seed) and a classifier of
// `num_labels` outputs: training from scratch, the baseline pretraining is measured against.
BertModel random_classifier(const ModelSizeOptions& size, const Tokenizer& vocab, int num_labels, const ClassifierInit& init);

// The batch as model inputs; labels (or regression values) only when with_labels.
ClsInputs inputs_of(const ExampleBatch& batch, bool regression, bool with_labels);

// Evaluation over every example of `dev` in shard order. `forward` runs the model in evaluation
// mode (no dropout) on one batch and returns its logits [B,K] (on the host) and the ClsResult.
// teacher_logits, when non-null, are a teacher's logits [N,K] for the same examples: the
// agreement is the fraction of examples where the model's argmax is the teacher's.
using ClassifyFn = std::function<const float*(const ClsInputs& inputs, ClsResult& result)>;
struct Evaluation {
    double loss = NAN;       // mean over the labeled examples
    double score = NAN;      // the --best-metric; higher is better (for "loss": minus the loss)
    double accuracy = NAN;   // classes only
    double agreement = NAN;  // with teacher logits only
    std::string json, report;  // the metrics (common/metrics.h) as one JSON object and as text
};
Evaluation evaluate_classifier(const ClassifyFn& forward, const ExampleBatcher& dev, const Task& task, const std::string& metric,
                               const std::vector<float>* teacher_logits = nullptr);

// Saves the model (a checkpoint and its training state: step, seed, loader position, moments)
// through the keeper. score: the evaluation's --best-metric (higher is better), NaN when this
// step was not evaluated. Returns true when best.bin was updated.
bool save_classifier(CheckpointKeeper& keeper, const BertModel& model, const Tokenizer& vocab, const Optimizer& optimizer,
                     const std::string& loader_state, uint64_t seed, double score);

// The loop finetune and distill share. Before the first step: the run folder is prepared
// (prepare_run_folder; task.json, run.json and vocab.txt written) unless resuming, log.jsonl opened. Each step:
// the next batch of `train`, make_inputs(batch) (finetune: the labels; distill: the teacher's
// logits too), forward, backward, one optimizer update, one log line (its "acc" is the batch's
// accuracy, or with teacher logits its agreement with the teacher). After every epoch, every
// eval_every steps and at the end: evaluation on `dev` (if any; teacher_dev_logits add the
// agreement) and a checkpoint (best.bin by best_metric). Ctrl-C: a checkpoint, then stop.
struct ClassifierLoop {
    std::string out;             // the run folder
    bool overwrite = false;      // replace an earlier run's checkpoints in `out`
    int keep = 1;                // checkpoints kept besides best.bin
    int64_t total_steps = 0, eval_every = 0;
    std::string best_metric = "accuracy";
    uint64_t seed = 1;           // dropout masks per step; stored in the training state
    std::string settings_json;   // a new run: its run.json (model/run_folder.h)
    std::string vocab_path;      // kept in the run folder as vocab.txt
    // --resume: the run in `out` goes on; the caller has restored the model, the optimizer
    // (restore_training_state) and the batcher, and passes the state's best validation loss.
    bool resuming = false;
    double best_val_loss = kNoValidationLoss;
};
struct ClassifierLoopResult {
    Evaluation best;             // the best evaluation (NaN scores without a dev shard)
    bool stopped = false;        // Ctrl-C ended it early
};
using MakeInputs = std::function<ClsInputs(const ExampleBatch& batch)>;
ClassifierLoopResult train_classifier(Engine& engine, BertModel& model, Optimizer& optimizer, ExampleBatcher& train,
                                      const ExampleBatcher* dev, const Task& task, const Tokenizer& vocab, const ClassifierLoop& loop,
                                      const MakeInputs& make_inputs, const std::vector<float>* teacher_dev_logits = nullptr);

// The step's dropout seed: every step draws its own masks from the run's seed.
uint64_t step_seed(uint64_t seed, int64_t step);

}  // namespace wr
