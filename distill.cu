// distill.cu: knowledge distillation into compact students, the method of "Well-Read Students
// Learn Better" (Turc et al. 2019). A fine-tuned teacher labels an unlabeled transfer set once
// (`distill cache`); a student of any size then learns from those soft targets (`distill train`),
// starting from random weights, from its own MLM pretraining (pretrained distillation, the
// paper's best), or from every k-th layer of the teacher (as DistilBERT). The student is a
// classifier checkpoint with the teacher's task.json, so finetune can evaluate it, predict with
// it, or fine-tune it further on labels (the paper's optional third stage).
//
//   ./distill                       the built-in pipeline: the teacher ./finetune made, its logits
//                                   over the built-in transfer set, then a smaller student
//   ./distill cache --teacher runs/sst2/best.bin --transfer out/wr30k/imdb_unlabeled.bin
//                   --vocab out/wr30k/vocab.txt --out runs/sst2/imdb_logits.bin
//   ./distill train --cache runs/sst2/imdb_logits.bin --transfer out/wr30k/imdb_unlabeled.bin
//                   --teacher runs/sst2/best.bin --init runs/mini/best.bin --dev out/wr30k/sst2/dev.bin
//                   --vocab out/wr30k/vocab.txt --out runs/sst2_student
//
// The loss (model/bert.h, ClsInputs): soft cross-entropy -tau^2 sum_y p_T(y|x) log p_S(y|x) with
// both distributions at temperature tau, plus --label-weight times the cross-entropy on the
// transfer set's own labels where it has them. Defaults as the paper: tau 1, no labels.
// The cache (data/logit_cache.h) records the teacher's and the transfer set's fingerprints, so a
// cache is never used with a transfer set or teacher it was not made from.
//
// --mlm: MLM-logit distillation, task-agnostic (DistilBERT's soft MLM loss). An MLM teacher (a
// train_mlm checkpoint) runs once over MLM token shards at fixed, stored masks, and the cache keeps
// its top-k logits at every masked position; a student MLM then learns the teacher's distribution
// there (-tau^2 sum_j p_j log q_{id_j}, p over the teacher's top k, q over the student's whole
// vocabulary), plus --label-weight times the ordinary MLM loss. The student is an MLM checkpoint
// for train_mlm or finetune. CPU only (no CUDA kernel for the top-k soft loss yet).
//
//   ./distill --mlm                 the built-in MLM pipeline: the teacher ./train_mlm made, its
//                                   top-32 over the built-in corpus, then an L1-H64 student
//   ./distill cache --mlm --teacher runs/mini/best.bin --transfer 'out/wr30k/wikipedia/train_00*.bin'
//                   --vocab out/wr30k/vocab.txt --topk 32 --fp16 --out runs/mini/wiki_top32.bin
//   ./distill train --mlm --cache runs/mini/wiki_top32.bin --transfer 'out/wr30k/wikipedia/train_00*.bin'
//                   --teacher runs/mini/best.bin --preset tiny --vocab out/wr30k/vocab.txt --out runs/tiny_from_mini
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include "common/distributed.h"
#include "common/flags.h"
#include "common/metrics.h"
#include "common/random.h"
#include "common/util.h"
#include "data/example_batcher.h"
#include "data/loader_state.h"
#include "data/logit_cache.h"
#include "data/mlm_batcher.h"
#include "data/shards.h"
#include "data/tokenizer.h"
#include "model/bert.h"
#include "model/checkpoint.h"
#include "model/classifier.h"
#include "model/distillation.h"
#include "model/engine.h"
#include "model/run_folder.h"
#include "model/training.h"

using namespace wr;

namespace {

// The built-in pipeline's files: ./prepare default (run by make) writes the data, ./train_mlm and
// ./finetune the teacher.
const std::string kDefaultVocab = "build/default/vocab.txt", kDefaultTransfer = "build/default/transfer.bin",
                  kDefaultDev = "build/default/sentiment_dev.bin", kDefaultTeacher = "runs/default_finetune/best.bin",
                  kDefaultCache = "runs/default_distill/teacher_logits.bin", kDefaultStudent = "runs/default_distill/student";

// --vocab, or (not given) the vocab.txt of the run folder of the first of `checkpoints` that has
// one (a resumed run's folder, the student's --init, the teacher), else the built-in corpus's.
std::string vocab_path(const std::string& given, const std::vector<std::string>& checkpoints) {
    if (!given.empty()) return given;
    std::vector<std::string> folders;
    for (const std::string& path : checkpoints)
        if (!path.empty()) folders.push_back(folder_of(path));
    return default_vocab(folders, kDefaultVocab);
}

// A missing teacher: say how the built-in one is made.
void require_teacher(const std::string& path) {
    if (file_exists(path)) return;
    throw Error(path + ": no such teacher checkpoint" +
                (path == kDefaultTeacher ? std::string(": run ./train_mlm and then ./finetune first (they make the default teacher)")
                                         : std::string(": pass a classifier checkpoint made by finetune")));
}

// ---------------------------------------------------------------------------------------------
// distill cache

struct CacheOptions {
    std::string teacher = kDefaultTeacher, transfer = kDefaultTransfer, vocab, out = kDefaultCache;
    bool fp16 = false, overwrite = false, mlm = false;  // mlm: only for -h (--mlm is dispatched to MlmCacheOptions)
    int batch = 64;
    int64_t chunk = 4096;
    DeviceOptions device;

