// tests/test_distill.cpp: ./distill end to end. `distill cache` writes the teacher's own logits
// (equal to a forward pass made here) and resumes an interrupted cache from its complete chunks;
// `distill train` makes a student that agrees with a fine-tuned teacher on the built-in task well
// above chance and is a classifier finetune can evaluate; a cache of another transfer set or
// teacher, a student of another label count, a truncated cache and a missing teacher are clear
// errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "common/util.h"
#include "data/example_batcher.h"
#include "data/logit_cache.h"
#include "data/shards.h"
#include "data/tokenizer.h"
#include "model/bert.h"
#include "model/checkpoint.h"
#include "test_helpers.h"

using namespace wr;
using wr::testing::run_command;
using wr::testing::RunResult;
using wr::testing::ScratchDir;

namespace {

const std::string kVocab = "build/default/vocab.txt";
const std::string kTrain = "build/default/sentiment_train.bin", kDev = "build/default/sentiment_dev.bin";
const std::string kTransfer = "build/default/transfer.bin";

RunResult distill(const std::string& command_and_flags) {
    return run_command("./distill " + command_and_flags + " --threads 2 --device cpu");
}

// A teacher for the mechanics tests: random weights, scaled so that predictions differ between
// examples, saved with the task.json finetune writes beside its checkpoints.
BertModel random_teacher(const Tokenizer& vocab, int num_labels, const std::string& dir) {
    BertConfig c = bert_preset("tiny", vocab.vocab_size());
    c.num_layers = 2, c.hidden = 64, c.num_heads = 2, c.ffn = 128, c.num_labels = num_labels, c.pad_id = vocab.pad_id;
    c.hidden_dropout = c.attention_dropout = 0.0f;
    BertModel model(c);
    model.init_weights(13);
    for (float& p : model.params) p *= 10.0f;
    make_dirs(dir);
    save_checkpoint(dir + "/best.bin", weights_of(model), vocab.fingerprint());
    std::string labels;
    for (int k = 0; k < num_labels; k++) labels += std::string(k ? "," : "") + "\"c" + std::to_string(k) + "\"";
    write_file_atomic(dir + "/task.json", "{\"label_kind\":\"class\",\"labels\":[" + labels + "],\"pairs\":false,\"max_len\":128}\n");
    return model;
}

// The first n examples of the built-in transfer set.
ExampleSet transfer_slice(const Tokenizer& vocab, size_t n) {
    ExampleSet set = read_example_shard(kTransfer, &vocab);
    set.examples.resize(n);
    return set;
}

// The teacher's logits for example i, computed alone (no padding).
std::vector<float> logits_of(BertModel& model, const Example& e) {
    std::vector<int32_t> types(e.ids.size(), 0), length = {(int32_t)e.ids.size()};
    ClsInputs in;
    in.B = 1, in.T = (int)e.ids.size(), in.input_ids = e.ids.data(), in.token_types = types.data(), in.lengths = length.data();
    model.forward_classify(in, false, 0);
    return std::vector<float>(model.cls_logits(), model.cls_logits() + model.config.num_labels);
}

double number_after(const std::string& text, const std::string& key) {
    const size_t at = text.rfind(key);
    return at == std::string::npos ? NAN : std::atof(text.c_str() + at + key.size());
}

}  // namespace

