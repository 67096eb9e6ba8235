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
#include "model/engine.h"
#include "model/training.h"

using namespace wr;

namespace {

struct Options {
    std::string train = "build/default/sentiment_train.bin", dev = "build/default/sentiment_dev.bin";
    std::string vocab = "build/default/vocab.txt", init = "runs/default_mlm/best.bin", out = "runs/default_finetune";
    std::string best_metric = "accuracy", predict, predictions, device = "auto", precision = "bf16";
    bool overwrite = false, eval_only = false, bucket = false;
    int batch = 32, threads = 0, keep = 1, max_len = 0;
    double epochs = 3, dropout = 0.1, attention_dropout = 0.1;
    int64_t eval_every = 0;
    uint64_t seed = 1;
    OptimizerOptions optimizer;
    bool warmup_given = false;

    Options() { optimizer.lr = 5e-4; }  // for the tiny built-in default; pretrained real models want 2e-5 .. 1e-4
};

Options parse_options(int argc, char** argv) {
    Options o;
    Flags f("finetune", "fine-tune a pretrained compact BERT for classification or regression; evaluate; predict");
    f.add("train", &o.train, "labeled training example shard (prepare cls)");
    f.add("dev", &o.dev, "labeled dev example shard, evaluated after every epoch ('' for none)");
    f.add("vocab", &o.vocab, "vocabulary the shards and the checkpoint were made with");
    f.add("init", &o.init, "MLM checkpoint (fresh classifier) or classifier checkpoint (continue, evaluate, predict)");
    f.add("out", &o.out, "output folder: checkpoints, log.jsonl, task.json, predictions");
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
    f.add("threads", &o.threads, "CPU threads (0: all cores)");
    f.add("device", &o.device, "cpu, cuda, or auto (cuda when this build has CUDA and a GPU is present)");
    f.add("precision", &o.precision, "GPU precision: bf16 (mixed: bf16 activations, fp32 weights) or fp32");
    f.add("eval-only", &o.eval_only, "evaluate the --init classifier on --dev and exit");
    f.add("predict", &o.predict, "classify the lines of this file ('-': standard input; 'a<TAB>b' for pairs) and exit");
    f.add("predictions", &o.predictions, "where --predict writes its table (default: OUT/predictions.tsv)");
    f.add("max-len", &o.max_len, "--predict: truncate inputs to this many tokens (0: the task's, else the model's positions)");
    o.optimizer.add_flags(f);
    f.parse(argc, argv);
    o.warmup_given = f.was_set("warmup");
    check_device_flags(o.device, o.precision);
    return o;
}

// ---------------------------------------------------------------------------------------------
// task.json: what a classifier checkpoint needs besides its weights to be used on text.

struct Task {
    std::vector<std::string> label_names;  // class names in id order; one target name for regression
    bool regression = false;
    bool pairs = false;                    // trained on sentence pairs
    int max_len = 0;                       // the truncation length of the training examples
};

std::string task_json(const Task& t) {
    std::string s = "{\"label_kind\":" + json_string(t.regression ? "regression" : "class") + ",\"labels\":[";
    for (size_t i = 0; i < t.label_names.size(); i++) s += (i ? "," : "") + json_string(t.label_names[i]);
    return s + "],\"pairs\":" + (t.pairs ? "true" : "false") + ",\"max_len\":" + std::to_string(t.max_len) + "}\n";
}

// A small reader for the file task_json writes (our own format, one object, no nesting).
Task read_task(const std::string& path) {
    const std::string text = read_file(path);
    Task t;
    auto field = [&](const std::string& key) -> std::string {
        const size_t at = text.find("\"" + key + "\":");
        if (at == std::string::npos) fail(path, key, "is missing");
        return text.substr(at + key.size() + 3);
    };
    t.regression = field("label_kind").rfind("\"regression\"", 0) == 0;
    t.pairs = field("pairs").rfind("true", 0) == 0;
    t.max_len = std::atoi(field("max_len").c_str());
    const std::string labels = field("labels");
    size_t i = 1;  // after '['
    while (i < labels.size() && labels[i] != ']') {
        if (labels[i] != '"') fail(path, "labels", "is not a list of strings");
        std::string name;
        for (i++; i < labels.size() && labels[i] != '"'; i++) {
            if (labels[i] == '\\' && i + 1 < labels.size()) i++;
            name += labels[i];
        }
        t.label_names.push_back(name);
        i++;
        if (i < labels.size() && labels[i] == ',') i++;
    }
    if (t.label_names.empty()) fail(path, "labels", "is empty");
    return t;
}

std::string task_path_beside(const std::string& checkpoint) {
    const size_t slash = checkpoint.rfind('/');
    return (slash == std::string::npos ? std::string(".") : checkpoint.substr(0, slash)) + "/task.json";
}

Task task_of(const ExampleSet& set, const std::string& path) {
    if (set.label_kind == LabelKind::None) fail(path, "label_kind", "the shard has no labels: finetune needs labeled examples");
    Task t;
    t.label_names = set.label_names;
    t.regression = set.label_kind == LabelKind::Regression;
    t.pairs = std::any_of(set.examples.begin(), set.examples.end(), [](const Example& e) { return e.second_start > 0; });
    t.max_len = set.max_len;
    return t;
}

// ---------------------------------------------------------------------------------------------
// The model: from an MLM checkpoint (encoder, and pooler if present) or a classifier checkpoint.

BertModel load_model(const Options& o, const Checkpoint& ck, const Tokenizer& vocab, int num_labels, uint64_t seed) {
    check_vocab_fingerprint(ck, vocab.fingerprint());
    BertConfig config = ck.config;
    if (ck.kind == CheckpointKind::Classifier && ck.num_labels != num_labels)
        fail(o.init, "num_labels", "the checkpoint classifies into " + std::to_string(ck.num_labels) + " outputs, the task has " +
                                       std::to_string(num_labels));
    config.num_labels = num_labels;
    config.hidden_dropout = (float)o.dropout;
    config.attention_dropout = (float)o.attention_dropout;
    config.pad_id = vocab.pad_id;
    BertModel model(config);
    model.init_weights(seed);  // the fresh parts (classifier; pooler where the checkpoint has none)
    const std::vector<std::string> copied = copy_matching_tensors(ck, model.layout.tensors(), model.params.data());
    for (const TensorSpec& t : model.layout.tensors()) {
        const bool head = t.name.rfind("pooler.", 0) == 0 || t.name.rfind("classifier.", 0) == 0;
        if (!head && std::find(copied.begin(), copied.end(), t.name) == copied.end())
            fail(o.init, "tensors", "has no tensor '" + t.name + "', which the encoder needs");
    }
    const bool has_pooler = std::find(copied.begin(), copied.end(), "pooler.dense_w") != copied.end();
    std::printf("init: %s (%s), %s; pooler %s, classifier %s\n", o.init.c_str(),
                ck.kind == CheckpointKind::Mlm ? "MLM checkpoint" : "classifier checkpoint", config.describe().c_str(),
                has_pooler ? "from the checkpoint" : "fresh", ck.kind == CheckpointKind::Classifier ? "from the checkpoint" : "fresh");
    return model;
}

ClsInputs inputs_of(const ExampleBatch& b, bool regression, bool with_labels) {
    ClsInputs in;
    in.B = b.B, in.T = b.T, in.input_ids = b.input_ids.data(), in.token_types = b.token_types.data(), in.lengths = b.lengths.data();
    if (with_labels && regression) in.values = b.values.data();
    if (with_labels && !regression) in.labels = b.labels.data();
    return in;
}

// ---------------------------------------------------------------------------------------------
// Evaluation

struct Evaluation {
    double loss = NAN, score = NAN;  // score: the --best-metric (higher is better, except loss)
    double accuracy = NAN;           // classes only
    std::string json, report;
};

Evaluation evaluate(Engine& model, int K, const ExampleBatcher& dev, const Task& task, const std::string& metric) {
    ConfusionMatrix cm(task.regression ? 1 : K, dev.source());
    std::vector<float> pred, target;
    double loss_sum = 0;
    int64_t counted = 0;
    ExampleBatch batch;
    for (int64_t k = 0; k < dev.eval_batch_count(); k++) {
        dev.eval_batch(k, batch);
        const ClsResult r = model.forward_classify(inputs_of(batch, task.regression, true), /*train=*/false, 0);
        loss_sum += (double)r.loss * r.counted;
        counted += r.counted;
        const std::vector<float> logits = model.cls_logits();
        const std::vector<int> argmax = argmax_rows(logits.data(), batch.B, K);
        for (int b = 0; b < batch.B; b++) {
            if (task.regression) pred.push_back(logits[b]), target.push_back(batch.values[b]);
            else cm.add(batch.labels[b], argmax[b]);
        }
    }
    Evaluation e;
    e.loss = loss_sum / std::max<int64_t>(counted, 1);
    if (task.regression) {
        const RegressionMetrics m = regression_metrics(pred, target);
        e.score = metric == "pearson" ? m.pearson : metric == "spearman" ? m.spearman : -e.loss;
        e.json = metrics_json(m);
        e.report = format_report(m);
    } else {
        const ClassificationMetrics m = classification_metrics(cm);
        e.accuracy = m.accuracy;
        e.score = metric == "accuracy" ? m.accuracy : metric == "macro_f1" ? m.macro_f1 : metric == "micro_f1" ? m.micro_f1 : -e.loss;
        e.json = metrics_json(cm, task.label_names);
        e.report = format_report(cm, task.label_names);
    }
    return e;
}

void check_metric(const std::string& metric, bool regression) {
    const std::vector<std::string> allowed = regression ? std::vector<std::string>{"pearson", "spearman", "loss"}
                                                        : std::vector<std::string>{"accuracy", "macro_f1", "micro_f1", "loss"};
    if (std::find(allowed.begin(), allowed.end(), metric) == allowed.end())
        throw Error("<command line>: flag --best-metric: '" + metric + "' is not one of: " +
                    [&] { std::string s; for (const auto& a : allowed) s += (s.empty() ? "" : ", ") + a; return s; }());
}

// The dev shard must label the same classes with the same ids as the training shard (or task).
void check_same_labels(const Task& task, const ExampleSet& dev, const std::string& dev_path, const std::string& against) {
    const Task d = task_of(dev, dev_path);
    if (d.regression != task.regression)
        fail(dev_path, "label_kind", std::string("is ") + (d.regression ? "regression" : "classes") + ", " + against + " has " +
                                         (task.regression ? "regression" : "classes"));
    if (!task.regression && d.label_names != task.label_names) {
        auto list = [](const std::vector<std::string>& v) { std::string s; for (const auto& x : v) s += (s.empty() ? "" : ", ") + x; return s; };
        fail(dev_path, "label_names", "are [" + list(d.label_names) + "], " + against + " has [" + list(task.label_names) +
                                          "]: make the dev shard with prepare cls --labels-from the training shard");
    }
    if (d.pairs && !task.pairs) fail(dev_path, "examples", "hold sentence pairs, but " + against + " is a single-sentence task");
    if (!d.pairs && task.pairs) fail(dev_path, "examples", "are single sentences, but " + against + " is a sentence-pair task");
}

// ---------------------------------------------------------------------------------------------
// Prediction: text lines in, label and probabilities out.

int predict(const Options& o, Engine& engine, const BertModel& model, const Tokenizer& vocab, const Task& task) {
    const int max_len = o.max_len > 0 ? o.max_len : task.max_len > 0 ? task.max_len : model.config.max_positions;
    const std::string out_path = o.predictions.empty() ? o.out + "/predictions.tsv" : o.predictions;
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
    make_dirs(out_path.substr(0, out_path.rfind('/') == std::string::npos ? 0 : out_path.rfind('/')));
    write_file_atomic(out_path, table);
    std::fprintf(stderr, "%zu predictions written to %s\n", lines.size(), out_path.c_str());
    return 0;
}

uint64_t step_seed(uint64_t seed, int64_t step) { return splitmix64_mix(seed ^ (kGoldenGamma * (uint64_t)(step + 1))); }

int run(int argc, char** argv) {
    const Options o = parse_options(argc, argv);
    check_device(o.device, o.precision);
    if (o.threads > 0) omp_set_num_threads(o.threads);
    if (!file_exists(o.init))
        throw Error(o.init + ": no such checkpoint" +
                    (o.init == "runs/default_mlm/best.bin" ? std::string(": run ./train_mlm first (it writes runs/default_mlm/best.bin)") : ""));
    const Tokenizer vocab = Tokenizer::load(o.vocab);
    const Checkpoint header = load_checkpoint(o.init);  // read once: its kind decides what follows

    // Evaluate or predict with a classifier checkpoint and the task.json beside it.
    if (o.eval_only || !o.predict.empty()) {
        if (header.kind != CheckpointKind::Classifier)
            fail(o.init, "kind", "is an MLM checkpoint; --eval-only and --predict need a classifier (from finetune)");
        const Task task = read_task(task_path_beside(o.init));
        BertModel model = load_model(o, header, vocab, header.num_labels, o.seed);
        if (!o.predict.empty()) {  // standard output carries the predictions only: notes go to stderr
            std::unique_ptr<Engine> engine = make_engine(o.device, o.precision, model, nullptr, "predicting", stderr);
            std::fprintf(stderr, "device: %s\n", engine->name());
            return predict(o, *engine, model, vocab, task);
        }
        ExampleSet dev = read_example_shard(o.dev, &vocab);
        check_same_labels(task, dev, o.dev, o.init);
        check_metric(o.best_metric, task.regression);
        ExampleBatcherOptions bo;
        bo.batch_size = o.batch;
        const ExampleBatcher batcher(std::move(dev), o.dev, vocab, header.num_labels, model.config.max_positions, bo);
        std::unique_ptr<Engine> engine = make_engine(o.device, o.precision, model, nullptr, "evaluating");
        std::printf("device: %s\n", engine->name());
        const Evaluation e = evaluate(*engine, header.num_labels, batcher, task, o.best_metric);
        std::printf("%s: dev loss %.4f\n%s", o.dev.c_str(), e.loss, e.report.c_str());
        return 0;
    }

    // Fine-tuning.
    ExampleSet train_set = read_example_shard(o.train, &vocab);
    const Task task = task_of(train_set, o.train);
    check_metric(o.best_metric, task.regression);
    const int num_labels = task.regression ? 1 : (int)task.label_names.size();
    if (header.kind == CheckpointKind::Classifier) {
        const std::string task_file = task_path_beside(o.init);
        if (file_exists(task_file)) check_same_labels(read_task(task_file), train_set, o.train, o.init);
    }
    BertModel model = load_model(o, header, vocab, num_labels, o.seed);
    ExampleBatcherOptions bo;
    bo.batch_size = o.batch;
    bo.seed = o.seed;
    bo.bucket = o.bucket;
    ExampleBatcher train(std::move(train_set), o.train, vocab, num_labels, model.config.max_positions, bo);
    std::unique_ptr<ExampleBatcher> dev;
    if (!o.dev.empty()) {
        ExampleSet dev_set = read_example_shard(o.dev, &vocab);
        check_same_labels(task, dev_set, o.dev, o.train);
        dev = std::make_unique<ExampleBatcher>(std::move(dev_set), o.dev, vocab, num_labels, model.config.max_positions, bo);
    }

    const int64_t total_steps = (int64_t)std::ceil(o.epochs * train.batches_per_epoch());
    if (total_steps < 1) throw Error("<command line>: --epochs gives no step to train");
    OptimizerOptions opt = o.optimizer;
    if (!o.warmup_given) opt.warmup = total_steps / 10;  // 10% warmup unless --warmup says otherwise
    Optimizer optimizer(opt, model.layout.total(), model.layout.decay_ranges(), total_steps);
    prepare_run_folder(o.out, o.overwrite);
    write_file_atomic(o.out + "/task.json", task_json(task));
    CheckpointKeeper keeper(o.out, o.keep);
    RunLog log(o.out);
    std::unique_ptr<Engine> engine = make_engine(o.device, o.precision, model, &optimizer);
    std::printf("finetune: %s on %s (%lld examples, %d %s%s), dev %s\n", model.config.describe().c_str(), o.train.c_str(),
                (long long)train.example_count(), num_labels, task.regression ? "output (regression)" : "classes",
                task.pairs ? ", sentence pairs" : "", o.dev.empty() ? "none" : o.dev.c_str());
    std::printf("steps %lld (%.2f epochs of %lld batches of %d) | lr %.2e, warmup %lld | best by %s | %d threads | out %s\n",
                (long long)total_steps, o.epochs, (long long)train.batches_per_epoch(), o.batch, opt.lr, (long long)opt.warmup,
                o.best_metric.c_str(), omp_get_max_threads(), o.out.c_str());
    std::printf("device: %s\n", engine->name());
    StopRequest::install();

    Evaluation best;
    auto evaluate_and_save = [&](bool evaluate_now) {
        Evaluation e;
        if (evaluate_now && dev) {
            e = evaluate(*engine, num_labels, *dev, task, o.best_metric);
            std::printf("eval at step %lld (epoch %.2f) | dev loss %.4f\n%s", (long long)optimizer.steps_done, train.epochs_done(), e.loss,
                        e.report.c_str());
            log.record("{\"kind\":\"eval\",\"step\":" + std::to_string(optimizer.steps_done) + ",\"loss\":" + json_number(e.loss) +
                       ",\"accuracy\":" + json_number(e.accuracy) + ",\"metrics\":" + e.json + "}");
            if (!(best.score >= e.score)) best = e;
        }
        engine->sync_to_host(optimizer);  // the GPU's weights and moments into model and optimizer
        TrainingProgress progress;
        progress.step = optimizer.steps_done;
        progress.rng_state = {o.seed};
        progress.loader_state = train.state().to_bytes();
        // The keeper keeps the lowest value: the loss itself, or minus a higher-is-better metric.
        const double keeper_value = std::isnan(e.score) ? NAN : -e.score;
        if (keeper.save(weights_of(model), vocab.fingerprint(), optimizer.m.data(), optimizer.v.data(), progress, keeper_value))
            std::printf("new best %s %.4f: %s/best.bin\n", o.best_metric.c_str(), e.score * (o.best_metric == "loss" ? -1 : 1), o.out.c_str());
    };

    ExampleBatch batch;
    while (optimizer.steps_done < total_steps) {
        const auto t0 = std::chrono::steady_clock::now();
        train.next_batch(batch);
        engine->zero_grads();
        const ClsResult r = engine->forward_classify(inputs_of(batch, task.regression, true), /*train=*/true,
                                                     step_seed(o.seed, optimizer.steps_done));
        engine->backward_classify();
        const Optimizer::StepInfo info = engine->step(optimizer);
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (info.skipped) std::printf("step %lld: gradient norm is not finite, update skipped\n", (long long)optimizer.steps_done + 1);
        log.train_step(optimizer.steps_done, total_steps, r.loss, task.regression ? 0.0 : (double)r.correct / std::max(r.counted, 1),
                       info.lr, info.grad_norm, ms, batch.token_count() / (ms / 1000.0));
        const bool last = optimizer.steps_done == total_steps, stopping = StopRequest::requested();
        const bool epoch_end = train.position() == 0;  // this step took the epoch's last batch (the batcher moved on)
        const bool eval_now = last || epoch_end || (o.eval_every > 0 && optimizer.steps_done % o.eval_every == 0);
        if (eval_now || stopping) evaluate_and_save(eval_now);
        if (stopping && !last) {
            std::printf("stopped by Ctrl-C after step %lld; checkpoint in %s\n", (long long)optimizer.steps_done, o.out.c_str());
            return 130;
        }
    }
    if (dev)
        std::printf("done: %lld steps; best dev %s %.4f (dev loss %.4f); best.bin in %s. Next: ./finetune --eval-only --init %s/best.bin "
                    "--dev ..., or ./distill\n",
                    (long long)total_steps, o.best_metric.c_str(), best.score * (o.best_metric == "loss" ? -1 : 1), best.loss,
                    o.out.c_str(), o.out.c_str());
    else
        std::printf("done: %lld steps; checkpoints in %s\n", (long long)total_steps, o.out.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    try {
        return run(argc, argv);
    } catch (const Error& e) {
        std::fprintf(stderr, "finetune: error: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "finetune: internal error: %s\n", e.what());
        return 1;
    }
}