    void add_flags(Flags& f) {
        f.add("teacher", &teacher, "the teacher: a classifier checkpoint made by finetune (task.json beside it)");
        f.add("transfer", &transfer, "the transfer set: an example shard (labels, if any, are not used)");
        f.add("vocab", &vocab, "vocabulary of the teacher and the transfer set (default: the vocab.txt of the teacher's run)");
        f.add("out", &out, "the logit cache to write (PATH.partial while it is being written)");
        f.add("fp16", &fp16, "store the logits as fp16 (half the size) instead of fp32");
        f.add("batch", &batch, "examples per teacher forward pass");
        f.add("chunk", &chunk, "examples per chunk: the unit written, flushed and resumed");
        f.add("overwrite", &overwrite, "replace an existing cache that was made from another teacher or transfer set");
        f.add("mlm", &mlm, "MLM-logit distillation instead (an MLM teacher over token shards): distill cache --mlm -h");
        device.add_flags(f);
    }
};

int run_cache(const CacheOptions& o) {
    if (o.batch < 1 || o.chunk < 1) throw Error("<command line>: --batch and --chunk must be positive");
    o.device.apply();
    const Tokenizer vocab = Tokenizer::load(vocab_path(o.vocab, {o.teacher}));
    require_teacher(o.teacher);
    Teacher teacher = load_teacher(o.teacher, vocab);
    ExampleSet transfer_set = read_example_shard(o.transfer, &vocab);
    check_same_segments(teacher.task, transfer_set, o.transfer, task_path_beside(o.teacher));

    LogitCacheHeader header;
    header.value_type = o.fp16 ? LogitValueType::F16 : LogitValueType::F32;
    header.num_labels = teacher.task.num_labels();
    header.example_count = (int64_t)transfer_set.examples.size();
    header.chunk_size = o.chunk;
    header.teacher_fingerprint = teacher.fingerprint;
    header.transfer_fingerprint = examples_fingerprint(transfer_set);

    if (file_exists(o.out)) {  // up to date, or made from something else
        const LogitCache existing = read_logit_cache(o.out);
        const LogitCacheHeader& h = existing.header;
        if (h.teacher_fingerprint == header.teacher_fingerprint && h.transfer_fingerprint == header.transfer_fingerprint &&
            h.num_labels == header.num_labels && h.value_type == header.value_type) {
            std::printf("cache: %s is up to date (%lld examples x %d logits of this teacher and transfer set)\n", o.out.c_str(),
                        (long long)h.example_count, h.num_labels);
            return 0;
        }
        if (!o.overwrite)
            throw Error(o.out + ": exists and was made from another teacher, transfer set or value type: choose another --out "
                                "or pass --overwrite to replace it");
    }

    const ExampleBatcher batcher(tokens_only(std::move(transfer_set)), o.transfer, vocab, header.num_labels,
                                 teacher.model.config.max_positions, ExampleBatcherOptions{});
    std::unique_ptr<Engine> engine = make_engine(o.device.device, o.device.precision, teacher.model, nullptr);
    if (const size_t slash = o.out.rfind('/'); slash != std::string::npos) make_dirs(o.out.substr(0, slash));
    LogitCacheWriter writer(o.out, header);
    std::printf("cache: teacher %s (%s, %d labels) over %s (%lld examples) -> %s (%s, %.1f MB), on %s\n", o.teacher.c_str(),
                teacher.model.config.describe().c_str(), header.num_labels, o.transfer.c_str(), (long long)header.example_count,
                o.out.c_str(), o.fp16 ? "fp16" : "fp32",
                (double)header.example_count * header.num_labels * logit_value_bytes(header.value_type) / 1e6, engine->name());
    if (writer.examples_resumed() > 0)
        std::printf("cache: resuming %s at example %lld\n", writer.partial_path().c_str(), (long long)writer.examples_resumed());
    StopRequest::install();
    const auto t0 = std::chrono::steady_clock::now();
    const bool complete = run_teacher(*engine, batcher, writer.examples_done(), o.batch,
                                      [&](int64_t rows, const float* logits) { writer.append(logits, rows); }, true);
    if (!complete) {
        std::printf("stopped by Ctrl-C: the complete chunks are in %s; run the same command to resume\n", writer.partial_path().c_str());
        return 130;
    }
    writer.finish();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("cache: %lld examples in %.1f s (%.0f examples/s) -> %s. Next: ./distill train --cache %s --transfer %s --teacher %s ...\n",
                (long long)(header.example_count - writer.examples_resumed()), seconds,
                (double)(header.example_count - writer.examples_resumed()) / std::max(seconds, 1e-9), o.out.c_str(), o.out.c_str(),
                o.transfer.c_str(), o.teacher.c_str());
    return 0;
}

// ---------------------------------------------------------------------------------------------
// distill train

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
    void add_student_flags(Flags& f, bool mlm) {
        f.add("out", &out, mlm ? "output folder: the student's checkpoints (MLM checkpoints), log.jsonl"
                               : "output folder: the student's checkpoints, task.json, log.jsonl");
        f.add("overwrite", &overwrite, "replace the checkpoints of an earlier run in --out");
        f.add("resume", &resume, "continue the run in this folder exactly where it stopped, with its settings (run.json)");
        f.add("init", &init, mlm ? "student from this MLM checkpoint; else random (size flags) or --from-teacher"
                                 : "student from this checkpoint: MLM (pretrained distillation) or classifier; else random or --from-teacher");
        f.add("from-teacher", &from_teacher, "student from every k-th layer of the teacher (same width; --layers sets the student's depth)");
        size.add_flags(f);
        f.add("temperature", &temperature, mlm ? "tau: softmax(logits / tau) for the teacher's top k and the student's vocabulary; loss x tau^2"
                                               : "tau: both distributions at softmax(logits / tau); the soft loss is scaled by tau^2");
        f.add("label-weight", &label_weight, mlm ? "alpha: add alpha x the ordinary MLM cross-entropy on the original tokens"
                                                 : "alpha: add alpha x cross-entropy on the transfer set's own labels (it must have them)");
        f.add("batch", &batch, mlm ? "sequences per batch" : "examples per batch (padded to the batch's longest)");
        f.add("epochs", &epochs, mlm ? "passes over the cached sequences (those not held out)" : "passes over the transfer set");
        f.add("eval-every", &eval_every, "also evaluate every N steps (0: after each epoch only)");
        f.add("keep", &keep, mlm ? "keep the last K checkpoints (best.bin, the lowest held-out soft loss, is kept besides)"
                                 : "keep the last K checkpoints (best.bin is kept besides)");
        f.add("dropout", &dropout, "the student's dropout on embeddings and hidden outputs (and the pooled vector)");
        f.add("attention-dropout", &attention_dropout, "the student's dropout on attention probabilities");
        f.add("seed", &seed, "seed of the student's initialization, data order and dropout");
        optimizer.add_flags(f);
    }
    // After parsing: --resume takes the run's settings (the program name says which mode made it).
    void note_given(Flags& f, const std::string& program) {
        if (!resume.empty()) {
            apply_run_settings(resume, program, f);
            out = resume;
        }
        settings_json = run_settings_json(program, f);
        size.note_given(f);
        warmup_given = f.was_set("warmup");
    }
    // The newest checkpoint/state pair of a resumed run (empty paths for a new run).
    ResumePoint resume_point() const { return resume.empty() ? ResumePoint{} : find_latest(resume); }
};

struct TrainOptions : StudentOptions {
    std::string cache = kDefaultCache, transfer = kDefaultTransfer, teacher = kDefaultTeacher, dev = kDefaultDev;
    std::string vocab, best_metric = "accuracy";
    bool bucket = false, mlm = false;  // mlm: only for -h

    TrainOptions() { out = kDefaultStudent, optimizer.lr = 5e-4; }

    void add_flags(Flags& f) {
        f.add("cache", &cache, "the teacher's logits over the transfer set (distill cache)");
        f.add("transfer", &transfer, "the transfer set the cache was made from");
        f.add("teacher", &teacher, "the teacher checkpoint: checks the cache, gives the task, and is evaluated on --dev for agreement");
        f.add("dev", &dev, "labeled dev shard: accuracy, F1 and agreement with the teacher ('' for none)");
        f.add("vocab", &vocab, "vocabulary of the teacher, the student and the shards (default: the vocab.txt of the run that made the "
                                     "student's --init or the teacher, else the built-in one)");
        f.add("bucket", &bucket, "length bucketing: batches of similar lengths (less padding)");
        f.add("best-metric", &best_metric, "what best.bin is chosen by: accuracy, macro_f1, micro_f1, agreement, loss");
        f.add("mlm", &mlm, "MLM-logit distillation instead (a student MLM on an MLM teacher's top-k cache): distill train --mlm -h");
        add_student_flags(f, false);
        device.add_flags(f);
    }
};

