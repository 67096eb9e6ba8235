// tests/test_cuda_model.cu: the whole model on the GPU (model/bert_cuda.cuh) against the PyTorch
// fixture the CPU model is tested with, ten training steps on the GPU against ten on the CPU from
// the same weights and batches, and two GPU runs with the same seed; the classifier head against
// the CPU model (classes, regression, distillation: logits, losses, counts, every gradient, with
// dropout on) and a few AdamW steps of fine-tuning against the CPU's. Every test skips where no
// GPU is present (dev/gpu_check.sh runs them on a GPU machine).
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
        for (size_t k = 0; k < batches.size(); k++) {
            model.zero_grads();
            losses.push_back(model.forward_mlm(inputs(batches[k]), /*train=*/true, 1000 + k).loss);
            model.backward_mlm();
            if (!model.optimizer_step(optimizer).skipped) optimizer.steps_done++;
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
        for (size_t k = 0; k < batches.size(); k++) {
            model.zero_grads();
            losses.push_back(model.forward_classify(inputs(batches[k]), /*train=*/true, 500 + k).loss);
            model.backward_classify();
            if (!model.optimizer_step(optimizer).skipped) optimizer.steps_done++;
        }
        if (final) {
            final->resize((size_t)model.layout.total());
            model.get_params(final->data());
        }
        return losses;
    }
};
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
