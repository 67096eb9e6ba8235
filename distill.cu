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
// for train_mlm or finetune. CPU only (no CUDA kernel for the top-k soft loss yet). The mode
// itself is model/mlm_distillation.h's; this file parses its flags and calls it.
//
//   ./distill --mlm                 the built-in MLM pipeline: the teacher ./train_mlm made, its
//                                   top-32 over the built-in corpus, then an L1-H64 student
//   ./distill cache --mlm --teacher runs/mini/best.bin --transfer 'out/wr30k/wikipedia/train_00*.bin'
//                   --vocab out/wr30k/vocab.txt --topk 32 --fp16 --out runs/mini/wiki_top32.bin
//   ./distill train --mlm --cache runs/mini/wiki_top32.bin --transfer 'out/wr30k/wikipedia/train_00*.bin'
//                   --teacher runs/mini/best.bin --preset tiny --vocab out/wr30k/vocab.txt --out runs/tiny_from_mini
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include "common/distributed.h"
#include "common/flags.h"
#include "common/util.h"
#include "data/example_batcher.h"
#include "data/logit_cache.h"
#include "data/shards.h"
#include "data/tokenizer.h"
#include "model/bert.h"
#include "model/checkpoint.h"
#include "model/classifier.h"
#include "model/distillation.h"
#include "model/engine.h"
#include "model/mlm_distillation.h"
#include "model/training.h"

using namespace wr;

namespace {

// The built-in pipeline's files: ./prepare default (run by make) writes the data, ./train_mlm and
// ./finetune the teacher.
const std::string kDefaultTransfer = "build/default/transfer.bin", kDefaultDev = "build/default/sentiment_dev.bin",
                  kDefaultTeacher = "runs/default_finetune/best.bin", kDefaultCache = "runs/default_distill/teacher_logits.bin",
                  kDefaultStudent = "runs/default_distill/student";

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
    const Tokenizer vocab = Tokenizer::load(distill_vocab_path(o.vocab, {o.teacher}));
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
        if (logit_cache_up_to_date(o.out, header)) {
            std::printf("cache: %s is up to date (%lld examples x %d logits of this teacher and transfer set)\n", o.out.c_str(),
                        (long long)header.example_count, header.num_labels);
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
    const std::string vocab_file = distill_vocab_path(o.vocab, {resume.checkpoint_path, o.init, o.teacher});
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

// Whether the command line asks for --mlm (decided before the flags are parsed: the two modes
// have different flags).
bool wants_mlm(int argc, char** argv) {
    for (int i = 2; i < argc; i++)
        if (!std::strcmp(argv[i], "--mlm") || !std::strcmp(argv[i], "--mlm=true") || !std::strcmp(argv[i], "--mlm=1")) return true;
    return false;
}

// --device with --mlm: the CPU ("auto" means the CPU), refused for cuda before anything is read.
// Here, not in model/mlm_distillation.cpp: DeviceOptions::apply differs between a CUDA build of a
// program (nvcc) and the library (g++), so only the programs call it.
void apply_mlm_device(const DeviceOptions& d) {
    d.check_flags();
    if (d.device == "cuda")
        throw Error("<command line>: flag --device cuda: --mlm runs on the CPU only (the top-k soft cross-entropy of MLM-logit "
                    "distillation has no CUDA kernel yet); use --device cpu");
    d.apply();
}

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
        apply_mlm_device(cache.device);
        if (const int rc = mlm_distill_cache(cache); rc != 0) return rc;
        MlmTrainOptions train;
        train.size.layers = 1, train.size.hidden = 64;  // a student smaller than the tiny teacher: L1-H64
        train.epochs = 1;
        return mlm_distill_train(train);
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
        apply_mlm_device(o.device);
        return mlm_distill_cache(o);
    }
    if (command == "train" && wants_mlm(argc, argv)) {
        MlmTrainOptions o;
        Flags f("distill train --mlm", "train a student MLM on an MLM teacher's cached top-k logits (soft cross-entropy at a "
                                       "temperature; CPU only)");
        o.add_flags(f);
        f.parse(argc, argv, 2);
        require_one_process("distill train --mlm");
        o.note_given(f, "distill train --mlm");
        apply_mlm_device(o.device);
        return mlm_distill_train(o);
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
