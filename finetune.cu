// finetune.cu: classification (and regression) fine-tuning of a compact BERT, evaluation, and
// prediction: the classifier head of model/bert.h (pooler on [CLS], dropout, linear) on top of
// a pretrained encoder.
//
//   ./finetune                          the default checkpoint of ./train_mlm on the built-in sentiment task
//   ./finetune --init runs/mini/best.bin --train out/wr30k/sst2/train.bin --dev out/wr30k/sst2/dev.bin
//              --vocab out/wr30k/vocab.txt --out runs/sst2_mini
//   ./finetune --eval-only --init runs/sst2_mini/best.bin --dev out/wr30k/sst2/dev.bin --vocab ...
//   ./finetune --predict - --init runs/sst2_mini/best.bin --vocab ...     lines from standard input
//
// --init takes an MLM checkpoint (its encoder, and its pooler where it has one; the classifier
// starts fresh) or a classifier checkpoint (to continue training, to evaluate, to predict).
// Batches are padded to their own longest example (data/example_batcher.h). After every epoch
// (and every --eval-every steps) the dev shard is evaluated: loss, accuracy, macro- and micro-F1,
// per-class precision and recall, the confusion matrix (common/metrics.h); best.bin is the
// checkpoint with the best --best-metric. The run folder also gets task.json: the label names,
// whether the model reads sentence pairs and its maximum length, which --predict and
// --eval-only read back. --device picks where the model runs, as in train_mlm: the CPU (fp32), or,
// in a build made with nvcc, the GPU (bf16 mixed precision by default, --precision fp32 for
// parity); training, evaluation and prediction all go through the Engine of model/engine.h.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>

#include "common/distributed.h"
#include "common/flags.h"
#include "common/metrics.h"
#include "common/random.h"
#include "common/util.h"
#include "data/example_batcher.h"
#include "data/shards.h"
#include "data/text_reader.h"
#include "data/tokenizer.h"
#include "kernels/cross_entropy.h"
#include "model/bert.h"
#include "model/checkpoint.h"
#include "model/classifier.h"
#include "model/engine.h"
#include "model/run_folder.h"
#include "model/training.h"

using namespace wr;

namespace {

const std::string kDefaultVocab = "build/default/vocab.txt", kDefaultInit = "runs/default_mlm/best.bin";

struct Options {
    std::string train = "build/default/sentiment_train.bin", dev = "build/default/sentiment_dev.bin", test;
    std::string vocab;  // "": the vocab.txt of the run that made the checkpoint, else kDefaultVocab
    std::string init = kDefaultInit, resume, out = "runs/default_finetune";
    std::string best_metric = "accuracy", predict, predictions;
    ModelSizeOptions size;  // a model from random weights (--init '')
    DeviceOptions device;
    bool overwrite = false, eval_only = false, bucket = false;
    int batch = 32, keep = 1, max_len = 0;
    double epochs = 5, dropout = 0.1, attention_dropout = 0.1;
    int64_t eval_every = 0;
    uint64_t seed = 1;
    OptimizerOptions optimizer;
    bool warmup_given = false;
    std::string settings_json;  // run.json of a new run

