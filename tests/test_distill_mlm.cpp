// tests/test_distill_mlm.cpp: MLM-logit distillation (`distill cache --mlm`, `distill train --mlm`).
//   The op: the top-k soft cross-entropy against a double-precision reference written here, against
//     finite differences, and with k = V against the full soft cross-entropy; through the model, a
//     student equal to its teacher (k = V) gets no soft gradient, and the model's gradients of the
//     combined loss match finite differences.
//   The cache: the MLM top-k format's writer and reader (round trips at both id widths, resume,
//     refusals, reader errors naming the file and the field); `distill cache --mlm` stores the
//     batcher's fixed masks and, at each masked position, the teacher's own top k (recomputed here
//     by a forward pass per sequence and a full sort), resumes an interrupted cache from its
//     complete chunks, and refuses other text, other teachers, truncated caches and --device cuda.
//   The method: a random student trained on a random teacher's cache learns to agree with the
//     teacher's top-1 well above the best constant guess, and is an MLM checkpoint train_mlm takes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "common/util.h"
#include "data/logit_cache.h"
#include "data/mlm_batcher.h"
#include "data/shards.h"
#include "data/tokenizer.h"
#include "kernels/cross_entropy.h"
#include "model/bert.h"
#include "model/checkpoint.h"
#include "model/classifier.h"
#include "gradcheck.h"
#include "test_helpers.h"

using namespace wr;
using wr::testing::check_gradient;
using wr::testing::random_vector;
using wr::testing::run_command;
using wr::testing::RunResult;
using wr::testing::ScratchDir;

