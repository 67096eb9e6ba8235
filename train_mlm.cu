// train_mlm.cu: masked-language-model pretraining of a compact BERT, from scratch or continued
// from a checkpoint (--init: domain- or task-adaptive pretraining, "Don't Stop Pretraining").
//
//   ./train_mlm                       tiny model on the built-in corpus (build/default), ~2 minutes
//   ./train_mlm --train 'out/wr30k/wikipedia/train_*.bin' --val 'out/wr30k/wikipedia/val_*.bin'
//               --vocab out/wr30k/vocab.txt --preset mini --out runs/mini
//   ./train_mlm --init runs/mini/best.bin --train 'out/wr30k/imdb/mlm/train_*.bin' ...   (DAPT/TAPT)
//   ./train_mlm --resume runs/mini    exact continuation after a stop or Ctrl-C, with the run's flags
//   mpirun -np 2 ./train_mlm ...      data-parallel: each rank trains on its rows of the global batch
//                                     (--batch per rank x ranks x --grad-accum), docs/distributed.md
//
// One step: gradient accumulation over micro-batches (forward, backward), then clipping, the
// learning rate from the schedule and AdamW (model/training.h). Evaluation on the validation
// shards with fixed masks; checkpoints and the training state in --out (model/checkpoint.h).
// --device picks where the model runs: the CPU (fp32, OpenMP), or, in a build made with nvcc, the
// GPU (model/bert_cuda.cuh; bf16 mixed precision by default, --precision fp32 for parity). Both
// run the same loop below through the Engine of model/engine.h; checkpoints are the same files.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include "common/distributed.h"
#include "common/flags.h"
#include "common/random.h"
#include "common/util.h"
#include "data/batch_prefetch.h"
#include "data/mlm_batcher.h"
#include "data/tokenizer.h"
#include "model/bert.h"
#include "model/checkpoint.h"
#include "model/engine.h"
#include "model/run_folder.h"
#include "model/training.h"

using namespace wr;

namespace {

struct Options {
    std::vector<std::string> train = {"build/default/mlm/train_*.bin"}, val = {"build/default/mlm/val_*.bin"};
    std::string vocab;  // "": the run's own (--resume, --init), else kDefaultVocab
    ModelSizeOptions size;
    double dropout = 0.1, attention_dropout = 0.1;
    std::string init, resume, out = "runs/default_mlm";
    DeviceOptions device;
    bool overwrite = false, whole_word = false;
    int batch = 32, seq_len = 128, grad_accum = 1, keep = 3;
    int64_t target_batch_tokens = 0, steps = 600, eval_every = 100, eval_batches = 0, save_every = 0;
    double epochs = 0;
    uint64_t seed = 1;
    OptimizerOptions optimizer;
    std::string settings_json;  // run.json of a new run

