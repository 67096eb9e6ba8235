// tests/test_cuda_model.cu: the whole model on the GPU (model/bert_cuda.cuh) against the PyTorch
// fixture the CPU model is tested with, ten training steps on the GPU against ten on the CPU from
// the same weights and batches, and two GPU runs with the same seed; the classifier head against
// the CPU model (classes, regression, distillation: logits, losses, counts, every gradient, with
// dropout on) and a few AdamW steps of fine-tuning against the CPU's. Then what the GPU does
// differently from the CPU, each against the CPU model: widths 60 and 100 (biases off 16-byte
// boundaries, head sizes without kernels of their own), masked-row counts padded to 64 (and the
// cuBLASLt plans they need), the padded decoder (its padding zero before and after a step), one
// optimizer step with clipping (norm, weights, moments, the bf16 copy), and the results of a
// step's forwards read back with the step. Every test skips where no GPU is present
// (dev/gpu_check.sh runs them on a GPU machine).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "common/util.h"
#include "cuda_test_util.cuh"
#include "data/example_batcher.h"
#include "data/mlm_batcher.h"
#include "data/shards.h"
#include "data/tokenizer.h"
#include "kernels/cross_entropy.h"
#include "kernels/matmul.cuh"
#include "model/bert.h"
#include "model/bert_cuda.cuh"
#include "model/training.h"
#include "model_fixture.h"
#include "test_helpers.h"

using namespace wr;
using cuda::Precision;
using wr::testing::MlmFixture;

namespace {

// The stated bounds: fp32 mode as the CPU tests; bf16 loss within 1e-2 relative and every
// gradient tensor within kBf16GradientBound (relative error of the whole tensor).
struct Bounds {
    double logits, loss, gradient;
};
Bounds bounds_for(Precision p) { return p == Precision::fp32 ? Bounds{1e-5, 1e-5, 1e-4} : Bounds{3e-2, 1e-2, 5e-2}; }

void check_against_fixture(Precision precision) {
    MlmFixture ref;
    cuda::BertModelCuda model(ref.config, precision);
    std::vector<float> params((size_t)model.layout.total());
    ref.load_weights(model.layout, params.data());
    model.set_params(params.data());

    const Bounds bound = bounds_for(precision);
    const char* name = cuda::precision_name(precision);
    const MlmResult r = model.forward_mlm(ref.inputs, /*train=*/false, 0);
    const std::vector<float> logits = model.mlm_logits();
    const std::vector<float>& want = ref.file.f32("logits");
    ASSERT_EQ(logits.size(), want.size());
    const double logits_err = wr::testing::relative_error(logits.data(), want.data(), (int64_t)want.size());
    const double loss_err = std::fabs(r.loss - ref.file.f32("loss")[0]) / std::fabs(ref.file.f32("loss")[0]);
    std::printf("[%s] logits: gpu %.6f %.6f %.6f  torch %.6f %.6f %.6f  rel err %.2e (bound %.0e)\n", name, logits[0], logits[1],
                logits[2], want[0], want[1], want[2], logits_err, bound.logits);
    std::printf("[%s] loss:   gpu %.7f  torch %.7f  rel err %.2e (bound %.0e)\n", name, r.loss, ref.file.f32("loss")[0], loss_err,
                bound.loss);
    EXPECT_LE(logits_err, bound.logits);
    EXPECT_LE(loss_err, bound.loss);

    model.zero_grads();
    model.backward_mlm();
    std::vector<float> grads((size_t)model.layout.total());
    model.get_grads(grads.data());
    std::string worst;
    double worst_err = 0;
    for (const TensorSpec& t : model.layout.tensors()) {
        const double err = wr::testing::relative_error(grads.data() + t.offset, ref.file.f32("grad." + t.name).data(), t.numel);
        EXPECT_LE(err, bound.gradient) << "[" << name << "] gradient of " << t.name;
        if (err > worst_err) worst_err = err, worst = t.name;
    }
    std::printf("[%s] gradients: worst %s, rel err %.2e (bound %.0e)\n", name, worst.c_str(), worst_err, bound.gradient);
}

// Ten optimizer steps of the tiny preset on the built-in corpus (dropout on), batches and initial
// weights shared by whoever runs them; returns the ten losses. `gpu` null: the CPU model.
struct TenSteps {
    Tokenizer vocab = Tokenizer::load("build/default/vocab.txt");
    BertConfig config = bert_preset("tiny", vocab.vocab_size());
    std::vector<MlmBatch> batches;
    std::vector<float> initial;