ClassifierInit student_init(const StudentOptions& o) {
    ClassifierInit init;
    init.dropout = (float)o.dropout, init.attention_dropout = (float)o.attention_dropout, init.seed = o.seed;
    return init;
}

// The student: from --init, from the teacher's layers, or random (size flags).
BertModel make_student(const TrainOptions& o, const Tokenizer& vocab, const Teacher& teacher) {
    const int K = teacher.task.num_labels();
    const ClassifierInit init = student_init(o);
    if (!o.init.empty() && o.from_teacher) throw Error("<command line>: --init and --from-teacher are two different students: choose one");
    if (!o.init.empty()) {
        if (!file_exists(o.init)) throw Error(o.init + ": no such checkpoint (--init)");
        const Checkpoint ck = load_checkpoint(o.init);
        o.size.check_agrees(ck.config, o.init);
        if (ck.kind == CheckpointKind::Classifier && file_exists(task_path_beside(o.init))) {
            const Task own = read_task(task_path_beside(o.init));
            if (own.num_labels() != K)
                fail(o.init, "num_labels", "the checkpoint classifies into " + std::to_string(own.num_labels()) +
                                               " outputs, the teacher into " + std::to_string(K));
            if (own.label_names != teacher.task.label_names || own.regression != teacher.task.regression)
                fail(o.init, "labels", "the checkpoint's task (" + task_path_beside(o.init) + ") has other labels than the teacher's");
        }
        return classifier_from_checkpoint(ck, o.init, vocab, K, init);
    }
    if (!o.from_teacher) return random_classifier(o.size, vocab, K, init);
    BertConfig c = config_from_teacher(o.size, teacher.model.config);
    c.num_labels = K;
    c.pad_id = vocab.pad_id;
    c.hidden_dropout = init.dropout, c.attention_dropout = init.attention_dropout;
    BertModel student(c);
    student.init_weights(o.seed);
    const int k = copy_teacher_layers(student, teacher.model);
    std::printf("init: student %s from layers 0, %d, ... of the teacher (every %d-th), with its embeddings, pooler and classifier\n",
                c.describe().c_str(), k, k);
    return student;
}

int run_train(const TrainOptions& o) {
    if (o.batch < 1 || o.keep < 1) throw Error("<command line>: --batch and --keep must be positive");
    if (!(o.temperature > 0)) throw Error("<command line>: flag --temperature: must be positive");
    if (o.label_weight < 0) throw Error("<command line>: flag --label-weight: must not be negative");
    o.device.apply();
    const ResumePoint resume = o.resume_point();
    const std::string vocab_file = vocab_path(o.vocab, {resume.checkpoint_path, o.init, o.teacher});
    const Tokenizer vocab = Tokenizer::load(vocab_file);
    require_teacher(o.teacher);
    Teacher teacher = load_teacher(o.teacher, vocab);
    const Task& task = teacher.task;
    const int K = task.num_labels();
    std::vector<std::string> metrics = classifier_metrics(task.regression);
    if (!task.regression) metrics.push_back("agreement");
    check_metric(o.best_metric, metrics);

    // The transfer set and its cache must belong together and to this teacher.
    if (!file_exists(o.cache))
        throw Error(o.cache + ": no such logit cache: run ./distill cache --teacher " + o.teacher + " --transfer " + o.transfer +
                    " --out " + o.cache + " first");
    ExampleSet transfer_set = read_example_shard(o.transfer, &vocab);
    const LogitCache cache = read_logit_cache(o.cache);
    check_logit_cache_matches(cache, o.transfer, teacher.fingerprint, examples_fingerprint(transfer_set),
                              (int64_t)transfer_set.examples.size(), K);
    const bool use_labels = o.label_weight > 0;
    if (use_labels) check_same_labels(task, transfer_set, o.transfer, task_path_beside(o.teacher));
    else check_same_segments(task, transfer_set, o.transfer, task_path_beside(o.teacher));

    // A resumed run's student is its newest checkpoint (its classifier included).
    std::unique_ptr<Checkpoint> resumed;
    if (!resume.checkpoint_path.empty()) resumed = std::make_unique<Checkpoint>(load_checkpoint(resume.checkpoint_path));
    BertModel student = resumed ? classifier_from_checkpoint(*resumed, resume.checkpoint_path, vocab, K, student_init(o))
                                : make_student(o, vocab, teacher);
    if (student.config.max_positions < teacher.model.config.max_positions && transfer_set.max_len > student.config.max_positions)
        fail(o.transfer, "max_len", "examples may be longer than the student's " + std::to_string(student.config.max_positions) + " positions");
    ExampleBatcherOptions bo;
    bo.batch_size = o.batch * world().size, bo.seed = o.seed, bo.bucket = o.bucket;  // the global batch (data-parallel: rows per rank)
    bo.eval_batch_size = o.batch;                                                       // dev batches of a rank's size
    ExampleBatcher train(use_labels ? std::move(transfer_set) : tokens_only(std::move(transfer_set)), o.transfer, vocab, K,
                         student.config.max_positions, bo);
    std::unique_ptr<ExampleBatcher> dev;
    std::vector<float> teacher_dev_logits;  // the teacher's logits on the dev shard, for agreement
    std::unique_ptr<Engine> teacher_engine = make_engine(o.device.device, o.device.precision, teacher.model, nullptr);
    if (!o.dev.empty()) {
        ExampleSet dev_set = read_example_shard(o.dev, &vocab);
        check_same_labels(task, dev_set, o.dev, task_path_beside(o.teacher));
        dev = std::make_unique<ExampleBatcher>(std::move(dev_set), o.dev, vocab, K, student.config.max_positions, bo);
        run_teacher(*teacher_engine, *dev, 0, o.batch,
                    [&](int64_t rows, const float* logits) { teacher_dev_logits.insert(teacher_dev_logits.end(), logits, logits + rows * K); },
                    false);
        const Evaluation te = evaluate_classifier(
            [&](const ClsInputs& in, ClsResult& r) { return teacher_engine->classify(in, false, 0, r); }, *dev, task, o.best_metric);
        std::printf("teacher on %s: loss %.4f, %s %.4f\n", o.dev.c_str(), te.loss, o.best_metric == "agreement" ? "accuracy" : o.best_metric.c_str(),
                    o.best_metric == "agreement" ? te.accuracy : te.score * (o.best_metric == "loss" ? -1 : 1));
    }
    teacher_engine.reset();

    const int64_t total_steps = (int64_t)std::ceil(o.epochs * train.batches_per_epoch());
    if (total_steps < 1) throw Error("<command line>: --epochs gives no step to train");
    OptimizerOptions opt = o.optimizer;
    if (!o.warmup_given) opt.warmup = total_steps / 10;
    Optimizer optimizer(opt, student.layout.total(), student.layout.decay_ranges(), total_steps);
    ClassifierLoop loop;
    loop.out = o.out, loop.overwrite = o.overwrite, loop.keep = o.keep, loop.total_steps = total_steps, loop.eval_every = o.eval_every;
    loop.best_metric = o.best_metric, loop.seed = o.seed, loop.settings_json = o.settings_json, loop.vocab_path = vocab_file;
    if (resumed) {
        const RestoredRun restored = restore_training_state(resume, *resumed, optimizer);
        train.restore(ExampleBatcherState::from_bytes(restored.loader_state, resume.state_path));
        loop.resuming = true, loop.best_val_loss = restored.best_val_loss, loop.seed = restored.seed;
    }
    std::unique_ptr<Engine> engine = make_engine(o.device.device, o.device.precision, student, &optimizer);
    require_same_device_on_every_rank(*engine);
    std::printf("distill: student %s on %s (%lld examples; cache %s), tau %.2g, label weight %.2g, dev %s, on %s\n",
                student.config.describe().c_str(), o.transfer.c_str(), (long long)train.example_count(), o.cache.c_str(), o.temperature,
                o.label_weight, o.dev.empty() ? "none" : o.dev.c_str(), engine->name());
    std::printf("steps %lld (%.2f epochs of %lld batches of %d) | lr %.2e, warmup %lld | best by %s | out %s\n", (long long)total_steps,
                o.epochs, (long long)train.batches_per_epoch(), o.batch, opt.lr, (long long)opt.warmup, o.best_metric.c_str(),
                o.out.c_str());
    std::printf("(the step lines' acc is the agreement with the teacher's argmax on the batch)\n");

    // Each batch's teacher logits, gathered from the cache by example index.
    std::vector<float> targets;
    auto make_inputs = [&](const ExampleBatch& batch) {
        targets.resize((size_t)batch.B * K);
        for (int b = 0; b < batch.B; b++) std::memcpy(&targets[(size_t)b * K], cache.row(batch.example_index[b]), sizeof(float) * K);
        ClsInputs in = inputs_of(batch, task.regression, use_labels);
        in.teacher_logits = targets.data(), in.temperature = (float)o.temperature, in.label_weight = (float)o.label_weight;
        return in;
    };
    const ClassifierLoopResult result = train_classifier(*engine, student, optimizer, train, dev.get(), task, vocab, loop, make_inputs,
                                                         dev ? &teacher_dev_logits : nullptr);
    if (result.stopped) return 130;
    if (!world().root()) return 0;  // rank 0 reports
    const Evaluation& best = result.best;
    if (dev) {
        char details[96] = "";  // a resumed run whose best came before it knows only the score
        if (!std::isnan(best.accuracy))
            std::snprintf(details, sizeof details, " (accuracy %.4f, agreement with the teacher %.4f)", best.accuracy, best.agreement);
        std::printf("done: %lld steps; best dev %s %.4f%s; best.bin in %s. Next: ./finetune --init %s/best.bin to fine-tune the student on "
                    "labels\n",
                    (long long)total_steps, o.best_metric.c_str(), best.score * (o.best_metric == "loss" ? -1 : 1), details, o.out.c_str(),
                    o.out.c_str());
    }
    else
        std::printf("done: %lld steps; checkpoints in %s\n", (long long)total_steps, o.out.c_str());
    return 0;
}

