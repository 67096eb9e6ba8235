// tests/test_checkpoint.cpp: checkpoints, training states and the output folder's keeper: bitwise
// round trips, every mismatch (config field, vocabulary, tensor, the checkpoint a state belongs
// to) and every kind of bad file (truncated, corrupted, wrong magic or version, impossible sizes)
// giving its own error that names the file and the field; the keeper keeping the last K pairs and
// the best, and never losing a good checkpoint to an interrupted save. All on a tiny model.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>

#include "common/binary_io.h"
#include "model/checkpoint.h"
#include "test_helpers.h"

using namespace wr;
using wr::testing::ScratchDir;

namespace {

constexpr uint64_t kFingerprint = 0x0123456789abcdefULL;

BertConfig tiny_config() {
    BertConfig c;
    c.num_layers = 2;
    c.hidden = 32;
    c.num_heads = 2;
    c.ffn = 64;
    c.vocab_size = 40;
    c.max_positions = 16;
    return c;
}

BertModel make_model(const BertConfig& config, uint64_t seed) {
    BertModel model(config);
    model.init_weights(seed);
    return model;
}

std::vector<float> random_floats(int64_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal;
    std::vector<float> x((size_t)n);
    for (float& f : x) f = normal(rng);
    return x;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Overwrites bytes of a file; with `reseal`, also recomputes its checksum, so the planted fault
// is the only one the reader can find.
template <typename T>
void patch(const std::string& path, size_t offset, T value, bool reseal = true) {
    std::string file = read_file(path);
    ASSERT_LE(offset + sizeof(T), file.size());
    std::memcpy(&file[offset], &value, sizeof(T));
    if (reseal) seal_checksum(file);
    write_file_atomic(path, file);
}

void truncate_by(const std::string& path, size_t n) {
    std::string file = read_file(path);
    file.resize(file.size() - n);
    write_file_atomic(path, file);
}

std::string saved_checkpoint(const ScratchDir& dir, const std::string& name, const BertModel& model) {
    const std::string path = dir / name;
    save_checkpoint(path, model.config, kFingerprint, model.layout, model.params.data());
    return path;
}

TrainingProgress sample_progress(int64_t step) {
    TrainingProgress p;
    p.step = step;
    p.best_val_loss = 2.5;
    p.rng_state = {0xdeadbeefULL, 42, ~0ULL};
    p.loader_state = std::string("pos\0ition", 9) + "\x01\x02\x03\xff";  // NUL bytes, odd length
    return p;
}

std::vector<std::string> folder_listing(const std::string& dir) {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Checkpoint files

// Weights that are not finite are refused when the checkpoint is read (whatever reads it:
// --init, --resume, --eval-only, a teacher), naming the file and the tensor.
TEST(Checkpoint, NonFiniteWeightsAreAnErrorNamingTheTensor) {
    ScratchDir dir;
    for (const float bad : {std::nanf(""), std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()}) {
        BertModel model = make_model(tiny_config(), 1);
        const TensorSpec& t = model.layout.find("layers.ffn_out_w");
        model.params[t.offset + 7] = bad;
        save_checkpoint(dir / "ckpt.bin", weights_of(model), kFingerprint);
        EXPECT_ERROR_MENTIONS(load_checkpoint(dir / "ckpt.bin"), "ckpt.bin", "layers.ffn_out_w", "not finite", "index 7");
    }
}

TEST(Checkpoint, RoundTripIsBitwise) {
    ScratchDir dir;
    BertModel model = make_model(tiny_config(), 1);
    model.params[0] = -0.0f;  // values whose bits a careless conversion would change
    model.params[1] = std::numeric_limits<float>::denorm_min();
    model.params[2] = std::numeric_limits<float>::max();
    const std::string path = dir / "ckpt.bin";
    const uint64_t sum = save_checkpoint(path, model.config, kFingerprint, model.layout, model.params.data());

    const Checkpoint ck = load_checkpoint(path);
    EXPECT_EQ(ck.path, path);
    EXPECT_EQ(ck.kind, CheckpointKind::Mlm);
    EXPECT_EQ(ck.num_labels, 0);
    EXPECT_NO_THROW(check_same_config(ck, model.config));
    EXPECT_EQ(ck.config.layer_norm_eps, 1e-12f);
    EXPECT_EQ(ck.vocab_fingerprint, kFingerprint);
    EXPECT_EQ(ck.params_checksum, sum);
    EXPECT_EQ(sum, params_checksum(model.params.data(), model.layout.total()));
    EXPECT_TRUE(same_bits(ck.params, model.params));
    const auto& expected = model.layout.tensors();
    ASSERT_EQ(ck.tensors.size(), expected.size());
    for (size_t i = 0; i < expected.size(); i++) {
        EXPECT_EQ(ck.tensors[i].name, expected[i].name);
        EXPECT_EQ(ck.tensors[i].shape, expected[i].shape) << expected[i].name;
        EXPECT_EQ(ck.tensors[i].offset, expected[i].offset) << expected[i].name;
        EXPECT_EQ(ck.tensors[i].numel, expected[i].numel) << expected[i].name;
        EXPECT_EQ(ck.tensors[i].weight_decay, expected[i].weight_decay) << expected[i].name;
        EXPECT_EQ(ck.tensors[i].embedding, expected[i].embedding) << expected[i].name;
    }

    BertModel other = make_model(tiny_config(), 2);
    load_into(other, ck, kFingerprint);
    EXPECT_TRUE(same_bits(other.params, model.params));
}

TEST(Checkpoint, ConfigMismatchNamesTheField) {
    ScratchDir dir;
    struct Case {
        const char* field;
        void (*change)(BertConfig&);
        const char* checkpoint_has;
        const char* model_has;
    };
    const Case cases[] = {
        {"num_layers", [](BertConfig& c) { c.num_layers = 3; }, "3", "2"},
        {"hidden", [](BertConfig& c) { c.hidden = 64; }, "64", "32"},
        {"num_heads", [](BertConfig& c) { c.num_heads = 4; }, "4", "2"},
        {"ffn", [](BertConfig& c) { c.ffn = 128; }, "128", "64"},
        {"vocab_size", [](BertConfig& c) { c.vocab_size = 41; }, "41", "40"},
        {"max_positions", [](BertConfig& c) { c.max_positions = 32; }, "32", "16"},
        {"type_vocab", [](BertConfig& c) { c.type_vocab = 3; }, "3", "2"},
        {"pad_id", [](BertConfig& c) { c.pad_id = 1; }, "1", "0"},
        {"layer_norm_eps", [](BertConfig& c) { c.layer_norm_eps = 1e-5f; }, "9.99999975e-06", "9.99999996e-13"},
    };
    BertModel model = make_model(tiny_config(), 1);
    const std::vector<float> before = model.params;
    for (const Case& k : cases) {
        SCOPED_TRACE(k.field);
        BertConfig other = tiny_config();
        k.change(other);
        const std::string path = saved_checkpoint(dir, std::string("ckpt_") + k.field + ".bin", make_model(other, 3));
        const Checkpoint ck = load_checkpoint(path);
        const std::string field = std::string("field '") + k.field + "'";
        const std::string says = std::string("checkpoint has ") + k.checkpoint_has + ", the model " + k.model_has;
        EXPECT_ERROR_MENTIONS(load_into(model, ck, kFingerprint), path.c_str(), field.c_str(), says.c_str());
        EXPECT_TRUE(same_bits(model.params, before)) << "a failed load changed the model";
    }
    // Dropout rates are training settings: a checkpoint saved with others still loads.
    BertConfig other = tiny_config();
    other.hidden_dropout = 0.0f, other.attention_dropout = 0.2f;
    const BertModel source = make_model(other, 3);
    EXPECT_NO_THROW(load_into(model, load_checkpoint(saved_checkpoint(dir, "ckpt_dropout.bin", source)), kFingerprint));
    EXPECT_TRUE(same_bits(model.params, source.params));
}

TEST(Checkpoint, VocabularyMismatchNamesBothFingerprints) {
    ScratchDir dir;
    const std::string path = saved_checkpoint(dir, "ckpt.bin", make_model(tiny_config(), 1));
    BertModel model = make_model(tiny_config(), 2);
    const std::vector<float> before = model.params;
    EXPECT_ERROR_MENTIONS(load_into(model, load_checkpoint(path), 0xfedcba9876543210ULL), path.c_str(),
                          "field 'vocab_fingerprint'", "0123456789abcdef", "fedcba9876543210");
    EXPECT_TRUE(same_bits(model.params, before));
}

TEST(Checkpoint, TensorsAreTakenByNameAndShape) {
    ScratchDir dir;
    const BertModel mlm = make_model(tiny_config(), 1);
    const Checkpoint ck = load_checkpoint(saved_checkpoint(dir, "mlm.bin", mlm));

    // A classifier-like layout: the encoder's tensors, no MLM head, a head of its own.
    std::vector<TensorSpec> dst;
    int64_t total = 0;
    auto add = [&](const std::string& name, std::vector<int64_t> shape) {
        TensorSpec t;
        t.name = name;
        t.shape = shape;
        t.numel = 1;
        for (int64_t d : shape) t.numel *= d;
        t.offset = total;
        total += t.numel;
        dst.push_back(t);
    };
    for (const TensorSpec& t : mlm.layout.tensors())
        if (t.name.rfind("mlm_head.", 0) != 0) add(t.name, t.shape);
    add("classifier.w", {3, 32});
    add("classifier.b", {3});
    std::vector<float> params((size_t)total, 7.0f);
    const std::vector<std::string> copied = copy_matching_tensors(ck, dst, params.data());
    EXPECT_EQ(copied.size(), dst.size() - 2);
    for (const TensorSpec& t : dst) {
        const TensorSpec* src = ck.find(t.name);
        if (!src) {
            for (int64_t i = 0; i < t.numel; i++) ASSERT_EQ(params[t.offset + i], 7.0f) << t.name << " should be untouched";
            continue;
        }
        EXPECT_EQ(std::memcmp(params.data() + t.offset, ck.params.data() + src->offset, t.numel * sizeof(float)), 0) << t.name;
    }

    // The same name with another shape: an error before anything is copied.
    dst[0].shape = {40, 16};
    std::fill(params.begin(), params.end(), 7.0f);
    EXPECT_ERROR_MENTIONS(copy_matching_tensors(ck, dst, params.data()), ck.path.c_str(), "field 'tensors'",
                          "'embeddings.word' is [40, 32] in the checkpoint but [40, 16] in the model");
    EXPECT_TRUE(std::all_of(params.begin(), params.end(), [](float x) { return x == 7.0f; }));

    // A checkpoint without a tensor the model needs cannot be loaded into it.
    std::vector<TensorSpec> partial = mlm.layout.tensors();
    partial.pop_back();  // mlm_head.bias, the last tensor
    const std::string path = dir / "partial.bin";
    save_checkpoint(path, WeightsView{mlm.config, partial, mlm.params.data(), partial.back().offset + partial.back().numel},
                    kFingerprint);
    BertModel model = make_model(tiny_config(), 2);
    const std::vector<float> before = model.params;
    EXPECT_ERROR_MENTIONS(load_into(model, load_checkpoint(path), kFingerprint), path.c_str(), "field 'tensors'",
                          "no tensor 'mlm_head.bias'");
    EXPECT_TRUE(same_bits(model.params, before));
}

TEST(Checkpoint, ClassifierKindRoundTrip) {
    ScratchDir dir;
    const BertModel model = make_model(tiny_config(), 1);
    const std::string path = dir / "cls.bin";
    WeightsView w = weights_of(model);
    w.kind = CheckpointKind::Classifier;
    w.num_labels = 3;
    save_checkpoint(path, w, kFingerprint);
    const Checkpoint ck = load_checkpoint(path);
    EXPECT_EQ(ck.kind, CheckpointKind::Classifier);
    EXPECT_EQ(ck.num_labels, 3);
    w.num_labels = 0;  // a classifier without outputs is refused by the writer
    EXPECT_ERROR_MENTIONS(save_checkpoint(dir / "bad.bin", w, kFingerprint), "bad.bin", "cannot save");
    EXPECT_FALSE(std::filesystem::exists(dir / "bad.bin"));
}

TEST(Checkpoint, BadFilesNameTheFileAndTheField) {
    ScratchDir dir;
    const BertModel model = make_model(tiny_config(), 1);
    const std::string good = saved_checkpoint(dir, "good.bin", model);
    const std::string good_bytes = read_file(good);
    auto fresh = [&](const std::string& name) {
        const std::string path = dir / name;
        write_file_atomic(path, good_bytes);
        return path;
    };
    std::string p;

    EXPECT_ERROR_MENTIONS(load_checkpoint(dir / "missing.bin"), "missing.bin", "cannot open");

    p = fresh("short.bin");
    truncate_by(p, good_bytes.size() - 40);
    EXPECT_ERROR_MENTIONS(load_checkpoint(p), p.c_str(), "field 'header'", "truncated");

    p = fresh("truncated.bin");
    truncate_by(p, 4);
    EXPECT_ERROR_MENTIONS(load_checkpoint(p), p.c_str(), "field 'file size'", "(truncated)");

    p = fresh("trailing.bin");
    write_file_atomic(p, good_bytes + "x");
    EXPECT_ERROR_MENTIONS(load_checkpoint(p), p.c_str(), "field 'file size'", "(trailing bytes)");

    p = fresh("corrupt_params.bin");
    patch<float>(p, good_bytes.size() - 8, 1.5f, /*reseal=*/false);
    EXPECT_ERROR_MENTIONS(load_checkpoint(p), p.c_str(), "field 'checksum'", "corrupted");

    p = fresh("corrupt_config.bin");
    patch<int32_t>(p, 68, 64, /*reseal=*/false);  // hidden
    EXPECT_ERROR_MENTIONS(load_checkpoint(p), p.c_str(), "field 'checksum'");

    p = fresh("magic.bin");
    patch<char>(p, 0, 'X', /*reseal=*/false);
    EXPECT_ERROR_MENTIONS(load_checkpoint(p), p.c_str(), "field 'magic'", "WRCHKPNT");

    p = fresh("version.bin");
    patch<uint32_t>(p, 8, 2);
    EXPECT_ERROR_MENTIONS(load_checkpoint(p), p.c_str(), "field 'version'", "is 2, this build reads version 1");

    p = fresh("kind.bin");
    patch<uint32_t>(p, 12, 7);
    EXPECT_ERROR_MENTIONS(load_checkpoint(p), p.c_str(), "field 'kind'", "is 7");

    p = fresh("labels.bin");
    patch<uint32_t>(p, 16, 2);  // an MLM checkpoint with labels
    EXPECT_ERROR_MENTIONS(load_checkpoint(p), p.c_str(), "field 'num_labels'");

    p = fresh("tensor_count.bin");
    patch<uint32_t>(p, 20, 0);
    EXPECT_ERROR_MENTIONS(load_checkpoint(p), p.c_str(), "field 'tensor_count'");

    p = fresh("huge_params.bin");
    patch<uint64_t>(p, 32, ~0ULL);  // 2^64 - 1 parameters: 2^66 bytes, computed without overflow
    EXPECT_ERROR_MENTIONS(load_checkpoint(p), p.c_str(), "field 'file size'", "more than 2^63");

    p = fresh("huge_table.bin");
    patch<uint64_t>(p, 48, ~0ULL - 7);
    EXPECT_ERROR_MENTIONS(load_checkpoint(p), p.c_str(), "field 'file size'", "more than 2^63");

    p = fresh("config.bin");
    patch<int32_t>(p, 68, 0);  // hidden = 0, checksum valid: the config itself is checked
    EXPECT_ERROR_MENTIONS(load_checkpoint(p), p.c_str(), "field 'hidden'", "must be positive");

    p = fresh("eps.bin");
    patch<float>(p, 96, -1.0f);
    EXPECT_ERROR_MENTIONS(load_checkpoint(p), p.c_str(), "field 'layer_norm_eps'");

    // The first tensor entry starts at 128: name length, ndim, flags, reserved, offset, numel, dims.
    p = fresh("numel.bin");
    patch<uint64_t>(p, 128 + 24, 5);
    EXPECT_ERROR_MENTIONS(load_checkpoint(p), p.c_str(), "field 'tensors'", "('embeddings.word') has numel 5");

    p = fresh("offset.bin");
    patch<uint64_t>(p, 128 + 16, 8);
    EXPECT_ERROR_MENTIONS(load_checkpoint(p), p.c_str(), "field 'tensors'", "starts at 8, not at 0");

    p = fresh("dims.bin");
    patch<uint32_t>(p, 128 + 4, 9);
    EXPECT_ERROR_MENTIONS(load_checkpoint(p), p.c_str(), "field 'tensors'", "9 dims");

    p = fresh("dim.bin");
    patch<int64_t>(p, 128 + 32, -40);
    EXPECT_ERROR_MENTIONS(load_checkpoint(p), p.c_str(), "field 'tensors'", "dimension -40");

    p = fresh("name.bin");
    patch<uint32_t>(p, 128, 100000);
    EXPECT_ERROR_MENTIONS(load_checkpoint(p), p.c_str(), "field 'tensors'", "name of 100000 bytes");

    // The reader only reads: the good file is byte for byte as written.
    EXPECT_EQ(read_file(good), good_bytes);
}

// A config field out of its range (docs/checkpoints.md) would make a program that builds the
// checkpoint's model allocate without bound; the reader names the field instead. The checksum is
// recomputed, so the range check is the one that fires.
TEST(Checkpoint, ConfigFieldsOutOfRangeNameTheField) {
    ScratchDir dir;
    const std::string good_bytes = read_file(saved_checkpoint(dir, "good.bin", make_model(tiny_config(), 1)));
    const int32_t huge = 2147483647;
    struct Case {
        size_t offset;  // in the config block at 64
        int32_t value;
        const char* field;
        const char* says;
    };
    const Case cases[] = {
        {64, huge, "num_layers", "is 2147483647, must be positive and at most 1024"},
        {64, 1025, "num_layers", "at most 1024"},
        {64, -3, "num_layers", "is -3"},
        {68, huge, "hidden", "at most 65536"},
        {72, huge, "num_heads", "at most 65536"},
        {72, 3, "num_heads", "3 heads do not divide hidden size 32"},
        {76, huge, "ffn", "at most 262144"},
        {80, huge, "vocab_size", "at most 16777216"},
        {84, huge, "max_positions", "at most 1048576"},
        {88, huge, "type_vocab", "at most 1024"},
        {92, 40, "pad_id", "outside the vocabulary"},
    };
    for (const Case& k : cases) {
        SCOPED_TRACE(std::string(k.field) + " = " + std::to_string(k.value));
        const std::string p = dir / "bad.bin";
        write_file_atomic(p, good_bytes);
        patch<int32_t>(p, k.offset, k.value);
        const std::string field = std::string("field '") + k.field + "'";
        EXPECT_ERROR_MENTIONS(load_checkpoint(p), p.c_str(), field.c_str(), k.says);
    }

    // In range, but not the config of the tensors held: num_layers 3 over the tensors of 2 layers.
    const std::string p = dir / "three_layers.bin";
    write_file_atomic(p, good_bytes);
    patch<int32_t>(p, 64, 3);
    EXPECT_ERROR_MENTIONS(load_checkpoint(p), p.c_str(), "field 'config'", "'layers.qkv_w' as [3, 96, 32]", "holds [2, 96, 32]");
}

// ---------------------------------------------------------------------------------------------
// Training-state files

TEST(CheckpointState, RoundTripIsBitwise) {
    ScratchDir dir;
    const std::vector<float> m = random_floats(1000, 1), v = random_floats(1000, 2);
    const std::string path = dir / "state.bin";
    save_training_state(path, sample_progress(123), 0xabcULL, m.data(), v.data(), 1000);
    const TrainingState s = load_training_state(path, 1000, 0xabcULL, "ckpt.bin");
    EXPECT_EQ(s.progress.step, 123);
    EXPECT_EQ(s.progress.best_val_loss, 2.5);
    EXPECT_EQ(s.progress.rng_state, sample_progress(123).rng_state);
    EXPECT_EQ(s.progress.loader_state, sample_progress(123).loader_state);
    EXPECT_EQ(s.params_checksum, 0xabcULL);
    EXPECT_TRUE(same_bits(s.m, m));
    EXPECT_TRUE(same_bits(s.v, v));

    TrainingProgress empty;  // no RNG words, no loader bytes, no evaluation yet
    save_training_state(path, empty, 7, m.data(), v.data(), 1000);
    const TrainingState e = load_training_state(path, 1000, 7, "ckpt.bin");
    EXPECT_EQ(e.progress.step, 0);
    EXPECT_EQ(e.progress.best_val_loss, kNoValidationLoss);
    EXPECT_TRUE(e.progress.rng_state.empty());
    EXPECT_TRUE(e.progress.loader_state.empty());
    EXPECT_TRUE(same_bits(e.v, v));
}

TEST(CheckpointState, PairedWithAnotherCheckpointIsRejected) {
    ScratchDir dir;
    const BertModel a = make_model(tiny_config(), 1), b = make_model(tiny_config(), 2);
    const std::string ckpt_a = dir / "ckpt_a.bin", ckpt_b = dir / "ckpt_b.bin", state = dir / "state_a.bin";
    const uint64_t sum_a = save_checkpoint(ckpt_a, a.config, kFingerprint, a.layout, a.params.data());
    save_checkpoint(ckpt_b, b.config, kFingerprint, b.layout, b.params.data());
    const std::vector<float> m = random_floats(a.layout.total(), 3);
    save_training_state(state, sample_progress(5), sum_a, m.data(), m.data(), a.layout.total());

    EXPECT_NO_THROW(load_training_state(state, load_checkpoint(ckpt_a)));
    EXPECT_ERROR_MENTIONS(load_training_state(state, load_checkpoint(ckpt_b)), state.c_str(), ckpt_b.c_str(),
                          "field 'params_checksum'", "another checkpoint");

    BertConfig wider = tiny_config();
    wider.hidden = 64;
    const BertModel c = make_model(wider, 1);
    const std::string ckpt_c = dir / "ckpt_c.bin";
    save_checkpoint(ckpt_c, c.config, kFingerprint, c.layout, c.params.data());
    EXPECT_ERROR_MENTIONS(load_training_state(state, load_checkpoint(ckpt_c)), state.c_str(), ckpt_c.c_str(),
                          "field 'param_count'", "another model");
}

// --resume reads the pair `latest` names: a state of another step than that pair (here, resaved
// with step 5 beside the checkpoint of step 3, with the checkpoint's parameters so nothing else
// differs) is refused, naming both files and both steps.
TEST(CheckpointState, StepOtherThanItsCheckpointsIsRejected) {
    ScratchDir dir;
    const BertModel model = make_model(tiny_config(), 1);
    const int64_t n = model.layout.total();
    const std::vector<float> m = random_floats(n, 3);
    CheckpointKeeper keeper(dir.path, 2);
    keeper.save(weights_of(model), kFingerprint, m.data(), m.data(), sample_progress(3), std::nan(""));
    const ResumePoint at = find_latest(dir.path);
    ASSERT_EQ(at.step, 3);
    const Checkpoint ck = load_checkpoint(at.checkpoint_path);
    EXPECT_EQ(load_training_state(at, ck).progress.step, 3);

    save_training_state(at.state_path, sample_progress(5), ck.params_checksum, m.data(), m.data(), n);
    EXPECT_ERROR_MENTIONS(load_training_state(at, ck), at.state_path.c_str(), at.checkpoint_path.c_str(), "field 'step'", "is 5",
                          "step 3");
}

TEST(CheckpointState, BadFilesNameTheFileAndTheField) {
    ScratchDir dir;
    const std::vector<float> m = random_floats(100, 1);
    const std::string good = dir / "good.bin";
    save_training_state(good, sample_progress(9), 1, m.data(), m.data(), 100);
    const std::string good_bytes = read_file(good);
    auto fresh = [&](const std::string& name) {
        const std::string path = dir / name;
        write_file_atomic(path, good_bytes);
        return path;
    };
    auto load = [](const std::string& path) { return load_training_state(path, 100, 1, "ckpt.bin"); };
    std::string p;

    p = fresh("short.bin");
    truncate_by(p, good_bytes.size() - 10);
    EXPECT_ERROR_MENTIONS(load(p), p.c_str(), "field 'header'");

    p = fresh("truncated.bin");
    truncate_by(p, 1);
    EXPECT_ERROR_MENTIONS(load(p), p.c_str(), "field 'file size'", "(truncated)");

    p = fresh("corrupt.bin");
    patch<float>(p, good_bytes.size() - 4, 3.0f, /*reseal=*/false);
    EXPECT_ERROR_MENTIONS(load(p), p.c_str(), "field 'checksum'", "corrupted");

    p = fresh("magic.bin");
    patch<char>(p, 3, '?', /*reseal=*/false);
    EXPECT_ERROR_MENTIONS(load(p), p.c_str(), "field 'magic'", "training-state file");

    p = fresh("version.bin");
    patch<uint32_t>(p, 8, 99);
    EXPECT_ERROR_MENTIONS(load(p), p.c_str(), "field 'version'", "is 99");

    p = fresh("loader.bin");
    patch<uint64_t>(p, 40, ~0ULL);  // loader bytes: rounding up to 8 must not wrap around
    EXPECT_ERROR_MENTIONS(load(p), p.c_str(), "field 'file size'", "more than 2^63");

    p = fresh("rng.bin");
    patch<uint32_t>(p, 12, 4);  // one RNG word more than stored
    EXPECT_ERROR_MENTIONS(load(p), p.c_str(), "field 'file size'");

    p = fresh("step.bin");
    patch<int64_t>(p, 16, -1);
    EXPECT_ERROR_MENTIONS(load(p), p.c_str(), "field 'step'", "negative");

    p = fresh("best.bin");
    patch<double>(p, 48, std::nan(""));
    EXPECT_ERROR_MENTIONS(load(p), p.c_str(), "field 'best_val_loss'", "NaN");
}

// ---------------------------------------------------------------------------------------------
// The output folder

TEST(CheckpointKeeper, KeepsTheLastKPairsAndTheBest) {
    ScratchDir dir;
    const std::string out = dir / "run";  // created by the keeper
    CheckpointKeeper keeper(out, 2);
    BertModel model = make_model(tiny_config(), 1);
    const int64_t n = model.layout.total();
    std::vector<float> m(n, 0.5f), v(n, 0.25f), best_params;
    const double losses[] = {5.0, 3.0, 4.0, std::nan(""), 6.0};
    const bool expect_best[] = {true, true, false, false, false};
    for (int i = 0; i < 5; i++) {
        model.params[i] += 1.0f;  // each step's weights differ
        const bool best = keeper.save(weights_of(model), kFingerprint, m.data(), v.data(), sample_progress(10 * (i + 1)), losses[i]);
        EXPECT_EQ(best, expect_best[i]) << "step " << 10 * (i + 1);
        if (best) best_params = model.params;
    }
    EXPECT_EQ(keeper.best_val_loss(), 3.0);
    EXPECT_EQ(folder_listing(out), (std::vector<std::string>{"best.bin", "ckpt_00000040.bin", "ckpt_00000050.bin", "latest",
                                                             "state_00000040.bin", "state_00000050.bin"}));
    EXPECT_EQ(read_file(out + "/latest"), "50\n");
    EXPECT_TRUE(same_bits(load_checkpoint(out + "/best.bin").params, best_params));

    // --resume DIR: the newest pair, whose state carries the best loss for the next keeper.
    const ResumePoint r = find_latest(out);
    EXPECT_EQ(r.step, 50);
    EXPECT_EQ(r.checkpoint_path, out + "/ckpt_00000050.bin");
    EXPECT_EQ(r.state_path, out + "/state_00000050.bin");
    const Checkpoint ck = load_checkpoint(r.checkpoint_path);
    BertModel resumed = make_model(tiny_config(), 9);
    load_into(resumed, ck, kFingerprint);
    EXPECT_TRUE(same_bits(resumed.params, model.params));
    const TrainingState s = load_training_state(r.state_path, ck);
    EXPECT_EQ(s.progress.step, 50);
    EXPECT_EQ(s.progress.best_val_loss, 3.0);
    EXPECT_EQ(s.progress.loader_state, sample_progress(0).loader_state);
    EXPECT_TRUE(same_bits(s.m, m));
    EXPECT_TRUE(same_bits(s.v, v));

    CheckpointKeeper again(out, 2, s.progress.best_val_loss);
    EXPECT_FALSE(again.save(weights_of(model), kFingerprint, m.data(), v.data(), sample_progress(60), 3.5));
    EXPECT_TRUE(again.save(weights_of(model), kFingerprint, m.data(), v.data(), sample_progress(70), 2.0));
    EXPECT_EQ(folder_listing(out), (std::vector<std::string>{"best.bin", "ckpt_00000060.bin", "ckpt_00000070.bin", "latest",
                                                             "state_00000060.bin", "state_00000070.bin"}));
}

TEST(CheckpointKeeper, DeletesOnlyItsOwnFiles) {
    ScratchDir dir;
    // (a temporary file of a running process: this one; those of ended processes are removed at
    // the keeper's start, tests/test_train_mlm.cpp LeftoverTemporariesOfKilledRunsAreRemoved)
    const std::vector<std::string> foreign = {"ckpt_1.bin",  "ckpt_000000001.bin", "ckpt_00000001.bin.tmp." + std::to_string(getpid()),
                                              "notes.txt", "state_00000001.txt", "ckpt_00000001.bin.bak", "best.bin.old",
                                              "xckpt_00000001.bin"};
    for (const std::string& name : foreign) write_file_atomic(dir / name, "not the keeper's");
    mkdir((dir / "ckpt_00000002.bin").c_str(), 0755);  // a folder named like a checkpoint

    CheckpointKeeper keeper(dir.path, 1);
    const BertModel model = make_model(tiny_config(), 1);
    const std::vector<float> m(model.layout.total(), 0.0f);
    for (int64_t step : {5, 6, 7}) keeper.save(weights_of(model), kFingerprint, m.data(), m.data(), sample_progress(step), NAN);
    for (const std::string& name : foreign) EXPECT_EQ(read_file(dir / name), "not the keeper's") << name;
    EXPECT_TRUE(std::filesystem::is_directory(dir / "ckpt_00000002.bin"));
    EXPECT_FALSE(std::filesystem::exists(dir / "ckpt_00000006.bin"));
    EXPECT_TRUE(std::filesystem::exists(dir / "ckpt_00000007.bin"));
    EXPECT_FALSE(std::filesystem::exists(dir / "best.bin"));  // never evaluated
    EXPECT_EQ(CheckpointKeeper::own_files(dir.path),
              (std::vector<std::string>{dir / "ckpt_00000007.bin", dir / "latest", dir / "state_00000007.bin"}));
}

TEST(CheckpointKeeper, InterruptedSaveNeverReplacesAGoodCheckpoint) {
    ScratchDir dir;
    CheckpointKeeper keeper(dir.path, 1);
    BertModel model = make_model(tiny_config(), 1);
    const std::vector<float> good_params = model.params, m(model.layout.total(), 0.0f);
    keeper.save(weights_of(model), kFingerprint, m.data(), m.data(), sample_progress(10), 2.0);
    const std::string good_ckpt = read_file(dir / "ckpt_00000010.bin"), good_state = read_file(dir / "state_00000010.bin");

    // A crash in the middle of write_file_atomic leaves a temporary file: it is not a checkpoint.
    write_file_atomic(dir / "ckpt_00000020.bin.tmp.99999", "half a checkpoint");
    write_file_atomic(dir / "latest.tmp.99999", "20");
    EXPECT_EQ(find_latest(dir.path).step, 10);

    // A save that fails part way (here: its temporary file cannot be created) changes nothing
    // that was good: latest, the previous pair, best.bin and the keeper's best loss.
    model.params[0] += 1.0f;
    const std::string pid = std::to_string(getpid());
    for (const std::string blocked : {"ckpt_00000020.bin", "state_00000020.bin"}) {
        SCOPED_TRACE(blocked);
        const std::string blocker = dir / (blocked + ".tmp." + pid);
        mkdir(blocker.c_str(), 0755);
        EXPECT_ERROR_MENTIONS(keeper.save(weights_of(model), kFingerprint, m.data(), m.data(), sample_progress(20), 1.0),
                              blocked.c_str());
        rmdir(blocker.c_str());
        EXPECT_EQ(read_file(dir / "latest"), "10\n");
        EXPECT_EQ(read_file(dir / "ckpt_00000010.bin"), good_ckpt);
        EXPECT_EQ(read_file(dir / "state_00000010.bin"), good_state);
        EXPECT_TRUE(same_bits(load_checkpoint(dir / "best.bin").params, good_params));
        EXPECT_EQ(keeper.best_val_loss(), 2.0);
        const ResumePoint r = find_latest(dir.path);
        EXPECT_NO_THROW(load_training_state(r.state_path, load_checkpoint(r.checkpoint_path)));
    }

    // The next save that succeeds takes over; the stray temporaries are left alone.
    EXPECT_TRUE(keeper.save(weights_of(model), kFingerprint, m.data(), m.data(), sample_progress(20), 1.0));
    EXPECT_EQ(find_latest(dir.path).step, 20);
    EXPECT_FALSE(std::filesystem::exists(dir / "ckpt_00000010.bin"));
    EXPECT_TRUE(std::filesystem::exists(dir / "ckpt_00000020.bin.tmp.99999"));
    EXPECT_TRUE(same_bits(load_checkpoint(dir / "best.bin").params, model.params));
}

TEST(CheckpointKeeper, FindLatestExplainsWhatIsMissing) {
    ScratchDir dir;
    EXPECT_ERROR_MENTIONS(find_latest(dir / "nowhere"), "nowhere", "no such folder");
    EXPECT_ERROR_MENTIONS(find_latest(dir.path), dir.path.c_str(), "no checkpoint here", "latest");
    const std::string latest = dir / "latest";
    write_file_atomic(latest, "twelve\n");
    EXPECT_ERROR_MENTIONS(find_latest(dir.path), latest.c_str(), "field 'step'", "'twelve'");
    write_file_atomic(dir / "latest", "12\n");
    EXPECT_ERROR_MENTIONS(find_latest(dir.path), "field 'step'", "ckpt_00000012.bin does not exist");
    EXPECT_ERROR_MENTIONS(CheckpointKeeper(dir.path, 0), "at least 1");
}