    TenSteps() {
        config.pad_id = vocab.pad_id;
        MlmBatcherOptions options;
        options.batch_size = 8;
        options.seq_len = 64;
        options.seed = 7;
        MlmBatcher batcher(expand_globs({"build/default/mlm/train_*.bin"}), vocab, options);
        batches.resize(10);
        for (MlmBatch& b : batches) batcher.next_batch(b);
        BertModel init(config);
        init.init_weights(11);
        initial = init.params;
    }
    static MlmInputs inputs(const MlmBatch& b) {
        return {b.B, b.T, b.input_ids.data(), b.token_types.data(), b.lengths.data(), b.M(), b.masked_positions.data(),
                b.masked_targets.data()};
    }
    Optimizer make_optimizer(const ParamLayout& layout) const {
        OptimizerOptions o;
        o.lr = 1e-3;
        o.warmup = 2;
        return Optimizer(o, layout.total(), layout.decay_ranges(), (int64_t)batches.size());
    }
    std::vector<float> run_cpu() const {
        BertModel model(config);
        model.params = initial;
        Optimizer optimizer = make_optimizer(model.layout);
        std::vector<float> losses;
        for (size_t k = 0; k < batches.size(); k++) {
            model.zero_grads();
            losses.push_back(model.forward_mlm(inputs(batches[k]), /*train=*/true, 1000 + k).loss);
            model.backward_mlm();
            optimizer.step(model.params.data(), model.grads.data());
        }
        return losses;
    }
    std::vector<float> run_gpu(Precision precision) const {
        cuda::BertModelCuda model(config, precision);
        model.set_params(initial.data());
        Optimizer optimizer = make_optimizer(model.layout);
        std::vector<float> losses;
        for (size_t k = 0; k < batches.size(); k++) {  // as train_mlm: the loss comes back with the step
            model.zero_grads();
            model.train_forward_mlm(inputs(batches[k]), 1000 + k);
            model.backward_mlm();
            const StepResults r = model.optimizer_step(optimizer);
            if (!r.info.skipped) optimizer.steps_done++;
            EXPECT_EQ(r.mlm.size(), 1u);
            EXPECT_TRUE(r.cls.empty());
            losses.push_back(r.mlm.empty() ? NAN : r.mlm[0].loss);
        }
        return losses;
    }
};


// A classifier batch as finetune and distill make them: [CLS] first, ragged lengths (1 to T)
// with padding after them, a sentence pair, ignored labels; random weights (BERT's init, doubled
// so that the head's gradients stand well above rounding) shared by both devices. Dropout is on
// (the defaults, 0.1) in every training forward.
struct ClsCase {
    static constexpr int B = 6, T = 13;
    BertConfig config;
    std::vector<int32_t> ids, types, lengths = {13, 5, 1, 9, 13, 2}, labels;
    std::vector<float> values, teacher, initial;

    explicit ClsCase(int K) {
        config.num_layers = 2, config.hidden = 64, config.num_heads = 2, config.ffn = 128, config.vocab_size = 97;
        config.max_positions = 16, config.num_labels = K;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                ids.push_back(t == 0 ? 2 : t < lengths[b] ? 3 + (11 * b + 7 * t) % 94 : config.pad_id);
                types.push_back(b == 3 && t >= 5 && t < lengths[b] ? 1 : 0);  // row 3 is a pair
            }
        labels = {0, K - 1, kIgnoreIndex, 1 % K, 2 % K, kIgnoreIndex};
        values = wr::testing::random_vector(B, 5);
        teacher = wr::testing::random_vector((size_t)B * K, 6, 2.0f);
        BertModel init(config);
        init.init_weights(21);
        for (float& p : init.params) p *= 2.0f;
        initial = init.params;
    }
    // hard: labels (K > 1) or regression targets (K = 1); distill: the teacher's logits at
    // temperature 2 with label weight 0.5.
    ClsInputs inputs(bool hard, bool distill) const {
        ClsInputs in;
        in.B = B, in.T = T, in.input_ids = ids.data(), in.token_types = types.data(), in.lengths = lengths.data();
        if (hard && config.num_labels == 1) in.values = values.data();
        if (hard && config.num_labels > 1) in.labels = labels.data();
        if (distill) in.teacher_logits = teacher.data(), in.temperature = 2.0f, in.label_weight = 0.5f;
        return in;
    }
};

double relative_difference(double got, double want) { return std::fabs(got - want) / std::max(std::fabs(want), 1e-6); }

