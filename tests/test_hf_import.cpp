// tests/test_hf_import.cpp: checkpoints imported from Hugging Face by dev/import_hf.py, against
// what transformers computes (the fixture tests/fixtures/hf/, written by dev/hf_fixture.py:
// small random BertForSequenceClassification, BertForMaskedLM and bare BertModel, outputs in
// float64). Checks the import mapping and our forward pass: the encoder output at the valid
// positions, the pooler, the classifier logits and the MLM logits, relative error <= 1e-5; the
// vocabulary fingerprint the importer computed; the exported-then-reimported checkpoints equal
// to the originals bit for bit; the task.json written for finetune.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/tensor_file.h"
#include "common/util.h"
#include "data/tokenizer.h"
#include "model/bert.h"
#include "model/checkpoint.h"
#include "model_fixture.h"

using namespace wr;
using wr::testing::relative_error;

namespace {

const std::string kDir = "tests/fixtures/hf/";
constexpr double kBound = 1e-5;

// The expected outputs and the batch they were computed on.
struct HfFixture {
    TensorFile file = TensorFile::load(kDir + "expected.bin");
    int B, T;
    const int32_t *ids, *types, *lengths;
    HfFixture() {
        const Tensor& t = file.get("input_ids");
        B = (int)t.shape[0], T = (int)t.shape[1];
        ids = t.i32.data(), types = file.i32("token_types").data(), lengths = file.i32("lengths").data();
    }
    ClsInputs cls_inputs() const {
        ClsInputs in;
        in.B = B, in.T = T, in.input_ids = ids, in.token_types = types, in.lengths = lengths;  // no labels: no loss
        return in;
    }
};

// A model built from the checkpoint's own config and head, loaded through load_into.
BertModel model_of(const Checkpoint& ck) {
    BertModel model(ck.config);  // ck.config.num_labels is the checkpoint's head
    load_into(model, ck, ck.vocab_fingerprint);
    return model;
}

// Tracks the worst relative error over the quantities a test compares, printing each.
struct Worst {
    std::string name;
    double err = 0;
    void check(const std::string& what, double e) {
        std::printf("  %-28s rel err %.2e\n", what.c_str(), e);
        EXPECT_LE(e, kBound) << what;
        if (e >= err) err = e, name = what;
    }
    ~Worst() { std::printf("  worst: %s, rel err %.2e (bound %.0e)\n", name.c_str(), err, kBound); }
};

// The encoder output [B,T,C] against the reference at the valid positions (checked); the padded
// positions' error is printed for information only (their values do not matter to any head).
void check_hidden(Worst& worst, const std::string& what, const float* ours, const std::vector<float>& ref, const HfFixture& f,
                  int C) {
    ASSERT_EQ(ref.size(), (size_t)f.B * f.T * C) << what;
    std::vector<float> valid_ours, valid_ref, pad_ours, pad_ref;
    for (int b = 0; b < f.B; b++)
        for (int t = 0; t < f.T; t++) {
            const size_t at = ((size_t)b * f.T + t) * C;
            auto& o = t < f.lengths[b] ? valid_ours : pad_ours;
            auto& r = t < f.lengths[b] ? valid_ref : pad_ref;
            o.insert(o.end(), ours + at, ours + at + C);
            r.insert(r.end(), ref.begin() + at, ref.begin() + at + C);
        }
    worst.check(what + " (valid positions)", relative_error(valid_ours.data(), valid_ref.data(), (int64_t)valid_ref.size()));
    if (!pad_ref.empty())
        std::printf("  %-28s rel err %.2e (padded positions, not compared)\n", what.c_str(),
                    relative_error(pad_ours.data(), pad_ref.data(), (int64_t)pad_ref.size()));
}

// pooled = tanh(x[:, 0] W_pool^T + b_pool), from the encoder output and the model's pooler
// weights (the model keeps its pooled vector internal; the logits check the model's own path).
std::vector<float> pooled_of(const BertModel& model, const float* hidden, int B, int T) {
    const int C = model.config.hidden;
    std::vector<float> pooled((size_t)B * C);
    for (int b = 0; b < B; b++)
        for (int o = 0; o < C; o++) {
            double s = model.w.pool_b[o];
            for (int i = 0; i < C; i++) s += (double)model.w.pool_w[(size_t)o * C + i] * hidden[(size_t)b * T * C + i];
            pooled[(size_t)b * C + o] = (float)std::tanh(s);
        }
    return pooled;
}

}  // namespace