// ---------------------------------------------------------------------------------------------
// --mlm: MLM-logit distillation (task-agnostic, DistilBERT's soft MLM loss). An MLM teacher runs
// once over token shards at fixed masks (`distill cache --mlm`), and the cache keeps, per masked
// position, the position, the id the teacher saw, the original token and the teacher's top-k
// logits (data/logit_cache.h, kind MlmTopK). A student MLM then learns from those
// (`distill train --mlm`): at each masked position the soft cross-entropy against the teacher's
// top-k distribution (kernels/cross_entropy.h, soft_topk_cross_entropy_*), plus --label-weight
// times the ordinary MLM cross-entropy. The student is an MLM checkpoint (train_mlm --init and
// finetune --init take it). CPU only: the top-k soft cross-entropy has no CUDA kernel yet.

const std::vector<std::string> kDefaultMlmShards = {"build/default/mlm/train_*.bin"};
const std::string kDefaultMlmTeacher = "runs/default_mlm/best.bin", kDefaultMlmCache = "runs/default_distill_mlm/teacher_topk.bin",
                  kDefaultMlmStudent = "runs/default_distill_mlm/student";

// A missing MLM teacher: say how the built-in one is made. Returns the path.
const std::string& require_mlm_teacher(const std::string& path) {
    if (!file_exists(path))
        throw Error(path + ": no such teacher checkpoint" +
                    (path == kDefaultMlmTeacher ? std::string(": run ./train_mlm first (it makes the default MLM teacher)")
                                                : std::string(": pass an MLM checkpoint made by train_mlm")));
    return path;
}

// Whether the command line asks for --mlm (decided before the flags are parsed: the two modes
// have different flags).
bool wants_mlm(int argc, char** argv) {
    for (int i = 2; i < argc; i++)
        if (!std::strcmp(argv[i], "--mlm") || !std::strcmp(argv[i], "--mlm=true") || !std::strcmp(argv[i], "--mlm=1")) return true;
    return false;
}

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const std::string& s : items) out += (out.empty() ? "" : ",") + s;
    return out;
}

// --device with --mlm: the CPU ("auto" means the CPU), refused for cuda before anything is read.
void apply_mlm_device(const DeviceOptions& d) {
    d.check_flags();
    if (d.device == "cuda")
        throw Error("<command line>: flag --device cuda: --mlm runs on the CPU only (the top-k soft cross-entropy of MLM-logit "
                    "distillation has no CUDA kernel yet); use --device cpu");
    d.apply();
}

// ---- distill cache --mlm ----

struct MlmCacheOptions {
    std::string teacher = kDefaultMlmTeacher, vocab, out = kDefaultMlmCache;
    std::vector<std::string> transfer = kDefaultMlmShards;
    bool mlm = true, fp16 = false, whole_word = false, overwrite = false;
    int topk = 32, seq_len = 128, batch = 32;
    int64_t chunk = 16384;
    uint64_t mask_seed = 1;
    DeviceOptions device;

    void add_flags(Flags& f) {
        f.add("mlm", &mlm, "MLM-logit distillation: an MLM teacher's top-k predictions at masked positions of token shards");
        f.add("teacher", &teacher, "the teacher: an MLM checkpoint made by train_mlm");
        f.add("transfer", &transfer, "the text: MLM token shards (globs, comma-separated), as train_mlm's --train");
        f.add("vocab", &vocab, "vocabulary of the teacher and the shards (default: the vocab.txt of the teacher's run)");
        f.add("out", &out, "the top-k cache to write (PATH.partial while it is being written)");
        f.add("topk", &topk, "k: the teacher's k largest logits stored per masked position");
        f.add("fp16", &fp16, "store the logits as fp16 instead of fp32");
        f.add("seq-len", &seq_len, "tokens per sequence (T): the shards are cut as train_mlm cuts them");
        f.add("mask-seed", &mask_seed, "seed of the masks (BERT's 15% with 80/10/10, fixed per sequence and stored in the cache)");
        f.add("whole-word", &whole_word, "whole-word masking");
        f.add("batch", &batch, "sequences per teacher forward pass");
        f.add("chunk", &chunk, "masked positions per chunk: the unit written, flushed and resumed");
        f.add("overwrite", &overwrite, "replace an existing cache that was made from another teacher, text or options");
        device.add_flags(f, "cpu or auto (both the CPU: --mlm has no CUDA kernel yet; cuda is an error)");
    }
};

