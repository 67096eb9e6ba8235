// model/distillation.h: what distill's two modes need besides their loops ("Well-Read Students
// Learn Better": a fine-tuned teacher's predictions over a transfer set, cached once, taught to a
// compact student; and DistilBERT-style MLM-logit distillation, model/mlm_distillation.h):
//   distill_vocab_path           --vocab, else the vocab.txt of a run the checkpoints came from
//   StudentOptions               the flags every student has, of a classifier or of an MLM
//   Teacher, load_teacher        a classifier checkpoint and its task.json, in evaluation mode
//   tokens_only                  an example set without its labels (a transfer set)
//   run_teacher                  a teacher's logits over every example of a batcher, batch by batch
//   config_from_teacher, copy_teacher_layers   a student of every k-th layer of its teacher
//   MlmTeacher, load_mlm_teacher an MLM checkpoint (its MLM head included), in evaluation mode
//   top_k, mlm_inputs            the teacher's k largest logits of a row; an MLM batch as inputs
//   MlmDistillBatches            batches of cached sequences: text, cached masks, teacher's top k
//   is_heldout                   the sequences MLM distillation holds out for evaluation
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/flags.h"
#include "data/example_batcher.h"
#include "data/logit_cache.h"
#include "data/mlm_batcher.h"
#include "data/shards.h"
#include "data/tokenizer.h"
#include "model/bert.h"
#include "model/checkpoint.h"
#include "model/classifier.h"
#include "model/engine.h"
#include "model/training.h"

namespace wr {

// ---- the vocabulary and the student flags of both modes ----

// --vocab, or (not given) the vocab.txt of the run folder of the first of `checkpoints` that has
// one (a resumed run's folder, the student's --init, the teacher), else the built-in corpus's
// (build/default/vocab.txt).
std::string distill_vocab_path(const std::string& given, const std::vector<std::string>& checkpoints);

// The flags every student has, of a classifier or of an MLM: where it starts, its size, the
// temperature and label weight of its loss, the schedule, the output folder.
struct StudentOptions {
    std::string out, init, resume;
    std::string settings_json;  // run.json of a new run
    bool from_teacher = false, overwrite = false;
    ModelSizeOptions size;
    double temperature = 1.0, label_weight = 0.0;
    int batch = 32, keep = 1;
    double epochs = 3, dropout = 0.1, attention_dropout = 0.1;
    int64_t eval_every = 0;
    uint64_t seed = 1;
    OptimizerOptions optimizer;
    bool warmup_given = false;
    DeviceOptions device;

    // mlm: the help texts of distill train --mlm
    void add_student_flags(Flags& f, bool mlm);
    // After parsing: --resume takes the run's settings (the program name says which mode made it).
    void note_given(Flags& f, const std::string& program);
    // The newest checkpoint/state pair of a resumed run (empty paths for a new run).
    ResumePoint resume_point() const { return resume.empty() ? ResumePoint{} : find_latest(resume); }
};

// ---- a classifier teacher ----

struct Teacher {
    BertModel model;
    Task task;
    uint64_t fingerprint = 0;  // its params checksum: what a cache names it by
};
// The classifier checkpoint at `path` with the task.json beside it (an MLM checkpoint, or a task
// whose labels do not match the classifier, is an error naming the file).
Teacher load_teacher(const std::string& path, const Tokenizer& vocab);

// An example set read for its tokens only (a transfer set may be unlabeled, or labeled with
// anything): labels dropped.
ExampleSet tokens_only(ExampleSet set);

// The teacher's logits [N,K] over every example of `batcher`, in shard order, starting at
// example `first`; each batch is handed to `sink` (rows, logits [rows,K]). show_progress: a line
// every 5 s. Returns false when Ctrl-C stopped it.
using TeacherSink = std::function<void(int64_t rows, const float* logits)>;
bool run_teacher(Engine& teacher, const ExampleBatcher& batcher, int64_t first, int batch_size, const TeacherSink& sink,
                 bool show_progress);

// ---- a student from its teacher's layers ----

// --from-teacher: the student's configuration is the teacher's (same width) with fewer layers,
// --layers of them (default: half the teacher's), a divisor of the teacher's depth.
BertConfig config_from_teacher(const ModelSizeOptions& size, const BertConfig& teacher_config);

// Every k-th layer of the teacher, as DistilBERT: student layer i is teacher layer i * k; every
// other tensor (embeddings, and the pooler and classifier or the MLM head) is the teacher's. Layer
// tensors are stacked [L, ...], so layer l of a tensor is the l-th slice of numel / L values.
// Returns k.
int copy_teacher_layers(BertModel& student, const BertModel& teacher);

// ---- MLM-logit distillation ----

struct MlmTeacher {
    BertModel model;
    uint64_t fingerprint = 0;  // its params checksum: what the cache names it by
};
// A train_mlm checkpoint (a classifier is an error naming the file), dropout off.
MlmTeacher load_mlm_teacher(const std::string& path, const Tokenizer& vocab);

// The k largest of row[0 .. V), by descending value (equal values: the lower id first); `order`
// is scratch space.
void top_k(const float* row, int V, int k, int32_t* ids, float* values, std::vector<int32_t>& order);

MlmInputs mlm_inputs(const MlmBatch& batch);

// Batches of cached sequences: each sequence's text from the shards, the cached masks applied
// (the id the teacher saw at each masked position), the teacher's top k per masked position.
struct MlmDistillBatches {
    const MlmTopKCache& cache;
    const MlmBatcher& text;  // the shards, cut at the cache's T
    int32_t pad_id;

    struct Batch {
        MlmBatch batch;
        std::vector<int32_t> teacher_ids;    // [M, k]
        std::vector<float> teacher_values;   // [M, k]
    };

    // Groups (cached sequences) groups[0 .. n) into `out`, padded to the longest of them. A
    // cached target that is not the text's token there is an error naming the cache (it belongs
    // to other shards).
    void make(const int64_t* groups, int n, Batch& out) const;
};

// Which cached sequences are held out for evaluation: sequence i when a fixed hash of i falls
// below `fraction`. The same in every run and for every seed, and spread over the whole text (its
// end may hold other kinds of documents than the rest: the built-in corpus ends with reviews).
bool is_heldout(int64_t sequence, double fraction);

// Where the training order stands, in the training state (data/loader_state.h): the seed, the
// epoch, the position in its order, and the cache's data checksum as the setup.
constexpr char kMlmDistillStateMagic[8] = {'W', 'R', 'M', 'L', 'M', 'K', 'D', 'S'};

// The held-out evaluation: soft loss and agreement with the teacher's top-1, and the ordinary MLM
// loss and accuracy on the original tokens (the same forward passes).
struct MlmDistillEvaluation {
    double soft_loss = NAN, agreement = NAN, mlm_loss = NAN, mlm_accuracy = NAN;
};

}  // namespace wr
