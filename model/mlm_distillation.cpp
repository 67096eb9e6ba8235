// model/mlm_distillation.cpp: distill cache --mlm and distill train --mlm, MLM-logit
// distillation (mlm_distillation.h).
#include "model/mlm_distillation.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>

#include "common/metrics.h"
#include "common/profile.h"
#include "common/random.h"
#include "common/util.h"
#include "data/loader_state.h"
#include "data/logit_cache.h"
#include "data/mlm_batcher.h"
#include "data/shards.h"
#include "data/tokenizer.h"
#include "model/bert.h"
#include "model/checkpoint.h"
#include "model/run_folder.h"
#include "model/training.h"

namespace wr {

namespace {

// A missing MLM teacher: say how the built-in one is made. Returns the path.
const std::string& require_mlm_teacher(const std::string& path) {
    if (!file_exists(path))
        throw Error(path + ": no such teacher checkpoint" +
                    (path == kDefaultMlmTeacher ? std::string(": run ./train_mlm first (it makes the default MLM teacher)")
                                                : std::string(": pass an MLM checkpoint made by train_mlm")));
    return path;
}

// The --transfer globs as the flag was given (comma-separated), for messages.
std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const std::string& s : items) out += (out.empty() ? "" : ",") + s;
    return out;
}

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

}  // namespace

// ---- distill cache --mlm ----

void MlmCacheOptions::add_flags(Flags& f) {
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

int mlm_distill_cache(const MlmCacheOptions& o) {
    if (o.batch < 1 || o.chunk < 1 || o.topk < 1) throw Error("<command line>: --batch, --chunk and --topk must be positive");
    if (o.seq_len < 3) throw Error("<command line>: flag --seq-len: must be at least 3");
    const Tokenizer vocab = Tokenizer::load(distill_vocab_path(o.vocab, {o.teacher}));
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
        if (logit_cache_up_to_date(o.out, header, &setup)) {
            std::printf("cache: %s is up to date (%lld masked positions x top %d of this teacher, text and masks)\n", o.out.c_str(),
                        (long long)header.example_count, header.num_labels);
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

void MlmTrainOptions::add_flags(Flags& f) {
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

int mlm_distill_train(const MlmTrainOptions& o) {
    if (o.batch < 1 || o.keep < 1) throw Error("<command line>: --batch and --keep must be positive");
    if (!(o.temperature > 0)) throw Error("<command line>: flag --temperature: must be positive");
    if (o.label_weight < 0) throw Error("<command line>: flag --label-weight: must not be negative");
    if (!(o.heldout > 0 && o.heldout < 1)) throw Error("<command line>: flag --heldout: must be in (0, 1)");
    const ResumePoint resume = o.resume_point();
    const std::string vocab_file = distill_vocab_path(o.vocab, {resume.checkpoint_path, o.init, o.teacher});
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

}  // namespace wr