// The GPU classifier against the CPU's on the batch of `c`: the logits of an evaluation forward
// without labels (prediction), then a training forward (dropout on, the same seed): logits, the
// three losses and the counts; then every parameter gradient of the backward, and the logits
// left as they were by it.
void check_classifier(const ClsCase& c, bool hard, bool distill, Precision precision, const char* what) {
    const Bounds bound = bounds_for(precision);
    const char* name = cuda::precision_name(precision);
    const int K = c.config.num_labels;
    const size_t BK = (size_t)ClsCase::B * K;
    BertModel cpu(c.config);
    cpu.params = c.initial;
    cuda::BertModelCuda gpu(c.config, precision);
    gpu.set_params(c.initial.data());

    const ClsInputs bare = c.inputs(false, false);
    const ClsResult bare_result = gpu.forward_classify(bare, /*train=*/false, 0);
    EXPECT_EQ(bare_result.counted, 0);
    cpu.forward_classify(bare, /*train=*/false, 0);
    std::vector<float> want(cpu.cls_logits(), cpu.cls_logits() + BK);
    const double eval_err = wr::testing::relative_error(gpu.cls_logits(), want);
    EXPECT_LE(eval_err, bound.logits) << "[" << name << "] " << what << ": evaluation logits";

    const ClsInputs in = c.inputs(hard, distill);
    const uint64_t seed = 1234;
    const ClsResult w = cpu.forward_classify(in, /*train=*/true, seed);
    const ClsResult g = gpu.forward_classify(in, /*train=*/true, seed);
    want.assign(cpu.cls_logits(), cpu.cls_logits() + BK);
    const std::vector<float> logits = gpu.cls_logits();
    ASSERT_EQ(logits.size(), want.size());
    const double logits_err = wr::testing::relative_error(logits, want);
    EXPECT_LE(logits_err, bound.logits) << "[" << name << "] " << what << ": training logits";
    EXPECT_LE(relative_difference(g.loss, w.loss), bound.loss) << "[" << name << "] " << what << ": loss " << g.loss << ", cpu " << w.loss;
    EXPECT_LE(relative_difference(g.hard_loss, w.hard_loss), bound.loss)
        << "[" << name << "] " << what << ": hard loss " << g.hard_loss << ", cpu " << w.hard_loss;
    EXPECT_LE(relative_difference(g.soft_loss, w.soft_loss), bound.loss)
        << "[" << name << "] " << what << ": soft loss " << g.soft_loss << ", cpu " << w.soft_loss;
    EXPECT_EQ(g.counted, w.counted) << "[" << name << "] " << what;
    if (precision == Precision::fp32) {  // argmaxes of bf16 logits may differ where two are close
        EXPECT_EQ(g.correct, w.correct) << "[" << name << "] " << what;
        EXPECT_EQ(g.agree, w.agree) << "[" << name << "] " << what;
    }
    const double loss_diff = std::max({relative_difference(g.loss, w.loss), relative_difference(g.hard_loss, w.hard_loss),
                                       relative_difference(g.soft_loss, w.soft_loss)});
    std::printf("[%s] %s: logits rel err %.2e (bound %.0e), evaluation forward %.2e\n", name, what, logits_err, bound.logits, eval_err);
    std::printf("[%s] %s: loss gpu %.6f cpu %.6f, hard %.6f / %.6f, soft %.6f / %.6f: worst rel diff %.2e (bound %.0e); "
                "counted %d/%d, correct %d/%d, agree %d/%d\n",
                name, what, g.loss, w.loss, g.hard_loss, w.hard_loss, g.soft_loss, w.soft_loss, loss_diff, bound.loss, g.counted,
                w.counted, g.correct, w.correct, g.agree, w.agree);

    cpu.zero_grads();
    cpu.backward_classify();
    gpu.zero_grads();
    gpu.backward_classify();
    std::vector<float> grads((size_t)gpu.layout.total());
    gpu.get_grads(grads.data());
    std::string worst;
    double worst_err = 0;
    for (const TensorSpec& t : gpu.layout.tensors()) {
        const double err = wr::testing::relative_error(grads.data() + t.offset, cpu.grads.data() + t.offset, t.numel);
        EXPECT_LE(err, bound.gradient) << "[" << name << "] " << what << ": gradient of " << t.name;
        if (err > worst_err) worst_err = err, worst = t.name;
    }
    std::printf("[%s] %s: gradients: worst %s, rel err %.2e (bound %.0e)\n", name, what, worst.c_str(), worst_err, bound.gradient);
    EXPECT_EQ(gpu.cls_logits(), logits) << "[" << name << "] " << what << ": backward_classify changed the logits";
}

// A few AdamW steps of fine-tuning the tiny preset on the built-in sentiment task (dropout on),
// batches from the example batcher and initial weights shared by whoever runs them.
struct ClsSteps {
    Tokenizer vocab = Tokenizer::load("build/default/vocab.txt");
    BertConfig config = bert_preset("tiny", vocab.vocab_size());
    std::vector<ExampleBatch> batches;
    std::vector<float> initial;

