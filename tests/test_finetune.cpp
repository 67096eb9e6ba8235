// tests/test_finetune.cpp: ./finetune end to end: it learns the built-in sentiment task, its
// --eval-only numbers equal metrics computed here from the model's own logits, its --predict
// output (format and probabilities) equals a forward pass made here, and bad input (a dev shard
// with other labels, a checkpoint of another vocabulary, a pair model given single sentences)
// is a clear error.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/util.h"
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

RunResult finetune(const std::string& flags) { return run_command("./finetune --threads 2" + flags); }

// A small classifier (random weights) saved with the task.json finetune writes beside it.
BertModel small_classifier(const Tokenizer& vocab, int num_labels) {
    BertConfig c = bert_preset("tiny", vocab.vocab_size());
    c.num_layers = 1, c.hidden = 64, c.num_heads = 2, c.ffn = 128, c.num_labels = num_labels, c.pad_id = vocab.pad_id;
    BertModel model(c);
    model.init_weights(9);
    for (float& p : model.params) p *= 10.0f;  // random but decisive: predictions differ between examples
    return model;
}

void save_classifier(const BertModel& model, const Tokenizer& vocab, const std::string& dir, const std::string& labels, bool pairs) {
    make_dirs(dir);
    save_checkpoint(dir + "/best.bin", weights_of(model), vocab.fingerprint());
    write_file_atomic(dir + "/task.json", "{\"label_kind\":\"class\",\"labels\":[" + labels + "],\"pairs\":" + (pairs ? "true" : "false") +
                                              ",\"max_len\":64}\n");
}

ClsInputs single_input(const Encoding& e, std::vector<int32_t>& types, std::vector<int32_t>& length) {
    types.assign(e.ids.size(), 0);
    length = {(int32_t)e.ids.size()};
    ClsInputs in;
    in.B = 1, in.T = (int)e.ids.size(), in.input_ids = e.ids.data(), in.token_types = types.data(), in.lengths = length.data();
    return in;
}

}  // namespace

// Fine-tuning from random weights on a slice of the built-in task is enough to see learning
// (the default run, from the pretrained checkpoint, is README material, not a test): the dev
// accuracy must pass a threshold far above chance (0.5).
TEST(Finetune, LearnsTheBuiltInSentimentTask) {
    ScratchDir dir;
    const Tokenizer vocab = Tokenizer::load(kVocab);
    BertConfig c = bert_preset("tiny", vocab.vocab_size());
    c.pad_id = vocab.pad_id;
    BertModel init(c);
    init.init_weights(4);
    save_checkpoint(dir / "init.bin", weights_of(init), vocab.fingerprint());
    const RunResult r = finetune(" --init " + dir / "init.bin" + " --epochs 2 --lr 1e-3 --batch 32 --out " + dir / "run");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const size_t at = r.output.rfind("best dev accuracy ");
    ASSERT_NE(at, std::string::npos) << r.output;
    const double accuracy = std::atof(r.output.c_str() + at + 18);
    std::printf("built-in sentiment, tiny from random weights, 2 epochs: dev accuracy %.4f (threshold 0.62)\n", accuracy);
    EXPECT_GE(accuracy, 0.62) << r.output.substr(r.output.size() > 3000 ? r.output.size() - 3000 : 0);
    EXPECT_TRUE(file_exists(dir / "run/best.bin"));
    EXPECT_NE(read_file(dir / "run/task.json").find("\"labels\":[\"negative\",\"positive\"]"), std::string::npos);
}

