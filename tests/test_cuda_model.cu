// tests/test_cuda_model.cu: the whole model on the GPU (model/bert_cuda.cuh) against the PyTorch
// fixture the CPU model is tested with, ten training steps on the GPU against ten on the CPU from
// the same weights and batches, and two GPU runs with the same seed. Every test skips where no
// GPU is present (dev/gpu_check.sh runs them on a GPU machine).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "common/util.h"
#include "cuda_test_util.cuh"
#include "data/mlm_batcher.h"
#include "data/tokenizer.h"
#include "model/bert.h"
#include "model/bert_cuda.cuh"
#include "model/training.h"
#include "model_fixture.h"
#include "test_helpers.h"

using namespace wr;
using cuda::Precision;
using wr::testing::MlmFixture;

namespace {

// The bounds issue 4 states: fp32 mode as the CPU tests; bf16 loss within 1e-2 relative and every
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