TEST(Distill, CacheHoldsTheTeachersLogitsAndResumesFromCompleteChunks) {
    ScratchDir dir;
    const Tokenizer vocab = Tokenizer::load(kVocab);
    BertModel teacher = random_teacher(vocab, 3, dir / "teacher");
    const ExampleSet transfer = transfer_slice(vocab, 150);
    write_example_shard(dir / "transfer.bin", transfer);

    RunResult r = distill("cache --teacher " + dir / "teacher/best.bin" + " --transfer " + dir / "transfer.bin" + " --vocab " + kVocab +
                          " --out " + dir / "cache.bin" + " --batch 16 --chunk 64" +
                          " --precision fp32");  // compared below with fp32 forward passes, to 1e-4
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const LogitCache cache = read_logit_cache(dir / "cache.bin");
    ASSERT_EQ(cache.header.example_count, 150);
    ASSERT_EQ(cache.header.num_labels, 3);
    EXPECT_EQ(cache.header.transfer_fingerprint, examples_fingerprint(transfer));
    EXPECT_EQ(cache.header.teacher_fingerprint, load_checkpoint(dir / "teacher/best.bin").params_checksum);
    double worst = 0;
    for (size_t i = 0; i < transfer.examples.size(); i++) {
        const std::vector<float> want = logits_of(teacher, transfer.examples[i]);
        for (int k = 0; k < 3; k++) worst = std::max(worst, std::fabs(cache.row((int64_t)i)[k] - want[k]) / (1.0 + std::fabs(want[k])));
    }
    std::printf("cache against a forward pass per example: worst relative difference %.3g\n", worst);
    EXPECT_LT(worst, 1e-4);

    // A second run finds the cache up to date and leaves it as it is.
    r = distill("cache --teacher " + dir / "teacher/best.bin" + " --transfer " + dir / "transfer.bin" + " --vocab " + kVocab + " --out " +
                dir / "cache.bin");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("up to date"), std::string::npos) << r.output;

    // An interrupted run: a .partial holding one complete chunk of marker values (what an earlier,
    // killed run wrote) plus a torn second chunk. The resumed run keeps the complete chunk (the
    // markers survive: it was not recomputed) and computes the rest.
    LogitCacheHeader h = cache.header;
    {
        LogitCacheWriter partial(dir / "resumed.bin", h);
        const std::vector<float> markers((size_t)64 * 3, 7.0f);
        partial.append(markers.data(), 64);
        partial.append(markers.data(), 10);  // not a complete chunk: dropped when the writer goes away
    }
    {
        FILE* f = std::fopen((dir / "resumed.bin.partial").c_str(), "ab");
        ASSERT_NE(f, nullptr);
        std::fputs("torn", f);
        std::fclose(f);
    }
    r = distill("cache --teacher " + dir / "teacher/best.bin" + " --transfer " + dir / "transfer.bin" + " --vocab " + kVocab + " --out " +
                dir / "resumed.bin" + " --batch 16 --chunk 64 --precision fp32");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("resuming"), std::string::npos) << r.output;
    const LogitCache resumed = read_logit_cache(dir / "resumed.bin");
    for (int64_t i = 0; i < 150; i++)
        for (int k = 0; k < 3; k++) ASSERT_EQ(resumed.row(i)[k], i < 64 ? 7.0f : cache.row(i)[k]) << "example " << i << " logit " << k;
    EXPECT_FALSE(file_exists(dir / "resumed.bin.partial"));
}

