// tests/test_run_folder.cpp: what a run folder carries (model/run_folder.h) and what it makes
// possible: the flags' values as text, run.json and --resume DIR alone (contradicting flags
// refused), vocab.txt and --vocab's default, finetune and distill resuming exactly after Ctrl-C,
// finetune from random weights and its --test shard.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <thread>

#include "common/flags.h"
#include "data/shards.h"
#include "data/tokenizer.h"
#include "model/bert.h"
#include "model/checkpoint.h"
#include "model/classifier.h"
#include "model/run_folder.h"
#include "model/training.h"
#include "test_helpers.h"

using namespace wr;
using wr::testing::interrupt_after_step;
using wr::testing::run_command;
using wr::testing::RunResult;
using wr::testing::ScratchDir;
using wr::testing::write_text;

namespace {

const std::string kVocab = "build/default/vocab.txt";
const std::string kTrain = "build/default/sentiment_train.bin", kDev = "build/default/sentiment_dev.bin";

// A program's flags, for the unit tests: every type of flag.
struct Settings {
    int batch = 32;
    int64_t steps = 600;
    uint64_t seed = 1;
    double lr = 3e-4;
    bool whole_word = false;
    std::string init = "a.bin";
    std::vector<std::string> train = {"x_*.bin"};
    int threads = 0;
    Flags flags{"prog", "a test program"};
    Settings() {
        flags.add("batch", &batch, "");
        flags.add("steps", &steps, "");
        flags.add("seed", &seed, "");
        flags.add("lr", &lr, "");
        flags.add("whole-word", &whole_word, "");
        flags.add("init", &init, "");
        flags.add("train", &train, "");
        flags.add("threads", &threads, "");
        flags.add("out", &init, "");
    }
    void parse(std::vector<std::string> args) {
        args.insert(args.begin(), "prog");
        std::vector<char*> argv;
        for (std::string& a : args) argv.push_back(a.data());
        flags.parse((int)argv.size(), argv.data());
    }
};

// A small model of the built-in vocabulary (L1-H64), random weights from `seed`; num_labels 0:
// an MLM.
BertModel small_model(const Tokenizer& vocab, int num_labels, uint64_t seed) {
    BertConfig c = bert_preset("tiny", vocab.vocab_size());
    c.num_layers = 1, c.hidden = 64, c.num_heads = 2, c.ffn = 128, c.num_labels = num_labels, c.pad_id = vocab.pad_id;
    BertModel model(c);
    model.init_weights(seed);
    return model;
}

// Every file of two run folders byte for byte, except log.jsonl (it holds timings): "" when
// equal, else what differs.
std::string different_files(const std::string& a, const std::string& b) {
    std::vector<std::string> names_a, names_b;
    for (const auto& e : std::filesystem::directory_iterator(a)) names_a.push_back(e.path().filename());
    for (const auto& e : std::filesystem::directory_iterator(b)) names_b.push_back(e.path().filename());
    std::sort(names_a.begin(), names_a.end());
    std::sort(names_b.begin(), names_b.end());
    if (names_a != names_b) return "the folders hold other files";
    std::string differ;
    for (const std::string& name : names_a)
        if (name != "log.jsonl" && read_file(a + "/" + name) != read_file(b + "/" + name)) differ += " " + name;
    return differ;
}

// The training records of log.jsonl without their timings: each step once, in order.
std::string train_records(const std::string& dir) {
    std::string out;
    for (const std::string& line : split(read_file(dir + "/log.jsonl"), '\n'))
        if (line.find("\"kind\":\"train\"") != std::string::npos) out += line.substr(0, line.find(",\"ms\"")) + "\n";
    return out;
}

// Runs `command --out DIR/straight` to the end, and `command --out DIR/stopped` stopped by Ctrl-C
// after step `stop_step` and then continued by `resume_command DIR/stopped` alone: every file the
// same bytes, and the log the same steps.
void expect_exact_resume(const ScratchDir& dir, const std::string& command, int64_t stop_step, const std::string& resume_command) {
    RunResult r = run_command(command + " --out " + dir / "straight");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const int code = interrupt_after_step(command + " --out " + dir / "stopped", dir / "stopped", stop_step, dir / "stopped.out");
    ASSERT_EQ(code, 130) << "Ctrl-C: save, then exit 130\n" << read_file(dir / "stopped.out");
    const std::string stopped = read_file(dir / "stopped.out");
    EXPECT_NE(stopped.find("--resume " + dir / "stopped"), std::string::npos) << "says how to continue:\n" << stopped;
    const std::string latest = read_file(dir / "stopped/latest");
    std::printf("stopped after step %s", latest.c_str());
    r = run_command(resume_command + " " + dir / "stopped");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(different_files(dir / "straight", dir / "stopped"), "") << r.output;
    EXPECT_EQ(train_records(dir / "stopped"), train_records(dir / "straight"));
}

}  // namespace