    Options() {
        optimizer.lr = 2e-3;
        optimizer.warmup = 60;
    }
};

const std::string kDefaultVocab = "build/default/vocab.txt";

Options parse_options(int argc, char** argv) {
    Options o;
    Flags f("train_mlm", "MLM pretraining and continued pretraining (DAPT/TAPT) of a compact BERT");
    f.add("train", &o.train, "training token shards (globs, comma-separated)");
    f.add("val", &o.val, "validation token shards (globs; empty: no evaluation)");
    f.add("vocab", &o.vocab, "vocabulary the shards were made with (default: the vocab.txt of the --resume or --init run, else " +
                                 kDefaultVocab + ")");
    o.size.add_flags(f);
    f.add("dropout", &o.dropout, "dropout on embeddings and hidden outputs");
    f.add("attention-dropout", &o.attention_dropout, "dropout on attention probabilities");
    f.add("init", &o.init, "start from this checkpoint's weights (continued pretraining; fresh optimizer)");
    f.add("resume", &o.resume, "continue the run in this folder exactly where it stopped, with its settings (run.json)");
    f.add("out", &o.out, "output folder: checkpoints, training state, log.jsonl, run.json, vocab.txt");
    f.add("overwrite", &o.overwrite, "replace the checkpoints of an earlier run in --out");
    f.add("batch", &o.batch, "sequences per micro-batch (B)");
    f.add("seq-len", &o.seq_len, "tokens per sequence (T), at most the model's positions");
    f.add("grad-accum", &o.grad_accum, "micro-batches per optimizer step");
    f.add("target-batch-tokens", &o.target_batch_tokens, "tokens per step: sets --grad-accum to reach it (0: off)");
    f.add("steps", &o.steps, "optimizer steps (ignored when --epochs is set)");
    f.add("epochs", &o.epochs, "train for this many passes over the training sequences (0: use --steps)");
    f.add("eval-every", &o.eval_every, "evaluate every N steps (and at the end)");
    f.add("eval-batches", &o.eval_batches, "validation batches per evaluation (of --batch x ranks sequences; 0: all)");
    f.add("save-every", &o.save_every, "checkpoint every N steps (0: only at evaluations and the end)");
    f.add("keep", &o.keep, "keep the last K checkpoints (best.bin is kept besides)");
    f.add("whole-word", &o.whole_word, "whole-word masking");
    f.add("seed", &o.seed, "seed of initialization, data order, masks and dropout");
    o.device.add_flags(f);
    o.optimizer.add_flags(f);
    f.parse(argc, argv);
    if (!o.resume.empty()) {
        if (!o.init.empty()) throw Error("<command line>: --resume and --init exclude each other");
        apply_run_settings(o.resume, "train_mlm", f);
        o.out = o.resume;
    }
    o.settings_json = run_settings_json("train_mlm", f);
    o.size.note_given(f);
    o.device.check_flags();
    if (o.batch < 1 || o.seq_len < 3 || o.grad_accum < 1 || o.keep < 1)
        throw Error("<command line>: --batch, --grad-accum and --keep must be positive and --seq-len at least 3");
    return o;
}

// The model's configuration: from --init / --resume checkpoints (the size flags, if given, must
// agree with it), or the preset and overrides.
BertConfig model_config(const Options& o, const Tokenizer& vocab, const Checkpoint* start) {
    BertConfig c = o.size.config(vocab.vocab_size());
    c.pad_id = vocab.pad_id;
    if (start) {
        o.size.check_agrees(start->config, start->path);
        c = start->config;
    }
    c.hidden_dropout = (float)o.dropout;
    c.attention_dropout = (float)o.attention_dropout;
    c.validate("model configuration");
    if (o.seq_len > c.max_positions)
        throw Error("<command line>: flag --seq-len: " + std::to_string(o.seq_len) + " is above the model's " +
                    std::to_string(c.max_positions) + " positions");
    return c;
}

// What a model that ignores context reaches, the bar the MLM numbers must clear by far: the
// cross-entropy of always predicting the training text's unigram distribution, and the accuracy
// of always guessing its most frequent token.
struct Baseline {
    double loss = 0, accuracy = 0;
};
Baseline unigram_baseline(const MlmBatcher& batcher, int vocab_size) {
    std::vector<int64_t> counts(vocab_size, 0);
    int64_t total = 0;
    for (const TokenShard& shard : batcher.shards())
        for (int64_t i = 0; i < shard.token_count(); i++) counts[shard.token(i)]++, total++;
    Baseline b;
    for (int64_t c : counts)
        if (c > 0) b.loss -= (double)c / total * std::log((double)c / total);
    b.accuracy = (double)*std::max_element(counts.begin(), counts.end()) / std::max<int64_t>(total, 1);
    return b;
}

struct Evaluation {
    double loss = NAN, accuracy = NAN;
};

// Data-parallel: rank r evaluates batches r, r + R, ... (of --batch sequences) and the sums are
// added over the ranks.
Evaluation evaluate(Engine& model, const MlmBatcher& val, int64_t max_batches) {
    MlmBatch batch;
    double sums[3] = {0, 0, 0};  // loss x masked, correct, masked
    double &loss_sum = sums[0], &correct = sums[1], &masked = sums[2];
    // --eval-batches counts global batches (of --batch x ranks sequences): the same sequences whatever the ranks.
    const int64_t n = max_batches > 0 ? std::min(max_batches * world().size, val.validation_batch_count()) : val.validation_batch_count();
    for (int64_t k = world().rank; k < n; k += world().size) {
        val.validation_batch(k, batch);
        const MlmResult r = model.forward_mlm(
            {batch.B, batch.T, batch.input_ids.data(), batch.token_types.data(), batch.lengths.data(), batch.M(),
             batch.masked_positions.data(), batch.masked_targets.data()},
            /*train=*/false, 0);
        loss_sum += (double)r.loss * batch.M();
        correct += r.correct;
        masked += batch.M();
    }
    all_reduce_sum(sums, 3);
    return {loss_sum / std::max(masked, 1.0), correct / std::max(masked, 1.0)};
}

// The dropout seed of a micro-batch (each rank draws from its own stream: rank_seed).
uint64_t mix_seed(uint64_t seed, int64_t step, int micro) {
    return splitmix64_mix(rank_seed(seed, world().rank) ^ (kGoldenGamma * (uint64_t)(step * 1024 + micro + 1)));
}

int run(int argc, char** argv) {
    Options o = parse_options(argc, argv);
    o.device.apply();
    if (o.vocab.empty()) o.vocab = default_vocab({o.resume, o.init.empty() ? "" : folder_of(o.init)}, kDefaultVocab);
    const Tokenizer vocab = Tokenizer::load(o.vocab);

    // Where the weights come from: a resumed run, a checkpoint to continue from, or fresh.
    ResumePoint resume_point;
    Checkpoint start;
    const bool resuming = !o.resume.empty();
    if (resuming) {
        resume_point = find_latest(o.resume);
        start = load_checkpoint(resume_point.checkpoint_path);
    } else if (!o.init.empty()) {
        start = load_checkpoint(o.init);
    }
    const bool from_checkpoint = resuming || !o.init.empty();

    const World& w = world();
    MlmBatcherOptions batch_options;
    batch_options.batch_size = o.batch * w.size;  // the global micro-batch; each rank trains on its rows
    batch_options.seq_len = o.seq_len;
    batch_options.seed = o.seed;
    batch_options.whole_word = o.whole_word;
    MlmBatcher train(expand_globs(o.train), vocab, batch_options);
    std::unique_ptr<MlmBatcher> val;
    MlmBatcherOptions val_options = batch_options;
    val_options.batch_size = o.batch;  // validation batches of a rank's size (data-parallel: split across the ranks)
    if (!o.val.empty()) val = std::make_unique<MlmBatcher>(expand_globs(o.val), vocab, val_options);

    BertModel model(model_config(o, vocab, from_checkpoint ? &start : nullptr));
    if (from_checkpoint) load_into(model, start, vocab.fingerprint(), vocab.source());
    else model.init_weights(o.seed);

    if (o.target_batch_tokens > 0)
        o.grad_accum = (int)std::max<int64_t>(1, (o.target_batch_tokens + (int64_t)o.batch * w.size * o.seq_len - 1) /
                                                     ((int64_t)o.batch * w.size * o.seq_len));
    const int64_t sequences_per_step = (int64_t)o.batch * w.size * o.grad_accum;
    const int64_t total_steps = o.epochs > 0 ? (int64_t)std::ceil(o.epochs * train.sequence_count() / sequences_per_step) : o.steps;
    if (total_steps < 1) throw Error("<command line>: --steps / --epochs give no step to train");
    Optimizer optimizer(o.optimizer, model.layout.total(), model.layout.decay_ranges(), total_steps);

    double best_val_loss = kNoValidationLoss;
    if (resuming) {
        const RestoredRun restored = restore_training_state(resume_point, start, optimizer);
        best_val_loss = restored.best_val_loss;
        o.seed = restored.seed;  // the dropout streams' seed (the run's, as run.json holds it); the batcher's is in its state
        train.restore(MlmBatcherState::from_bytes(restored.loader_state, resume_point.state_path));
    }
    if (!resuming) start_run_folder(o.out, o.overwrite, o.settings_json, o.vocab);  // only once every input has been checked
    else keep_vocab_in_run(o.out, o.vocab);  // a run from before run folders kept their vocabulary
    CheckpointKeeper keeper(o.out, o.keep, best_val_loss);
    RunLog log(o.out, resuming ? optimizer.steps_done : -1);

    std::unique_ptr<Engine> engine = make_engine(o.device.device, o.device.precision, model, &optimizer);
    require_same_device_on_every_rank(*engine);
    const BertConfig& c = model.config;
    std::printf("train_mlm: %s, %lld parameters (%lld embedding, %lld non-embedding)\n", c.describe().c_str(),
                (long long)model.layout.total(), (long long)model.layout.embedding_count(), (long long)model.layout.non_embedding_count());
    std::printf("data: %lld training sequences of up to %d tokens from %zu shards; %lld validation batches\n",
                (long long)train.sequence_count(), o.seq_len, train.shards().size(), val ? (long long)val->validation_batch_count() : 0LL);
    const std::string ranks = w.size > 1 ? " x " + std::to_string(w.size) + " ranks" : "";
    std::printf("steps %lld (from %lld) | batch %d%s x %d accumulation = %lld sequences | lr %.2e, warmup %lld, %s | %d threads%s | out %s\n",
                (long long)total_steps, (long long)optimizer.steps_done, o.batch, ranks.c_str(), o.grad_accum, (long long)sequences_per_step,
                o.optimizer.lr, (long long)o.optimizer.warmup, o.optimizer.schedule.c_str(), omp_get_max_threads(),
                w.size > 1 ? " per rank" : "", o.out.c_str());
    std::printf("device: %s\n", engine->name());
    const Baseline baseline = unigram_baseline(train, c.vocab_size);
    std::printf("unigram baseline: loss %.3f, accuracy %.3f (predicting token frequencies without context)\n", baseline.loss,
                baseline.accuracy);
    StopRequest::install();

    // The batches: on a GPU the next one is made while the current one trains.
    BatchPrefetcher<MlmBatcher, MlmBatch> batches(train, /*background=*/engine->on_gpu());
    MlmBatcherState consumed = train.state();
    auto save = [&](const Evaluation& e) {
        engine->sync_to_host(optimizer);
        TrainingProgress progress;
        progress.step = optimizer.steps_done;
        progress.best_val_loss = keeper.best_val_loss();
        progress.rng_state = {o.seed};
        progress.loader_state = consumed.to_bytes();  // where the trained batches end (not the prefetched one)
        if (keeper.save(weights_of(model), vocab.fingerprint(), optimizer.m.data(), optimizer.v.data(), progress, e.loss))
            std::printf("new best validation loss %.4f: %s/best.bin\n", e.loss, o.out.c_str());
    };

    MlmBatch global, rows;  // the global micro-batch and this rank's rows of it
    Evaluation last_eval;
    while (optimizer.steps_done < total_steps) {
        const auto t0 = std::chrono::steady_clock::now();
        const int64_t step = optimizer.steps_done;
        profile::step_begins(step + 1);
        profile::Range step_range("step");
        engine->zero_grads();
        int64_t masked = 0, tokens = 0;
        std::vector<float> shares;  // each micro-batch's part of the global batch's masked positions on this rank
        for (int micro = 0; micro < o.grad_accum; micro++) {
            {
                profile::Range batch_range("batch");
                batches.next(global, consumed);
                if (w.size > 1) {
                    const RankRows mine = rank_rows(global.B, w);
                    global.rows(mine.first, mine.count, rows);
                }
            }
            const MlmBatch& batch = w.size > 1 ? rows : global;
            profile::Range forward_backward("forward_backward");
            MlmInputs in{batch.B, batch.T, batch.input_ids.data(), batch.token_types.data(), batch.lengths.data(),
                         batch.M(), batch.masked_positions.data(), batch.masked_targets.data()};
            // The loss is a mean over the global micro-batch's masked positions: this rank's gradient
            // counts for its share of them, and the ranks' gradients add up (all_reduce_grads).
            in.grad_scale = shares.emplace_back(w.size > 1 ? (float)batch.M() / (float)std::max(global.M(), 1) : 1.0f);
            engine->train_forward_mlm(in, mix_seed(o.seed, step, micro));
            engine->backward_mlm();
            masked += global.M();
            tokens += global.token_count();
        }
        if (o.grad_accum > 1) engine->average_grads(o.grad_accum);  // each micro-batch's gradient is of its mean loss
        if (w.size > 1) {
            profile::Range all_reduce_range("all_reduce");
            engine->all_reduce_grads();
        }
        StepResults results;
        {
            profile::Range optimizer_range("optimizer");
            results = engine->step(optimizer);  // the micro-batches' losses come back with the norm
        }
        const Optimizer::StepInfo& info = results.info;
        double sums[2] = {0, 0};  // the micro-batches' global mean losses, summed; correct predictions
        for (size_t k = 0; k < results.mlm.size(); k++) sums[0] += shares[k] * (double)results.mlm[k].loss, sums[1] += results.mlm[k].correct;
        all_reduce_sum(sums, 2);
        const double loss_sum = sums[0], correct = sums[1];
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        optimizer.after_step(info);  // reports a skipped update; throws after too many in a row
        log.train_step(optimizer.steps_done, total_steps, loss_sum / o.grad_accum, correct / std::max<int64_t>(masked, 1), info.lr,
                       info.grad_norm, ms, tokens / (ms / 1000.0));

        // Every rank stops at the same step (a Ctrl-C may reach them at different moments).
        const bool last = optimizer.steps_done == total_steps, stopping = any_rank(StopRequest::requested());
        const bool eval_now = val && (last || (o.eval_every > 0 && optimizer.steps_done % o.eval_every == 0));
        Evaluation e;
        if (eval_now) {
            profile::Range evaluation_range("evaluation");
            e = evaluate(*engine, *val, o.eval_batches);
            log.evaluation(optimizer.steps_done, e.loss, e.accuracy);
            last_eval = e;
        }
        if (last || stopping || eval_now || (o.save_every > 0 && optimizer.steps_done % o.save_every == 0)) {
            profile::Range checkpoint_range("checkpoint");
            save(e);
        }
        profile::step_ends(optimizer.steps_done);
        if (stopping && !last) {
            std::printf("stopped by Ctrl-C after step %lld; continue with: ./train_mlm --resume %s\n",
                        (long long)optimizer.steps_done, o.out.c_str());
            return 130;
        }
    }
    if (val && std::isnan(last_eval.loss)) {  // nothing was left to train: a resumed run that had finished
        std::printf("the run in %s had already finished its %lld steps; evaluating its weights\n", o.out.c_str(), (long long)total_steps);
        last_eval = evaluate(*engine, *val, o.eval_batches);
    }
    if (val)
        std::printf("done: %lld steps; final validation loss %.4f (unigram baseline %.3f), accuracy %.4f (baseline %.3f), "
                    "perplexity %.2f (baseline %.2f)\n", (long long)total_steps, last_eval.loss, baseline.loss, last_eval.accuracy,
                    baseline.accuracy, std::exp(last_eval.loss), std::exp(baseline.loss));
    else
        std::printf("done: %lld steps (no validation shards given)\n", (long long)total_steps);
    // Without validation there is no best.bin: point at the last checkpoint instead.
    const std::string weights = val ? o.out + "/best.bin" : keeper.checkpoint_path(optimizer.steps_done);
    std::printf("checkpoints in %s (%s). Next: ./finetune, or continue pretraining on domain text with ./train_mlm --init %s "
                "--train ...\n", o.out.c_str(), val ? "best.bin: lowest validation loss" : "no validation, so no best.bin",
                weights.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) { return wr::run_program("train_mlm", run, argc, argv); }
