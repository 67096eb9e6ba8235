// tests/test_train_mlm.cpp: the `train_mlm` program end to end (it is built by `make test` before
// the suite runs, and these tests run it from the repository root on build/default):
//   determinism   the same flags and seed give the same per-step losses and the same bytes in
//                 every checkpoint and training-state file; another seed does not
//   resume        a run stopped by SIGINT (Ctrl-C) and resumed with --resume equals the run that
//                 was never stopped, bit for bit (losses, checkpoint, training state, best.bin)
//   learning      a short tiny-preset run on the built-in corpus ends far below the context-free
//                 baselines, computed here from the very validation tokens it is scored on
//   --init        weights come from the checkpoint (exactly), optimizer and schedule start afresh
//   housekeeping  --keep K leaves exactly K checkpoint/state pairs, best.bin and `latest`
//   bad input     a clear error naming the file or flag, a non-zero exit, and no file of an
//                 earlier run touched (not even with --overwrite: inputs are checked first)
// Runs use a fixed thread count (--threads 2: CPU results are deterministic per thread count) and
// small models (one layer of width 64, or the tiny preset for the learning test).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <thread>

#include "common/binary_io.h"
#include "data/mlm_batcher.h"
#include "data/shards.h"
#include "data/tokenizer.h"
#include "model/checkpoint.h"
#include "test_helpers.h"

using namespace wr;
using wr::testing::run_command;
using wr::testing::RunResult;
using wr::testing::ScratchDir;
using wr::testing::spawn;
using wr::testing::wait_exit;
using wr::testing::write_text;

namespace {

const std::string kDefaultVocab = "build/default/vocab.txt";
const std::string kDefaultTrain = "build/default/mlm/train_*.bin";
const std::string kDefaultVal = "build/default/mlm/val_*.bin";

// A model small enough that a step takes milliseconds on two cores; dropout stays on (0.1), so
// its seeded masks are part of what must reproduce.
const std::string kSmall = " --layers 1 --hidden 64 --batch 4 --seq-len 32 --threads 2 --eval-batches 2 --warmup 5";

RunResult train_mlm(const std::string& flags) { return run_command("./train_mlm" + flags); }

// One line of DIR/log.jsonl. `loss_text` keeps the printed digits, compared as text.
struct LogLine {
    std::string kind, loss_text;
    int64_t step = 0;
    double loss = NAN, accuracy = NAN, lr = NAN;
};

std::string json_value(const std::string& line, const std::string& key) {
    const std::string k = "\"" + key + "\":";
    const size_t at = line.find(k);
    if (at == std::string::npos) return "";
    size_t begin = at + k.size(), end = begin;
    if (line[begin] == '"') return line.substr(begin + 1, line.find('"', begin + 1) - begin - 1);
    while (end < line.size() && line[end] != ',' && line[end] != '}') end++;
    return line.substr(begin, end - begin);
}

std::vector<LogLine> read_log(const std::string& dir, const std::string& kind) {
    std::vector<LogLine> lines;
    std::string text;
    try {
        text = read_file(dir + "/log.jsonl");
    } catch (const Error&) {
        return lines;
    }
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string::npos) break;  // a line still being written
        const std::string line = text.substr(pos, end - pos);
        pos = end + 1;
        LogLine l;
        l.kind = json_value(line, "kind");
        if (l.kind != kind) continue;
        l.step = std::stoll(json_value(line, "step"));
        l.loss_text = json_value(line, "loss");
        l.loss = std::stod(l.loss_text);
        l.accuracy = std::stod(json_value(line, "accuracy"));
        if (kind == "train") l.lr = std::stod(json_value(line, "lr"));
        lines.push_back(l);
    }
    return lines;
}

std::map<int64_t, std::string> losses_by_step(const std::vector<LogLine>& lines) {
    std::map<int64_t, std::string> m;
    for (const LogLine& l : lines) m[l.step] = l.loss_text;
    return m;
}