TEST(RunFolder, FlagValuesReadBackAsTheSameValues) {
    Settings s;
    EXPECT_EQ(s.flags.value("lr"), "0.0003") << "the shortest text of the double";
    s.parse({"--lr", "1e-3", "--batch=8", "--whole-word", "--train", "a.bin,b.bin", "--seed", "18446744073709551"});
    EXPECT_EQ(s.flags.value("lr"), "0.001");
    EXPECT_EQ(s.flags.value("batch"), "8");
    EXPECT_EQ(s.flags.value("whole-word"), "true");
    EXPECT_EQ(s.flags.value("train"), "a.bin,b.bin");
    EXPECT_EQ(s.flags.default_value("batch"), "32");
    EXPECT_EQ(s.flags.default_value("lr"), "0.0003");
    for (double v : {0.1, 1.0 / 3.0, 2e-5, 123456789.123456789, 5e-324}) {
        Settings t;
        t.lr = v;
        Settings u;
        u.flags.set_value("lr", t.flags.value("lr"));
        EXPECT_EQ(u.lr, v) << t.flags.value("lr");
        EXPECT_TRUE(u.flags.was_set("lr"));
    }
    EXPECT_THROW(s.flags.set_value("batch", "eight"), Error);
}

TEST(RunFolder, ResumeTakesTheSavedFlagsAndRefusesContradictingOnes) {
    ScratchDir dir;
    Settings start;
    start.parse({"--lr", "1e-3", "--batch", "8", "--train", "a.bin,b.bin", "--threads", "2", "--out", "somewhere"});
    const std::string json = run_settings_json("prog", start.flags);
    EXPECT_EQ(json.find("\"out\""), std::string::npos) << "the folder's own name is not a setting: " << json;
    EXPECT_EQ(json.find("\"steps\""), std::string::npos) << "flags not given are not saved (their defaults are): " << json;
    write_text(dir / "run.json", json);

    // Nothing given: every saved flag comes back; the others keep their defaults.
    Settings resumed;
    resumed.parse({});
    apply_run_settings(dir.path, "prog", resumed.flags);
    EXPECT_EQ(resumed.lr, 1e-3);
    EXPECT_EQ(resumed.batch, 8);
    EXPECT_EQ(resumed.train, (std::vector<std::string>{"a.bin", "b.bin"}));
    EXPECT_EQ(resumed.threads, 2);
    EXPECT_EQ(resumed.steps, 600);

    // The same values given again (in other spellings) are fine; so are the flags that may change.
    Settings same;
    same.parse({"--lr", "0.001", "--batch", "8", "--threads", "1", "--steps", "900"});
    EXPECT_NO_THROW(apply_run_settings(dir.path, "prog", same.flags));
    EXPECT_EQ(same.threads, 1);

    // A contradiction: the flag, both values and run.json are named.
    Settings other;
    other.parse({"--batch", "16"});
    EXPECT_ERROR_MENTIONS(apply_run_settings(dir.path, "prog", other.flags), "--batch", "'16'", "'8'", "run.json");
    Settings unsaved;  // --seed was not given at the start: its default is the run's value
    unsaved.parse({"--seed", "7"});
    EXPECT_ERROR_MENTIONS(apply_run_settings(dir.path, "prog", unsaved.flags), "--seed", "'7'", "'1'");

    // Another program's run, a broken file, a missing one.
    Settings any;
    EXPECT_ERROR_MENTIONS(apply_run_settings(dir.path, "other", any.flags), "run.json", "prog");
    write_text(dir / "bad/run.json", "{\"program\":\"prog\",\"flags\":{\"batch\":8}}");
    EXPECT_ERROR_MENTIONS(apply_run_settings(dir / "bad", "prog", any.flags), "run.json", "flags.batch");
    write_text(dir / "broken/run.json", "{\"program\":\"prog\",");
    EXPECT_ERROR_MENTIONS(apply_run_settings(dir / "broken", "prog", any.flags), "run.json", "JSON");
    EXPECT_ERROR_MENTIONS(apply_run_settings(dir / "none", "prog", any.flags), "none", "no such folder");
}