TEST(HfImport, VocabularyFingerprintIsTheTokenizers) {
    const Tokenizer vocab = Tokenizer::load(kDir + "vocab.txt");
    for (const char* name : {"cls.bin", "mlm.bin", "encoder.bin", "cls_roundtrip.bin", "mlm_roundtrip.bin"}) {
        const Checkpoint ck = load_checkpoint(kDir + name);  // also checks the Python writer's checksums and table
        EXPECT_EQ(ck.vocab_fingerprint, vocab.fingerprint()) << name;
        EXPECT_EQ(ck.config.vocab_size, vocab.vocab_size()) << name;
    }
}

// The Python writer's tensor table: ParamLayout's order, shapes and flags (AdamW decay, embedding);
// the extra pooler of encoder.bin after the layout's tensors, flagged as a classifier's pooler is.
TEST(HfImport, TensorTableIsParamLayouts) {
    for (const char* name : {"cls.bin", "mlm.bin", "encoder.bin"}) {
        const Checkpoint ck = load_checkpoint(kDir + name);
        const ParamLayout layout(ck.config);
        BertConfig with_pooler = ck.config;
        with_pooler.num_labels = 2;
        const ParamLayout classifier(with_pooler);
        ASSERT_GE(ck.tensors.size(), layout.tensors().size()) << name;
        for (size_t i = 0; i < ck.tensors.size(); i++) {
            const TensorSpec& got = ck.tensors[i];
            const TensorSpec* want = i < layout.tensors().size() ? &layout.tensors()[i] : classifier.find_optional(got.name);
            ASSERT_NE(want, nullptr) << name << ": unexpected tensor " << got.name;
            EXPECT_EQ(got.name, want->name) << name;
            EXPECT_EQ(got.shape, want->shape) << name << " " << got.name;
            EXPECT_EQ(got.weight_decay, want->weight_decay) << name << " " << got.name;
            EXPECT_EQ(got.embedding, want->embedding) << name << " " << got.name;
            if (i < layout.tensors().size()) {
                EXPECT_EQ(got.offset, want->offset) << name << " " << got.name;
            }
        }
        EXPECT_EQ(ck.tensors.size(), layout.tensors().size() + (std::string(name) == "encoder.bin" ? 2 : 0)) << name;
    }
}

TEST(HfImport, ClassifierMatchesTransformers) {
    const HfFixture f;
    const Checkpoint ck = load_checkpoint(kDir + "cls.bin");
    ASSERT_EQ(ck.kind, CheckpointKind::Classifier);
    ASSERT_EQ(ck.num_labels, 3);
    BertModel model = model_of(ck);
    model.forward_classify(f.cls_inputs(), /*train=*/false, 0);
    const int C = model.config.hidden, K = ck.num_labels;
    Worst worst;
    check_hidden(worst, "cls encoder output", model.encoder_output(), f.file.f32("cls.hidden"), f, C);
    const std::vector<float> pooled = pooled_of(model, model.encoder_output(), f.B, f.T);
    worst.check("cls pooler output", relative_error(pooled.data(), f.file.f32("cls.pooled").data(), (int64_t)pooled.size()));
    ASSERT_EQ(f.file.f32("cls.logits").size(), (size_t)f.B * K);
    worst.check("cls logits", relative_error(model.cls_logits(), f.file.f32("cls.logits").data(), (int64_t)f.B * K));
}

TEST(HfImport, MaskedLmMatchesTransformers) {
    const HfFixture f;
    const Checkpoint ck = load_checkpoint(kDir + "mlm.bin");
    ASSERT_EQ(ck.kind, CheckpointKind::Mlm);
    BertModel model = model_of(ck);
    MlmInputs in;
    in.B = f.B, in.T = f.T, in.input_ids = f.ids, in.token_types = f.types, in.lengths = f.lengths;
    in.M = (int)f.file.i32("masked_positions").size();
    in.masked_positions = f.file.i32("masked_positions").data();
    in.masked_targets = f.file.i32("masked_targets").data();
    model.forward_mlm(in, /*train=*/false, 0);
    const int64_t V = model.config.vocab_size;
    Worst worst;
    check_hidden(worst, "mlm encoder output", model.encoder_output(), f.file.f32("mlm.hidden"), f, model.config.hidden);
    ASSERT_EQ(f.file.f32("mlm.logits").size(), (size_t)(in.M * V));
    worst.check("mlm logits", relative_error(model.mlm_logits(), f.file.f32("mlm.logits").data(), in.M * V));
}