    ClsSteps() {
        config.pad_id = vocab.pad_id;
        config.num_labels = 2;
        const std::string path = "build/default/sentiment_train.bin";
        ExampleBatcherOptions options;
        options.batch_size = 16;
        options.seed = 3;
        ExampleBatcher batcher(read_example_shard(path, &vocab), path, vocab, config.num_labels, config.max_positions, options);
        batches.resize(6);
        for (ExampleBatch& b : batches) batcher.next_batch(b);
        BertModel init(config);
        init.init_weights(13);
        initial = init.params;
    }
    static ClsInputs inputs(const ExampleBatch& b) {
        ClsInputs in;
        in.B = b.B, in.T = b.T, in.input_ids = b.input_ids.data(), in.token_types = b.token_types.data(), in.lengths = b.lengths.data();
        in.labels = b.labels.data();
        return in;
    }
    Optimizer make_optimizer(const ParamLayout& layout) const {
        OptimizerOptions o;
        o.lr = 1e-3;
        o.warmup = 2;
        return Optimizer(o, layout.total(), layout.decay_ranges(), (int64_t)batches.size());
    }
    // The losses of the steps; the final weights into *final when given.
    std::vector<float> run_cpu(std::vector<float>* final) const {
        BertModel model(config);
        model.params = initial;
        Optimizer optimizer = make_optimizer(model.layout);
        std::vector<float> losses;
        for (size_t k = 0; k < batches.size(); k++) {
            model.zero_grads();
            losses.push_back(model.forward_classify(inputs(batches[k]), /*train=*/true, 500 + k).loss);
            model.backward_classify();
            optimizer.step(model.params.data(), model.grads.data());
        }
        if (final) *final = model.params;
        return losses;
    }
    std::vector<float> run_gpu(Precision precision, std::vector<float>* final) const {
        cuda::BertModelCuda model(config, precision);
        model.set_params(initial.data());
        Optimizer optimizer = make_optimizer(model.layout);
        std::vector<float> losses;
        for (size_t k = 0; k < batches.size(); k++) {  // as finetune: the loss comes back with the step
            model.zero_grads();
            model.train_forward_classify(inputs(batches[k]), 500 + k);
            model.backward_classify();
            const StepResults r = model.optimizer_step(optimizer);
            if (!r.info.skipped) optimizer.steps_done++;
            EXPECT_EQ(r.cls.size(), 1u);
            losses.push_back(r.cls.empty() ? NAN : r.cls[0].loss);
        }
        if (final) {
            final->resize((size_t)model.layout.total());
            model.get_params(final->data());
        }
        return losses;
    }
};
// A model of any width on a batch of ragged sequences (lengths T, 9, 1) with M masked positions
// spread over the real tokens; random weights (BERT's init, doubled, as ClsCase) shared by both
// devices. Widths that are not multiples of 8 put biases and per-layer slices off 16-byte
// boundaries and give head sizes the attention kernels pad.
struct OddCase {
    static constexpr int B = 3, T = 21;
    BertConfig config;
    std::vector<int32_t> ids, types, lengths = {21, 9, 1}, positions, targets;
    std::vector<float> initial;

    OddCase(int hidden, int heads, int ffn, int vocab, int M) {
        config.num_layers = 2, config.hidden = hidden, config.num_heads = heads, config.ffn = ffn, config.vocab_size = vocab;
        config.max_positions = 32;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                ids.push_back(t == 0 ? 2 : t < lengths[b] ? 3 + (13 * b + 5 * t) % (vocab - 3) : config.pad_id);
                types.push_back(b == 0 && t >= 11 ? 1 : 0);
            }
        for (int t = 0; t < T && (int)positions.size() < M; t++)  // distinct real positions, round the sequences
            for (int b = 0; b < B && (int)positions.size() < M; b++)
                if (t < lengths[b]) positions.push_back(b * T + t), targets.push_back((7 * b + 11 * t + 1) % vocab);
        BertModel init(config);
        init.init_weights(31);
        for (float& p : init.params) p *= 2.0f;
        initial = init.params;
    }
    MlmInputs inputs(int M = -1) const {
        return {B, T, ids.data(), types.data(), lengths.data(), M < 0 ? (int)positions.size() : M, positions.data(), targets.data()};
    }
    std::string name() const { return config.describe(); }
};

// Every tensor of two host-layout buffers within `bound`; prints the worst.
void expect_tensors_close(const ParamLayout& layout, const std::vector<float>& got, const std::vector<float>& want, double bound,
                          const std::string& what) {
    std::string worst;
    double worst_err = 0;
    for (const TensorSpec& t : layout.tensors()) {
        const double err = wr::testing::relative_error(got.data() + t.offset, want.data() + t.offset, t.numel);
        EXPECT_LE(err, bound) << what << " of " << t.name;
        if (!(err <= worst_err)) worst_err = err, worst = t.name;
    }
    std::printf("%s: worst %s, rel err %.2e (bound %.0e)\n", what.c_str(), worst.c_str(), worst_err, bound);
}