TEST(RunFolder, VocabularyIsKeptInTheRunAndNeverReplaced) {
    ScratchDir dir;
    write_text(dir / "v1.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\n");
    write_text(dir / "v2.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nb\n");
    keep_vocab_in_run(dir / "run", dir / "v1.txt");
    EXPECT_EQ(read_file(dir / "run/vocab.txt"), read_file(dir / "v1.txt"));
    EXPECT_NO_THROW(keep_vocab_in_run(dir / "run", dir / "v1.txt"));
    EXPECT_NO_THROW(keep_vocab_in_run(dir / "run", dir / "run/vocab.txt"));
    EXPECT_ERROR_MENTIONS(keep_vocab_in_run(dir / "run", dir / "v2.txt"), "run/vocab.txt", "v2.txt", "another vocabulary");
    EXPECT_EQ(read_file(dir / "run/vocab.txt"), read_file(dir / "v1.txt"));
    EXPECT_EQ(default_vocab({"", dir / "nothing", dir / "run"}, kVocab), dir / "run/vocab.txt");
    EXPECT_EQ(default_vocab({dir / "nothing"}, kVocab), kVocab);
}

// A train_mlm run leaves its vocabulary; finetune --init on its checkpoint, without --vocab, takes
// that one, not the built-in default (a model of another vocabulary would fail on the default
// with a fingerprint error). A wrong --vocab names the vocabulary file and the checkpoint.
TEST(RunFolder, TheVocabularyTravelsWithTheModel) {
    ScratchDir dir;
    // A vocabulary other than the default's: its lines in another order (another fingerprint, the
    // same tokens, so the built-in shards' text still tokenizes).
    std::vector<std::string> lines = split(read_file(kVocab), '\n');
    if (lines.back().empty()) lines.pop_back();
    std::swap(lines[1000], lines[1001]);
    std::string other;
    for (const std::string& l : lines) other += l + "\n";
    write_text(dir / "other/vocab.txt", other);
    const Tokenizer vocab = Tokenizer::load(dir / "other/vocab.txt");
    ASSERT_NE(vocab.fingerprint(), Tokenizer::load(kVocab).fingerprint());

    // A classifier of that vocabulary, with task.json and the vocabulary beside it.
    const BertModel model = small_model(vocab, 2, 3);
    save_checkpoint(dir / "other/best.bin", weights_of(model), vocab.fingerprint());
    write_text(dir / "other/task.json", "{\"label_kind\":\"class\",\"labels\":[\"no\",\"yes\"],\"pairs\":false,\"max_len\":32}\n");
    write_text(dir / "input.txt", "the soup is spicy .\n");
    RunResult r = run_command("./finetune --threads 1 --device cpu --predict " + dir / "input.txt" + " --init " + dir / "other/best.bin");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("vocab: " + dir / "other/vocab.txt"), std::string::npos) << r.output;
    EXPECT_TRUE(file_exists(dir / "other/best.predictions.tsv"));

    // Another --vocab: the error names the checkpoint and the vocabulary file.
    r = run_command("./finetune --threads 1 --device cpu --predict " + dir / "input.txt" + " --init " + dir / "other/best.bin" +
                    " --vocab " + kVocab);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find(dir / "other/best.bin"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(kVocab), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("vocab_fingerprint"), std::string::npos) << r.output;

    // train_mlm keeps its vocabulary in the run folder.
    r = run_command("./train_mlm --threads 1 --device cpu --layers 1 --hidden 64 --batch 2 --seq-len 16 --steps 1 --val '' --out " +
                    dir / "mlm");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(read_file(dir / "mlm/vocab.txt"), read_file(kVocab));
    // A folder that holds another vocab.txt (not a run's) is refused before anything is written.
    write_text(dir / "data/vocab.txt", other);
    r = run_command("./train_mlm --threads 1 --device cpu --layers 1 --hidden 64 --batch 2 --seq-len 16 --steps 1 --val '' --out " +
                    dir / "data");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find(dir / "data/vocab.txt"), std::string::npos) << r.output;
    EXPECT_EQ(read_file(dir / "data/vocab.txt"), other);
    EXPECT_FALSE(file_exists(dir / "data/run.json"));
    EXPECT_FALSE(file_exists(dir / "data/log.jsonl"));
}