int run_mlm_cache(const MlmCacheOptions& o) {
    if (o.batch < 1 || o.chunk < 1 || o.topk < 1) throw Error("<command line>: --batch, --chunk and --topk must be positive");
    if (o.seq_len < 3) throw Error("<command line>: flag --seq-len: must be at least 3");
    apply_mlm_device(o.device);
    const Tokenizer vocab = Tokenizer::load(vocab_path(o.vocab, {o.teacher}));
    if (o.topk > vocab.vocab_size())
        throw Error("<command line>: flag --topk: " + std::to_string(o.topk) + " is more than the vocabulary's " +
                    std::to_string(vocab.vocab_size()) + " tokens");
    MlmTeacher teacher = load_mlm_teacher(require_mlm_teacher(o.teacher), vocab);
    teacher.model.matmul_precision = cpu_precision(o.device.precision);
    if (o.seq_len > teacher.model.config.max_positions)
        throw Error("<command line>: flag --seq-len: " + std::to_string(o.seq_len) + " is above the teacher's " +
                    std::to_string(teacher.model.config.max_positions) + " positions");
    // The masks are the batcher's fixed validation masks with validation_seed = --mask-seed: a
    // function of (seed, sequence index) only, the same in every run and for every batch size.
    MlmBatcherOptions bo;
    bo.batch_size = o.batch, bo.seq_len = o.seq_len, bo.validation_seed = o.mask_seed, bo.whole_word = o.whole_word;
    const MlmBatcher text(expand_globs(o.transfer), vocab, bo);
    const std::string text_name = joined(o.transfer);

    MlmTopKSetup setup;
    setup.vocab_size = vocab.vocab_size(), setup.seq_len = o.seq_len, setup.whole_word = o.whole_word, setup.mask_seed = o.mask_seed;
    setup.mask_fraction = bo.mask_fraction, setup.mask_token_fraction = bo.mask_token_fraction;
    setup.random_token_fraction = bo.random_token_fraction;
    setup.sequence_count = text.sequence_count(), setup.vocab_fingerprint = vocab.fingerprint();
    LogitCacheHeader header;
    header.kind = LogitCacheKind::MlmTopK;
    header.value_type = o.fp16 ? LogitValueType::F16 : LogitValueType::F32;
    header.num_labels = o.topk;
    header.chunk_size = o.chunk;
    header.teacher_fingerprint = teacher.fingerprint;
    header.transfer_fingerprint = token_shards_fingerprint(text.shards());
    // A pass over the masks without the teacher: how many rows (masked positions) each batch has,
    // so the header knows the total and a resumed run where each batch's rows begin.
    const int64_t batches = text.validation_batch_count();
    std::vector<int64_t> first_row(batches + 1, 0);
    MlmBatch batch;
    for (int64_t b = 0; b < batches; b++) {
        text.validation_batch(b, batch);
        first_row[b + 1] = first_row[b] + batch.M();
    }
    header.example_count = first_row[batches];

    if (file_exists(o.out)) {  // up to date, or made from something else
        const MlmTopKCache existing = read_mlm_topk_cache(o.out);
        const LogitCacheHeader& h = existing.header;
        const MlmTopKSetup& s = existing.setup;
        if (h.teacher_fingerprint == header.teacher_fingerprint && h.transfer_fingerprint == header.transfer_fingerprint &&
            h.num_labels == header.num_labels && h.value_type == header.value_type && h.example_count == header.example_count &&
            s.seq_len == setup.seq_len && s.mask_seed == setup.mask_seed && s.whole_word == setup.whole_word &&
            s.vocab_fingerprint == setup.vocab_fingerprint) {
            std::printf("cache: %s is up to date (%lld masked positions x top %d of this teacher, text and masks)\n", o.out.c_str(),
                        (long long)h.example_count, h.num_labels);
            return 0;
        }
        if (!o.overwrite)
            throw Error(o.out + ": exists and was made from another teacher, text, masks, k or value type: choose another --out "
                                "or pass --overwrite to replace it");
    }

    if (const size_t slash = o.out.rfind('/'); slash != std::string::npos) make_dirs(o.out.substr(0, slash));
    LogitCacheWriter writer(o.out, header, setup);
    const int64_t tokens = [&] {
        int64_t n = 0;
        for (const TokenShard& s : text.shards()) n += s.token_count();
        return n;
    }();
    std::printf("cache --mlm: teacher %s (%s) over %s (%lld tokens, %lld sequences of up to %d, %lld masked positions) -> %s "
                "(top %d, %s, %.1f MB), on the CPU\n",
                o.teacher.c_str(), teacher.model.config.describe().c_str(), text_name.c_str(), (long long)tokens,
                (long long)text.sequence_count(), o.seq_len, (long long)header.example_count, o.out.c_str(), o.topk, o.fp16 ? "fp16" : "fp32",
                (double)(kMlmTopKDataStart + header.example_count * mlm_topk_row_bytes(header, setup)) / 1e6);
    // Batches are always cut at the same sequences (b * batch ..), so a resumed run starts at the
    // batch holding the first row not yet written and skips the rows of it that are there.
    const int64_t done = writer.examples_done();
    int64_t b = (int64_t)(std::upper_bound(first_row.begin(), first_row.end(), done) - first_row.begin()) - 1;
    if (writer.examples_resumed() > 0)
        std::printf("cache: resuming %s at masked position %lld (sequence batch %lld of %lld)\n", writer.partial_path().c_str(),
                    (long long)writer.examples_resumed(), (long long)b, (long long)batches);
    StopRequest::install();
    const int V = vocab.vocab_size(), k = o.topk;
    MlmTopKRows rows;
    const auto t0 = std::chrono::steady_clock::now();
    auto last_print = t0;
    for (; b < batches && writer.examples_done() < header.example_count; b++) {
        if (StopRequest::requested()) {
            std::printf("stopped by Ctrl-C: the complete chunks are in %s; run the same command to resume\n", writer.partial_path().c_str());
            return 130;
        }
        text.validation_batch(b, batch);
        teacher.model.forward_mlm(mlm_inputs(batch), /*train=*/false, 0);
        const float* logits = teacher.model.mlm_logits();
        const int M = batch.M();
        rows.sequence.resize(M), rows.position.resize(M), rows.input_id.resize(M), rows.target.resize(M);
        rows.ids.resize((size_t)M * k), rows.values.resize((size_t)M * k);
#pragma omp parallel
        {
            std::vector<int32_t> order;
#pragma omp for schedule(static)
            for (int m = 0; m < M; m++) {
                const int32_t flat = batch.masked_positions[m];
                rows.sequence[m] = (int32_t)batch.sequence_index[flat / batch.T];
                rows.position[m] = flat % batch.T;
                rows.input_id[m] = batch.input_ids[flat];
                rows.target[m] = batch.masked_targets[m];
                top_k(logits + (size_t)m * V, V, k, &rows.ids[(size_t)m * k], &rows.values[(size_t)m * k], order);
            }
        }
        writer.append_topk(rows, std::max<int64_t>(0, done - first_row[b]), M);
        const auto now = std::chrono::steady_clock::now();
        if (std::chrono::duration<double>(now - last_print).count() > 5.0 || b + 1 == batches) {
            const double seconds = std::chrono::duration<double>(now - t0).count();
            const double per_second = (double)(writer.examples_done() - done) / std::max(seconds, 1e-9);
            std::printf("cache: %lld/%lld masked positions | %.0f positions/s | %.0f s left\n", (long long)writer.examples_done(),
                        (long long)header.example_count, per_second,
                        (double)(header.example_count - writer.examples_done()) / std::max(per_second, 1e-9));
            last_print = now;
        }
    }
    writer.finish();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("cache: %lld masked positions in %.1f s -> %s. Next: ./distill train --mlm --cache %s --transfer %s --teacher %s ...\n",
                (long long)(header.example_count - done), seconds, o.out.c_str(), o.out.c_str(), text_name.c_str(), o.teacher.c_str());
    return 0;
}

