// model/training.cpp: the shared training-loop parts declared in training.h.
#include "model/training.h"

#include <algorithm>
#include <csignal>
#include <cmath>
#include <cstdlib>

#include "common/distributed.h"
#include "common/util.h"

namespace wr {

void OptimizerOptions::add_flags(Flags& flags) {
    flags.add("lr", &lr, "peak learning rate");
    flags.add("warmup", &warmup, "warmup steps (linear from 0 to --lr); finetune and distill: 10% of the steps unless given");
    flags.add("schedule", &schedule, "decay after warmup: linear or cosine");
    flags.add("final-lr-fraction", &final_fraction, "learning rate at the last step, as a fraction of --lr");
    flags.add("weight-decay", &weight_decay, "AdamW decoupled weight decay (not on biases and LayerNorm)");
    flags.add("clip", &clip, "clip the global gradient norm to this (0: no clipping)");
    flags.add("adam-beta1", &beta1, "AdamW beta1");
    flags.add("adam-beta2", &beta2, "AdamW beta2");
    flags.add("adam-eps", &eps, "AdamW epsilon");
    flags.add("max-skipped-steps", &max_skipped,
              "stop (exit status 1) after this many updates in a row skipped for a non-finite loss or gradient");
}

void ModelSizeOptions::add_flags(Flags& flags) {
    flags.add("preset", &preset, "model size: tiny, mini, small, medium, base or L{2..12}-H{128,256,512,768}");
    flags.add("layers", &layers, "override the preset's layers (0: keep)");
    flags.add("hidden", &hidden, "override the preset's hidden size (0: keep)");
    flags.add("heads", &heads, "override the preset's heads (0: hidden / 64)");
    flags.add("ffn", &ffn, "override the preset's feed-forward size (0: 4 x hidden)");
}

void ModelSizeOptions::note_given(const Flags& flags) {
    given.clear();
    for (const char* name : {"preset", "layers", "hidden", "heads", "ffn"})
        if (flags.was_set(name)) given.push_back(name);
}

BertConfig ModelSizeOptions::config(int vocab_size) const {
    BertConfig c = bert_preset(preset, vocab_size);
    if (layers) c.num_layers = layers;
    if (hidden) c.hidden = hidden, c.num_heads = hidden / 64 ? hidden / 64 : 1, c.ffn = 4 * hidden;
    if (heads) c.num_heads = heads;
    if (ffn) c.ffn = ffn;
    return c;
}

void ModelSizeOptions::check_agrees(const BertConfig& checkpoint_config, const std::string& checkpoint_path) const {
    const BertConfig requested = config(checkpoint_config.vocab_size);
    const bool preset_given = std::find(given.begin(), given.end(), "preset") != given.end();
    const std::pair<const char*, int BertConfig::*> sizes[] = {
        {"layers", &BertConfig::num_layers}, {"hidden", &BertConfig::hidden}, {"heads", &BertConfig::num_heads}, {"ffn", &BertConfig::ffn}};
    for (const auto& [name, field] : sizes)
        if ((preset_given || std::find(given.begin(), given.end(), name) != given.end()) && requested.*field != checkpoint_config.*field)
            fail(checkpoint_path, name, "the checkpoint has " + std::to_string(checkpoint_config.*field) + " but the flags ask for " +
                                            std::to_string(requested.*field) + " (the checkpoint is " + checkpoint_config.describe() + ")");
}

Optimizer::Optimizer(const OptimizerOptions& options, int64_t param_count, DecayRanges decay_ranges, int64_t total_steps)
    : m((size_t)param_count, 0.0f), v((size_t)param_count, 0.0f), options_(options), decay_ranges_(std::move(decay_ranges)) {
    schedule_.peak = options.lr;
    schedule_.warmup_steps = options.warmup;
    schedule_.total_steps = total_steps;
    schedule_.decay = parse_lr_decay(options.schedule, "--schedule");
    schedule_.final_fraction = options.final_fraction;
    schedule_.check();
    if (options.max_skipped < 1)
        throw Error("<command line>: flag --max-skipped-steps: must be at least 1, is " + std::to_string(options.max_skipped));
}

Optimizer::StepInfo Optimizer::step(float* params, float* grads) {
    StepInfo info;
    const int64_t n = (int64_t)m.size();
    info.grad_norm = options_.clip > 0 ? clip_grad_norm(grads, n, options_.clip) : global_grad_norm(grads, n);
    info.lr = schedule_.at(steps_done);
    if (!std::isfinite(info.grad_norm)) {
        info.skipped = true;
        return info;
    }
    const AdamWConfig config = adamw_config();  // before the step count moves on
    adamw_update(params, grads, m.data(), v.data(), n, decay_ranges_, config, ++steps_done);
    return info;
}

void Optimizer::after_step(const StepInfo& info) {
    if (!info.skipped) {
        skipped_in_a_row_ = 0;
        return;
    }
    skipped_in_a_row_++;
    const long long step = (long long)steps_done + 1;
    std::printf("step %lld: gradient norm is not finite, update skipped (%d in a row)\n", step, skipped_in_a_row_);
    if (skipped_in_a_row_ >= options_.max_skipped) {
        char lr[32];
        std::snprintf(lr, sizeof lr, "%.3g", info.lr);
        throw Error("step " + std::to_string(step) + ": the loss or gradient was not finite in " + std::to_string(skipped_in_a_row_) +
                    " updates in a row (--max-skipped-steps " + std::to_string(options_.max_skipped) + ", learning rate " + lr +
                    "): training stopped; the checkpoints written before are unchanged. Lower --lr, turn on --clip, or check the "
                    "--init weights");
    }
}

AdamWConfig Optimizer::adamw_config() const {
    AdamWConfig config;
    config.lr = schedule_.at(steps_done);
    config.beta1 = options_.beta1;
    config.beta2 = options_.beta2;
    config.eps = options_.eps;
    config.weight_decay = options_.weight_decay;
    return config;
}

RunLog::RunLog(const std::string& dir, int64_t resume_step) : path_(dir + "/log.jsonl") {
    if (!world().root()) return;  // rank 0 alone writes (common/distributed.h); the others print to /dev/null
    if (resume_step >= 0 && file_exists(path_)) {
        std::string kept;
        for (const std::string& line : split(read_file(path_), '\n')) {
            const size_t at = line.find("\"step\":");
            if (line.empty() || (at != std::string::npos && std::atoll(line.c_str() + at + 7) > resume_step)) continue;
            kept += line + "\n";
        }
        write_file_atomic(path_, kept);
    }
    file_ = std::fopen(path_.c_str(), "a");
    if (!file_) throw Error(path_ + ": cannot open the log for writing");
}

RunLog::~RunLog() {
    if (file_) std::fclose(file_);
}

std::string RunLog::eta(int64_t step, int64_t total) const {
    if (first_step_ < 0 || step <= first_step_) return "";
    const double seconds = (now_seconds() - first_step_seconds_) / (double)(step - first_step_) * (double)(total - step);
    const int64_t s = (int64_t)std::llround(std::max(0.0, seconds));
    char text[48];
    if (s >= 3600) std::snprintf(text, sizeof text, "%lldh%02lldm", (long long)(s / 3600), (long long)(s / 60 % 60));
    else std::snprintf(text, sizeof text, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
    return text;
}

void RunLog::train_step(int64_t step, int64_t total, double loss, double accuracy, double lr, double grad_norm, double ms,
                        double tokens_per_second) {
    if (first_step_ < 0) first_step_ = step, first_step_seconds_ = now_seconds();
    const std::string left = eta(step, total);
    std::printf("step %6lld/%lld | loss %.4f | acc %.3f | lr %.2e | norm %.3f | %.1f ms | %.0f tok/s%s%s\n", (long long)step,
                (long long)total, loss, accuracy, lr, grad_norm, ms, tokens_per_second, left.empty() ? "" : " | left ", left.c_str());
    if (!file_) return;
    std::fprintf(file_,
                 "{\"kind\":\"train\",\"step\":%lld,\"loss\":%.6f,\"accuracy\":%.6f,\"lr\":%.6e,\"grad_norm\":%.6f,\"ms\":%.3f,"
                 "\"tokens_per_second\":%.1f}\n",
                 (long long)step, loss, accuracy, lr, grad_norm, ms, tokens_per_second);
    std::fflush(file_);
}

void RunLog::evaluation(int64_t step, double loss, double accuracy) {
    std::printf("eval at step %lld | val loss %.4f | val acc %.4f | val ppl %.2f\n", (long long)step, loss, accuracy, std::exp(loss));
    if (!file_) return;
    std::fprintf(file_, "{\"kind\":\"eval\",\"step\":%lld,\"loss\":%.6f,\"accuracy\":%.6f,\"perplexity\":%.4f}\n", (long long)step,
                 loss, accuracy, std::exp(loss));
    std::fflush(file_);
}

void RunLog::record(const std::string& json_object) {
    if (!file_) return;
    std::fprintf(file_, "%s\n", json_object.c_str());
    std::fflush(file_);
}

RestoredRun restore_training_state(const ResumePoint& point, const Checkpoint& checkpoint, Optimizer& optimizer) {
    TrainingState state = load_training_state(point, checkpoint);  // its step must be the pair's
    if (state.progress.rng_state.size() != 1)
        fail(point.state_path, "rng_state", "holds " + std::to_string(state.progress.rng_state.size()) + " words, a run saves 1 (its seed)");
    optimizer.m = std::move(state.m);
    optimizer.v = std::move(state.v);
    optimizer.steps_done = state.progress.step;
    RestoredRun run;
    run.loader_state = std::move(state.progress.loader_state);
    run.best_val_loss = state.progress.best_val_loss;
    run.seed = state.progress.rng_state[0];
    return run;
}

namespace {
volatile std::sig_atomic_t g_stop_requested = 0;

void on_sigint(int) {
    if (g_stop_requested) std::_Exit(130);  // second Ctrl-C: stop now
    g_stop_requested = 1;
}
}  // namespace

void StopRequest::install() { std::signal(SIGINT, on_sigint); }
bool StopRequest::requested() { return g_stop_requested != 0; }

}  // namespace wr