// The method on the built-in task: a teacher fine-tuned by ./finetune labels the built-in transfer
// set; a smaller student trained on those logits alone (no labels) must agree with the teacher on
// the dev shard far above what chance gives, and is a classifier checkpoint finetune evaluates.
TEST(Distill, AStudentLearnsToAgreeWithAFineTunedTeacher) {
    ScratchDir dir;
    const Tokenizer vocab = Tokenizer::load(kVocab);
    BertConfig c = bert_preset("tiny", vocab.vocab_size());
    c.pad_id = vocab.pad_id;
    BertModel init(c);
    init.init_weights(4);
    save_checkpoint(dir / "init.bin", weights_of(init), vocab.fingerprint());
    RunResult r = run_command("./finetune --threads 2 --device cpu --init " + dir / "init.bin" + " --epochs 2 --lr 1e-3 --out " + dir / "teacher");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const double teacher_accuracy = number_after(r.output, "best dev accuracy ");

    ExampleSet transfer = read_example_shard(kTransfer, &vocab);
    transfer.examples.resize(std::min<size_t>(transfer.examples.size(), 6000));
    write_example_shard(dir / "transfer.bin", transfer);
    r = distill("cache --teacher " + dir / "teacher/best.bin" + " --transfer " + dir / "transfer.bin" + " --out " + dir / "cache.bin");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = distill("train --teacher " + dir / "teacher/best.bin" + " --transfer " + dir / "transfer.bin" + " --cache " + dir / "cache.bin" +
                " --layers 1 --hidden 64 --epochs 2 --lr 1e-3 --best-metric agreement --out " + dir / "student");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const double agreement = number_after(r.output, "agreement with the teacher ");
    const double accuracy = number_after(r.output, "(accuracy ");
    std::printf("built-in task: teacher dev accuracy %.4f; student L1-H64 distilled 2 epochs: dev agreement %.4f, accuracy %.4f "
                "(threshold: agreement 0.70; chance 0.5)\n", teacher_accuracy, agreement, accuracy);
    EXPECT_GE(agreement, 0.70) << r.output.substr(r.output.size() > 3000 ? r.output.size() - 3000 : 0);

    // The student is a classifier checkpoint with the teacher's task: finetune evaluates it.
    r = run_command("./finetune --threads 2 --device cpu --eval-only --init " + dir / "student/best.bin" + " --dev " + kDev);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NEAR(number_after(r.output, "accuracy "), accuracy, 1e-4) << r.output;
}

TEST(Distill, MismatchedCachesStudentsAndTeachersAreClearErrors) {
    ScratchDir dir;
    const Tokenizer vocab = Tokenizer::load(kVocab);
    random_teacher(vocab, 2, dir / "teacher");
    write_example_shard(dir / "transfer.bin", transfer_slice(vocab, 40));
    RunResult r = distill("cache --teacher " + dir / "teacher/best.bin" + " --transfer " + dir / "transfer.bin" + " --out " + dir / "cache.bin");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const std::string train = "train --teacher " + dir / "teacher/best.bin" + " --epochs 1 --dev ''";

    // The cache does not belong to this transfer set (one example less).
    write_example_shard(dir / "other.bin", transfer_slice(vocab, 39));
    r = distill(train + " --transfer " + dir / "other.bin" + " --cache " + dir / "cache.bin" + " --out " + dir / "a");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find(dir / "cache.bin"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("transfer"), std::string::npos) << r.output;
    EXPECT_FALSE(file_exists(dir / "a/log.jsonl")) << "nothing is written before the inputs are checked";

    // The cache was made by another teacher.
    random_teacher(vocab, 3, dir / "teacher3");
    r = distill("train --teacher " + dir / "teacher3/best.bin" + " --epochs 1 --dev '' --transfer " + dir / "transfer.bin" + " --cache " +
                dir / "cache.bin" + " --out " + dir / "b");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("teacher"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(dir / "cache.bin"), std::string::npos) << r.output;

    // A student whose label count differs from the teacher's (a 3-class classifier as --init).
    r = distill(train + " --transfer " + dir / "transfer.bin" + " --cache " + dir / "cache.bin" + " --init " + dir / "teacher3/best.bin" +
                " --out " + dir / "c");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find(dir / "teacher3/best.bin"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("3 outputs"), std::string::npos) << r.output;

    // A truncated cache.
    const std::string bytes = read_file(dir / "cache.bin");
    write_file_atomic(dir / "truncated.bin", bytes.substr(0, bytes.size() - 5));
    r = distill(train + " --transfer " + dir / "transfer.bin" + " --cache " + dir / "truncated.bin" + " --out " + dir / "d");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find(dir / "truncated.bin"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("truncated"), std::string::npos) << r.output;

    // A missing teacher, and an MLM checkpoint as the teacher.
    r = distill("cache --teacher " + dir / "none.bin" + " --transfer " + dir / "transfer.bin" + " --out " + dir / "e.bin");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find(dir / "none.bin"), std::string::npos) << r.output;
    BertConfig c = bert_preset("tiny", vocab.vocab_size());
    c.num_layers = 2, c.pad_id = vocab.pad_id;
    BertModel mlm(c);
    mlm.init_weights(1);
    save_checkpoint(dir / "mlm.bin", weights_of(mlm), vocab.fingerprint());
    r = distill("cache --teacher " + dir / "mlm.bin" + " --transfer " + dir / "transfer.bin" + " --out " + dir / "f.bin");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("MLM checkpoint"), std::string::npos) << r.output;
    EXPECT_FALSE(file_exists(dir / "f.bin") || file_exists(dir / "f.bin.partial"));
}

