// model/classifier.cpp: the classifier pieces finetune and distill share (see classifier.h).
#include "model/classifier.h"
#include "model/run_folder.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "common/metrics.h"
#include "common/profile.h"
#include "common/random.h"
#include "common/util.h"

namespace wr {

namespace {
bool has_pairs(const ExampleSet& set) {
    return std::any_of(set.examples.begin(), set.examples.end(), [](const Example& e) { return e.second_start > 0; });
}
std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (const std::string& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
}
}  // namespace

Task task_of(const ExampleSet& set, const std::string& path) {
    if (set.label_kind == LabelKind::None) fail(path, "label_kind", "the shard has no labels: this needs labeled examples");
    Task t;
    t.label_names = set.label_names;
    t.regression = set.label_kind == LabelKind::Regression;
    t.pairs = has_pairs(set);
    t.max_len = set.max_len;
    return t;
}

void check_same_segments(const Task& task, const ExampleSet& set, const std::string& set_path, const std::string& against) {
    const bool pairs = has_pairs(set);
    if (pairs && !task.pairs) fail(set_path, "examples", "hold sentence pairs, but " + against + " is a single-sentence task");
    if (!pairs && task.pairs) fail(set_path, "examples", "are single sentences, but " + against + " is a sentence-pair task");
}

void check_same_labels(const Task& task, const ExampleSet& set, const std::string& set_path, const std::string& against) {
    const Task d = task_of(set, set_path);
    if (d.regression != task.regression)
        fail(set_path, "label_kind", std::string("is ") + (d.regression ? "regression" : "classes") + ", " + against + " has " +
                                         (task.regression ? "regression" : "classes"));
    if (!task.regression && d.label_names != task.label_names)
        fail(set_path, "label_names", "are [" + joined(d.label_names) + "], " + against + " has [" + joined(task.label_names) +
                                          "]: make the shard with prepare cls --labels-from the training shard");
    check_same_segments(task, set, set_path, against);
}

std::vector<std::string> classifier_metrics(bool regression) {
    return regression ? std::vector<std::string>{"pearson", "spearman", "loss"}
                      : std::vector<std::string>{"accuracy", "macro_f1", "micro_f1", "loss"};
}

void check_metric(const std::string& metric, const std::vector<std::string>& allowed) {
    if (std::find(allowed.begin(), allowed.end(), metric) == allowed.end())
        throw Error("<command line>: flag --best-metric: '" + metric + "' is not one of: " + joined(allowed));
}

BertModel classifier_from_checkpoint(const Checkpoint& ck, const std::string& path, const Tokenizer& vocab, int num_labels,
                                     const ClassifierInit& init) {
    check_vocab_fingerprint(ck, vocab.fingerprint(), vocab.source());
    BertConfig config = ck.config;
    if (ck.kind == CheckpointKind::Classifier && ck.num_labels != num_labels)
        fail(path, "num_labels", "the checkpoint classifies into " + std::to_string(ck.num_labels) + " outputs, the task has " +
                                     std::to_string(num_labels));
    config.num_labels = num_labels;
    config.hidden_dropout = init.dropout;
    config.attention_dropout = init.attention_dropout;
    config.pad_id = vocab.pad_id;
    BertModel model(config);
    model.init_weights(init.seed);  // the fresh parts (classifier; pooler where the checkpoint has none)
    const std::vector<std::string> copied = copy_matching_tensors(ck, model.layout.tensors(), model.params.data());
    for (const TensorSpec& t : model.layout.tensors()) {
        const bool head = t.name.rfind("pooler.", 0) == 0 || t.name.rfind("classifier.", 0) == 0;
        if (!head && std::find(copied.begin(), copied.end(), t.name) == copied.end())
            fail(path, "tensors", "has no tensor '" + t.name + "', which the encoder needs");
    }
    const bool has_pooler = std::find(copied.begin(), copied.end(), "pooler.dense_w") != copied.end();
    std::fprintf(init.say, "init: %s (%s), %s; pooler %s, classifier %s\n", path.c_str(),
                ck.kind == CheckpointKind::Mlm ? "MLM checkpoint" : "classifier checkpoint", config.describe().c_str(),
                has_pooler ? "from the checkpoint" : "fresh", ck.kind == CheckpointKind::Classifier ? "from the checkpoint" : "fresh");
    return model;
}

BertModel random_classifier(const ModelSizeOptions& size, const Tokenizer& vocab, int num_labels, const ClassifierInit& init) {
    BertConfig c = size.config(vocab.vocab_size());
    c.num_labels = num_labels;
    c.pad_id = vocab.pad_id;
    c.hidden_dropout = init.dropout, c.attention_dropout = init.attention_dropout;
    c.validate("model configuration");
    BertModel model(c);
    model.init_weights(init.seed);
    std::fprintf(init.say, "init: random weights, %s\n", c.describe().c_str());
    return model;
}

ClsInputs inputs_of(const ExampleBatch& b, bool regression, bool with_labels) {
    ClsInputs in;
    in.B = b.B, in.T = b.T, in.input_ids = b.input_ids.data(), in.token_types = b.token_types.data(), in.lengths = b.lengths.data();
    if (with_labels && regression) in.values = b.values.data();
    if (with_labels && !regression) in.labels = b.labels.data();
    return in;
}

Evaluation evaluate_classifier(const ClassifyFn& forward, const ExampleBatcher& dev, const Task& task, const std::string& metric,
                               const std::vector<float>* teacher_logits) {
    const int K = task.num_labels();
    ConfusionMatrix cm(K, dev.source());
    std::vector<float> pred, target;
    double loss_sum = 0;
    int64_t counted = 0, agree = 0;
    ExampleBatch batch;
    for (int64_t k = 0; k < dev.eval_batch_count(); k++) {
        dev.eval_batch(k, batch);
        ClsResult r;
        const float* logits = forward(inputs_of(batch, task.regression, true), r);
        loss_sum += (double)r.hard_loss * r.counted;
        counted += r.counted;
        const std::vector<int> argmax = argmax_rows(logits, batch.B, K);
        for (int b = 0; b < batch.B; b++) {
            if (task.regression) pred.push_back(logits[b]), target.push_back(batch.values[b]);
            else cm.add(batch.labels[b], argmax[b]);
            if (teacher_logits && !task.regression) {
                const float* t = teacher_logits->data() + batch.example_index[b] * K;
                agree += argmax[b] == (int)(std::max_element(t, t + K) - t);
            }
        }
    }
    Evaluation e;
    e.loss = loss_sum / std::max<int64_t>(counted, 1);
    if (teacher_logits && !task.regression) e.agreement = (double)agree / std::max<int64_t>(dev.example_count(), 1);
    if (task.regression) {
        const RegressionMetrics m = regression_metrics(pred, target);
        e.score = metric == "pearson" ? m.pearson : metric == "spearman" ? m.spearman : -e.loss;
        e.json = metrics_json(m);
        e.report = format_report(m);
    } else {
        const ClassificationMetrics m = classification_metrics(cm);
        e.accuracy = m.accuracy;
        e.score = metric == "accuracy"   ? m.accuracy
                  : metric == "macro_f1" ? m.macro_f1
                  : metric == "micro_f1" ? m.micro_f1
                  : metric == "agreement" ? e.agreement
                                          : -e.loss;
        e.json = metrics_json(cm, task.label_names);
        e.report = format_report(cm, task.label_names);
        if (teacher_logits) {
            char line[96];
            std::snprintf(line, sizeof line, "agreement with the teacher: %.4f\n", e.agreement);
            e.report += line;
            e.json = e.json.substr(0, e.json.size() - 1) + ",\"agreement\":" + json_number(e.agreement) + "}";
        }
    }
    return e;
}

bool save_classifier(CheckpointKeeper& keeper, const BertModel& model, const Tokenizer& vocab, const Optimizer& optimizer,
                     const std::string& loader_state, uint64_t seed, double score) {
    TrainingProgress progress;
    progress.step = optimizer.steps_done;
    progress.rng_state = {seed};
    progress.loader_state = loader_state;
    // The keeper keeps the lowest value: minus the higher-is-better score.
    return keeper.save(weights_of(model), vocab.fingerprint(), optimizer.m.data(), optimizer.v.data(), progress,
                       std::isnan(score) ? NAN : -score);
}

uint64_t step_seed(uint64_t seed, int64_t step) { return splitmix64_mix(seed ^ (kGoldenGamma * (uint64_t)(step + 1))); }

ClassifierLoopResult train_classifier(Engine& engine, BertModel& model, Optimizer& optimizer, ExampleBatcher& train,
                                      const ExampleBatcher* dev, const Task& task, const Tokenizer& vocab, const ClassifierLoop& loop,
                                      const MakeInputs& make_inputs, const std::vector<float>* teacher_dev_logits) {
    const World& w = world();
    if (!loop.resuming) {
        start_run_folder(loop.out, loop.overwrite, loop.settings_json, loop.vocab_path);
        if (w.root()) write_file_atomic(loop.out + "/task.json", task_json(task));
    } else {
        keep_vocab_in_run(loop.out, loop.vocab_path);  // a run from before run folders kept their vocabulary
    }
    CheckpointKeeper keeper(loop.out, loop.keep, loop.best_val_loss);
    RunLog log(loop.out, loop.resuming ? optimizer.steps_done : -1);
    StopRequest::install();
    const double sign = loop.best_metric == "loss" ? -1 : 1;  // scores are higher-is-better; print the loss as it is

    ClassifierLoopResult result;
    if (loop.resuming) result.best.score = -loop.best_val_loss;  // the best before the resume (its other metrics are in log.jsonl)
    auto evaluate_and_save = [&](bool evaluate_now) {
        Evaluation e;
        if (evaluate_now && dev && w.root()) {  // data-parallel: rank 0 evaluates (the others go on to the next all-reduce)
            const ClassifyFn forward = [&](const ClsInputs& in, ClsResult& r) { return engine.classify(in, /*train=*/false, 0, r); };
            e = evaluate_classifier(forward, *dev, task, loop.best_metric, teacher_dev_logits);
            std::printf("eval at step %lld (epoch %.2f) | dev loss %.4f\n%s", (long long)optimizer.steps_done, train.epochs_done(), e.loss,
                        e.report.c_str());
            log.record("{\"kind\":\"eval\",\"step\":" + std::to_string(optimizer.steps_done) + ",\"loss\":" + json_number(e.loss) +
                       ",\"accuracy\":" + json_number(e.accuracy) + ",\"agreement\":" + json_number(e.agreement) +
                       ",\"metrics\":" + e.json + "}");
            if (!(result.best.score >= e.score)) result.best = e;
        }
        engine.sync_to_host(optimizer);  // the GPU's weights and moments into model and optimizer
        if (save_classifier(keeper, model, vocab, optimizer, train.state().to_bytes(), loop.seed, e.score))
            std::printf("new best %s %.4f: %s/best.bin\n", loop.best_metric.c_str(), e.score * sign, loop.out.c_str());
    };

    ExampleBatch global, rows;  // the global batch and this rank's rows of it
    while (optimizer.steps_done < loop.total_steps) {
        const auto t0 = std::chrono::steady_clock::now();
        profile::step_begins(optimizer.steps_done + 1);
        profile::Range step_range("step");
        ClsInputs in;
        {
            profile::Range batch_range("batch");
            train.next_batch(global);
            if (w.size > 1) {
                const RankRows mine = rank_rows(global.B, w);
                global.rows(mine.first, mine.count, rows);
            }
            in = make_inputs(w.size > 1 ? rows : global);
            // The loss is a mean over the global batch's rows: this rank's gradient counts for its
            // share of them, and the ranks' gradients add up (all_reduce_grads).
            if (w.size > 1) in.grad_scale = (float)in.B / (float)global.B;
        }
        {
            profile::Range forward_backward("forward_backward");
            engine.zero_grads();
            if (in.B > 0) {  // a short last batch of an epoch may leave a rank no rows
                engine.train_forward_classify(in, rank_seed(step_seed(loop.seed, optimizer.steps_done), w.rank));
                engine.backward_classify();
            }
        }
        if (w.size > 1) {
            profile::Range all_reduce_range("all_reduce");
            engine.all_reduce_grads();
        }
        StepResults results;
        {
            profile::Range optimizer_range("optimizer");
            results = engine.step(optimizer);  // the forward's result comes back with the norm
        }
        const Optimizer::StepInfo& info = results.info;
        const ClsResult r = in.B > 0 ? results.cls.at(0) : ClsResult();  // a rank without rows: nothing to add
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        optimizer.after_step(info);  // reports a skipped update; throws after too many in a row
        // The global batch's loss (the ranks' means weighted by their rows) and counts.
        double sums[4] = {in.grad_scale * (double)r.loss, (double)r.agree, (double)r.correct, (double)r.counted};
        all_reduce_sum(sums, 4);
        const double accuracy = task.regression   ? 0.0
                                : in.teacher_logits ? sums[1] / global.B
                                                    : sums[2] / std::max(sums[3], 1.0);
        log.train_step(optimizer.steps_done, loop.total_steps, sums[0], accuracy, info.lr, info.grad_norm, ms,
                       global.token_count() / (ms / 1000.0));
        // Every rank stops at the same step (a Ctrl-C may reach them at different moments).
        const bool last = optimizer.steps_done == loop.total_steps, stopping = any_rank(StopRequest::requested());
        const bool epoch_end = train.position() == 0;  // this step took the epoch's last batch (the batcher moved on)
        const bool eval_now = last || epoch_end || (loop.eval_every > 0 && optimizer.steps_done % loop.eval_every == 0);
        if (eval_now || stopping) {
            profile::Range range("evaluation_and_checkpoint");
            evaluate_and_save(eval_now);
        }
        profile::step_ends(optimizer.steps_done);
        if (stopping && !last) {
            std::printf("stopped by Ctrl-C after step %lld; continue with --resume %s\n", (long long)optimizer.steps_done, loop.out.c_str());
            result.stopped = true;
            return result;
        }
    }
    return result;
}

}  // namespace wr