// A training forward (dropout on) and backward of the MLM head on both devices: loss, logits,
// correct count, every gradient; the GPU's padding zero. Returns both models for more steps.
struct MlmPair {
    BertModel cpu;
    cuda::BertModelCuda gpu;
    MlmPair(const OddCase& c, Precision p) : cpu(c.config), gpu(c.config, p) {
        cpu.params = c.initial;
        gpu.set_params(c.initial.data());
    }
};
void check_mlm_step(MlmPair& m, const OddCase& c, Precision precision, int M, const std::string& what) {
    const Bounds bound = bounds_for(precision);
    const std::string name = std::string("[") + cuda::precision_name(precision) + "] " + what;
    const MlmInputs in = c.inputs(M);
    const uint64_t seed = 77;
    const MlmResult w = m.cpu.forward_mlm(in, /*train=*/true, seed);
    const MlmResult g = m.gpu.forward_mlm(in, /*train=*/true, seed);
    EXPECT_LE(relative_difference(g.loss, w.loss), bound.loss) << name << ": loss " << g.loss << ", cpu " << w.loss;
    if (precision == Precision::fp32) EXPECT_EQ(g.correct, w.correct) << name;
    const std::vector<float> logits = m.gpu.mlm_logits();
    const std::vector<float> want(m.cpu.mlm_logits(), m.cpu.mlm_logits() + (size_t)in.M * c.config.vocab_size);
    ASSERT_EQ(logits.size(), want.size()) << name;
    const double logits_err = wr::testing::relative_error(logits, want);
    EXPECT_LE(logits_err, bound.logits) << name << ": logits";
    std::printf("%s: M %d, loss gpu %.6f cpu %.6f, logits rel err %.2e\n", name.c_str(), in.M, g.loss, w.loss, logits_err);
    m.cpu.zero_grads();
    m.cpu.backward_mlm();
    m.gpu.zero_grads();
    m.gpu.backward_mlm();
    std::vector<float> grads((size_t)m.gpu.layout.total());
    m.gpu.get_grads(grads.data());
    expect_tensors_close(m.gpu.layout, grads, m.cpu.grads, bound.gradient, name + ": gradients");
    EXPECT_EQ(m.gpu.padding_max_abs(), 0.0f) << name << ": the device padding (decoder rows, alignment) is not zero";
}

}  // namespace

TEST(CudaModel, Fp32MatchesPyTorch) {
    WR_REQUIRE_GPU();
    check_against_fixture(Precision::fp32);
}

TEST(CudaModel, Bf16MatchesPyTorchWithinBf16Bounds) {
    WR_REQUIRE_GPU();
    check_against_fixture(Precision::bf16);
}

TEST(CudaModel, TenTrainingStepsMatchTheCpu) {
    WR_REQUIRE_GPU();
    const TenSteps run;
    const std::vector<float> cpu = run.run_cpu();
    for (Precision p : {Precision::fp32, Precision::bf16}) {
        const double bound = p == Precision::fp32 ? 1e-4 : 2e-2;
        const std::vector<float> gpu = run.run_gpu(p);
        double worst = 0;
        for (size_t k = 0; k < cpu.size(); k++) {
            const double err = std::fabs(gpu[k] - cpu[k]) / std::fabs(cpu[k]);
            EXPECT_LE(err, bound) << cuda::precision_name(p) << " step " << k + 1 << ": gpu " << gpu[k] << ", cpu " << cpu[k];
            worst = std::max(worst, err);
        }
        std::printf("[%s] 10 steps, dropout on: cpu %.5f -> %.5f, gpu %.5f -> %.5f, worst rel diff %.2e (bound %.0e)\n",
                    cuda::precision_name(p), cpu.front(), cpu.back(), gpu.front(), gpu.back(), worst, bound);
    }
}

TEST(CudaModel, SameSeedGivesTheSameLosses) {
    WR_REQUIRE_GPU();
    const TenSteps run;
    for (Precision p : {Precision::fp32, Precision::bf16}) {
        const std::vector<float> first = run.run_gpu(p), second = run.run_gpu(p);
        for (size_t k = 0; k < first.size(); k++)
            EXPECT_EQ(first[k], second[k]) << cuda::precision_name(p) << " step " << k + 1 << " differs between two runs";
    }
}

TEST(CudaModel, ClassifierMatchesTheCpu) {
    WR_REQUIRE_GPU();
    const ClsCase c(3);
    for (Precision p : {Precision::fp32, Precision::bf16}) check_classifier(c, /*hard=*/true, /*distill=*/false, p, "3 classes");
    // The CPU's checks, with the CPU's messages.
    cuda::BertModelCuda gpu(c.config, Precision::fp32);
    std::vector<int32_t> bad = c.labels;
    bad[1] = 3;
    ClsInputs in = c.inputs(true, false);
    in.labels = bad.data();
    EXPECT_ERROR_MENTIONS(gpu.forward_classify(in, false, 0), "label 3", "3 classes");
    in = c.inputs(true, false);
    in.values = c.values.data();
    EXPECT_ERROR_MENTIONS(gpu.forward_classify(in, false, 0), "3 classes", "regression targets");
    in = c.inputs(true, true);
    in.temperature = 0.0f;
    EXPECT_ERROR_MENTIONS(gpu.forward_classify(in, false, 0), "temperature");
}