// finetune: stopped by Ctrl-C, continued by --resume DIR alone; the same files as a run never
// stopped. The flags differ from finetune's defaults (batch, lr, epochs, warmup, eval-every), so
// a resume that did not take them from run.json could not match.
TEST(RunFolder, FinetuneResumesExactlyFromItsOwnSettings) {
    ScratchDir dir;
    const Tokenizer vocab = Tokenizer::load(kVocab);
    const BertModel init = small_model(vocab, 0, 5);
    save_checkpoint(dir / "init.bin", weights_of(init), vocab.fingerprint());
    ExampleSet dev = read_example_shard(kDev, &vocab);
    dev.examples.resize(64);
    write_example_shard(dir / "dev.bin", dev);
    expect_exact_resume(dir,
                        "./finetune --threads 2 --device cpu --init " + dir / "init.bin" + " --dev " + dir / "dev.bin" +
                            " --batch 16 --epochs 0.12 --lr 1e-3 --warmup 3 --eval-every 20",
                        25, "./finetune --resume");
    // A contradicting flag is refused before anything is written.
    const std::string before = read_file(dir / "stopped/log.jsonl");
    const RunResult r = run_command("./finetune --threads 2 --resume " + dir / "stopped --lr 2e-3");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("--lr"), std::string::npos) << r.output;
    EXPECT_EQ(read_file(dir / "stopped/log.jsonl"), before);
}

// finetune from random weights (the size flags), with a --test shard evaluated at the end with
// best.bin: the numbers equal an --eval-only of best.bin on the same shard.
TEST(RunFolder, FinetuneFromRandomWeightsReportsTheTestShardWithBestBin) {
    ScratchDir dir;
    const Tokenizer vocab = Tokenizer::load(kVocab);
    ExampleSet dev = read_example_shard(kDev, &vocab);
    ExampleSet test = dev;
    dev.examples.resize(100);
    test.examples.erase(test.examples.begin(), test.examples.begin() + 100);
    test.examples.resize(150);
    write_example_shard(dir / "dev.bin", dev);
    write_example_shard(dir / "test.bin", test);
    RunResult r = run_command("./finetune --threads 2 --device cpu --init '' --layers 1 --hidden 64 --heads 2 --ffn 128 --epochs 0.1 "
                              "--eval-every 10 --dev " + dir / "dev.bin" + " --test " + dir / "test.bin" + " --out " + dir / "run");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const Checkpoint best = load_checkpoint(dir / "run/best.bin");
    EXPECT_EQ(best.config.num_layers, 1);
    EXPECT_EQ(best.config.hidden, 64);
    EXPECT_EQ(best.config.ffn, 128);
    const size_t at = r.output.find("test " + dir / "test.bin" + ": loss ");
    ASSERT_NE(at, std::string::npos) << r.output;
    const std::string reported = r.output.substr(at, r.output.find("confusion", at) - at);
    EXPECT_NE(read_file(dir / "run/log.jsonl").find("{\"kind\":\"test\""), std::string::npos);

    r = run_command("./finetune --threads 2 --device cpu --eval-only --init " + dir / "run/best.bin" + " --dev '' --test " +
                    dir / "test.bin");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const size_t again = r.output.find("test " + dir / "test.bin" + ": loss ");
    ASSERT_NE(again, std::string::npos) << r.output;
    EXPECT_EQ(r.output.substr(again, r.output.find("confusion", again) - again), reported);
}

// distill train: the same for a student classifier on a teacher's cache.
TEST(RunFolder, DistillTrainResumesExactly) {
    ScratchDir dir;
    const Tokenizer vocab = Tokenizer::load(kVocab);
    BertModel teacher = small_model(vocab, 2, 13);
    for (float& p : teacher.params) p *= 10.0f;
    save_checkpoint(dir / "teacher/best.bin", weights_of(teacher), vocab.fingerprint());
    write_text(dir / "teacher/task.json", "{\"label_kind\":\"class\",\"labels\":[\"negative\",\"positive\"],\"pairs\":false,\"max_len\":128}\n");
    ExampleSet transfer = read_example_shard("build/default/transfer.bin", &vocab);
    transfer.examples.resize(1200);
    write_example_shard(dir / "transfer.bin", transfer);
    const std::string common = " --threads 2 --device cpu --teacher " + dir / "teacher/best.bin" + " --transfer " + dir / "transfer.bin";
    RunResult r = run_command("./distill cache" + common + " --out " + dir / "cache.bin");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ExampleSet dev = read_example_shard(kDev, &vocab);
    dev.examples.resize(64);
    write_example_shard(dir / "dev.bin", dev);
    expect_exact_resume(dir,
                        "./distill train" + common + " --cache " + dir / "cache.bin" + " --dev " + dir / "dev.bin" +
                            " --layers 1 --hidden 64 --batch 16 --epochs 1 --temperature 2 --eval-every 25",
                        30, "./distill train --threads 2 --resume");
}