// --from-teacher: with the learning rate at 0 the saved student is its initialization, which must
// be the teacher's embeddings, pooler and classifier and teacher layers 0 and 2 of 4 (every 2nd).
TEST(Distill, AStudentFromTheTeacherTakesEveryKthLayer) {
    ScratchDir dir;
    const Tokenizer vocab = Tokenizer::load(kVocab);
    BertConfig c = bert_preset("tiny", vocab.vocab_size());
    c.num_layers = 4, c.hidden = 64, c.num_heads = 2, c.ffn = 128, c.num_labels = 2, c.pad_id = vocab.pad_id;
    BertModel teacher(c);
    teacher.init_weights(21);
    make_dirs(dir / "teacher");
    save_checkpoint(dir / "teacher/best.bin", weights_of(teacher), vocab.fingerprint());
    write_file_atomic(dir / "teacher/task.json", "{\"label_kind\":\"class\",\"labels\":[\"c0\",\"c1\"],\"pairs\":false,\"max_len\":128}\n");
    write_example_shard(dir / "transfer.bin", transfer_slice(vocab, 40));
    RunResult r = distill("cache --teacher " + dir / "teacher/best.bin" + " --transfer " + dir / "transfer.bin" + " --out " + dir / "cache.bin");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = distill("train --teacher " + dir / "teacher/best.bin" + " --transfer " + dir / "transfer.bin" + " --cache " + dir / "cache.bin" +
                " --dev '' --from-teacher --layers 2 --epochs 1 --lr 0 --weight-decay 0 --out " + dir / "student");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const Checkpoint student = load_checkpoint(find_latest(dir / "student").checkpoint_path);  // no dev: no best.bin
    // The same command again: the folder holds a run; the error offers --resume and --overwrite.
    const RunResult again = distill("train --teacher " + dir / "teacher/best.bin" + " --transfer " + dir / "transfer.bin" + " --cache " +
                                    dir / "cache.bin" + " --dev '' --from-teacher --layers 2 --epochs 1 --out " + dir / "student");
    EXPECT_NE(again.exit_code, 0);
    EXPECT_NE(again.output.find("already holds a run"), std::string::npos) << again.output;
    EXPECT_NE(again.output.find("--overwrite"), std::string::npos) << again.output;
    EXPECT_NE(again.output.find("--resume " + dir / "student"), std::string::npos) << again.output;
    ASSERT_EQ(student.config.num_layers, 2);
    ASSERT_EQ(student.config.hidden, 64);
    const Checkpoint t = load_checkpoint(dir / "teacher/best.bin");
    for (const TensorSpec& s : student.tensors) {
        const TensorSpec* from = t.find(s.name);
        ASSERT_NE(from, nullptr) << s.name;
        const bool layered = s.name.rfind("layers.", 0) == 0;
        const int64_t per_layer = layered ? s.numel / 2 : s.numel;
        for (int l = 0; l < (layered ? 2 : 1); l++)
            for (int64_t i = 0; i < per_layer; i++)
                ASSERT_EQ(student.params[s.offset + l * per_layer + i], t.params[from->offset + (layered ? 2 * l : 0) * per_layer + i])
                    << s.name << " student layer " << l << " element " << i;
    }
}