TEST(CudaModel, RegressionHeadMatchesTheCpu) {
    WR_REQUIRE_GPU();
    const ClsCase c(1);
    for (Precision p : {Precision::fp32, Precision::bf16}) check_classifier(c, /*hard=*/true, /*distill=*/false, p, "regression");
}

// Distillation: the teacher's logits at temperature 2 plus 0.5 x the hard loss; the teacher alone
// (an unlabeled transfer set); and for one output, the squared error against the teacher's.
TEST(CudaModel, DistillationLossMatchesTheCpu) {
    WR_REQUIRE_GPU();
    const ClsCase classes(3), regression(1);
    for (Precision p : {Precision::fp32, Precision::bf16}) {
        check_classifier(classes, /*hard=*/true, /*distill=*/true, p, "distill, 3 classes, T 2, label weight 0.5");
        check_classifier(classes, /*hard=*/false, /*distill=*/true, p, "distill, 3 classes, T 2, no labels");
        check_classifier(regression, /*hard=*/true, /*distill=*/true, p, "distill, regression, label weight 0.5");
    }
}

// A batch whose labels are all ignored (counted = 0): hard loss 0 and no hard gradient (the GPU
// skips the fused kernel), alone (every gradient 0) and under the soft loss.
TEST(CudaModel, ClassifierWithoutCountedRowsMatchesTheCpu) {
    WR_REQUIRE_GPU();
    ClsCase c(3);
    c.labels.assign(ClsCase::B, kIgnoreIndex);
    for (Precision p : {Precision::fp32, Precision::bf16}) {
        check_classifier(c, /*hard=*/true, /*distill=*/false, p, "3 classes, every label ignored");
        check_classifier(c, /*hard=*/true, /*distill=*/true, p, "distill, 3 classes, every label ignored");
    }
}

TEST(CudaModel, ClassifierTrainingStepsMatchTheCpu) {
    WR_REQUIRE_GPU();
    const ClsSteps run;
    std::vector<float> cpu_final;
    const std::vector<float> cpu = run.run_cpu(&cpu_final);
    for (Precision p : {Precision::fp32, Precision::bf16}) {
        const double bound = p == Precision::fp32 ? 1e-4 : 2e-2;
        std::vector<float> gpu_final;
        const std::vector<float> gpu = run.run_gpu(p, &gpu_final);
        double worst = 0;
        for (size_t k = 0; k < cpu.size(); k++) {
            const double err = std::fabs(gpu[k] - cpu[k]) / std::fabs(cpu[k]);
            EXPECT_LE(err, bound) << cuda::precision_name(p) << " step " << k + 1 << ": gpu " << gpu[k] << ", cpu " << cpu[k];
            worst = std::max(worst, err);
        }
        // How far the weights moved, compared (printed for the log: AdamW's normalization makes
        // elements with gradients near zero differ more than the losses do).
        std::vector<float> cpu_update(cpu_final.size()), gpu_update(gpu_final.size());
        for (size_t i = 0; i < cpu_final.size(); i++)
            cpu_update[i] = cpu_final[i] - run.initial[i], gpu_update[i] = gpu_final[i] - run.initial[i];
        std::printf("[%s] %zu fine-tuning steps, dropout on: cpu %.5f -> %.5f, gpu %.5f -> %.5f, worst rel diff %.2e (bound %.0e); "
                    "weight updates rel diff %.2e\n",
                    cuda::precision_name(p), cpu.size(), cpu.front(), cpu.back(), gpu.front(), gpu.back(), worst, bound,
                    wr::testing::relative_error(gpu_update, cpu_update));
        const std::vector<float> again = run.run_gpu(p, nullptr);
        for (size_t k = 0; k < gpu.size(); k++)
            EXPECT_EQ(gpu[k], again[k]) << cuda::precision_name(p) << " step " << k + 1 << " differs between two GPU runs";
    }
}

// These two run on every machine: the clear errors of the CUDA path where it cannot run.
TEST(CudaModel, PrecisionNamesAreChecked) {
    EXPECT_EQ(cuda::parse_precision("fp32", "x"), Precision::fp32);
    EXPECT_EQ(cuda::parse_precision("bf16", "x"), Precision::bf16);
    EXPECT_ERROR_MENTIONS(cuda::parse_precision("fp16", "flag --precision"), "flag --precision", "fp16", "bf16, fp32");
}