// distill train --mlm: the same for a student MLM on an MLM teacher's top-k cache.
TEST(RunFolder, DistillMlmTrainResumesExactly) {
    ScratchDir dir;
    const Tokenizer vocab = Tokenizer::load(kVocab);
    const BertModel teacher = small_model(vocab, 0, 13);
    save_checkpoint(dir / "teacher.bin", weights_of(teacher), vocab.fingerprint());
    // A short text: the first 200 documents of the built-in validation shard.
    const TokenShard text("build/default/mlm/val_000.bin", &vocab);
    {
        TokenShardWriter writer(dir / "text.bin", vocab.vocab_size(), vocab.fingerprint());
        std::vector<int32_t> ids;
        for (int64_t d = 0; d < std::min<int64_t>(200, text.doc_count()); d++) {
            ids.clear();
            for (int64_t i = text.doc_begin(d); i < text.doc_end(d); i++) ids.push_back(text.token(i));
            writer.add_document(ids.data(), (int64_t)ids.size());
        }
        writer.finish();
    }
    const std::string common = " --threads 2 --device cpu --teacher " + dir / "teacher.bin" + " --transfer " + dir / "text.bin";
    RunResult r = run_command("./distill cache --mlm" + common + " --seq-len 32 --topk 8 --out " + dir / "cache.bin");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    expect_exact_resume(dir,
                        "./distill train --mlm" + common + " --cache " + dir / "cache.bin" +
                            " --layers 1 --hidden 64 --batch 8 --epochs 1 --eval-every 20",
                        25, "./distill train --mlm --threads 2 --resume");
}

// task.json is JSON both ways: any label name comes back as it was; anything that is not the
// format is an error naming task.json and the field.
TEST(RunFolder, TaskJsonRoundTripsAnyLabelAndRefusesAnythingElse) {
    ScratchDir dir;
    Task task;
    task.label_names = {"a\tb", "line\nbreak", "cr\r", "quote\" and \\ backslash", "ünïcödé", ""};
    task.pairs = true, task.max_len = 77;
    write_text(dir / "task.json", task_json(task));
    const Task back = read_task(dir / "task.json");
    EXPECT_EQ(back.label_names, task.label_names);
    EXPECT_TRUE(back.pairs);
    EXPECT_EQ(back.max_len, 77);
    EXPECT_FALSE(back.regression);

    const std::string good_start = "{\"label_kind\":\"class\",\"labels\":[\"x\",\"y\"],\"pairs\":false,";
    const std::vector<std::pair<std::string, std::string>> bad = {
        {good_start + "\"max_len\":12k}", "json"},
        {good_start + "\"max_len\":-1}", "max_len"},
        {good_start + "\"max_len\":1.5}", "max_len"},
        {good_start + "\"max_len\":\"12\"}", "max_len"},
        {"{\"label_kind\":\"class\",\"labels\":[\"x\",\"y\"],\"pairs\":false}", "max_len"},
        {"{\"label_kind\":\"colour\",\"labels\":[\"x\"],\"pairs\":false,\"max_len\":1}", "label_kind"},
        {"{\"label_kind\":\"class\",\"labels\":[\"x\",3],\"pairs\":false,\"max_len\":1}", "labels"},
        {"{\"label_kind\":\"class\",\"labels\":[],\"pairs\":false,\"max_len\":1}", "labels"},
        {"{\"label_kind\":\"class\",\"labels\":[\"x\"],\"pairs\":\"no\",\"max_len\":1}", "pairs"},
        {"[1,2]", "json"},
        {"{\"label_kind\":\"class\",", "json"},
    };
    for (const auto& [text, field] : bad) {
        write_text(dir / "bad/task.json", text);
        EXPECT_ERROR_MENTIONS(read_task(dir / "bad/task.json"), "bad/task.json", field.c_str());
    }
}

// The step lines say how long the rest of the run takes, at the pace of the steps so far.
TEST(RunFolder, StepLinesEstimateTheTimeLeft) {
    ScratchDir dir;
    RunLog log(dir.path);
    EXPECT_EQ(log.eta(1, 100), "") << "no pace before the first step";
    log.train_step(1, 101, 1, 0, 0, 0, 1, 1);
    EXPECT_EQ(log.eta(1, 101), "");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    log.train_step(2, 101, 1, 0, 0, 0, 1, 1);
    const std::string left = log.eta(2, 101);  // 99 steps at >= 0.1 s: at least 9.9 s, "0m10s" on a quiet machine
    int minutes = -1, seconds = -1;
    ASSERT_EQ(std::sscanf(left.c_str(), "%dm%ds", &minutes, &seconds), 2) << left;
    EXPECT_GE(minutes * 60 + seconds, 9) << left;
    EXPECT_LE(minutes * 60 + seconds, 120) << left;
    EXPECT_EQ(log.eta(101, 101), "0m00s");
}