TEST(Finetune, EvalOnlyReportsTheMetricsOfTheModelsOwnLogits) {
    ScratchDir dir;
    const Tokenizer vocab = Tokenizer::load(kVocab);
    BertModel model = small_classifier(vocab, 2);
    save_classifier(model, vocab, dir / "clf", "\"negative\",\"positive\"", false);
    ExampleSet dev = read_example_shard(kDev, &vocab);
    dev.examples.resize(200);  // enough for the comparison, quick to compute twice
    write_example_shard(dir / "dev200.bin", dev);
    const RunResult r = finetune(" --eval-only --init " + dir / "clf/best.bin" + " --dev " + dir / "dev200.bin");
    ASSERT_EQ(r.exit_code, 0) << r.output;

    // The same numbers computed here, one example at a time.
    ConfusionMatrix cm(2);
    for (const Example& e : dev.examples) {
        std::vector<int32_t> types(e.ids.size(), 0), length = {(int32_t)e.ids.size()};
        ClsInputs in;
        in.B = 1, in.T = (int)e.ids.size(), in.input_ids = e.ids.data(), in.token_types = types.data(), in.lengths = length.data();
        model.forward_classify(in, false, 0);
        cm.add(e.label, model.cls_logits()[1] > model.cls_logits()[0] ? 1 : 0);
    }
    const ClassificationMetrics m = classification_metrics(cm);
    char expected[128];
    std::snprintf(expected, sizeof expected, "accuracy %.4f | macro-F1 %.4f | micro-F1 %.4f", m.accuracy, m.macro_f1, m.micro_f1);
    std::printf("expected headline: %s\n", expected);
    EXPECT_NE(r.output.find(expected), std::string::npos) << "expected '" << expected << "' in:\n" << r.output;
    EXPECT_GT(m.accuracy, 0.0);
}

TEST(Finetune, PredictPrintsLabelsAndTheModelsProbabilities) {
    ScratchDir dir;
    const Tokenizer vocab = Tokenizer::load(kVocab);
    BertModel model = small_classifier(vocab, 3);
    save_classifier(model, vocab, dir / "clf", "\"bad\",\"neutral\",\"good\"", false);
    const std::vector<std::string> lines = {"the soup is spicy .", "the film never drags , but the ending is dull .", "anna loved it"};
    std::string input;
    for (const std::string& l : lines) input += l + "\n";
    write_file_atomic(dir / "input.txt", input);
    // --predictions naming the input file is refused, the input left as it was.
    const std::string input_text = read_file(dir / "input.txt");
    const RunResult same = finetune(" --predict " + dir / "input.txt" + " --init " + dir / "clf/best.bin" + " --predictions " +
                                    dir / "input.txt");
    EXPECT_NE(same.exit_code, 0);
    EXPECT_NE(same.output.find("names an input of this command"), std::string::npos) << same.output;
    EXPECT_EQ(read_file(dir / "input.txt"), input_text);
    // fp32: the probabilities are compared below with an fp32 forward pass, to 6e-5. No
    // --predictions: the table goes beside the model (best.bin -> best.predictions.tsv), so the
    // predictions of two models never overwrite each other.
    const RunResult r = finetune(" --predict " + dir / "input.txt" + " --init " + dir / "clf/best.bin" + " --precision fp32");
    ASSERT_EQ(r.exit_code, 0) << r.output;

    const std::vector<std::string> names = {"bad", "neutral", "good"};
    // Standard output names its columns first: the label, the probabilities in label order, the text.
    EXPECT_NE(r.output.find("label\tp_bad p_neutral p_good\ttext\n"), std::string::npos) << r.output;
    const std::vector<std::string> table = split(read_file(dir / "clf/best.predictions.tsv"), '\n');
    ASSERT_GE(table.size(), lines.size() + 1);
    EXPECT_EQ(table[0], "text\tlabel\tp_bad\tp_neutral\tp_good");
    for (size_t i = 0; i < lines.size(); i++) {
        std::vector<int32_t> types, length;
        const Encoding e = vocab.encode(lines[i], 64);
        model.forward_classify(single_input(e, types, length), false, 0);
        const float* z = model.cls_logits();
        const double top = std::max({z[0], z[1], z[2]});
        double sum = 0, p[3];
        for (int k = 0; k < 3; k++) sum += p[k] = std::exp(z[k] - top);
        const int label = (int)(std::max_element(z, z + 3) - z);
        // printed: "label<TAB>p0 p1 p2<TAB>text"
        char want[128];
        std::snprintf(want, sizeof want, "%s\t%.4f %.4f %.4f\t", names[label].c_str(), p[0] / sum, p[1] / sum, p[2] / sum);
        EXPECT_NE(r.output.find(std::string(want) + lines[i]), std::string::npos) << "expected '" << want << lines[i] << "' in:\n" << r.output;
        const std::vector<std::string> row = split(table[i + 1], '\t');
        ASSERT_EQ(row.size(), 5u) << table[i + 1];
        EXPECT_EQ(row[0], lines[i]);
        EXPECT_EQ(row[1], names[label]);
        for (int k = 0; k < 3; k++) EXPECT_NEAR(std::atof(row[2 + k].c_str()), p[k] / sum, 6e-5) << table[i + 1];
    }
}