TEST(CudaModel, WithoutAGpuTheModelSaysWhy) {
    if (cuda::device_available()) GTEST_SKIP() << "a GPU is present: " << cuda::device_name();
    const std::string reason = cuda::device_unavailable_reason();
    EXPECT_FALSE(reason.empty());
    EXPECT_ERROR_MENTIONS(cuda::BertModelCuda(bert_preset("tiny", 100), Precision::bf16), "--device cuda", reason.c_str());
}

// Widths 60 and 100: every bias and per-layer slice that is not 16-byte aligned goes through the
// unfused bias add (no misaligned cuBLASLt epilogue), head sizes 60 and 50 run on padded heads,
// V = 97 and 1001 on a decoder padded to 128 and 1024 rows. MLM head and classifier, forward and
// backward, against the CPU.
TEST(CudaModel, OddWidthsMatchTheCpu) {
    WR_REQUIRE_GPU();
    const OddCase cases[] = {OddCase(60, 1, 150, 97, 23), OddCase(100, 2, 333, 1001, 23)};
    for (const OddCase& c : cases)
        for (Precision p : {Precision::fp32, Precision::bf16}) {
            MlmPair pair(c, p);
            check_mlm_step(pair, c, p, -1, c.name() + " MLM");
        }
    for (int hidden : {60, 100}) {
        ClsCase c(3);
        c.config.hidden = hidden, c.config.num_heads = hidden == 60 ? 1 : 2, c.config.ffn = hidden == 60 ? 150 : 333;
        BertModel init(c.config);
        init.init_weights(21);
        for (float& x : init.params) x *= 2.0f;
        c.initial = init.params;
        for (Precision p : {Precision::fp32, Precision::bf16})
            check_classifier(c, /*hard=*/true, /*distill=*/true, p, hidden == 60 ? "width 60, 3 classes, distill" : "width 100, 3 classes, distill");
    }
}

// The MLM head runs on M rows padded to a multiple of 64 (ignored rows: loss 0, gradient 0): the
// results match the CPU's for M on and around multiples of 64, and M values that pad to the same
// count reuse the cuBLASLt plans of the first (no new plan for a new M).
TEST(CudaModel, MaskedRowsPaddedTo64MatchTheCpuAndReusePlans) {
    WR_REQUIRE_GPU();
    const OddCase c(64, 2, 128, 500, 31);  // 31 = every real token of the batch
    MlmPair pair(c, Precision::fp32);
    for (int M : {1, 31, 30}) check_mlm_step(pair, c, Precision::fp32, M, "M " + std::to_string(M));
    // Larger M from a bigger batch: the TenSteps batches (64 tokens x 8, about 15% masked).
    const TenSteps run;
    BertModel cpu(run.config);
    cpu.params = run.initial;
    cuda::BertModelCuda gpu(run.config, Precision::fp32);
    gpu.set_params(run.initial.data());
    const MlmBatch& b = *std::max_element(run.batches.begin(), run.batches.end(),
                                          [](const MlmBatch& x, const MlmBatch& y) { return x.M() < y.M(); });
    ASSERT_GE(b.M(), 66);
    size_t plans_after_65 = 0;
    for (int M : {64, 65, 66, std::min(b.M(), 128)}) {  // 64; then 65, 66 and up to 128 all pad to 128
        MlmInputs in = TenSteps::inputs(b);
        in.M = M;
        const MlmResult w = cpu.forward_mlm(in, false, 0), g = gpu.forward_mlm(in, false, 0);
        EXPECT_LE(relative_difference(g.loss, w.loss), 1e-5) << "M " << M;
        EXPECT_EQ(g.correct, w.correct) << "M " << M;
        cpu.zero_grads(), gpu.zero_grads();
        cpu.backward_mlm(), gpu.backward_mlm();
        std::vector<float> grads((size_t)gpu.layout.total());
        gpu.get_grads(grads.data());
        expect_tensors_close(gpu.layout, grads, cpu.grads, 1e-4, "[fp32] M " + std::to_string(M) + ": gradients");
        if (M == 65) plans_after_65 = cuda::matmul_plans_made();
        if (M > 65) EXPECT_EQ(cuda::matmul_plans_made(), plans_after_65) << "M " << M << " pads to 128 as 65 does: no new plan";
    }
}