// ---- distill train --mlm ----

struct MlmTrainOptions : StudentOptions {
    std::string cache = kDefaultMlmCache, teacher = kDefaultMlmTeacher, vocab;
    std::vector<std::string> transfer = kDefaultMlmShards;
    bool mlm = true;
    double heldout = 0.05;

    MlmTrainOptions() { out = kDefaultMlmStudent, optimizer.lr = 1e-3; }

    void add_flags(Flags& f) {
        f.add("mlm", &mlm, "MLM-logit distillation: a student MLM trained on an MLM teacher's cached top-k predictions");
        f.add("cache", &cache, "the teacher's top-k cache (distill cache --mlm)");
        f.add("transfer", &transfer, "the token shards the cache was made from (globs, comma-separated)");
        f.add("teacher", &teacher, "the teacher checkpoint: checks the cache and gives --from-teacher its layers ('': no check)");
        f.add("vocab", &vocab, "vocabulary of the teacher, the student and the shards (default: the vocab.txt of the run that made the "
                                     "student's --init or the teacher, else the built-in one)");
        f.add("heldout", &heldout, "fraction of the cached sequences held out for evaluation (a fixed hash of the sequence index)");
        add_student_flags(f, true);
        device.add_flags(f, "cpu or auto (both the CPU: --mlm has no CUDA kernel yet; cuda is an error)");
    }
};

// The MLM student: from --init (an MLM checkpoint), from the teacher's layers, or random.
BertModel make_mlm_student(const MlmTrainOptions& o, const Tokenizer& vocab, const MlmTeacher* teacher) {
    if (!o.init.empty() && o.from_teacher) throw Error("<command line>: --init and --from-teacher are two different students: choose one");
    if (!o.init.empty()) {
        if (!file_exists(o.init)) throw Error(o.init + ": no such checkpoint (--init)");
        const Checkpoint ck = load_checkpoint(o.init);
        if (ck.kind != CheckpointKind::Mlm)
            fail(o.init, "kind", "is a classifier checkpoint; an --mlm student needs an MLM checkpoint (with its MLM head)");
        o.size.check_agrees(ck.config, o.init);
        BertConfig c = ck.config;
        c.hidden_dropout = (float)o.dropout, c.attention_dropout = (float)o.attention_dropout;
        BertModel student(c);
        load_into(student, ck, vocab.fingerprint(), vocab.source());
        std::printf("init: student %s from %s\n", c.describe().c_str(), o.init.c_str());
        return student;
    }
    if (o.from_teacher && !teacher) throw Error("<command line>: --from-teacher needs the --teacher checkpoint");
    BertConfig c = o.from_teacher ? config_from_teacher(o.size, teacher->model.config) : o.size.config(vocab.vocab_size());
    c.pad_id = vocab.pad_id;
    c.hidden_dropout = (float)o.dropout, c.attention_dropout = (float)o.attention_dropout;
    c.validate("student configuration");
    BertModel student(c);
    student.init_weights(o.seed);
    if (!o.from_teacher) {
        std::printf("init: random student %s\n", c.describe().c_str());
        return student;
    }
    const int k = copy_teacher_layers(student, teacher->model);
    std::printf("init: student %s from layers 0, %d, ... of the teacher (every %d-th), with its embeddings and MLM head\n",
                c.describe().c_str(), k, k);
    return student;
}