TEST(Finetune, BadInputsAreClearErrors) {
    ScratchDir dir;
    const Tokenizer vocab = Tokenizer::load(kVocab);

    // A dev shard whose label set differs from the training shard's.
    ExampleSet dev = read_example_shard(kDev, &vocab);
    dev.label_names = {"negative", "neutral", "positive"};
    write_example_shard(dir / "dev3.bin", dev);
    BertConfig c = bert_preset("tiny", vocab.vocab_size());
    c.num_layers = 1, c.pad_id = vocab.pad_id;
    BertModel mlm(c);
    mlm.init_weights(1);
    save_checkpoint(dir / "mlm.bin", weights_of(mlm), vocab.fingerprint());
    RunResult r = finetune(" --init " + dir / "mlm.bin" + " --dev " + dir / "dev3.bin" + " --epochs 1 --out " + dir / "a");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find(dir / "dev3.bin"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("label_names"), std::string::npos) << r.output;
    EXPECT_FALSE(file_exists(dir / "a/log.jsonl")) << "nothing is written before the inputs are checked";

    // A checkpoint trained with another vocabulary.
    save_checkpoint(dir / "other_vocab.bin", weights_of(mlm), vocab.fingerprint() ^ 1);
    r = finetune(" --init " + dir / "other_vocab.bin" + " --epochs 1 --out " + dir / "b");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find(dir / "other_vocab.bin"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("vocab"), std::string::npos) << r.output;

    // A sentence-pair model given single sentences to predict.
    BertModel pair_model = small_classifier(vocab, 2);
    save_classifier(pair_model, vocab, dir / "pairs", "\"no\",\"yes\"", true);
    write_file_atomic(dir / "single.txt", "a sentence without its pair\n");
    r = finetune(" --predict " + dir / "single.txt" + " --init " + dir / "pairs/best.bin" + " --out " + dir / "c");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("single sentence"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("pairs"), std::string::npos) << r.output;

    // --eval-only with an MLM checkpoint, and a missing checkpoint.
    r = finetune(" --eval-only --init " + dir / "mlm.bin" + " --dev " + kDev);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("MLM checkpoint"), std::string::npos) << r.output;
    r = finetune(" --init " + dir / "none.bin" + " --out " + dir / "d");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find(dir / "none.bin"), std::string::npos) << r.output;
}

// A NaN weight in --init makes every loss NaN: the run stops after --max-skipped-steps skipped
// updates in a row, with exit status 1, instead of looping (under `timeout`, which it would hit).
TEST(Finetune, StopsAfterTooManyNonFiniteSteps) {
    ScratchDir dir;
    const Tokenizer vocab = Tokenizer::load(kVocab);
    BertConfig c = bert_preset("tiny", vocab.vocab_size());
    c.num_layers = 1, c.hidden = 64, c.num_heads = 2, c.ffn = 128, c.pad_id = vocab.pad_id;
    BertModel init(c);
    init.init_weights(4);
    save_checkpoint(dir / "init.bin", weights_of(init), vocab.fingerprint());
    // A learning rate of 1e30 without clipping: the first update sends the weights to 1e30, the
    // next forward pass overflows, and no update after it is finite.
    RunResult r = run_command("timeout 60 ./finetune --threads 2 --init " + dir / "init.bin" +
                              " --epochs 1 --batch 32 --lr 1e30 --clip 0 --warmup 0 --max-skipped-steps 4 --out " + dir / "run");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("the loss or gradient was not finite in 4 updates in a row"), std::string::npos) << r.output;

    // A checkpoint with a weight that is not finite is refused before any step, naming the tensor.
    init.w.qkv_w[5] = NAN;
    save_checkpoint(dir / "nan.bin", weights_of(init), vocab.fingerprint());
    r = run_command("timeout 60 ./finetune --threads 2 --init " + dir / "nan.bin" + " --epochs 1 --out " + dir / "nan_run");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("layers.qkv_w"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("not finite"), std::string::npos) << r.output;
    EXPECT_FALSE(file_exists(dir / "nan_run/log.jsonl"));
}
