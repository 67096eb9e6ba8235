// tests/test_hf_import.cpp: checkpoints imported from Hugging Face by dev/import_hf.py, against
// what transformers computes (the fixture tests/fixtures/hf/, written by dev/hf_fixture.py:
// small random BertForSequenceClassification, BertForMaskedLM and bare BertModel, outputs in
// float64). Checks the import mapping and our forward pass: the encoder output at the valid
// positions, the pooler, the classifier logits and the MLM logits, relative error <= 1e-5; the
// vocabulary fingerprint the importer computed; the exported-then-reimported checkpoints equal
// to the originals bit for bit; the task.json written for finetune; and the script itself on
// broken input: one line naming the file and the problem, exit status 1, no Python traceback.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/tensor_file.h"
#include "common/util.h"
#include "data/tokenizer.h"
#include "model/bert.h"
#include "model/checkpoint.h"
#include "model_fixture.h"
#include "test_helpers.h"

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

// dev/import_hf.py on broken folders answers as the C++ programs do: "import_hf.py: FILE: PROBLEM"
// on one line of stderr and exit status 1, never a Python traceback. Each folder is a valid export
// of the fixture's MLM checkpoint (dev/export_hf.py) with one thing broken.
TEST(HfImport, ScriptRefusesBrokenInputWithOneLineNamingTheFile) {
    using wr::testing::run_command;
    if (run_command("python3 -c 'import numpy, safetensors, torch'").exit_code != 0)
        GTEST_SKIP() << "python3 with numpy, safetensors and torch is needed to run dev/import_hf.py";
    wr::testing::ScratchDir dir;
    const std::string good = dir / "good";
    ASSERT_EQ(run_command("python3 dev/export_hf.py " + kDir + "mlm.bin " + good + " --vocab " + kDir + "vocab.txt").exit_code, 0);
    const wr::testing::RunResult ok = run_command("python3 dev/import_hf.py " + good + " " + dir / "out");
    ASSERT_EQ(ok.exit_code, 0) << ok.output;

    // Edits of the copy's config.json text, or of its weights with safetensors' numpy API.
    auto replace = [](const std::string& from, const std::string& to) {
        return [from, to](const std::string& folder) {
            std::string text = read_file(folder + "/config.json");
            const size_t at = text.find(from);
            ASSERT_NE(at, std::string::npos) << from;
            write_file_atomic(folder + "/config.json", text.replace(at, from.size(), to));
        };
    };
    auto write = [](const std::string& name, const std::string& bytes) {
        return [name, bytes](const std::string& folder) { write_file_atomic(folder + "/" + name, bytes); };
    };
    auto weights = [](const std::string& edit) {
        return [edit](const std::string& folder) {
            const std::string python = "from safetensors.numpy import load_file, save_file; import numpy as np, sys; p = sys.argv[1]; "
                                       "w = load_file(p); " + edit + "; save_file(w, p)";
            ASSERT_EQ(run_command("python3 -c '" + python + "' " + folder + "/model.safetensors").exit_code, 0) << edit;
        };
    };
    auto pytorch_garbage = [](const std::string& folder) {
        std::filesystem::remove(folder + "/model.safetensors");
        write_file_atomic(folder + "/pytorch_model.bin", std::string(300, '\xe0'));
    };
    auto missing_shard = [](const std::string& folder) {
        std::filesystem::remove(folder + "/model.safetensors");
        write_file_atomic(folder + "/model.safetensors.index.json", "{\"weight_map\": {\"a\": \"shard-1.safetensors\"}}");
    };
    struct Case {
        const char* name;
        std::function<void(const std::string&)> edit;
        const char* file;     // the file the message must name
        const char* problem;  // and what it must say
    };
    const Case cases[] = {
        {"zero_heads", replace("\"num_attention_heads\": 4", "\"num_attention_heads\": 0"), "config.json",
         "num_attention_heads is 0, must be an integer in 1..65536"},
        {"heads_not_dividing", replace("\"num_attention_heads\": 4", "\"num_attention_heads\": 3"), "config.json",
         "num_attention_heads 3 does not divide hidden_size 32"},
        {"string_hidden", replace("\"hidden_size\": 32", "\"hidden_size\": \"32\""), "config.json", "hidden_size is '32'"},
        {"huge_layers", replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 2147483647"), "config.json",
         "num_hidden_layers is 2147483647, must be an integer in 1..1024"},
        {"bool_layers", replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": true"), "config.json", "num_hidden_layers is True"},
        {"text_eps", replace("\"layer_norm_eps\": 1e-12", "\"layer_norm_eps\": \"small\""), "config.json",
         "layer_norm_eps is 'small', not a finite number"},
        {"cut_json", write("config.json", "{\"hidden_size\": "), "config.json", "not valid JSON"},
        {"json_list", write("config.json", "[1, 2]"), "config.json", "holds a JSON list, not an object"},
        {"garbage_safetensors", write("model.safetensors", std::string(100, '\xff')), "model.safetensors",
         "cannot read the safetensors weights"},
        {"empty_safetensors", write("model.safetensors", ""), "model.safetensors", "cannot read the safetensors weights"},
        {"garbage_pytorch", pytorch_garbage, "pytorch_model.bin", "cannot read the PyTorch weights"},
        {"missing_shard", missing_shard, "model.safetensors.index.json", "names the shard shard-1.safetensors"},
        {"nan_weight", weights("w[\"bert.embeddings.word_embeddings.weight\"][3, 1] = np.nan"), "model.safetensors",
         "tensor bert.embeddings.word_embeddings.weight holds 1 non-finite value (NaN or infinity), the first at index [3, 1]"},
        {"missing_tensor", weights("del w[\"bert.encoder.layer.1.output.dense.bias\"]"), "model.safetensors",
         "needs tensor bert.encoder.layer.1.output.dense.bias, which is missing"},
        {"odd_shape", weights("w[\"bert.encoder.layer.1.attention.self.key.weight\"] = np.zeros((5, 32), np.float32)"),
         "model.safetensors", "tensor bert.encoder.layer.1.attention.self.key.weight has shape [5, 32]"},
        {"integer_weight", weights("w[\"bert.embeddings.LayerNorm.bias\"] = np.zeros(32, np.int64)"), "model.safetensors",
         "tensor bert.embeddings.LayerNorm.bias has dtype int64, not floating point"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        const std::string folder = dir / c.name;
        ASSERT_EQ(run_command("cp -r " + good + " " + folder).exit_code, 0);
        c.edit(folder);
        // stderr alone (stdout, the success report, to /dev/null).
        const wr::testing::RunResult r = run_command("(python3 dev/import_hf.py " + folder + " " + dir / "out_" + c.name + " > /dev/null)");
        EXPECT_EQ(r.exit_code, 1) << r.output;
        EXPECT_EQ(r.output.find("Traceback"), std::string::npos) << r.output;
        EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << "one line: " << r.output;
        const std::string head = "import_hf.py: " + folder + "/" + c.file + ": ";
        EXPECT_EQ(r.output.rfind(head, 0), 0u) << "should start with '" << head << "': " << r.output;
        EXPECT_NE(r.output.find(c.problem), std::string::npos) << "should say '" << c.problem << "': " << r.output;
        EXPECT_FALSE(std::filesystem::exists(dir / "out_" + c.name + "/model.bin")) << "wrote a checkpoint";
    }
}