int run_mlm_train(const MlmTrainOptions& o) {
    if (o.batch < 1 || o.keep < 1) throw Error("<command line>: --batch and --keep must be positive");
    if (!(o.temperature > 0)) throw Error("<command line>: flag --temperature: must be positive");
    if (o.label_weight < 0) throw Error("<command line>: flag --label-weight: must not be negative");
    if (!(o.heldout > 0 && o.heldout < 1)) throw Error("<command line>: flag --heldout: must be in (0, 1)");
    apply_mlm_device(o.device);
    const ResumePoint resume = o.resume_point();
    const std::string vocab_file = vocab_path(o.vocab, {resume.checkpoint_path, o.init, o.teacher});
    const Tokenizer vocab = Tokenizer::load(vocab_file);
    std::unique_ptr<MlmTeacher> teacher;
    if (!o.teacher.empty()) teacher = std::make_unique<MlmTeacher>(load_mlm_teacher(require_mlm_teacher(o.teacher), vocab));

    // The cache must belong to this teacher, this text and this vocabulary.
    const std::string text_name = joined(o.transfer);
    if (!file_exists(o.cache))
        throw Error(o.cache + ": no such top-k cache: run ./distill cache --mlm --teacher " + o.teacher + " --transfer " + text_name +
                    " --out " + o.cache + " first");
    const MlmTopKCache cache = read_mlm_topk_cache(o.cache);
    MlmBatcherOptions bo;
    bo.batch_size = o.batch, bo.seq_len = cache.setup.seq_len;
    const MlmBatcher text(expand_globs(o.transfer), vocab, bo);
    check_mlm_topk_cache_matches(cache, text_name, teacher ? teacher->fingerprint : 0, token_shards_fingerprint(text.shards()),
                                 vocab.fingerprint(), text.sequence_count());
    const int64_t groups = cache.groups();
    if (groups < 2) fail(o.cache, "rows", "masked positions in " + std::to_string(groups) + " sequence(s): too few to train and hold out any");
    std::vector<int64_t> train_set, heldout_set;  // group indices
    for (int64_t g = 0; g < groups; g++) (is_heldout(cache.group_sequence[g], o.heldout) ? heldout_set : train_set).push_back(g);
    if (heldout_set.empty()) heldout_set.push_back(train_set.back()), train_set.pop_back();
    if (train_set.empty()) train_set.push_back(heldout_set.front()), heldout_set.erase(heldout_set.begin());
    const int64_t train_groups = (int64_t)train_set.size(), heldout = (int64_t)heldout_set.size();

    MlmTrainOptions student_from = o;  // a resumed run's student is its newest checkpoint
    if (!resume.checkpoint_path.empty()) student_from.init = resume.checkpoint_path, student_from.from_teacher = false, student_from.size.given.clear();
    BertModel student = make_mlm_student(student_from, vocab, teacher.get());
    if (cache.setup.seq_len > student.config.max_positions)
        fail(o.cache, "seq_len", "sequences of " + std::to_string(cache.setup.seq_len) + " tokens are longer than the student's " +
                                     std::to_string(student.config.max_positions) + " positions");
    const int64_t steps_per_epoch = (train_groups + o.batch - 1) / o.batch;
    const int64_t total_steps = (int64_t)std::ceil(o.epochs * (double)steps_per_epoch);
    if (total_steps < 1) throw Error("<command line>: --epochs gives no step to train");
    OptimizerOptions opt = o.optimizer;
    if (!o.warmup_given) opt.warmup = total_steps / 10;
    Optimizer optimizer(opt, student.layout.total(), student.layout.decay_ranges(), total_steps);

    // The training order: the training groups shuffled per epoch (Fisher-Yates from (seed, epoch));
    // batches run on from one epoch into the next, so every batch has --batch sequences.
    uint64_t seed = o.seed;
    std::vector<int64_t> order(train_groups);
    int64_t epoch = 0, position = 0;
    auto shuffle = [&](int64_t e) {
        order = train_set;
        uint64_t state = splitmix64_mix(seed ^ (kGoldenGamma * (uint64_t)(e + 1)));
        for (int64_t i = train_groups - 1; i > 0; i--)
            std::swap(order[i], order[(int64_t)(((unsigned __int128)splitmix64_next(state) * (uint64_t)(i + 1)) >> 64)]);
    };
    MlmDistillEvaluation best;  // a resumed run knows the best loss before it (the rest is in log.jsonl)
    double best_loss = kNoValidationLoss;
    if (!resume.checkpoint_path.empty()) {  // the moments, the step, the seed and where the order stands
        const RestoredRun restored = restore_training_state(resume, load_checkpoint(resume.checkpoint_path), optimizer);
        const LoaderState state = decode_loader_state(restored.loader_state, kMlmDistillStateMagic, "loader_state", resume.state_path);
        if (state.setup != cache.data_checksum)
            fail(resume.state_path, "loader_state", "belongs to another cache than " + o.cache + " (its data checksum differs)");
        if (state.position < 0 || state.position >= train_groups || state.epoch < 0)
            fail(resume.state_path, "loader_state", "epoch " + std::to_string(state.epoch) + " position " + std::to_string(state.position) +
                                                        " is outside the cache's " + std::to_string(train_groups) + " training sequences");
        seed = restored.seed, epoch = state.epoch, position = state.position;
        best.soft_loss = best_loss = restored.best_val_loss;
    } else {
        start_run_folder(o.out, o.overwrite, o.settings_json, vocab_file);  // only once every input has been checked
    }
    if (!resume.checkpoint_path.empty()) keep_vocab_in_run(o.out, vocab_file);  // a run from before run folders kept their vocabulary
    shuffle(epoch);
    CheckpointKeeper keeper(o.out, o.keep, best_loss);
    RunLog log(o.out, resume.checkpoint_path.empty() ? -1 : optimizer.steps_done);
    CpuEngine engine(student, cpu_precision(o.device.precision));
    std::printf("distill --mlm: student %s on %s (cache %s: %lld sequences, %lld masked positions, top %d, %s), tau %.2g, label weight %.2g, "
                "on %s\n",
                student.config.describe().c_str(), text_name.c_str(), o.cache.c_str(), (long long)groups, (long long)cache.rows(), cache.k(),
                cache.header.value_type == LogitValueType::F16 ? "fp16" : "fp32", o.temperature, o.label_weight, engine.name());
    std::printf("steps %lld (%.2f epochs of %lld batches of %d sequences; %lld sequences held out) | lr %.2e, warmup %lld | out %s\n",
                (long long)total_steps, o.epochs, (long long)steps_per_epoch, o.batch, (long long)heldout, opt.lr, (long long)opt.warmup,
                o.out.c_str());
    std::printf("(the step lines' acc is the agreement of the student's argmax with the teacher's top-1 on the batch)\n");

    const MlmDistillBatches batches{cache, text, vocab.pad_id};
    MlmDistillBatches::Batch b;
    auto inputs_of = [&](const MlmDistillBatches::Batch& x) {
        MlmInputs in = mlm_inputs(x.batch);
        in.teacher_k = cache.k(), in.teacher_ids = x.teacher_ids.data(), in.teacher_values = x.teacher_values.data();
        in.temperature = (float)o.temperature, in.label_weight = (float)o.label_weight;
        return in;
    };
    auto evaluate = [&]() {
        double soft = 0, hard = 0;
        int64_t agree = 0, correct = 0, masked = 0;
        for (int64_t first = 0; first < heldout; first += o.batch) {
            const int n = (int)std::min<int64_t>(o.batch, heldout - first);
            batches.make(heldout_set.data() + first, n, b);
            const MlmResult r = engine.forward_mlm(inputs_of(b), /*train=*/false, 0);
            soft += (double)r.soft_loss * b.batch.M(), hard += (double)r.hard_loss * b.batch.M();
            agree += r.agree, correct += r.correct, masked += b.batch.M();
        }
        const double n = (double)std::max<int64_t>(masked, 1);
        return MlmDistillEvaluation{soft / n, agree / n, hard / n, correct / n};
    };

    StopRequest::install();
    auto evaluate_and_save = [&](bool evaluate_now) {
        MlmDistillEvaluation e;
        if (evaluate_now) {
            e = evaluate();
            std::printf("eval at step %lld (epoch %.2f) | held-out soft loss %.4f | agreement with the teacher's top-1 %.4f | "
                        "MLM loss %.4f, accuracy %.4f\n",
                        (long long)optimizer.steps_done, (double)epoch + (double)position / (double)train_groups, e.soft_loss, e.agreement,
                        e.mlm_loss, e.mlm_accuracy);
            log.record("{\"kind\":\"eval\",\"step\":" + std::to_string(optimizer.steps_done) + ",\"loss\":" + json_number(e.soft_loss) +
                       ",\"agreement\":" + json_number(e.agreement) + ",\"mlm_loss\":" + json_number(e.mlm_loss) +
                       ",\"accuracy\":" + json_number(e.mlm_accuracy) + "}");
            if (!(best.soft_loss <= e.soft_loss)) best = e;
        }
        TrainingProgress progress;
        progress.step = optimizer.steps_done;
        progress.rng_state = {seed};
        LoaderState state;
        state.seed = seed, state.epoch = epoch, state.position = position, state.setup = cache.data_checksum;
        progress.loader_state = encode_loader_state(state, kMlmDistillStateMagic);
        if (keeper.save(weights_of(student), vocab.fingerprint(), optimizer.m.data(), optimizer.v.data(), progress, e.soft_loss))
            std::printf("new best held-out soft loss %.4f: %s/best.bin\n", e.soft_loss, o.out.c_str());
    };

    std::vector<int64_t> picked(o.batch);
    while (optimizer.steps_done < total_steps) {
        const auto t0 = std::chrono::steady_clock::now();
        bool epoch_end = false;
        for (int i = 0; i < o.batch; i++) {
            picked[i] = order[position];
            if (++position == train_groups) {
                shuffle(++epoch);
                position = 0;
                epoch_end = true;
            }
        }
        profile::step_begins(optimizer.steps_done + 1);
        profile::Range step_range("step");
        {
            profile::Range batch_range("batch");
            batches.make(picked.data(), o.batch, b);
        }
        {
            profile::Range forward_backward("forward_backward");
            engine.zero_grads();
            engine.train_forward_mlm(inputs_of(b), splitmix64_mix(seed ^ (kGoldenGamma * (uint64_t)(optimizer.steps_done + 1))));
            engine.backward_mlm();
        }
        StepResults results;
        {
            profile::Range optimizer_range("optimizer");
            results = engine.step(optimizer);
        }
        const Optimizer::StepInfo& info = results.info;
        const MlmResult& r = results.mlm.at(0);
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        optimizer.after_step(info);  // reports a skipped update; throws after too many in a row
        log.train_step(optimizer.steps_done, total_steps, r.loss, (double)r.agree / std::max(b.batch.M(), 1), info.lr, info.grad_norm, ms,
                       b.batch.token_count() / (ms / 1000.0));
        const bool last = optimizer.steps_done == total_steps, stopping = StopRequest::requested();
        const bool eval_now = last || epoch_end || (o.eval_every > 0 && optimizer.steps_done % o.eval_every == 0);
        if (eval_now || stopping) {
            profile::Range range("evaluation_and_checkpoint");
            evaluate_and_save(eval_now);
        }
        profile::step_ends(optimizer.steps_done);
        if (stopping && !last) {
            std::printf("stopped by Ctrl-C after step %lld; continue with --resume %s\n", (long long)optimizer.steps_done, o.out.c_str());
            return 130;
        }
    }
    char details[128] = "";  // a resumed run whose best came before it knows only the loss
    if (!std::isnan(best.agreement))
        std::snprintf(details, sizeof details, " (agreement with the teacher's top-1 %.4f, MLM loss %.4f, accuracy %.4f)", best.agreement,
                      best.mlm_loss, best.mlm_accuracy);
    std::printf("done: %lld steps; best held-out soft loss %.4f%s; best.bin in %s. Next: ./finetune --init %s/best.bin, or ./train_mlm "
                "--init %s/best.bin\n",
                (long long)total_steps, best.soft_loss, details, o.out.c_str(), o.out.c_str(), o.out.c_str());
    return 0;
}