namespace {

const std::string kVocab = "build/default/vocab.txt";
const std::string kText = "build/default/mlm/val_000.bin";  // 85k tokens, 1035 documents

RunResult distill(const std::string& command_and_flags) {
    return run_command("./distill " + command_and_flags + " --threads 1 --device cpu");
}

// ---- The op's reference, in double, written independently of kernels/cross_entropy.cpp ----

struct RowReference {
    double loss = 0;
    std::vector<double> grad;  // d loss / d z, [V]
};

// loss = -tau^2 sum_j p_j log q_{id_j}, p = softmax(t / tau) over the k values, q = softmax(z / tau)
// over V; d loss / d z_v = tau (q_v - p_v), p_v = 0 outside the top k.
RowReference reference_row(const float* z, int V, const int* ids, const float* t, int k, double tau) {
    double zmax = -INFINITY, tmax = -INFINITY;
    for (int v = 0; v < V; v++) zmax = std::max(zmax, (double)z[v]);
    for (int j = 0; j < k; j++) tmax = std::max(tmax, (double)t[j]);
    double zsum = 0, tsum = 0;
    for (int v = 0; v < V; v++) zsum += std::exp((z[v] - zmax) / tau);
    for (int j = 0; j < k; j++) tsum += std::exp((t[j] - tmax) / tau);
    RowReference r;
    r.grad.assign(V, 0.0);
    for (int v = 0; v < V; v++) r.grad[v] = tau * std::exp((z[v] - zmax) / tau) / zsum;
    for (int j = 0; j < k; j++) {
        const double p = std::exp((t[j] - tmax) / tau) / tsum;
        const double log_q = (z[ids[j]] - zmax) / tau - std::log(zsum);
        r.loss -= tau * tau * p * log_q;
        r.grad[ids[j]] -= tau * p;
    }
    return r;
}

// k distinct ids in 0..V-1 per row (a seeded shuffle) and their values.
void random_topk(int M, int V, int k, uint64_t seed, std::vector<int>& ids, std::vector<float>& values) {
    ids.resize((size_t)M * k);
    std::vector<float> keys = random_vector((size_t)M * V, seed);
    for (int m = 0; m < M; m++) {
        std::vector<int> order(V);
        std::iota(order.begin(), order.end(), 0);
        std::sort(order.begin(), order.end(), [&](int a, int b) { return keys[(size_t)m * V + a] < keys[(size_t)m * V + b]; });
        std::copy(order.begin(), order.begin() + k, ids.begin() + (size_t)m * k);
    }
    values = random_vector((size_t)M * k, seed + 1, -4.0f, 4.0f);
}

// ---- Files ----

// An MLM teacher with random weights, scaled so that its predictions are diverse and depend on the
// context; saved as an MLM checkpoint.
BertModel random_mlm_teacher(const Tokenizer& vocab, const std::string& path, uint64_t seed, float scale = 5.0f) {
    BertConfig c = bert_preset("tiny", vocab.vocab_size());
    c.num_layers = 1, c.hidden = 64, c.num_heads = 2, c.ffn = 256, c.pad_id = vocab.pad_id;
    c.hidden_dropout = c.attention_dropout = 0.0f;
    BertModel model(c);
    model.init_weights(seed);
    for (float& p : model.params) p *= scale;
    save_checkpoint(path, weights_of(model), vocab.fingerprint());
    return model;
}

// A token shard with documents [first, first + count) of kText.
void write_text_slice(const std::string& path, const Tokenizer& vocab, int64_t first, int64_t count) {
    const TokenShard text(kText, &vocab);
    TokenShardWriter out(path, vocab.vocab_size(), vocab.fingerprint());
    std::vector<int32_t> ids;
    for (int64_t d = first; d < first + count; d++) {
        ids.resize(text.doc_end(d) - text.doc_begin(d));
        text.read(text.doc_begin(d), (int64_t)ids.size(), ids.data());
        out.add_document(ids.data(), (int64_t)ids.size());
    }
    out.finish();
}

MlmInputs inputs_of(const MlmBatch& b) {
    MlmInputs in;
    in.B = b.B, in.T = b.T, in.input_ids = b.input_ids.data(), in.token_types = b.token_types.data(), in.lengths = b.lengths.data();
    in.M = b.M(), in.masked_positions = b.masked_positions.data(), in.masked_targets = b.masked_targets.data();
    return in;
}

double number_after(const std::string& text, const std::string& key) {
    const size_t at = text.rfind(key);
    return at == std::string::npos ? NAN : std::atof(text.c_str() + at + key.size());
}

std::string tail(const std::string& s, size_t n = 3000) { return s.substr(s.size() > n ? s.size() - n : 0); }

template <typename T>
void patch(std::string& file, size_t offset, T value) {
    std::memcpy(&file[offset], &value, sizeof(T));
}

// Recomputes the MLM block's checksum, the data checksum and the header checksum
// (docs/formats.md), so that a test can plant a single fault.
void reseal(const std::string& path, bool block = true) {
    std::string file = read_file(path);
    if (block) {
        Checksum b;
        b.update(file.data() + 72, 64);
        patch<uint64_t>(file, 136, b.digest());
    }
    Checksum data;
    data.update(file.data() + 72, file.size() - 72);
    patch<uint64_t>(file, 56, data.digest());
    Checksum header;
    header.update(file.data(), 64);
    patch<uint64_t>(file, 64, header.digest());
    write_file_atomic(path, file);
}

// A synthetic MLM cache: rows for sequences 0, 0, 0, 2, 2, 5, ... with k descending values each.
struct SyntheticCache {
    LogitCacheHeader header;
    MlmTopKSetup setup;
    MlmTopKRows rows;
};
SyntheticCache synthetic_cache(int vocab_size, int k, int64_t n, LogitValueType type = LogitValueType::F32) {
    SyntheticCache c;
    c.setup.vocab_size = vocab_size, c.setup.seq_len = 16, c.setup.mask_seed = 9, c.setup.sequence_count = 100;
    c.setup.vocab_fingerprint = 0x5555666677778888ULL;
    c.header.kind = LogitCacheKind::MlmTopK, c.header.value_type = type, c.header.num_labels = k, c.header.example_count = n;
    c.header.chunk_size = 4, c.header.teacher_fingerprint = 0x1111222233334444ULL, c.header.transfer_fingerprint = 0xaaaabbbbccccddddULL;
    for (int64_t r = 0; r < n; r++) {
        c.rows.sequence.push_back((int32_t)(r / 3 * 2));
        c.rows.position.push_back((int32_t)(1 + r % 3 * 4));
        c.rows.input_id.push_back((int32_t)((r * 37) % vocab_size));
        c.rows.target.push_back((int32_t)((r * 53 + 1) % vocab_size));
        for (int j = 0; j < k; j++) {
            c.rows.ids.push_back((int32_t)((r * 7919 + (int64_t)j * 104729) % vocab_size));
            c.rows.values.push_back(10.0f - 0.75f * (float)j + 0.001f * (float)r);
        }
    }
    return c;
}

void write_synthetic(const std::string& path, const SyntheticCache& c, int64_t piece = 3) {
    LogitCacheWriter w(path, c.header, c.setup);
    for (int64_t r = 0; r < c.rows.size(); r += piece) w.append_topk(c.rows, r, std::min(c.rows.size(), r + piece));
    w.finish();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The op

TEST(DistillMlmLoss, ForwardAndBackwardMatchADoublePrecisionReference) {
    const int M = 5, V = 37, k = 6;  // V not a multiple of the 8 lanes: the tail is exercised
    for (const float tau : {1.0f, 2.5f}) {
        const std::vector<float> logits = random_vector((size_t)M * V, 3, -3.0f, 3.0f);
        std::vector<int> ids;
        std::vector<float> values;
        random_topk(M, V, k, 11, ids, values);
        std::vector<float> losses(M);
        soft_topk_cross_entropy_forward(losses.data(), logits.data(), ids.data(), values.data(), M, V, k, tau);
        const float scale = 0.7f;
        std::vector<float> dlogits = random_vector((size_t)M * V, 5);  // backward accumulates
        const std::vector<float> before = dlogits;
        soft_topk_cross_entropy_backward(dlogits.data(), logits.data(), ids.data(), values.data(), M, V, k, tau, scale);
        double worst_loss = 0, worst_grad = 0;
        for (int m = 0; m < M; m++) {
            const RowReference r = reference_row(&logits[(size_t)m * V], V, &ids[(size_t)m * k], &values[(size_t)m * k], k, tau);
            worst_loss = std::max(worst_loss, std::fabs(losses[m] - r.loss) / std::fabs(r.loss));
            for (int v = 0; v < V; v++)
                worst_grad = std::max(worst_grad, std::fabs((double)dlogits[(size_t)m * V + v] - before[(size_t)m * V + v] - scale * r.grad[v]));
        }
        std::printf("tau %.1f: loss relative error %.2e, gradient absolute error %.2e\n", tau, worst_loss, worst_grad);
        EXPECT_LT(worst_loss, 1e-6);
        EXPECT_LT(worst_grad, 1e-6);
    }
}

TEST(DistillMlmLoss, BackwardMatchesFiniteDifferences) {
    const int M = 4, V = 29, k = 5;
    const float tau = 2.0f, scale = 0.5f;
    std::vector<float> logits = random_vector((size_t)M * V, 21, -2.0f, 2.0f);
    std::vector<int> ids;
    std::vector<float> values;
    random_topk(M, V, k, 23, ids, values);
    std::vector<float> dlogits((size_t)M * V, 0.0f);
    soft_topk_cross_entropy_backward(dlogits.data(), logits.data(), ids.data(), values.data(), M, V, k, tau, scale);
    std::vector<float> losses(M);
    auto loss = [&] {
        soft_topk_cross_entropy_forward(losses.data(), logits.data(), ids.data(), values.data(), M, V, k, tau);
        double sum = 0;
        for (float l : losses) sum += l;
        return scale * sum;
    };
    const auto r = check_gradient(loss, logits.data(), dlogits.data(), (int64_t)logits.size(), 1e-2);
    std::printf("finite differences: %s\n", ::testing::PrintToString(r.rel_err).c_str());
    EXPECT_LT(r.rel_err, 2e-3) << r;
}

// With every token in the "top k" the op is the full soft cross-entropy over V.
TEST(DistillMlmLoss, TopKEqualToTheVocabularyIsTheFullSoftCrossEntropy) {
    const int M = 3, V = 21;
    const float tau = 1.5f;
    const std::vector<float> logits = random_vector((size_t)M * V, 31, -3.0f, 3.0f);
    std::vector<int> ids;
    std::vector<float> values;
    random_topk(M, V, V, 33, ids, values);  // a permutation of the vocabulary per row
    std::vector<float> teacher((size_t)M * V);
    for (int m = 0; m < M; m++)
        for (int j = 0; j < V; j++) teacher[(size_t)m * V + ids[(size_t)m * V + j]] = values[(size_t)m * V + j];

    std::vector<float> topk_losses(M), full_losses(M), topk_grad((size_t)M * V, 0.0f), full_grad((size_t)M * V, 0.0f);
    soft_topk_cross_entropy_forward(topk_losses.data(), logits.data(), ids.data(), values.data(), M, V, V, tau);
    soft_cross_entropy_forward(full_losses.data(), logits.data(), teacher.data(), M, V, tau);
    soft_topk_cross_entropy_backward(topk_grad.data(), logits.data(), ids.data(), values.data(), M, V, V, tau, 0.25f);
    soft_cross_entropy_backward(full_grad.data(), logits.data(), teacher.data(), M, V, tau, 0.25f);
    for (int m = 0; m < M; m++) EXPECT_NEAR(topk_losses[m], full_losses[m], 1e-6 * std::fabs(full_losses[m])) << "row " << m;
    for (size_t i = 0; i < topk_grad.size(); i++) ASSERT_NEAR(topk_grad[i], full_grad[i], 1e-7) << "element " << i;
}

// ---------------------------------------------------------------------------------------------
// Through the model

namespace {

struct SmallMlm {
    BertModel model;
    MlmBatch batch;
    explicit SmallMlm(uint64_t seed) : model(config()) {
        model.init_weights(seed);
        for (float& p : model.params) p *= 3.0f;  // predictions far from uniform
        batch.B = 2, batch.T = 10;
        std::vector<float> r = random_vector(20, seed + 1, 5.0f, 49.0f);
        for (int i = 0; i < 20; i++) batch.input_ids.push_back((int32_t)r[i]);
        batch.token_types.assign(20, 0);
        batch.lengths = {10, 8};
        batch.masked_positions = {1, 4, 5, 8, 11, 12, 16};
        for (int32_t p : batch.masked_positions) batch.masked_targets.push_back((batch.input_ids[p] * 7) % 50);
    }
    static BertConfig config() {
        BertConfig c;
        c.num_layers = 1, c.hidden = 32, c.num_heads = 2, c.ffn = 64, c.vocab_size = 50, c.max_positions = 16;
        c.hidden_dropout = c.attention_dropout = 0.0f;
        return c;
    }
    std::vector<float> gradients(const MlmInputs& in) {
        model.zero_grads();
        model.forward_mlm(in, /*train=*/false, 0);
        model.backward_mlm();
        return model.grads;
    }
};

double max_abs(const std::vector<float>& v) {
    double m = 0;
    for (float x : v) m = std::max(m, (double)std::fabs(x));
    return m;
}

}  // namespace

TEST(DistillMlmModel, AStudentEqualToItsTeacherGetsNoSoftGradient) {
    SmallMlm s(7);
    const int V = 50, M = s.batch.M();
    const MlmInputs plain = inputs_of(s.batch);
    const MlmResult hard = s.model.forward_mlm(plain, false, 0);
    const std::vector<float> teacher(s.model.mlm_logits(), s.model.mlm_logits() + (size_t)M * V);  // the model's own logits
    std::vector<int32_t> ids((size_t)M * V);
    for (int m = 0; m < M; m++) std::iota(ids.begin() + (size_t)m * V, ids.begin() + (size_t)(m + 1) * V, 0);
    const std::vector<float> hard_grads = s.gradients(plain);

    for (const float tau : {1.0f, 2.0f}) {
        MlmInputs in = plain;
        in.teacher_k = V, in.teacher_ids = ids.data(), in.teacher_values = teacher.data(), in.temperature = tau, in.label_weight = 0.0f;
        const MlmResult r = s.model.forward_mlm(in, false, 0);
        EXPECT_EQ(r.agree, M);
        EXPECT_FLOAT_EQ(r.hard_loss, hard.loss);
        // The soft loss of a distribution against itself: tau^2 times its entropy.
        double entropy = 0;
        for (int m = 0; m < M; m++) {
            const RowReference ref = reference_row(&teacher[(size_t)m * V], V, &ids[(size_t)m * V], &teacher[(size_t)m * V], V, tau);
            entropy += ref.loss / M;
        }
        EXPECT_NEAR(r.soft_loss, entropy, 1e-5 * entropy);
        EXPECT_FLOAT_EQ(r.loss, r.soft_loss);
        const std::vector<float> soft_grads = s.gradients(in);
        std::printf("tau %.0f: largest parameter gradient %.2e (the hard loss's: %.2e)\n", tau, max_abs(soft_grads), max_abs(hard_grads));
        EXPECT_LT(max_abs(soft_grads), 1e-5 * max_abs(hard_grads));

        // With label weight 1 the gradient is the hard loss's alone.
        in.label_weight = 1.0f;
        const std::vector<float> both = s.gradients(in);
        double worst = 0;
        for (size_t i = 0; i < both.size(); i++) worst = std::max(worst, (double)std::fabs(both[i] - hard_grads[i]));
        EXPECT_LT(worst, 1e-5 * max_abs(hard_grads));
    }
}

// The model's gradient of soft + label_weight * hard (k < V, tau 2) against finite differences, on
// the decoder bias, the MLM head's dense layer and the word embeddings.
TEST(DistillMlmModel, GradientOfTheDistillationLossMatchesFiniteDifferences) {
    SmallMlm s(9);
    const int V = 50, M = s.batch.M(), k = 8;
    std::vector<int> ids;
    std::vector<float> values;
    random_topk(M, V, k, 41, ids, values);
    for (int m = 0; m < M; m++) std::sort(values.begin() + (size_t)m * k, values.begin() + (size_t)(m + 1) * k, std::greater<float>());
    MlmInputs in = inputs_of(s.batch);
    in.teacher_k = k, in.teacher_ids = ids.data(), in.teacher_values = values.data(), in.temperature = 2.0f, in.label_weight = 0.5f;
    const std::vector<float> grads = s.gradients(in);
    auto loss = [&] { return (double)s.model.forward_mlm(in, false, 0).loss; };
    for (const char* name : {"mlm_head.bias", "mlm_head.dense_w", "embeddings.word"}) {
        const TensorSpec& t = s.model.layout.find(name);
        const auto r = check_gradient(loss, s.model.params.data() + t.offset, grads.data() + t.offset, t.numel, 1e-2, t.numel > 500 ? 31 : 1);
        std::printf("%s: %s\n", name, ::testing::PrintToString(r.rel_err).c_str());
        EXPECT_LT(r.rel_err, 2e-2) << name << ": " << r;
    }
}

// ---------------------------------------------------------------------------------------------
// The MLM top-k cache format

TEST(DistillMlmCache, RoundTripsAtBothIdWidthsAndValueTypes) {
    ScratchDir dir;
    for (const int V : {300, 70000})
        for (const LogitValueType type : {LogitValueType::F32, LogitValueType::F16}) {
            const std::string path = dir / ("cache_" + std::to_string(V) + "_" + std::to_string((int)type) + ".bin");
            const SyntheticCache c = synthetic_cache(V, 5, 11, type);
            write_synthetic(path, c);
            const int id_width = V <= 65536 ? 2 : 4, value_width = type == LogitValueType::F16 ? 2 : 4;
            EXPECT_EQ(read_file(path).size(), 144u + 11 * (16 + 5 * (id_width + value_width))) << path;
            const MlmTopKCache m = read_mlm_topk_cache(path);
            EXPECT_EQ(m.header.kind, LogitCacheKind::MlmTopK);
            EXPECT_EQ(m.k(), 5);
            EXPECT_EQ(m.rows(), 11);
            EXPECT_EQ(m.header.teacher_fingerprint, c.header.teacher_fingerprint);
            EXPECT_EQ(m.header.transfer_fingerprint, c.header.transfer_fingerprint);
            EXPECT_EQ(m.setup.vocab_size, V);
            EXPECT_EQ(m.setup.seq_len, 16);
            EXPECT_EQ(m.setup.mask_seed, 9u);
            EXPECT_EQ(m.setup.sequence_count, 100);
            EXPECT_EQ(m.setup.vocab_fingerprint, c.setup.vocab_fingerprint);
            std::vector<int32_t> ids(5);
            std::vector<float> values(5);
            for (int64_t r = 0; r < 11; r++) {
                EXPECT_EQ(m.sequence(r), c.rows.sequence[r]);
                EXPECT_EQ(m.position(r), c.rows.position[r]);
                EXPECT_EQ(m.input_id(r), c.rows.input_id[r]);
                EXPECT_EQ(m.target(r), c.rows.target[r]);
                m.topk(r, ids.data(), values.data());
                for (int j = 0; j < 5; j++) {
                    EXPECT_EQ(ids[j], c.rows.ids[r * 5 + j]);
                    if (type == LogitValueType::F32) EXPECT_EQ(values[j], c.rows.values[r * 5 + j]);
                    else EXPECT_EQ(values[j], half_to_float(float_to_half(c.rows.values[r * 5 + j])));
                }
            }
            // Sequences 0, 2, 4, 6, 8 hold rows 0-2, 3-5, 6-8, 9-10.
            EXPECT_EQ(m.group_sequence, (std::vector<int64_t>{0, 2, 4, 6}));
            EXPECT_EQ(m.group_begin, (std::vector<int64_t>{0, 3, 6, 9, 11}));
        }
}

TEST(DistillMlmCache, UpToDateOnlyWithTheSameHeaderAndMaskingBlock) {
    ScratchDir dir;
    const std::string path = dir / "cache.bin";
    const SyntheticCache c = synthetic_cache(300, 3, 10);
    write_synthetic(path, c);
    EXPECT_TRUE(logit_cache_up_to_date(path, c.header, &c.setup));
    const std::vector<void (*)(MlmTopKSetup&)> changes = {
        [](MlmTopKSetup& s) { s.vocab_size = 301; },        [](MlmTopKSetup& s) { s.seq_len = 32; },
        [](MlmTopKSetup& s) { s.whole_word = true; },       [](MlmTopKSetup& s) { s.mask_seed = 10; },
        [](MlmTopKSetup& s) { s.mask_fraction = 0.2; },     [](MlmTopKSetup& s) { s.mask_token_fraction = 0.7; },
        [](MlmTopKSetup& s) { s.random_token_fraction = 0.2; }, [](MlmTopKSetup& s) { s.sequence_count = 99; },
        [](MlmTopKSetup& s) { s.vocab_fingerprint ^= 1; },
    };
    for (size_t i = 0; i < changes.size(); i++) {
        MlmTopKSetup other = c.setup;
        changes[i](other);
        EXPECT_FALSE(logit_cache_up_to_date(path, c.header, &other)) << "change " << i;
    }
    LogitCacheHeader other = c.header;
    other.num_labels = 4;
    EXPECT_FALSE(logit_cache_up_to_date(path, other, &c.setup));
    // A class-logit header against this file: its reader refuses an MLM cache.
    LogitCacheHeader class_header = c.header;
    class_header.kind = LogitCacheKind::Class;
    EXPECT_THROW(logit_cache_up_to_date(path, class_header), Error);
}

TEST(DistillMlmCache, ResumesFromCompleteChunksAndRefusesAnotherRunsPartial) {
    ScratchDir dir;
    const SyntheticCache c = synthetic_cache(300, 3, 18);
    const std::string reference = dir / "reference.bin", path = dir / "cache.bin", partial = path + ".partial";
    write_synthetic(reference, c, 5);
    {
        LogitCacheWriter w(path, c.header, c.setup);
        w.append_topk(c.rows, 0, 10);  // chunks of 4: rows 0-7 written, 8-9 pending and lost
    }
    const int64_t row_bytes = 16 + 3 * (2 + 4), rows_end = 144 + 18 * row_bytes;
    EXPECT_EQ((int64_t)read_file(partial).size(), rows_end + 2 * 8);  // the rows' length, then the two chunks' checksums
    {
        FILE* f = std::fopen(partial.c_str(), "ab");
        ASSERT_NE(f, nullptr);
        std::fputs("torn", f);
        std::fclose(f);
    }
    SyntheticCache other = c;
    other.setup.mask_seed = 10;
    EXPECT_ERROR_MENTIONS(LogitCacheWriter(path, other.header, other.setup), "cache.bin.partial", "mask_seed", "9", "10", "delete");
    other = c;
    other.setup.seq_len = 32;
    EXPECT_ERROR_MENTIONS(LogitCacheWriter(path, other.header, other.setup), "cache.bin.partial", "seq_len");
    EXPECT_ERROR_MENTIONS(LogitCacheWriter(path, c.header), "cache.bin", "kind", "MLM");  // the class writer
    EXPECT_EQ((int64_t)read_file(partial).size(), rows_end + 2 * 8 + 4);  // refused and left as it was
    const std::string kept = read_file(partial);
    std::string changed = kept;
    changed[144 + 5 * row_bytes + 20] ^= 0x01;  // row 5's first top-k id, in chunk 1
    write_file_atomic(partial, changed);
    EXPECT_ERROR_MENTIONS(LogitCacheWriter(path, c.header, c.setup), "cache.bin.partial", "chunk 1", "rows 4..7");
    EXPECT_EQ(read_file(partial), changed);
    write_file_atomic(partial, kept);
    {
        LogitCacheWriter w(path, c.header, c.setup);
        EXPECT_EQ(w.examples_resumed(), 8);
        EXPECT_EQ((int64_t)read_file(partial).size(), rows_end + 2 * 8);  // the torn bytes are gone
        w.append_topk(c.rows, 8, 13);
        w.append_topk(c.rows, 13, 18);
        w.finish();
    }
    EXPECT_FALSE(file_exists(partial));
    EXPECT_EQ(read_file(path), read_file(reference)) << "a resumed cache is byte for byte the uninterrupted one";

    // The writer refuses rows out of order, out of range or non-finite, naming the row.
    LogitCacheWriter w(dir / "bad.bin", c.header, c.setup);
    w.append_topk(c.rows, 0, 4);
    EXPECT_ERROR_MENTIONS(w.append_topk(c.rows, 2, 3), "bad.bin.partial", "rows", "row 4", "does not come after");
    MlmTopKRows bad = c.rows;
    bad.ids[4 * 3 + 1] = 300;
    EXPECT_ERROR_MENTIONS(w.append_topk(bad, 4, 5), "bad.bin.partial", "rows", "row 4", "300");
    bad = c.rows;
    bad.values[4 * 3] = INFINITY;
    EXPECT_ERROR_MENTIONS(w.append_topk(bad, 4, 5), "bad.bin.partial", "values", "row 4", "non-finite");
    EXPECT_ERROR_MENTIONS(w.append(c.rows.values.data(), 1), "bad.bin", "class logits");
    EXPECT_ERROR_MENTIONS(w.finish(), "bad.bin.partial", "example_count", "4 of the 18 rows");
}

TEST(DistillMlmCache, ReaderErrorsNameTheFileAndTheField) {
    ScratchDir dir;
    const std::string good = dir / "good.bin";
    const SyntheticCache c = synthetic_cache(300, 3, 9);
    write_synthetic(good, c);
    ASSERT_NO_THROW(read_mlm_topk_cache(good));
    const int64_t row_bytes = 16 + 3 * 6, size = 144 + 9 * row_bytes;
    auto fresh = [&](const std::string& name, const std::string& bytes) {
        write_file_atomic(dir / name, bytes);
        return dir / name;
    };
    const std::string bytes = read_file(good);

    EXPECT_ERROR_MENTIONS(read_logit_cache(good), "good.bin", "kind", "MLM top-k", "distill train --mlm");
    EXPECT_ERROR_MENTIONS(read_mlm_topk_cache(fresh("short.bin", bytes.substr(0, 100))), "short.bin", "block", "truncated");
    const std::string expected_size = std::to_string(size);
    EXPECT_ERROR_MENTIONS(read_mlm_topk_cache(fresh("truncated.bin", bytes.substr(0, size - 1))), "truncated.bin", "file size",
                          "truncated", expected_size.c_str());
    std::string b = bytes;
    b[80] ^= 1;  // seq_len, block checksum left as it was
    EXPECT_ERROR_MENTIONS(read_mlm_topk_cache(fresh("block.bin", b)), "block.bin", "block_checksum", "corrupted");
    b = bytes;
    patch<int32_t>(b, 80, 2);  // seq_len 2, resealed
    std::string p = fresh("seq_len.bin", b);
    reseal(p);
    EXPECT_ERROR_MENTIONS(read_mlm_topk_cache(p), "seq_len.bin", "seq_len", "2");
    b = bytes;
    patch<uint32_t>(b, 76, 4);  // id width 4 for a vocabulary of 300
    p = fresh("width.bin", b);
    reseal(p);
    EXPECT_ERROR_MENTIONS(read_mlm_topk_cache(p), "width.bin", "id_width", "4");
    b = bytes;
    b[144 + 5 * row_bytes + 30] ^= 1;  // a value, checksums left as they were
    EXPECT_ERROR_MENTIONS(read_mlm_topk_cache(fresh("flip.bin", b)), "flip.bin", "data_checksum", "corrupted");
    b = bytes;
    patch<int32_t>(b, 144 + 4 * row_bytes, 0);  // row 4 goes back to sequence 0
    p = fresh("order.bin", b);
    reseal(p, false);
    EXPECT_ERROR_MENTIONS(read_mlm_topk_cache(p), "order.bin", "rows", "row 4", "does not come after");
    b = bytes;
    patch<int32_t>(b, 144 + 2 * row_bytes + 4, 15);  // position 15 of T = 16: the final [SEP]'s place
    p = fresh("position.bin", b);
    reseal(p, false);
    EXPECT_ERROR_MENTIONS(read_mlm_topk_cache(p), "position.bin", "rows", "row 2", "position 15");
    b = bytes;
    patch<uint16_t>(b, 144 + 3 * row_bytes + 16 + 2, 300);  // a top-k id outside the vocabulary
    p = fresh("id.bin", b);
    reseal(p, false);
    EXPECT_ERROR_MENTIONS(read_mlm_topk_cache(p), "id.bin", "rows", "row 3", "300");
    b = bytes;
    patch<float>(b, 144 + 6 * row_bytes + 16 + 6 + 4, 99.0f);  // row 6's second value above its first
    p = fresh("descending.bin", b);
    reseal(p, false);
    EXPECT_ERROR_MENTIONS(read_mlm_topk_cache(p), "descending.bin", "rows", "row 6", "descending");
    b = bytes;
    patch<float>(b, 144 + 1 * row_bytes + 16 + 6, NAN);
    p = fresh("nan.bin", b);
    reseal(p, false);
    EXPECT_ERROR_MENTIONS(read_mlm_topk_cache(p), "nan.bin", "values", "row 1", "non-finite");

    // The run's checks: the teacher, the vocabulary, the text and the sequences, in that order.
    const MlmTopKCache m = read_mlm_topk_cache(good);
    const uint64_t teacher = c.header.teacher_fingerprint, text = c.header.transfer_fingerprint, vocab = c.setup.vocab_fingerprint;
    EXPECT_NO_THROW(check_mlm_topk_cache_matches(m, "shards/*.bin", teacher, text, vocab, 100));
    EXPECT_NO_THROW(check_mlm_topk_cache_matches(m, "shards/*.bin", 0, text, vocab, 100));
    EXPECT_ERROR_MENTIONS(check_mlm_topk_cache_matches(m, "shards/*.bin", 0x99, text, vocab, 100), "good.bin", "teacher_fingerprint",
                          "0x1111222233334444", "0x0000000000000099");
    EXPECT_ERROR_MENTIONS(check_mlm_topk_cache_matches(m, "shards/*.bin", teacher, text, 0x98, 100), "good.bin", "vocab_fingerprint");
    EXPECT_ERROR_MENTIONS(check_mlm_topk_cache_matches(m, "shards/*.bin", teacher, 0x97, vocab, 100), "good.bin", "transfer_fingerprint",
                          "other text", "shards/*.bin", "distill cache --mlm");
    EXPECT_ERROR_MENTIONS(check_mlm_topk_cache_matches(m, "shards/*.bin", teacher, text, vocab, 99), "good.bin", "sequence_count", "100", "99");
}

// ---------------------------------------------------------------------------------------------
// distill cache --mlm, distill train --mlm

// The cache holds, at the batcher's fixed masks (validation masks with --mask-seed), the teacher's
// own top k: a forward pass per sequence made here, and a full sort of its logits.
TEST(DistillMlm, CacheHoldsTheTeachersTopKAtReproducibleMasksAndResumes) {
    ScratchDir dir;
    const Tokenizer vocab = Tokenizer::load(kVocab);
    BertModel teacher = random_mlm_teacher(vocab, dir / "teacher.bin", 13);
    write_text_slice(dir / "text.bin", vocab, 0, 30);
    const std::string flags = "cache --mlm --teacher " + dir / "teacher.bin" + " --transfer " + dir / "text.bin" + " --vocab " + kVocab +
                              " --seq-len 64 --mask-seed 7 --topk 16 --batch 4 --chunk 50"
                              " --precision fp32";  // compared below with an fp32 forward pass, to 1e-5
    RunResult r = distill(flags + " --out " + dir / "cache.bin");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const MlmTopKCache cache = read_mlm_topk_cache(dir / "cache.bin");
    const int V = vocab.vocab_size(), k = 16;
    EXPECT_EQ(cache.k(), k);
    EXPECT_EQ(cache.header.value_type, LogitValueType::F32);
    EXPECT_EQ(cache.header.teacher_fingerprint, load_checkpoint(dir / "teacher.bin").params_checksum);
    EXPECT_EQ(cache.setup.seq_len, 64);
    EXPECT_EQ(cache.setup.mask_seed, 7u);
    EXPECT_EQ(cache.setup.vocab_size, V);
    EXPECT_EQ(cache.setup.vocab_fingerprint, vocab.fingerprint());

    // The masks: sequence by sequence, the batcher's validation masks with validation_seed 7.
    MlmBatcherOptions bo;
    bo.batch_size = 1, bo.seq_len = 64, bo.validation_seed = 7;
    const MlmBatcher text({dir / "text.bin"}, vocab, bo);
    EXPECT_EQ(cache.header.transfer_fingerprint, token_shards_fingerprint(text.shards()));
    EXPECT_EQ(cache.setup.sequence_count, text.sequence_count());
    ASSERT_GE(text.sequence_count(), 30);
    MlmBatch batch;
    int64_t row = 0, exact_ids = 0;
    double worst = 0;
    std::vector<int32_t> ids(k);
    std::vector<float> values(k);
    for (int64_t s = 0; s < text.sequence_count(); s++) {
        text.validation_batch(s, batch);
        teacher.forward_mlm(inputs_of(batch), false, 0);
        for (int m = 0; m < batch.M(); m++, row++) {
            ASSERT_LT(row, cache.rows());
            ASSERT_EQ(cache.sequence(row), s);
            ASSERT_EQ(cache.position(row), batch.masked_positions[m]);  // B = 1: the flat index is the position
            ASSERT_EQ(cache.input_id(row), batch.input_ids[batch.masked_positions[m]]);
            ASSERT_EQ(cache.target(row), batch.masked_targets[m]);
            const float* logits = teacher.mlm_logits() + (size_t)m * V;
            std::vector<int> order(V);
            std::iota(order.begin(), order.end(), 0);
            std::sort(order.begin(), order.end(), [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
            cache.topk(row, ids.data(), values.data());
            for (int j = 0; j < k; j++) {
                // Rank j holds the j-th largest logit, and the id stored there has that logit (robust
                // to near-ties, whose order the batch composition may decide).
                const double scale = 1.0 + std::fabs(logits[order[j]]);
                worst = std::max(worst, std::fabs(values[j] - logits[order[j]]) / scale);
                worst = std::max(worst, std::fabs(logits[ids[j]] - values[j]) / scale);
                exact_ids += ids[j] == order[j];
            }
        }
    }
    EXPECT_EQ(row, cache.rows());
    std::printf("%lld masked positions of %lld sequences: worst relative difference of the top %d to a forward pass here %.2g; "
                "%.4f of the ids identical\n", (long long)cache.rows(), (long long)text.sequence_count(), k, worst,
                (double)exact_ids / (double)(cache.rows() * k));
    EXPECT_LT(worst, 1e-5);
    EXPECT_GT(exact_ids, cache.rows() * k * 99 / 100);

    // A second run finds it up to date; fp16 stores the same ids and rounded values.
    r = distill(flags + " --out " + dir / "cache.bin");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("up to date"), std::string::npos) << r.output;
    r = distill(flags + " --fp16 --out " + dir / "cache16.bin");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const MlmTopKCache half = read_mlm_topk_cache(dir / "cache16.bin");
    EXPECT_EQ(read_file(dir / "cache16.bin").size(), 144u + (size_t)cache.rows() * (16 + k * (2 + 2)));
    EXPECT_EQ(read_file(dir / "cache.bin").size(), 144u + (size_t)cache.rows() * (16 + k * (2 + 4)));
    std::vector<int32_t> ids16(k);
    std::vector<float> values16(k);
    for (int64_t i = 0; i < cache.rows(); i++) {
        cache.topk(i, ids.data(), values.data());
        half.topk(i, ids16.data(), values16.data());
        for (int j = 0; j < k; j++) ASSERT_EQ(values16[j], half_to_float(float_to_half(values[j]))) << "row " << i;
        ASSERT_EQ(ids16, ids) << "row " << i;
    }

    // An interrupted run: a .partial holding one complete chunk of 50 rows with marker values (what
    // an earlier, killed run wrote; 50 rows end inside a batch of 4 sequences), rows of an
    // incomplete chunk and torn bytes. The resumed run keeps the marked chunk, cuts the rest, and
    // continues inside the batch where the chunk ended.
    ASSERT_GT(cache.rows(), 100);
    MlmTopKRows marked;
    for (int64_t i = 0; i < 70; i++) {
        marked.sequence.push_back(cache.sequence(i)), marked.position.push_back(cache.position(i));
        marked.input_id.push_back(cache.input_id(i)), marked.target.push_back(cache.target(i));
        cache.topk(i, ids.data(), values.data());
        marked.ids.insert(marked.ids.end(), ids.begin(), ids.end());
        marked.values.insert(marked.values.end(), k, 7.0f);
    }
    {
        LogitCacheWriter partial(dir / "resumed.bin", cache.header, cache.setup);
        partial.append_topk(marked, 0, 70);  // one chunk of 50 written, 20 rows pending: dropped
    }
    {
        FILE* f = std::fopen((dir / "resumed.bin.partial").c_str(), "ab");
        ASSERT_NE(f, nullptr);
        std::fputs("torn", f);
        std::fclose(f);
    }
    r = distill(flags + " --out " + dir / "resumed.bin");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("resuming"), std::string::npos) << r.output;
    EXPECT_FALSE(file_exists(dir / "resumed.bin.partial"));
    const MlmTopKCache resumed = read_mlm_topk_cache(dir / "resumed.bin");
    ASSERT_EQ(resumed.rows(), cache.rows());
    for (int64_t i = 0; i < 50; i++) {
        resumed.topk(i, ids.data(), values.data());
        ASSERT_EQ(values[0], 7.0f) << "row " << i << " was recomputed instead of kept";
    }
    const size_t row_bytes = 16 + k * 6, first_computed = 144 + 50 * row_bytes;
    EXPECT_EQ(read_file(dir / "resumed.bin").substr(first_computed), read_file(dir / "cache.bin").substr(first_computed))
        << "the rows after the kept chunk are those of an uninterrupted run";
}

TEST(DistillMlm, MismatchedCachesTeachersAndDevicesAreClearErrors) {
    ScratchDir dir;
    const Tokenizer vocab = Tokenizer::load(kVocab);
    random_mlm_teacher(vocab, dir / "teacher.bin", 13);
    write_text_slice(dir / "text.bin", vocab, 0, 20);
    RunResult r = distill("cache --mlm --teacher " + dir / "teacher.bin" + " --transfer " + dir / "text.bin" + " --seq-len 64 --out " +
                          dir / "cache.bin");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const std::string train = "train --mlm --layers 1 --hidden 64 --epochs 1 --cache ";

    // Other text (the next 20 documents): the fingerprint of the shards differs.
    write_text_slice(dir / "other.bin", vocab, 20, 20);
    r = distill(train + dir / "cache.bin" + " --teacher " + dir / "teacher.bin" + " --transfer " + dir / "other.bin" + " --out " + dir / "a");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find(dir / "cache.bin"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("transfer_fingerprint"), std::string::npos) << r.output;
    EXPECT_FALSE(file_exists(dir / "a/log.jsonl")) << "nothing is written before the inputs are checked";

    // Another teacher.
    random_mlm_teacher(vocab, dir / "teacher2.bin", 14);
    r = distill(train + dir / "cache.bin" + " --teacher " + dir / "teacher2.bin" + " --transfer " + dir / "text.bin" + " --out " + dir / "b");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find(dir / "cache.bin"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("teacher_fingerprint"), std::string::npos) << r.output;

    // A truncated cache.
    const std::string bytes = read_file(dir / "cache.bin");
    write_file_atomic(dir / "truncated.bin", bytes.substr(0, bytes.size() - 5));
    r = distill(train + dir / "truncated.bin" + " --teacher " + dir / "teacher.bin" + " --transfer " + dir / "text.bin" + " --out " + dir / "c");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find(dir / "truncated.bin"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("file size"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("truncated"), std::string::npos) << r.output;

    // --device cuda: refused before anything is read or written, for both commands.
    for (const std::string& command : {"cache --mlm --teacher " + dir / "none.bin" + " --out " + dir / "d.bin",
                                       train + dir / "none.bin" + " --out " + dir / "e"}) {
        r = run_command("./distill " + command + " --threads 1 --device cuda");
        EXPECT_NE(r.exit_code, 0);
        EXPECT_NE(r.output.find("--device cuda"), std::string::npos) << r.output;
        EXPECT_NE(r.output.find("CPU only"), std::string::npos) << r.output;
        EXPECT_EQ(r.output.find("none.bin"), std::string::npos) << "the device is checked first: " << r.output;
    }
    EXPECT_FALSE(file_exists(dir / "d.bin") || file_exists(dir / "d.bin.partial") || file_exists(dir / "e/log.jsonl"));

    // A classifier checkpoint is no MLM teacher; an MLM cache is no class-logit cache.
    BertConfig c = bert_preset("tiny", vocab.vocab_size());
    c.num_layers = 1, c.hidden = 64, c.num_heads = 1, c.ffn = 128, c.num_labels = 2, c.pad_id = vocab.pad_id;
    BertModel classifier(c);
    classifier.init_weights(1);
    save_checkpoint(dir / "classifier.bin", weights_of(classifier), vocab.fingerprint());
    r = distill("cache --mlm --teacher " + dir / "classifier.bin" + " --transfer " + dir / "text.bin" + " --out " + dir / "f.bin");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("MLM checkpoint"), std::string::npos) << r.output;
    EXPECT_FALSE(file_exists(dir / "f.bin") || file_exists(dir / "f.bin.partial"));
    EXPECT_ERROR_MENTIONS(read_logit_cache(dir / "cache.bin"), "cache.bin", "kind", "distill train --mlm");
}

// The method end to end, small: a random student learns a random teacher's predictions at the
// masked positions of the built-in validation text (85k tokens; about 12,500 masked positions at
// T = 64, 5% of the sequences held out). Its held-out agreement with the teacher's top-1 must rise
// to 0.25 and at least 0.05 above the best constant guess (the teacher's most frequent top-1,
// about 0.18), where an untrained student is near 0. The student is an MLM
// checkpoint that train_mlm continues and finetune can take.
TEST(DistillMlm, AStudentLearnsToAgreeWithTheTeachersTopOne) {
    ScratchDir dir;
    const Tokenizer vocab = Tokenizer::load(kVocab);
    random_mlm_teacher(vocab, dir / "teacher.bin", 13);
    RunResult r = distill("cache --mlm --teacher " + dir / "teacher.bin" + " --transfer " + kText + " --seq-len 64 --fp16 --out " +
                          dir / "cache.bin");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = distill("train --mlm --teacher " + dir / "teacher.bin" + " --transfer " + kText + " --cache " + dir / "cache.bin" +
                " --layers 1 --hidden 64 --epochs 2 --batch 16 --lr 3e-3 --out " + dir / "student");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const double agreement = number_after(r.output, "agreement with the teacher's top-1 ");

    // The best constant guess: the teacher's most frequent top-1, over all rows (the held-out 5% are
    // a fixed pseudo-random sample of the sequences).
    const MlmTopKCache cache = read_mlm_topk_cache(dir / "cache.bin");
    std::map<int32_t, int64_t> top1;
    std::vector<int32_t> ids(cache.k());
    std::vector<float> values(cache.k());
    for (int64_t i = 0; i < cache.rows(); i++) {
        cache.topk(i, ids.data(), values.data());
        top1[ids[0]]++;
    }
    int64_t most = 0;
    for (const auto& [id, n] : top1) most = std::max(most, n);
    const double constant = (double)most / (double)cache.rows();
    std::printf("random L1-H64 teacher, %lld masked positions (fp16, top 32); L1-H64 student, 2 epochs: held-out agreement with the "
                "teacher's top-1 %.4f (best constant guess %.4f; thresholds 0.25 and constant + 0.05)\n",
                (long long)cache.rows(), agreement, constant);
    EXPECT_GE(agreement, 0.25) << tail(r.output);
    EXPECT_GE(agreement, constant + 0.05) << tail(r.output);

    // An MLM checkpoint: train_mlm continues from it, finetune's classifier takes its encoder.
    const Checkpoint student = load_checkpoint(dir / "student/best.bin");
    EXPECT_EQ(student.kind, CheckpointKind::Mlm);
    r = run_command("./train_mlm --init " + dir / "student/best.bin" + " --train " + kText + " --val '' --seq-len 64 --batch 4 --steps 1 " +
                    "--out " + dir / "continued --threads 1 --device cpu");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NO_THROW(classifier_from_checkpoint(student, dir / "student/best.bin", vocab, 2, ClassifierInit{}));
}