// One optimizer step with clipping on (the norm is well above --clip): the GPU's step against the
// CPU's Optimizer::step (clip_grad_norm, then AdamW) on the same gradients, the GPU's own (which
// check_mlm_step compared with the CPU model's first): the norm, every weight, both AdamW moments.
// The bf16 copy written by the AdamW kernel equals a fresh conversion of the new weights (the next
// forward gives the same bits); the device padding stays zero (never updated).
TEST(CudaModel, OptimizerStepWithClippingMatchesTheCpu) {
    WR_REQUIRE_GPU();
    const OddCase c(100, 2, 333, 1001, 23);
    const double bound = 1e-6;  // the same fp32 math; the clip factor from a float norm on the GPU, a double one on the CPU
    for (Precision p : {Precision::fp32, Precision::bf16}) {
        const std::string name = std::string("[") + cuda::precision_name(p) + "] optimizer step";
        MlmPair pair(c, p);
        check_mlm_step(pair, c, p, -1, "before the step");
        const size_t n = (size_t)pair.cpu.layout.total();
        std::vector<float> grads(n), want_params = c.initial;
        pair.gpu.get_grads(grads.data());
        OptimizerOptions o;
        o.lr = 1e-3;
        o.clip = 0.05;
        Optimizer cpu_opt(o, pair.cpu.layout.total(), pair.cpu.layout.decay_ranges(), 10);
        Optimizer gpu_opt(o, pair.cpu.layout.total(), pair.cpu.layout.decay_ranges(), 10);
        const Optimizer::StepInfo want = cpu_opt.step(want_params.data(), grads.data());
        const StepResults got = pair.gpu.optimizer_step(gpu_opt);
        ASSERT_FALSE(want.skipped);
        ASSERT_FALSE(got.info.skipped);
        EXPECT_GT(want.grad_norm, 4 * o.clip) << "the gradients must be clipped for this test";
        EXPECT_LE(relative_difference(got.info.grad_norm, want.grad_norm), 2e-7) << name;
        EXPECT_EQ(got.info.lr, want.lr) << name;
        std::printf("%s: norm gpu %.7f cpu %.7f (clip %.2f)\n", name.c_str(), got.info.grad_norm, want.grad_norm, o.clip);
        std::vector<float> params(n), m(n), v(n);
        pair.gpu.get_params(params.data());
        pair.gpu.get_moments(m.data(), v.data());
        expect_tensors_close(pair.cpu.layout, params, want_params, bound, name + ": weights");
        expect_tensors_close(pair.cpu.layout, m, cpu_opt.m, bound, name + ": first moment");
        expect_tensors_close(pair.cpu.layout, v, cpu_opt.v, bound, name + ": second moment");
        EXPECT_EQ(pair.gpu.padding_max_abs(), 0.0f) << name << ": the device padding changed";
        // The bf16 copy: a model given the new weights converts them itself; both forwards agree bit for bit.
        cuda::BertModelCuda fresh(c.config, p);
        fresh.set_params(params.data());
        const float after = pair.gpu.forward_mlm(c.inputs(), false, 0).loss, again = fresh.forward_mlm(c.inputs(), false, 0).loss;
        EXPECT_EQ(after, again) << name << ": the AdamW kernel's bf16 copy differs from a conversion of its weights";
    }
}

// A step's training forwards leave their results on the device; the step reads them back with the
// norm, in order, equal (same bits) to forwards that read their result at once. Twenty micro-
// batches: more than the read-back buffer first holds (it grows keeping what it has).
TEST(CudaModel, StepResultsComeBackWithTheStep) {
    WR_REQUIRE_GPU();
    const TenSteps run;
    for (Precision p : {Precision::fp32, Precision::bf16}) {
        cuda::BertModelCuda deferred(run.config, p), direct(run.config, p);
        deferred.set_params(run.initial.data());
        direct.set_params(run.initial.data());
        std::vector<MlmResult> want;
        deferred.zero_grads();
        for (int k = 0; k < 20; k++) {
            const MlmInputs in = TenSteps::inputs(run.batches[(size_t)k % run.batches.size()]);
            deferred.train_forward_mlm(in, 3000 + k);
            deferred.backward_mlm();
            want.push_back(direct.forward_mlm(in, /*train=*/true, 3000 + k));
        }
        deferred.average_grads(20);
        Optimizer optimizer = run.make_optimizer(deferred.layout);
        const StepResults got = deferred.optimizer_step(optimizer);
        EXPECT_TRUE(std::isfinite(got.info.grad_norm));
        EXPECT_TRUE(got.cls.empty());
        ASSERT_EQ(got.mlm.size(), want.size());
        for (size_t k = 0; k < want.size(); k++) {
            EXPECT_EQ(got.mlm[k].loss, want[k].loss) << cuda::precision_name(p) << " micro-batch " << k;
            EXPECT_EQ(got.mlm[k].correct, want[k].correct) << cuda::precision_name(p) << " micro-batch " << k;
        }
        // The next step starts with nothing pending; an evaluation forward in between is read at once.
        const MlmResult eval = deferred.forward_mlm(TenSteps::inputs(run.batches[0]), false, 0);
        EXPECT_GT(eval.loss, 0.0f);
        const StepResults next = deferred.optimizer_step(optimizer);
        EXPECT_TRUE(next.mlm.empty()) << "results of an earlier step or of an evaluation came back again";
    }
}