    // For the tiny built-in default (docs/decisions.md); pretrained real models want 2e-5 .. 1e-4.
    Options() { optimizer.lr = 3e-4; }
    bool predicting() const { return !predict.empty(); }  // standard output carries the predictions only
};

Options parse_options(int argc, char** argv) {
    Options o;
    Flags f("finetune", "fine-tune a pretrained compact BERT for classification or regression; evaluate; predict");
    f.add("train", &o.train, "labeled training example shard (prepare cls)");
    f.add("dev", &o.dev, "labeled dev example shard, evaluated after every epoch ('' for none)");
    f.add("test", &o.test, "labeled test shard, evaluated once at the end with best.bin (else the last weights)");
    f.add("vocab", &o.vocab, "vocabulary the shards and the checkpoint were made with (default: the vocab.txt beside the checkpoint, else " +
                                 kDefaultVocab + ")");
    f.add("init", &o.init, "MLM checkpoint (fresh classifier) or classifier checkpoint (continue, evaluate, predict); '': random weights "
                           "of the size flags' model");
    o.size.add_flags(f);
    f.add("resume", &o.resume, "continue the run in this folder exactly where it stopped, with its settings (run.json)");
    f.add("out", &o.out, "output folder: checkpoints, log.jsonl, task.json, run.json, vocab.txt");
    f.add("overwrite", &o.overwrite, "replace the checkpoints of an earlier run in --out");
    f.add("batch", &o.batch, "examples per batch (padded to the batch's longest)");
    f.add("bucket", &o.bucket, "length bucketing: batches of similar lengths (less padding)");
    f.add("epochs", &o.epochs, "passes over the training shard");
    f.add("eval-every", &o.eval_every, "also evaluate every N steps (0: after each epoch only)");
    f.add("best-metric", &o.best_metric, "what best.bin is chosen by: accuracy, macro_f1, micro_f1, loss (regression: pearson, spearman, loss)");
    f.add("keep", &o.keep, "keep the last K checkpoints (best.bin is kept besides)");
    f.add("dropout", &o.dropout, "dropout on embeddings, hidden outputs and the pooled vector");
    f.add("attention-dropout", &o.attention_dropout, "dropout on attention probabilities");
    f.add("seed", &o.seed, "seed of the classifier's initialization, data order and dropout");
    o.device.add_flags(f);
    f.add("eval-only", &o.eval_only, "evaluate the --init classifier on --dev (and --test) and exit");
    f.add("predict", &o.predict, "classify the lines of this file ('-': standard input; 'a<TAB>b' for pairs) and exit");
    f.add("predictions", &o.predictions, "where --predict writes its table (default: beside the model, NAME.predictions.tsv for NAME.bin)");
    f.add("max-len", &o.max_len, "--predict: truncate inputs to this many tokens (0: the task's, else the model's positions)");
    o.optimizer.add_flags(f);
    f.parse(argc, argv);
    if (!o.resume.empty()) {
        if (o.eval_only || o.predicting()) throw Error("<command line>: --resume continues training; --eval-only and --predict take --init");
        apply_run_settings(o.resume, "finetune", f);
        o.out = o.resume;
    }
    o.settings_json = run_settings_json("finetune", f);
    o.size.note_given(f);
    o.warmup_given = f.was_set("warmup");
    o.device.check_flags();
    if (o.batch < 1 || o.keep < 1) throw Error("<command line>: --batch and --keep must be positive");
    return o;
}

ClassifierInit classifier_init(const Options& o) {
    ClassifierInit init;
    init.dropout = (float)o.dropout, init.attention_dropout = (float)o.attention_dropout, init.seed = o.seed;
    init.say = o.predicting() ? stderr : stdout;
    return init;
}

// --predictions, or NAME.predictions.tsv beside the model NAME.bin.
std::string predictions_path(const Options& o) {
    if (!o.predictions.empty()) return o.predictions;
    std::string stem = o.init.substr(o.init.rfind('/') == std::string::npos ? 0 : o.init.rfind('/') + 1);
    if (stem.size() > 4 && stem.compare(stem.size() - 4, 4, ".bin") == 0) stem.resize(stem.size() - 4);
    return folder_of(o.init) + "/" + stem + ".predictions.tsv";
}

// ---------------------------------------------------------------------------------------------
// Prediction: text lines in, label and probabilities out.

int predict(const Options& o, Engine& engine, const BertModel& model, const Tokenizer& vocab, const Task& task) {
    const int max_len = o.max_len > 0 ? o.max_len : task.max_len > 0 ? task.max_len : model.config.max_positions;
    const std::string out_path = predictions_path(o);
    check_output_file(out_path, {o.predict, o.init, o.vocab}, /*overwrite=*/true, "--predictions");  // never an input
    std::vector<std::string> lines;
    if (o.predict == "-") {
        for (std::string line; std::getline(std::cin, line);) lines.push_back(line);
    } else {
        LineReader reader(o.predict);
        for (std::string line; reader.next(line);) lines.push_back(line);
    }
    const int K = model.config.num_labels;
    std::string table = "text\tlabel";
    for (const std::string& name : task.label_names) table += "\t" + (task.regression ? name : "p_" + name);
    table += "\n";
    // Standard output: one line per input, "label<TAB>probabilities<TAB>text" (regression:
    // "value<TAB>text"), after a header naming the columns (the probabilities in label order).
    std::string names;
    for (const std::string& name : task.label_names) names += (names.empty() ? "" : " ") + ("p_" + name);
    if (task.regression) std::printf("%s\ttext\n", task.label_names[0].c_str());
    else std::printf("label\t%s\ttext\n", names.c_str());
    ExampleBatch batch;
    for (size_t start = 0; start < lines.size(); start += (size_t)o.batch) {
        std::vector<Encoding> enc;
        for (size_t i = start; i < std::min(lines.size(), start + (size_t)o.batch); i++) {
            const size_t tab = lines[i].find('\t');
            if (task.pairs && tab == std::string::npos)
                fail(o.predict, "line " + std::to_string(i + 1), "is a single sentence, but the model reads sentence pairs ('a<TAB>b')");
            if (!task.pairs && tab != std::string::npos)
                fail(o.predict, "line " + std::to_string(i + 1), "is a sentence pair, but the model reads single sentences");
            enc.push_back(tab == std::string::npos ? vocab.encode(lines[i], max_len)
                                                   : vocab.encode_pair(lines[i].substr(0, tab), lines[i].substr(tab + 1), max_len));
        }
        // One padded batch, laid out as the example batcher does.
        ClsInputs in;
        in.B = (int)enc.size();
        in.T = 0;
        for (const Encoding& e : enc) in.T = std::max(in.T, (int)e.ids.size());
        std::vector<int32_t> ids((size_t)in.B * in.T, vocab.pad_id), types((size_t)in.B * in.T, 0), lengths;
        for (int b = 0; b < in.B; b++) {
            const Encoding& e = enc[b];
            for (size_t t = 0; t < e.ids.size(); t++) {
                ids[(size_t)b * in.T + t] = e.ids[t];
                types[(size_t)b * in.T + t] = e.second_start > 0 && (int)t >= e.second_start ? 1 : 0;
            }
            lengths.push_back((int32_t)e.ids.size());
        }
        in.input_ids = ids.data(), in.token_types = types.data(), in.lengths = lengths.data();
        engine.forward_classify(in, false, 0);
        const std::vector<float> batch_logits = engine.cls_logits();
        for (int b = 0; b < in.B; b++) {
            const float* logits = batch_logits.data() + (size_t)b * K;
            std::string line = lines[start + b];
            std::replace(line.begin(), line.end(), '\t', ' ');
            char buf[32];
            if (task.regression) {
                std::snprintf(buf, sizeof buf, "%.6g", logits[0]);
                std::printf("%s\t%s\n", buf, lines[start + b].c_str());
                table += line + "\t" + buf + "\t" + buf + "\n";
                continue;
            }
            // softmax in double
            const float top = *std::max_element(logits, logits + K);
            std::vector<double> p(K);
            double sum = 0;
            for (int k = 0; k < K; k++) sum += p[k] = std::exp((double)logits[k] - top);
            const int label = (int)(std::max_element(logits, logits + K) - logits);
            std::string probs;
            for (int k = 0; k < K; k++) {
                std::snprintf(buf, sizeof buf, "%.4f", p[k] / sum);
                probs += std::string(k ? " " : "") + buf;
                table += std::string(k ? "\t" : "") + (k ? "" : line + "\t" + task.label_names[label] + "\t") + buf;
            }
            table += "\n";
            std::printf("%s\t%s\t%s\n", task.label_names[label].c_str(), probs.c_str(), lines[start + b].c_str());
        }
    }
    write_file_atomic(out_path, table);
    std::fprintf(stderr, "%zu predictions written to %s\n", lines.size(), out_path.c_str());
    return 0;
}

// Loss and metrics of `model` on a labeled shard (dev or test), printed under `what`.
Evaluation evaluate_shard(const Options& o, const std::string& path, const std::string& what, Engine& engine, const Task& task,
                          const std::string& against, const Tokenizer& vocab, int max_positions) {
    ExampleSet set = read_example_shard(path, &vocab);
    check_same_labels(task, set, path, against);
    ExampleBatcherOptions bo;
    bo.batch_size = o.batch;
    const ExampleBatcher batcher(std::move(set), path, vocab, task.num_labels(), max_positions, bo);
    const Evaluation e = evaluate_classifier(
        [&](const ClsInputs& in, ClsResult& r) { return engine.classify(in, /*train=*/false, 0, r); }, batcher, task, o.best_metric);
    std::printf("%s %s: loss %.4f\n%s", what.c_str(), path.c_str(), e.loss, e.report.c_str());
    return e;
}

int run(int argc, char** argv) {
    Options o = parse_options(argc, argv);
    o.device.apply();
    std::FILE* say = o.predicting() ? stderr : stdout;  // with --predict, standard output carries the predictions only

    // The weights: the newest checkpoint of a resumed run, the --init checkpoint, or random.
    ResumePoint resume_point;
    const bool resuming = !o.resume.empty();
    if (resuming) resume_point = find_latest(o.resume), o.init = resume_point.checkpoint_path;
    if (!o.init.empty() && !file_exists(o.init))
        throw Error(o.init + ": no such checkpoint" +
                    (o.init == kDefaultInit ? std::string(": run ./train_mlm first (it writes runs/default_mlm/best.bin)") : ""));
    if (o.vocab.empty()) o.vocab = default_vocab({o.init.empty() ? "" : folder_of(o.init)}, kDefaultVocab, say);
    const Tokenizer vocab = Tokenizer::load(o.vocab);
    std::unique_ptr<Checkpoint> header;  // read once: its kind decides what follows
    if (!o.init.empty()) {
        header = std::make_unique<Checkpoint>(load_checkpoint(o.init));
        o.size.check_agrees(header->config, o.init);
    }

    // Evaluate or predict with a classifier checkpoint and the task.json beside it.
    if (o.eval_only || o.predicting()) {
        if (!header) throw Error("<command line>: --eval-only and --predict need a classifier checkpoint (--init)");
        if (header->kind != CheckpointKind::Classifier)
            fail(o.init, "kind", "is an MLM checkpoint; --eval-only and --predict need a classifier (from finetune)");
        require_one_process(o.predicting() ? "finetune --predict" : "finetune --eval-only");
        const Task task = read_task(task_path_beside(o.init));
        BertModel model = classifier_from_checkpoint(*header, o.init, vocab, header->num_labels, classifier_init(o));
        check_metric(o.best_metric, classifier_metrics(task.regression));
        std::unique_ptr<Engine> engine =
            make_engine(o.device.device, o.device.precision, model, nullptr, o.predicting() ? "predicting" : "evaluating", say);
        std::fprintf(say, "device: %s\n", engine->name());
        if (o.predicting()) return predict(o, *engine, model, vocab, task);
        if (o.dev.empty() && o.test.empty()) throw Error("<command line>: --eval-only needs --dev or --test");
        const std::string task_file = task_path_beside(o.init);  // where the labels come from
        if (!o.dev.empty()) evaluate_shard(o, o.dev, "dev", *engine, task, task_file, vocab, model.config.max_positions);
        if (!o.test.empty()) evaluate_shard(o, o.test, "test", *engine, task, task_file, vocab, model.config.max_positions);
        return 0;
    }

    // Fine-tuning.
    ExampleSet train_set = read_example_shard(o.train, &vocab);
    const Task task = task_of(train_set, o.train);
    check_metric(o.best_metric, classifier_metrics(task.regression));
    const int num_labels = task.num_labels();
    if (header && header->kind == CheckpointKind::Classifier) {
        const std::string task_file = task_path_beside(o.init);
        if (file_exists(task_file)) check_same_labels(read_task(task_file), train_set, o.train, task_file);
    }
    BertModel model = header ? classifier_from_checkpoint(*header, o.init, vocab, num_labels, classifier_init(o))
                             : random_classifier(o.size, vocab, num_labels, classifier_init(o));
    ExampleBatcherOptions bo;
    bo.batch_size = o.batch * world().size;  // the global batch; each rank trains on its rows (data-parallel)
    bo.eval_batch_size = o.batch;            // dev batches of a rank's size
    bo.seed = o.seed;
    bo.bucket = o.bucket;
    ExampleBatcher train(std::move(train_set), o.train, vocab, num_labels, model.config.max_positions, bo);
    std::unique_ptr<ExampleBatcher> dev;
    if (!o.dev.empty()) {
        ExampleSet dev_set = read_example_shard(o.dev, &vocab);
        check_same_labels(task, dev_set, o.dev, o.train);
        dev = std::make_unique<ExampleBatcher>(std::move(dev_set), o.dev, vocab, num_labels, model.config.max_positions, bo);
    }
    if (!o.test.empty()) check_same_labels(task, read_example_shard(o.test, &vocab), o.test, o.train);  // before training, not after

    const int64_t total_steps = (int64_t)std::ceil(o.epochs * train.batches_per_epoch());
    if (total_steps < 1) throw Error("<command line>: --epochs gives no step to train");
    OptimizerOptions opt = o.optimizer;
    if (!o.warmup_given) opt.warmup = total_steps / 10;  // 10% warmup unless --warmup says otherwise
    Optimizer optimizer(opt, model.layout.total(), model.layout.decay_ranges(), total_steps);
    ClassifierLoop loop;
    loop.out = o.out, loop.overwrite = o.overwrite, loop.keep = o.keep, loop.total_steps = total_steps, loop.eval_every = o.eval_every;
    loop.best_metric = o.best_metric, loop.seed = o.seed, loop.settings_json = o.settings_json, loop.vocab_path = o.vocab;
    if (resuming) {
        const RestoredRun restored = restore_training_state(resume_point, *header, optimizer);
        train.restore(ExampleBatcherState::from_bytes(restored.loader_state, resume_point.state_path));
        loop.resuming = true, loop.best_val_loss = restored.best_val_loss, loop.seed = restored.seed;
    }
    std::unique_ptr<Engine> engine = make_engine(o.device.device, o.device.precision, model, &optimizer);
    require_same_device_on_every_rank(*engine);
    std::printf("finetune: %s on %s (%lld examples, %d %s%s), dev %s\n", model.config.describe().c_str(), o.train.c_str(),
                (long long)train.example_count(), num_labels, task.regression ? "output (regression)" : "classes",
                task.pairs ? ", sentence pairs" : "", o.dev.empty() ? "none" : o.dev.c_str());
    std::printf("steps %lld (from %lld; %.2f epochs of %lld batches of %d) | lr %.2e, warmup %lld | best by %s | %d threads | out %s\n",
                (long long)total_steps, (long long)optimizer.steps_done, o.epochs, (long long)train.batches_per_epoch(), bo.batch_size, opt.lr,
                (long long)opt.warmup, o.best_metric.c_str(), omp_get_max_threads(), o.out.c_str());
    std::printf("device: %s\n", engine->name());

    const ClassifierLoopResult result = train_classifier(*engine, model, optimizer, train, dev.get(), task, vocab, loop,
                                                         [&](const ExampleBatch& b) { return inputs_of(b, task.regression, true); });
    if (result.stopped) return 130;
    if (!world().root()) return 0;  // rank 0 reports, tests and writes
    const Evaluation& best = result.best;
    const double sign = o.best_metric == "loss" ? -1 : 1;
    if (dev)
        std::printf("done: %lld steps; best dev %s %.4f; best.bin in %s\n", (long long)total_steps, o.best_metric.c_str(),
                    best.score * sign, o.out.c_str());
    else
        std::printf("done: %lld steps; checkpoints in %s\n", (long long)total_steps, o.out.c_str());
    if (!o.test.empty()) {  // once, with the best checkpoint (the last weights without a dev shard)
        const std::string best_path = o.out + "/best.bin";
        if (dev && file_exists(best_path)) {
            load_into(model, load_checkpoint(best_path), vocab.fingerprint(), vocab.source());
            std::printf("test with %s:\n", best_path.c_str());
        }
        engine = make_engine(o.device.device, o.device.precision, model, nullptr, "evaluating");
        const Evaluation t = evaluate_shard(o, o.test, "test", *engine, task, o.train, vocab, model.config.max_positions);
        RunLog(o.out).record("{\"kind\":\"test\",\"step\":" + std::to_string(optimizer.steps_done) + ",\"loss\":" +
                                json_number(t.loss) + ",\"metrics\":" + t.json + "}");
    }
    if (dev)
        std::printf("Next: ./finetune --eval-only --init %s/best.bin --dev ... (or --predict FILE), or ./distill with it as the teacher\n",
                    o.out.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) { return wr::run_program("finetune", run, argc, argv); }