// ---------------------------------------------------------------------------------------------

const char* kUsage =
    "usage: distill cache [flags]    run a teacher over a transfer set once, write its logits\n"
    "       distill train [flags]    train a student on the cached logits\n"
    "       distill                  the built-in pipeline: cache (if not up to date), then train a small student\n"
    "       distill cache --mlm ...  MLM-logit distillation (task-agnostic): an MLM teacher's top-k predictions at the\n"
    "       distill train --mlm ...  masked positions of token shards, and a student MLM trained on them (CPU only:\n"
    "                                no CUDA kernel yet, --device cuda is refused)\n"
    "       distill --mlm            the built-in MLM pipeline: the teacher ./train_mlm made, a smaller student\n"
    "       distill cache -h, distill train -h, distill cache --mlm -h, distill train --mlm -h: the flags\n";

int run(int argc, char** argv) {
    if (argc >= 2 && (!std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help"))) {
        std::printf("distill: knowledge distillation into compact students (\"Well-Read Students Learn Better\")\n%s", kUsage);
        return 0;
    }
    if (argc == 2 && !std::strcmp(argv[1], "--mlm")) {  // the built-in MLM pipeline, on the defaults
        require_one_process("distill --mlm (the built-in pipeline)");
        MlmCacheOptions cache;
        if (const int rc = run_mlm_cache(cache); rc != 0) return rc;
        MlmTrainOptions train;
        train.size.layers = 1, train.size.hidden = 64;  // a student smaller than the tiny teacher: L1-H64
        train.epochs = 1;
        return run_mlm_train(train);
    }
    if (argc == 1) {  // the built-in pipeline, on the defaults
        require_one_process("distill (the built-in pipeline)");
        require_teacher(kDefaultTeacher);
        CacheOptions cache;
        if (const int rc = run_cache(cache); rc != 0) return rc;
        TrainOptions train;
        train.size.layers = 1, train.size.hidden = 64;  // a student smaller than the tiny teacher: L1-H64
        train.optimizer.lr = 1e-3;
        return run_train(train);
    }
    const std::string command = argv[1];
    if (command == "cache" && wants_mlm(argc, argv)) {
        MlmCacheOptions o;
        Flags f("distill cache --mlm", "run an MLM teacher over token shards once at fixed masks and write its top-k logits at the "
                                       "masked positions (resumable; CPU only)");
        o.add_flags(f);
        f.parse(argc, argv, 2);
        require_one_process("distill cache --mlm");
        return run_mlm_cache(o);
    }
    if (command == "train" && wants_mlm(argc, argv)) {
        MlmTrainOptions o;
        Flags f("distill train --mlm", "train a student MLM on an MLM teacher's cached top-k logits (soft cross-entropy at a "
                                       "temperature; CPU only)");
        o.add_flags(f);
        f.parse(argc, argv, 2);
        require_one_process("distill train --mlm");
        o.note_given(f, "distill train --mlm");
        return run_mlm_train(o);
    }
    if (command == "cache") {
        CacheOptions o;
        Flags f("distill cache", "run a teacher classifier over a transfer set once and write its logits (resumable)");
        o.add_flags(f);
        f.parse(argc, argv, 2);
        require_one_process("distill cache");
        return run_cache(o);
    }
    if (command == "train") {
        TrainOptions o;
        Flags f("distill train", "train a student classifier on a teacher's cached logits (soft cross-entropy at a temperature)");
        o.add_flags(f);
        f.parse(argc, argv, 2);
        o.note_given(f, "distill train");
        return run_train(o);
    }
    throw Error("<command line>: '" + command + "' is not a distill command\n" + kUsage);
}

}  // namespace

int main(int argc, char** argv) { return wr::run_program("distill", run, argc, argv); }