// The names of the files in a folder, sorted.
std::vector<std::string> list_dir(const std::string& dir) {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

// Every file of a folder with its modification time (ns) and bytes: what "nothing was touched"
// is checked against.
struct FileState {
    int64_t mtime_ns = 0;
    std::string bytes;
    bool operator==(const FileState& o) const { return mtime_ns == o.mtime_ns && bytes == o.bytes; }
};
std::map<std::string, FileState> snapshot(const std::string& dir) {
    std::map<std::string, FileState> s;
    for (const std::string& name : list_dir(dir)) {
        struct stat st {};
        const std::string path = dir + "/" + name;
        if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
        s[name] = {(int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec, read_file(path)};
    }
    return s;
}

// What changed in a folder since `before`: "" when nothing, else one line per file.
std::string folder_changes(const std::map<std::string, FileState>& before, const std::string& dir) {
    const auto after = snapshot(dir);
    std::string changes;
    for (const auto& [name, state] : before) {
        const auto it = after.find(name);
        if (it == after.end()) changes += "  " + name + " was removed\n";
        else if (!(it->second == state)) changes += "  " + name + " was rewritten\n";
    }
    for (const auto& [name, state] : after)
        if (!before.count(name)) changes += "  " + name + " was created\n";
    return changes;
}

void expect_same_folder(const std::map<std::string, FileState>& before, const std::string& dir, const std::string& what) {
    const std::string changes = folder_changes(before, dir);
    EXPECT_TRUE(changes.empty()) << what << ": files in " << dir << " changed:\n" << changes;
}

// A refused run: exit code 1 and an error that mentions every piece; one failure per problem.
void expect_error(const RunResult& r, const std::string& what, const std::vector<std::string>& pieces) {
    if (r.exit_code != 1 || r.output.find("train_mlm: error: ") == std::string::npos) {
        ADD_FAILURE() << what << ": expected exit code 1 and an error, got exit code " << r.exit_code << ":\n" << r.output;
        return;
    }
    std::string missing;
    for (const std::string& piece : pieces)
        if (r.output.find(piece) == std::string::npos) missing += " '" + piece + "'";
    EXPECT_TRUE(missing.empty()) << what << ": the error should mention" << missing << ":\n" << r.output;
}

bool same_bytes(const std::string& a, const std::string& b) { return read_file(a) == read_file(b); }

int64_t latest_step(const std::string& dir) { return std::stoll(read_file(dir + "/latest")); }

// "ckpt_00000012.bin": the name of a step's checkpoint or state file in an output folder.
std::string step_file(const std::string& prefix, int64_t step) {
    char name[64];
    std::snprintf(name, sizeof name, "%s_%08lld.bin", prefix.c_str(), (long long)step);
    return name;
}

// Another vocabulary (other size, other fingerprint): specials, letters and their ## pieces, a few
// words; it tokenizes any lowercase English text.
std::string write_other_vocab(const ScratchDir& dir) {
    std::string v = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
    for (char c = 'a'; c <= 'z'; c++) v += std::string(1, c) + "\n##" + std::string(1, c) + "\n";
    for (const char* w : {"the", "and", "is", "are", "was", "not", "but", "good", "dull", ".", ",", "!"}) v += std::string(w) + "\n";
    write_text(dir / "other_vocab.txt", v);
    return dir / "other_vocab.txt";
}

// Token shards made by ./prepare with that other vocabulary.
std::string prepare_other_shards(const ScratchDir& dir, const std::string& vocab) {
    std::string text;
    for (int i = 0; i < 200; i++) text += "the cat is good and the dog was not dull . a mat , but the sun ! \n\n";
    write_text(dir / "other.txt", text);
    const RunResult r = run_command("./prepare mlm --vocab " + vocab + " --input " + dir / "other.txt --out " + dir / "other_mlm --val-fraction 0.2");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return dir / "other_mlm";
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST(TrainMlm, SameSeedSameLossesAndSameBytes) {
    ScratchDir dir;
    const std::string flags = kSmall + " --grad-accum 2 --steps 12 --eval-every 6 --save-every 4 --keep 10";
    for (const char* run : {"a", "b"}) {
        const RunResult r = train_mlm(flags + " --out " + dir / run);
        ASSERT_EQ(r.exit_code, 0) << r.output;
    }
    const auto a = read_log(dir / "a", "train"), b = read_log(dir / "b", "train");
    ASSERT_EQ(a.size(), 12u);
    ASSERT_EQ(b.size(), 12u);
    for (size_t i = 0; i < a.size(); i++) {
        EXPECT_EQ(a[i].step, (int64_t)i + 1);
        EXPECT_EQ(a[i].loss_text, b[i].loss_text) << "step " << i + 1;
        EXPECT_EQ(a[i].accuracy, b[i].accuracy) << "step " << i + 1;
    }
    const auto eval_a = read_log(dir / "a", "eval"), eval_b = read_log(dir / "b", "eval");
    ASSERT_EQ(eval_a.size(), 2u);  // steps 6 and 12
    EXPECT_EQ(eval_a[1].loss_text, eval_b[1].loss_text);

    // Every checkpoint and training state, and best.bin, byte for byte.
    const std::vector<std::string> files = list_dir(dir / "a");
    EXPECT_EQ(files, list_dir(dir / "b"));
    int compared = 0;
    for (const std::string& name : files)
        if (name != "log.jsonl") {  // the log holds timings
            EXPECT_TRUE(same_bytes(dir / "a/" + name, dir / "b/" + name)) << name;
            compared++;
        }
    EXPECT_EQ(compared, 2 * 4 + 4) << "pairs at steps 4, 6, 8, 12, plus best.bin, latest, run.json and vocab.txt";

    // The comparison has teeth: another seed changes the initialization, masks and dropout.
    const RunResult r = train_mlm(flags + " --seed 2 --out " + dir / "c");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto c = read_log(dir / "c", "train");
    ASSERT_EQ(c.size(), 12u);
    EXPECT_NE(c[0].loss_text, a[0].loss_text);
    EXPECT_FALSE(same_bytes(dir / "a/ckpt_00000012.bin", dir / "c/ckpt_00000012.bin"));
}

// 30 steps straight, against a run of the same flags that is sent SIGINT once step 10 is in its
// log and then resumed. Where the stop lands (step 10 or a later one, depending on how fast the
// signal arrives) does not matter: the resumed run must continue from it as if never stopped.
TEST(TrainMlm, ResumeAfterCtrlCIsExact) {
    ScratchDir dir;
    const int64_t total = 30;
    const std::string flags = kSmall + " --steps " + std::to_string(total) + " --eval-every 10 --keep 2";
    RunResult r = train_mlm(flags + " --out " + dir / "straight");
    ASSERT_EQ(r.exit_code, 0) << r.output;

    const pid_t pid = spawn("./train_mlm" + flags + " --out " + dir / "stopped", dir / "stopped.out");
    ASSERT_GT(pid, 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    bool signalled = false;
    while (std::chrono::steady_clock::now() < deadline) {
        const auto lines = read_log(dir / "stopped", "train");
        if (!lines.empty() && lines.back().step >= 10) {
            kill(pid, SIGINT);
            signalled = true;
            break;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) FAIL() << "the run ended before step 10: " << read_file(dir / "stopped.out");
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (!signalled) kill(pid, SIGKILL);
    ASSERT_TRUE(signalled) << "step 10 never appeared in the log";
    const int code = wait_exit(pid, 120);
    const std::string stopped_output = read_file(dir / "stopped.out");
    ASSERT_EQ(code, 130) << "SIGINT: finish the step, save, exit 130\n" << stopped_output;
    const int64_t stop = latest_step(dir / "stopped");
    std::printf("SIGINT sent once step 10 was logged; the run stopped after step %lld\n", (long long)stop);
    ASSERT_GE(stop, 10);
    ASSERT_LT(stop, total);
    EXPECT_EQ(read_log(dir / "stopped", "train").back().step, stop) << "the step in progress is finished, then saved";
    EXPECT_TRUE(std::filesystem::exists(dir / ("stopped/" + step_file("ckpt", stop))));
    EXPECT_TRUE(std::filesystem::exists(dir / ("stopped/" + step_file("state", stop))));
    EXPECT_NE(stopped_output.find("--resume"), std::string::npos) << "says how to continue: " << stopped_output;

    // --resume alone: the run's flags come from its run.json (the defaults differ from them in
    // size, batch, steps and warmup, so a resume that ignored them could not match).
    r = train_mlm(" --resume " + dir / "stopped");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto straight = read_log(dir / "straight", "train"), resumed = read_log(dir / "stopped", "train");
    ASSERT_EQ(resumed.size(), (size_t)total) << "the log continues, each step once";
    ASSERT_EQ(straight.size(), (size_t)total);
    for (int64_t i = 0; i < total; i++) {
        EXPECT_EQ(resumed[i].step, i + 1);
        EXPECT_EQ(resumed[i].loss_text, straight[i].loss_text) << "step " << i + 1 << " (stopped after " << stop << ")";
        EXPECT_EQ(resumed[i].lr, straight[i].lr) << "step " << i + 1;
    }
    const auto eval_s = read_log(dir / "straight", "eval"), eval_r = read_log(dir / "stopped", "eval");
    ASSERT_EQ(eval_r.size(), eval_s.size());
    for (size_t i = 0; i < eval_s.size(); i++) EXPECT_EQ(eval_r[i].loss_text, eval_s[i].loss_text) << "eval " << i;
    for (const std::string& name : {step_file("ckpt", total), step_file("state", total), std::string("best.bin"), std::string("latest")})
        EXPECT_TRUE(same_bytes(dir / "straight/" + name, dir / "stopped/" + name)) << name << " (stopped after " << stop << ")";
}

// A finished run extended with --resume and a larger --steps, under a constant learning rate
// (so the schedule does not depend on the total): equal to one longer run. No signal timing here.
TEST(TrainMlm, ResumeExtendsAFinishedRunExactly) {
    ScratchDir dir;
    const std::string flags = kSmall + " --warmup 0 --final-lr-fraction 1 --eval-every 4 --grad-accum 2";
    RunResult r = train_mlm(flags + " --steps 12 --out " + dir / "straight");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = train_mlm(flags + " --steps 5 --out " + dir / "two");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = train_mlm(flags + " --steps 12 --resume " + dir / "two");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(losses_by_step(read_log(dir / "two", "train")), losses_by_step(read_log(dir / "straight", "train")));
    EXPECT_EQ(read_log(dir / "two", "train").size(), 12u);
    for (const char* name : {"ckpt_00000012.bin", "state_00000012.bin", "best.bin"})
        EXPECT_TRUE(same_bytes(dir / "straight/" + name, dir / "two/" + name)) << name;

    // Resuming it once more finds nothing left to do: it says so and reports real validation
    // numbers (the last evaluation's loss), not NaN.
    r = train_mlm(flags + " --steps 12 --resume " + dir / "two");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("already finished"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("nan"), std::string::npos) << r.output;
    const auto evals = read_log(dir / "straight", "eval");
    ASSERT_FALSE(evals.empty());
    char expected[64];
    std::snprintf(expected, sizeof expected, "final validation loss %.4f", evals.back().loss);
    EXPECT_NE(r.output.find(expected), std::string::npos) << "expected '" << expected << "' in:\n" << r.output;
}

// The training state records the run's seed; resuming with another --seed must not silently mix
// two runs (data order and masks from the saved seed, dropout from the new one). Either the
// program refuses, naming the seed, or it keeps the saved seed and the continuation stays exact.
TEST(TrainMlm, ResumeWithAnotherSeedIsRefusedOrExact) {
    ScratchDir dir;
    const std::string flags = kSmall + " --warmup 0 --final-lr-fraction 1 --eval-every 0";
    RunResult r = train_mlm(flags + " --steps 8 --out " + dir / "straight");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = train_mlm(flags + " --steps 4 --out " + dir / "two");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = train_mlm(flags + " --steps 8 --seed 2 --resume " + dir / "two");
    if (r.exit_code != 0) {
        expect_error(r, "--resume with another --seed", {"seed"});
        return;
    }
    EXPECT_EQ(losses_by_step(read_log(dir / "two", "train")), losses_by_step(read_log(dir / "straight", "train")))
        << "resumed with --seed 2 and not refused: the continuation must still be the saved run's\n" << r.output;
    EXPECT_TRUE(same_bytes(dir / "straight/ckpt_00000008.bin", dir / "two/ckpt_00000008.bin"));
}

// The model must learn from context, not only token frequencies. Both bars are computed here on
// exactly the masked validation tokens the program scores (the first --eval-batches validation
// batches, whose masks are fixed):
//   unigram loss   cross-entropy of the training text's unigram distribution on those targets:
//                  the best a model that ignores context can expect (the program prints the
//                  training text's entropy as "unigram baseline", checked against ours too)
//   majority acc   the share of the most frequent target among them: the best any constant
//                  prediction can score, even one chosen after seeing the answers
// The run: 600 steps of 16 x 128 tokens (1.2M tokens, about a minute on 2 idle cores; the model
// sits on the unigram plateau for its first ~150 steps). Measured at lr 2e-3, 2 threads: validation
// loss 4.995 against a unigram loss of 5.362 on the same targets (0.37 nats below), accuracy 0.191
// against a majority accuracy of 0.124 (+0.067); with 1 thread, 5.022 and 0.193 (first 10
// batches); at lr 1e-3, 5.057 and 0.180; with batches of 8 for 1200 steps, 5.001 and 0.199. (At
// lr 3e-3 the tiny model was still on the plateau at step 430.) Thresholds with margin below all
// of these: a loss at
// least kLossMargin = 0.25 nats below both unigram figures and an accuracy at least
// kAccuracyGain = 0.04 above the majority accuracy (0.164 and up: 1.3 times the majority).
TEST(TrainMlm, LearnsFarBeyondTheUnigramBaseline) {
    ScratchDir dir;
    const int B = 16, T = 128, steps = 600, eval_batches = 20;
    const double kLossMargin = 0.25, kAccuracyGain = 0.04;
    const std::string flags = " --preset tiny --batch " + std::to_string(B) + " --seq-len " + std::to_string(T) +
                              " --steps " + std::to_string(steps) + " --warmup 30 --lr 2e-3 --final-lr-fraction 0.1 --dropout 0 --attention-dropout 0"
                              " --threads 2 --eval-every 0"
                              " --eval-batches " + std::to_string(eval_batches) + " --out " + dir / "run";
    const auto t0 = std::chrono::steady_clock::now();
    const RunResult r = train_mlm(flags);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_EQ(r.exit_code, 0) << r.output;

    // The baselines.
    const Tokenizer vocab = Tokenizer::load(kDefaultVocab);
    std::vector<double> train_counts(vocab.vocab_size(), 0.0);
    double train_total = 0;
    for (const std::string& path : expand_globs({kDefaultTrain})) {
        const TokenShard shard(path, &vocab);
        for (int64_t i = 0; i < shard.token_count(); i++) train_counts[shard.token(i)]++, train_total++;
    }
    double entropy = 0;
    for (double c : train_counts)
        if (c > 0) entropy -= c / train_total * std::log(c / train_total);
    MlmBatcherOptions options;
    options.batch_size = B;
    options.seq_len = T;
    const MlmBatcher val(expand_globs({kDefaultVal}), vocab, options);
    std::vector<int64_t> target_counts(vocab.vocab_size(), 0);
    int64_t targets = 0;
    double unigram_loss = 0;
    MlmBatch batch;
    for (int64_t k = 0; k < std::min<int64_t>(eval_batches, val.validation_batch_count()); k++) {
        val.validation_batch(k, batch);
        for (int32_t t : batch.masked_targets) {
            target_counts[t]++, targets++;
            unigram_loss -= std::log(std::max(train_counts[t], 0.5) / train_total);  // unseen: half a count
        }
    }
    unigram_loss /= targets;
    const double majority = (double)*std::max_element(target_counts.begin(), target_counts.end()) / targets;
    ASSERT_GT(targets, 1000);

    const std::string printed = "unigram baseline: loss ";
    const size_t at = r.output.find(printed);
    ASSERT_NE(at, std::string::npos) << r.output;
    EXPECT_NEAR(std::stod(r.output.substr(at + printed.size())), entropy, 1e-3) << "the printed baseline is the training unigram entropy";

    const auto evals = read_log(dir / "run", "eval");
    ASSERT_EQ(evals.size(), 1u);
    const LogLine& final_eval = evals.back();
    std::printf("learning run: %.0f s; validation loss %.4f (unigram %.4f on the same targets, printed baseline %.4f), "
                "accuracy %.4f (majority %.4f), %lld masked targets\n",
                seconds, final_eval.loss, unigram_loss, entropy, final_eval.accuracy, majority, (long long)targets);
    EXPECT_LT(final_eval.loss, unigram_loss - kLossMargin);
    EXPECT_LT(final_eval.loss, entropy - kLossMargin);
    EXPECT_GT(final_eval.accuracy, majority + kAccuracyGain);
    EXPECT_NE(r.output.find("final validation loss"), std::string::npos) << r.output;
    const auto train_lines = read_log(dir / "run", "train");
    ASSERT_EQ(train_lines.size(), (size_t)steps);
    EXPECT_LT(train_lines.back().loss, train_lines.front().loss - 2.0) << "the training loss falls too";
}

// CPU bf16 mixed precision trains like fp32: the same run on the built-in corpus (tiny, 300 steps,
// dropout on) with --precision bf16 and --precision fp32 ends within 0.03 (about 0.5%) of the
// same validation loss (measured on AMX: 5.4475 and 5.4384; docs/results.md has mini on real
// text), and the start-up line says which precision ran.
TEST(TrainMlm, Bf16ValidationLossIsWithinToleranceOfFp32) {
    ScratchDir dir;
    const double kTolerance = 0.03;
    double loss[2];
    const char* precisions[] = {"fp32", "bf16"};
    for (int p = 0; p < 2; p++) {
        const std::string out = dir / precisions[p];
        const RunResult r = train_mlm(std::string(" --precision ") + precisions[p] +
                                      " --preset tiny --batch 16 --seq-len 64 --steps 300 --warmup 30 --lr 2e-3"
                                      " --threads 2 --eval-every 0 --eval-batches 20 --out " + out);
        ASSERT_EQ(r.exit_code, 0) << r.output;
        EXPECT_NE(r.output.find(std::string("device: cpu (") + precisions[p]), std::string::npos) << r.output;
        const auto evals = read_log(out, "eval");
        ASSERT_EQ(evals.size(), 1u);
        loss[p] = evals.back().loss;
    }
    std::printf("validation loss after 300 steps: fp32 %.4f, bf16 %.4f (difference %.4f, tolerance %.2f)\n", loss[0], loss[1],
                loss[1] - loss[0], kTolerance);
    EXPECT_NEAR(loss[1], loss[0], kTolerance);
    EXPECT_NE(loss[1], loss[0]) << "identical losses: did bf16 run at all?";
}

// --init: the weights are the checkpoint's, exactly (a first step at learning rate 0, the first
// of the warmup, leaves them as loaded, so the step-1 checkpoint is the --init file byte for
// byte); the optimizer is fresh (after one AdamW step from zero moments, m^2 / v is
// (1-b1)^2 / (1-b2) = 10 for every parameter with a gradient); the step count and the schedule
// restart at 1; and training goes on from where the checkpoint was, far below a fresh model.
TEST(TrainMlm, InitContinuesFromTheWeightsWithAFreshOptimizer) {
    ScratchDir dir;
    RunResult r = train_mlm(kSmall + " --batch 16 --steps 80 --lr 5e-3 --eval-every 0 --out " + dir / "base");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const std::string base = dir / "base/ckpt_00000080.bin";
    const auto base_log = read_log(dir / "base", "train");
    ASSERT_EQ(base_log.size(), 80u);

    r = train_mlm(kSmall + " --steps 4 --keep 10 --save-every 1 --eval-every 0 --seed 7 --init " + base + " --out " + dir / "init");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = train_mlm(kSmall + " --steps 4 --eval-every 0 --seed 7 --out " + dir / "fresh");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto init = read_log(dir / "init", "train"), fresh = read_log(dir / "fresh", "train");
    ASSERT_EQ(init.size(), 4u);
    ASSERT_EQ(fresh.size(), 4u);
    EXPECT_EQ(init[0].step, 1) << "a fresh step count";
    EXPECT_EQ(init[0].lr, 0.0) << "a fresh warmup";
    EXPECT_EQ(init[1].lr, fresh[1].lr) << "the same schedule as a fresh run";
    EXPECT_NE(r.output.find("(from 0)"), std::string::npos);

    const double ln_v = std::log((double)Tokenizer::load(kDefaultVocab).vocab_size());
    std::printf("first-step loss: fresh %.4f, --init %.4f (ln V = %.4f, base run's last %.4f)\n", fresh[0].loss, init[0].loss, ln_v,
                base_log.back().loss);
    EXPECT_GT(fresh[0].loss, ln_v - 0.5) << "a fresh model predicts about uniformly";
    EXPECT_LT(init[0].loss, ln_v - 1.5);
    EXPECT_LT(init[0].loss, fresh[0].loss - 1.5);

    EXPECT_TRUE(same_bytes(base, dir / "init/ckpt_00000001.bin")) << "step 1 ran at lr 0: the weights are exactly the loaded ones";
    EXPECT_FALSE(same_bytes(base, dir / "init/ckpt_00000002.bin"));
    const Checkpoint c1 = load_checkpoint(dir / "init/ckpt_00000001.bin");
    const TrainingState s1 = load_training_state(dir / "init/state_00000001.bin", c1);
    EXPECT_EQ(s1.progress.step, 1);
    int64_t checked = 0, off = 0;
    for (size_t i = 0; i < s1.m.size(); i++) {
        if (s1.v[i] < 1e-20f) continue;
        checked++;
        if (std::fabs((double)s1.m[i] * s1.m[i] / s1.v[i] - 10.0) > 1e-3) off++;
    }
    EXPECT_GT(checked, (int64_t)s1.m.size() / 2);
    EXPECT_EQ(off, 0) << "of " << checked << " moments: not those of one step from zero";

    // Without size flags the model is the checkpoint's (L1-H64), not the default preset's.
    r = train_mlm(" --batch 4 --seq-len 32 --threads 2 --steps 1 --eval-every 0 --init " + base + " --out " + dir / "no_size_flags");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("L1-H64"), std::string::npos) << r.output;
}

TEST(TrainMlm, KeepsTheLastKPairsBestAndLatest) {
    ScratchDir dir;
    const RunResult r = train_mlm(kSmall + " --steps 10 --save-every 2 --eval-every 5 --keep 2 --out " + dir / "run");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(list_dir(dir / "run"), (std::vector<std::string>{"best.bin", "ckpt_00000008.bin", "ckpt_00000010.bin", "latest",
                                                                "log.jsonl", "run.json", "state_00000008.bin", "state_00000010.bin",
                                                                "vocab.txt"}))
        << "saves at 2, 4, 5, 6, 8, 10; --keep 2 leaves the last two pairs, and no temporary file";
    EXPECT_EQ(read_file(dir / "run/latest"), "10\n");
    const auto evals = read_log(dir / "run", "eval");
    ASSERT_EQ(evals.size(), 2u);
    const Checkpoint best = load_checkpoint(dir / "run/best.bin");
    if (evals[1].loss < evals[0].loss) EXPECT_TRUE(same_bytes(dir / "run/best.bin", dir / "run/ckpt_00000010.bin"));
    else EXPECT_FALSE(same_bytes(dir / "run/best.bin", dir / "run/ckpt_00000010.bin")) << "best.bin is step 5's";
}

// ---------------------------------------------------------------------------------------------
// Bad input. Each case runs twice: into a fresh --out (a clear error naming the file / flag /
// field, exit code 1, no run files left behind), and into a folder holding an earlier run with
// --overwrite, which must come out untouched, file for file (bad input is found before anything
// is removed). Files given as input (--init checkpoints, --resume folders) are checked too.

namespace {

struct BadInputFixture {
    ScratchDir dir;
    std::string earlier;  // a finished run: ckpt, state, best.bin, latest, log.jsonl

    BadInputFixture() {
        earlier = dir / "earlier";
        const RunResult r = train_mlm(kSmall + " --steps 2 --out " + earlier);
        EXPECT_EQ(r.exit_code, 0) << r.output;
    }

    // `flags` must not contain --out. `pieces`: what the error must mention. `inputs`: other
    // folders that must stay as they are.
    void expect_refused(const std::string& what, const std::string& flags, const std::vector<std::string>& pieces,
                        const std::vector<std::string>& inputs = {}) {
        std::map<std::string, std::map<std::string, FileState>> kept;
        for (const std::string& folder : inputs) kept[folder] = snapshot(folder);

        const std::string fresh = dir / ("fresh_" + std::to_string(counter_++));
        RunResult r = train_mlm(kSmall + flags + " --steps 2 --out " + fresh);
        expect_error(r, what, pieces);
        if (r.exit_code == 1) {
            EXPECT_TRUE(CheckpointKeeper::own_files(fresh).empty()) << what << ": wrote checkpoints";
            EXPECT_FALSE(std::filesystem::exists(fresh + "/log.jsonl")) << what << ": wrote a log";
        }

        const std::string copy = dir / ("copy_" + std::to_string(counter_++));
        EXPECT_EQ(run_command("cp -a " + earlier + " " + copy).exit_code, 0);
        const auto before = snapshot(copy);
        r = train_mlm(kSmall + flags + " --steps 2 --out " + copy + " --overwrite");
        const std::string changes = folder_changes(before, copy);
        EXPECT_TRUE(r.exit_code != 0 && changes.empty())
            << what << ", into a folder holding an earlier run, with --overwrite: exit code " << r.exit_code
            << "; the earlier run must be left as it was, but:\n" << changes << r.output;

        for (const auto& [folder, state] : kept) expect_same_folder(state, folder, what + " (an input)");
    }

  private:
    int counter_ = 0;
};

// Writes a copy of `src` with `edit` applied to its bytes.
void write_edited(const std::string& src, const std::string& dst, const std::function<void(std::string&)>& edit) {
    std::string bytes = read_file(src);
    edit(bytes);
    make_dirs(std::filesystem::path(dst).parent_path().string());
    write_text(dst, bytes);
}

}  // namespace

TEST(TrainMlm, BadShardsAndFlagsAreClearErrors) {
    BadInputFixture f;
    const std::string other_vocab = write_other_vocab(f.dir);
    const std::string other = prepare_other_shards(f.dir, other_vocab);
    const std::string other_train = expand_globs({other + "/train_*.bin"}).at(0);

    f.expect_refused("a --train shard of another vocabulary", " --train " + other_train, {other_train, "vocab"}, {other});
    f.expect_refused("a --val shard of another vocabulary", " --val " + other + "/val_*.bin",
                     {expand_globs({other + "/val_*.bin"}).at(0), "vocab"}, {other});
    f.expect_refused("an empty --train glob", " --train " + f.dir / "nothing/train_*.bin", {f.dir / "nothing/train_*.bin", "matches nothing"});
    f.expect_refused("--seq-len above the positions", " --seq-len 513", {"--seq-len", "513", "512"});
    f.expect_refused("an unknown flag", " --frobnicate 3", {"unknown flag --frobnicate"});
    // On a machine without a usable GPU, --device cuda is a clear error (saying why: no CUDA in
    // the build, no driver, no device) before anything is read or written.
    if (std::system("nvidia-smi -L > /dev/null 2>&1") != 0) f.expect_refused("--device cuda", " --device cuda", {"--device", "cuda"});
    f.expect_refused("a missing --vocab", " --vocab " + f.dir / "no_vocab.txt", {f.dir / "no_vocab.txt"});

    // An --out folder that holds a run, without --resume or --overwrite.
    const auto before = snapshot(f.earlier);
    const RunResult r = train_mlm(kSmall + " --steps 2 --out " + f.earlier);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find(f.earlier + ": already holds a run"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("--resume"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("--overwrite"), std::string::npos) << r.output;
    expect_same_folder(before, f.earlier, "--out holding a run");
}

TEST(TrainMlm, BadInitCheckpointsAreClearErrors) {
    BadInputFixture f;
    const std::string good = f.earlier + "/ckpt_00000002.bin";
    write_edited(good, f.dir / "inputs/truncated.bin", [](std::string& b) { b.resize(b.size() / 2); });
    write_edited(good, f.dir / "inputs/cut_header.bin", [](std::string& b) { b.resize(40); });
    write_edited(good, f.dir / "inputs/corrupted.bin", [](std::string& b) { b[b.size() - 1000] ^= 0x10; });
    write_edited(good, f.dir / "inputs/bad_magic.bin", [](std::string& b) { b[0] = 'X'; });
    write_text(f.dir / "inputs/empty.bin", "");
    write_edited(good, f.dir / "inputs/layers.bin", [](std::string& b) {  // num_layers 2^31 - 1, checksum valid
        put<int32_t>(reinterpret_cast<unsigned char*>(b.data()), 64, 2147483647);
        seal_checksum(b);
    });

    f.expect_refused("a truncated checkpoint", " --init " + f.dir / "inputs/truncated.bin", {f.dir / "inputs/truncated.bin"}, {f.dir / "inputs"});
    f.expect_refused("a checkpoint cut in its header", " --init " + f.dir / "inputs/cut_header.bin", {f.dir / "inputs/cut_header.bin"});
    f.expect_refused("a corrupted checkpoint", " --init " + f.dir / "inputs/corrupted.bin",
                     {f.dir / "inputs/corrupted.bin", "corrupted"}, {f.dir / "inputs"});
    f.expect_refused("a checkpoint with a bad magic", " --init " + f.dir / "inputs/bad_magic.bin", {f.dir / "inputs/bad_magic.bin", "magic"});
    f.expect_refused("an empty checkpoint", " --init " + f.dir / "inputs/empty.bin", {f.dir / "inputs/empty.bin"});
    f.expect_refused("a checkpoint of 2^31 - 1 layers", " --init " + f.dir / "inputs/layers.bin",
                     {f.dir / "inputs/layers.bin", "field 'num_layers'", "at most 1024"});
    f.expect_refused("a missing checkpoint", " --init " + f.dir / "inputs/none.bin", {f.dir / "inputs/none.bin"});
    f.expect_refused("a training state given as a checkpoint", " --init " + f.earlier + "/state_00000002.bin",
                     {f.earlier + "/state_00000002.bin"}, {f.earlier});
    f.expect_refused("--init and --resume together", " --init " + good + " --resume " + f.earlier, {"--init", "--resume"}, {f.earlier});

    // Another config: the flags ask for width 128, the checkpoint has 64. Taking either silently
    // would train a model the user did not ask for.
    f.expect_refused("--init with a checkpoint of another config", " --hidden 128 --init " + good, {good, "hidden", "128", "64"},
                     {f.earlier});

    // Only the size flags given are compared with the checkpoint: --layers 1 alone agrees with it,
    // even though the default preset's hidden size (128) differs from the checkpoint's 64.
    const RunResult only_layers = train_mlm(" --layers 1 --batch 4 --seq-len 32 --threads 2 --eval-batches 2 --steps 1 --init " + good +
                                            " --out " + f.dir / "only_layers");
    EXPECT_EQ(only_layers.exit_code, 0) << only_layers.output;

    // Another vocabulary: a checkpoint trained on shards of another vocabulary, given to a run on
    // build/default's.
    const std::string other_vocab = write_other_vocab(f.dir);
    const std::string other = prepare_other_shards(f.dir, other_vocab);
    const RunResult r = train_mlm(kSmall + " --steps 1 --vocab " + other_vocab + " --train '" + other + "/train_*.bin' --val '" + other +
                                  "/val_*.bin' --out " + f.dir / "other_run");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const std::string other_ckpt = f.dir / "other_run/ckpt_00000001.bin";
    // With --vocab the default's: the checkpoint is refused, naming it and the vocabulary file.
    f.expect_refused("--init with a checkpoint of another vocabulary", " --init " + other_ckpt + " --vocab build/default/vocab.txt",
                     {other_ckpt, "vocab_fingerprint", "build/default/vocab.txt"}, {f.dir / "other_run"});
    // Without --vocab the checkpoint's run gives its own vocabulary, and the shards are refused.
    f.expect_refused("--init with a checkpoint of another vocabulary, no --vocab", " --init " + other_ckpt,
                     {"build/default/mlm/train_000.bin", f.dir / "other_run/vocab.txt"}, {f.dir / "other_run"});
}

TEST(TrainMlm, BadResumeFoldersAreClearErrors) {
    BadInputFixture f;
    make_dirs(f.dir / "empty_folder");
    auto refuse_resume = [&](const std::string& what, const std::string& folder, const std::string& flags,
                             const std::vector<std::string>& pieces) {
        const auto before = snapshot(folder);
        const RunResult r = train_mlm(kSmall + flags + " --steps 4 --resume " + folder);
        expect_error(r, what, pieces);
        expect_same_folder(before, folder, what);
    };
    refuse_resume("--resume of a folder without checkpoints", f.dir / "empty_folder", "", {f.dir / "empty_folder", "no checkpoint"});
    refuse_resume("--resume of a missing folder", f.dir / "no_folder", "", {f.dir / "no_folder"});

    auto copy_of_earlier = [&](const std::string& name) {
        EXPECT_EQ(run_command("cp -a " + f.earlier + " " + f.dir / name).exit_code, 0);
        return f.dir / name;
    };
    std::string d = copy_of_earlier("lost_state");
    std::filesystem::remove(d + "/state_00000002.bin");
    refuse_resume("--resume with the training state missing", d, "", {d + "/state_00000002.bin"});

    d = copy_of_earlier("cut_state");
    write_edited(f.earlier + "/state_00000002.bin", d + "/state_00000002.bin", [](std::string& b) { b.resize(b.size() - 4); });
    refuse_resume("--resume with a truncated training state", d, "", {d + "/state_00000002.bin"});

    d = copy_of_earlier("cut_ckpt");
    write_edited(f.earlier + "/ckpt_00000002.bin", d + "/ckpt_00000002.bin", [](std::string& b) { b.resize(b.size() - 4); });
    refuse_resume("--resume with a truncated checkpoint", d, "", {d + "/ckpt_00000002.bin"});

    d = copy_of_earlier("other_step");  // the state of the pair `latest` names, resaved with step 1
    write_edited(f.earlier + "/state_00000002.bin", d + "/state_00000002.bin", [](std::string& b) {
        put<int64_t>(reinterpret_cast<unsigned char*>(b.data()), 16, 1);
        seal_checksum(b);
    });
    refuse_resume("--resume with a training state of another step", d, "",
                  {d + "/state_00000002.bin", d + "/ckpt_00000002.bin", "field 'step'", "is 1", "step 2"});

    d = copy_of_earlier("bad_latest");
    write_text(d + "/latest", "two\n");
    refuse_resume("--resume with a malformed latest", d, "", {d + "/latest"});

    d = copy_of_earlier("other_config");
    refuse_resume("--resume with flags of another config", d, " --hidden 128", {"hidden", "128", "64"});

    d = copy_of_earlier("other_seq_len");
    refuse_resume("--resume with another --seq-len", d, " --seq-len 48", {"48"});

    const std::string other_vocab = write_other_vocab(f.dir);
    const std::string other = prepare_other_shards(f.dir, other_vocab);
    d = copy_of_earlier("other_vocab");
    refuse_resume("--resume on other data", d, " --train '" + other + "/train_*.bin'", {"--train", d + "/run.json"});
    refuse_resume("--resume with another vocabulary", d, " --vocab " + other_vocab, {other_vocab, "vocab_fingerprint"});
}

// A run killed hard (no Ctrl-C) after its last checkpoint leaves log records of steps that the
// resumed run does again; resuming drops them, so each step is logged once, with the values of
// the run that counts.
TEST(TrainMlm, ResumeAfterAHardKillLogsEachStepOnce) {
    ScratchDir dir;
    const std::string flags = kSmall + " --warmup 0 --final-lr-fraction 1 --eval-every 0";
    RunResult r = train_mlm(flags + " --steps 9 --out " + dir / "straight");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = train_mlm(flags + " --steps 6 --out " + dir / "killed");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    // What a run killed at step 8 (checkpoint at 6) would have left behind.
    std::string log = read_file(dir / "killed/log.jsonl");
    for (int step = 7; step <= 8; step++)
        log += "{\"kind\":\"train\",\"step\":" + std::to_string(step) + ",\"loss\":99.0,\"accuracy\":0,\"lr\":0,\"grad_norm\":0,\"ms\":1,"
               "\"tokens_per_second\":1}\n";
    write_text(dir / "killed/log.jsonl", log);
    r = train_mlm(flags + " --steps 9 --resume " + dir / "killed");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto resumed = read_log(dir / "killed", "train");
    ASSERT_EQ(resumed.size(), 9u) << read_file(dir / "killed/log.jsonl");
    for (size_t i = 0; i < resumed.size(); i++) EXPECT_EQ(resumed[i].step, (int64_t)i + 1);
    EXPECT_EQ(losses_by_step(resumed), losses_by_step(read_log(dir / "straight", "train")));
}

// A run whose loss or gradient is no longer finite cannot make progress (a skipped update does
// not count as a step): it stops after --max-skipped-steps in a row, with exit status 1 and a
// message naming the step, instead of looping. Driven there with --lr 1e6 and no clipping. The
// checkpoints written before the first skipped step are left as they were, finite and loadable.
TEST(TrainMlm, StopsAfterTooManyNonFiniteSteps) {
    ScratchDir dir;
    const auto t0 = std::chrono::steady_clock::now();
    // (under `timeout`: without the stop, such a run loops for ever)
    const RunResult r = run_command("timeout 60 ./train_mlm" + kSmall +
                                    " --lr 1e6 --clip 0 --warmup 0 --steps 200 --save-every 1 --keep 1000 --eval-every 0"
                                    " --max-skipped-steps 3 --out " + dir / "run");
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_LT(seconds, 60.0) << "a run that cannot progress must end";
    EXPECT_NE(r.output.find("3 in a row"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("training stopped"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("--max-skipped-steps 3"), std::string::npos) << r.output;
    const auto lines = read_log(dir / "run", "train");
    ASSERT_GE(lines.size(), 3u);
    const int64_t last_good = lines.back().step;  // skipped steps are logged at the step count they could not pass
    EXPECT_LT(last_good, 200);
    // Every checkpoint written is finite and loads; the newest is that of the last good step.
    int64_t newest = -1;
    for (const auto& entry : std::filesystem::directory_iterator(dir / "run")) {
        const std::string name = entry.path().filename().string();
        if (name.rfind("ckpt_", 0) != 0) continue;
        const Checkpoint c = load_checkpoint(entry.path().string());
        for (float x : c.params) ASSERT_TRUE(std::isfinite(x)) << name;
        newest = std::max<int64_t>(newest, std::stoll(name.substr(5, 8)));
    }
    EXPECT_EQ(newest, last_good);
    // The flag's bound is checked.
    const RunResult bad = train_mlm(kSmall + " --max-skipped-steps 0 --out " + dir / "bad");
    EXPECT_NE(bad.exit_code, 0);
    EXPECT_NE(bad.output.find("--max-skipped-steps"), std::string::npos) << bad.output;
}

// Without validation shards there is no best.bin, and the closing line says so and names the
// last checkpoint (it used to promise a best.bin that was never written).
TEST(TrainMlm, WithoutValidationTheLastLinePointsAtTheLastCheckpoint) {
    ScratchDir dir;
    const RunResult r = train_mlm(kSmall + " --val '' --steps 2 --out " + dir / "run");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_FALSE(file_exists(dir / "run/best.bin"));
    EXPECT_TRUE(file_exists(dir / "run/ckpt_00000002.bin"));
    EXPECT_EQ(r.output.find("best.bin: lowest validation loss"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("no validation, so no best.bin"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("--init " + dir / "run/ckpt_00000002.bin"), std::string::npos) << r.output;
}

// Temporary files of a killed writer (NAME.tmp.PID whose process has ended) are removed when the
// next run starts in that folder; those of a running process, and other names, are kept.
TEST(TrainMlm, LeftoverTemporariesOfKilledRunsAreRemoved) {
    ScratchDir dir;
    make_dirs(dir / "run");
    const std::string dead = dir / "run/ckpt_00000004.bin.tmp.999999999";  // above any pid_max (2^22): no such process
    const std::string alive = dir / "run/ckpt_00000004.bin.tmp." + std::to_string(getpid());
    const std::string other = dir / "run/notes.tmp.txt";
    for (const std::string& p : {dead, alive, other}) wr::testing::write_text(p, "x");
    const RunResult r = train_mlm(kSmall + " --val '' --steps 1 --out " + dir / "run");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("removed 1 temporary file left by a killed run"), std::string::npos) << r.output;
    EXPECT_FALSE(file_exists(dead));
    EXPECT_TRUE(file_exists(alive));
    EXPECT_TRUE(file_exists(other));
    // And in prepare's output folder.
    const std::string stale = dir / "shards/train_000.bin.tmp.999999998";
    make_dirs(dir / "shards");
    wr::testing::write_text(stale, "x");
    wr::testing::write_text(dir / "text.txt", "a b c\n\nd e f\n");
    const RunResult p = run_command("./prepare mlm --vocab " + kDefaultVocab + " --input " + dir / "text.txt --out " + dir / "shards");
    ASSERT_EQ(p.exit_code, 0) << p.output;
    EXPECT_FALSE(file_exists(stale));
}