// A bare BertModel imports as an MLM checkpoint (fresh head) carrying the pooler as extra
// tensors: load_into ignores them, and a classifier takes them over with copy_matching_tensors
// (as finetune does).
TEST(HfImport, BareEncoderWithPoolerMatchesTransformers) {
    const HfFixture f;
    const Checkpoint ck = load_checkpoint(kDir + "encoder.bin");
    ASSERT_EQ(ck.kind, CheckpointKind::Mlm);
    ASSERT_NE(ck.find("pooler.dense_w"), nullptr);
    BertModel mlm = model_of(ck);
    MlmInputs in;
    in.B = f.B, in.T = f.T, in.input_ids = f.ids, in.token_types = f.types, in.lengths = f.lengths;  // M = 0
    mlm.forward_mlm(in, /*train=*/false, 0);
    Worst worst;
    check_hidden(worst, "encoder output", mlm.encoder_output(), f.file.f32("encoder.hidden"), f, mlm.config.hidden);

    BertConfig config = ck.config;
    config.num_labels = 2;
    BertModel classifier(config);
    classifier.init_weights(1);
    const std::vector<std::string> copied = copy_matching_tensors(ck, classifier.layout.tensors(), classifier.params.data());
    EXPECT_NE(std::find(copied.begin(), copied.end(), "pooler.dense_w"), copied.end());
    EXPECT_NE(std::find(copied.begin(), copied.end(), "pooler.dense_b"), copied.end());
    EXPECT_EQ(std::find(copied.begin(), copied.end(), "classifier.w"), copied.end());
    classifier.forward_classify(f.cls_inputs(), /*train=*/false, 0);
    check_hidden(worst, "classifier's encoder output", classifier.encoder_output(), f.file.f32("encoder.hidden"), f,
                 config.hidden);
    const std::vector<float> pooled = pooled_of(classifier, classifier.encoder_output(), f.B, f.T);
    worst.check("pooler output", relative_error(pooled.data(), f.file.f32("encoder.pooled").data(), (int64_t)pooled.size()));
}

// dev/hf_fixture.py exported cls.bin and mlm.bin with dev/export_hf.py and imported the exports
// again (it also asserts the files are identical); here our loader must see the same checkpoints.
TEST(HfImport, ExportThenImportIsExact) {
    for (const std::string name : {"cls", "mlm"}) {
        const Checkpoint a = load_checkpoint(kDir + name + ".bin"), b = load_checkpoint(kDir + name + "_roundtrip.bin");
        EXPECT_EQ(a.kind, b.kind) << name;
        EXPECT_EQ(a.num_labels, b.num_labels) << name;
        EXPECT_EQ(a.vocab_fingerprint, b.vocab_fingerprint) << name;
        check_same_config(b, a.config);
        EXPECT_EQ(a.config.hidden_dropout, b.config.hidden_dropout) << name;
        EXPECT_EQ(a.config.attention_dropout, b.config.attention_dropout) << name;
        ASSERT_EQ(a.tensors.size(), b.tensors.size()) << name;
        for (size_t i = 0; i < a.tensors.size(); i++) {
            EXPECT_EQ(a.tensors[i].name, b.tensors[i].name) << name;
            EXPECT_EQ(a.tensors[i].shape, b.tensors[i].shape) << name << " " << a.tensors[i].name;
            EXPECT_EQ(a.tensors[i].offset, b.tensors[i].offset) << name << " " << a.tensors[i].name;
        }
        ASSERT_EQ(a.params.size(), b.params.size()) << name;
        EXPECT_EQ(std::memcmp(a.params.data(), b.params.data(), a.params.size() * sizeof(float)), 0)
            << name << ": parameters differ after export and import";
        EXPECT_EQ(a.params_checksum, b.params_checksum) << name;
    }
}

TEST(HfImport, TaskJsonNamesTheLabels) {
    // finetune.cu's format (task_json): the classifier's id2label, and what the fixture's import was told.
    EXPECT_EQ(read_file(kDir + "task.json"), "{\"label_kind\":\"class\",\"labels\":[\"neg\",\"neutral\",\"pos\"],\"pairs\":true,\"max_len\":24}\n");
}
