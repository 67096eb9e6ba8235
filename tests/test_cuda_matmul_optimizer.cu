// tests/test_cuda_matmul_optimizer.cu: the GPU linear layer (kernels/matmul.cu) and optimizer step
// (kernels/optimizer.cu) against their CPU versions (kernels/matmul.cpp, kernels/optimizer.cpp).
//   - matmul forward, with and without bias, in fp32 and bf16, for odd and model-sized shapes:
//     relative error <= op_tolerance<T>() (1e-5 fp32, 1e-2 bf16), outputs NaN-poisoned first so
//     an unwritten element fails; biases at offsets off 16-byte boundaries (widths 60 and 100);
//     the plan cache bounded over more shapes than it holds;
//   - matmul backward from gradients that start at random values (so += is checked, not =), the
//     bias gradient alone (and run twice: identical bits), null gradients left alone;
//   - the gradient norm (one float rounding of the CPU's double: rel err <= 2e-7); AdamW with
//     clipping fused in against the CPU's clip_grad_norm + adamw_update (rel err <= 1e-6: the two
//     sides may fuse different multiply-adds), its bf16 copy bit for bit, over several steps with
//     decay spans, elements outside the spans untouched, and a non-finite norm turning it into a
//     no-op.
// Each test prints its worst error. Every test skips itself where no GPU is present.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "common/util.h"
#include "cuda_test_util.cuh"
#include "kernels/matmul.cuh"
#include "kernels/matmul.h"
#include "kernels/optimizer.cuh"
#include "kernels/optimizer.h"

using namespace wr::testing;
namespace cuda = wr::cuda;

namespace {

struct Shape {
    int N, IC, OC;
};
// Odd sizes (no dimension a multiple of 8, rows of 2-byte-aligned bf16), the task's odd shape, and
// a BERT-base feed-forward layer.
const Shape kShapes[] = {{5, 33, 67}, {7, 96, 1000}, {512, 768, 3072}};

std::string shape_name(const Shape& s) {
    return "N=" + std::to_string(s.N) + " IC=" + std::to_string(s.IC) + " OC=" + std::to_string(s.OC);
}

// Compares, records the worst error, and says which array failed.
void expect_close(const std::vector<float>& got, const std::vector<float>& want, double tolerance, const std::string& what,
                  double& worst) {
    const double err = relative_error(got, want);
    worst = std::max(worst, err);
    EXPECT_LE(err, tolerance) << what;
}

void print_worst(const char* test, const char* precision, double worst, double tolerance) {
    std::printf("[ worst    ] %s (%s): relative error %.3g (tolerance %.3g)\n", test, precision, worst, tolerance);
}

struct PrecisionNames {
    template <typename T> static std::string GetName(int) { return precision_name<T>(); }
};

template <typename T> class CudaMatmul : public ::testing::Test {};
TYPED_TEST_SUITE(CudaMatmul, Precisions, PrecisionNames);

}  // namespace

TYPED_TEST(CudaMatmul, ForwardMatchesCpu) {
    WR_REQUIRE_GPU();
    using T = TypeParam;
    double worst = 0;
    uint32_t seed = 1;
    for (const Shape& s : kShapes)
        for (bool with_bias : {false, true}) {
            const auto inp = round_through<T>(random_vector((size_t)s.N * s.IC, seed++));
            const auto weight = round_through<T>(random_vector((size_t)s.OC * s.IC, seed++, 1.0f / std::sqrt((float)s.IC)));
            const auto bias = round_through<T>(random_vector((size_t)s.OC, seed++));
            std::vector<float> want((size_t)s.N * s.OC);
            wr::matmul_forward(want.data(), inp.data(), weight.data(), with_bias ? bias.data() : nullptr, s.N, s.IC, s.OC);

            auto d_inp = to_device<T>(inp), d_weight = to_device<T>(weight), d_bias = to_device<T>(bias);
            auto d_out = poisoned<T>(want.size());
            cuda::matmul_forward(d_out.data(), d_inp.data(), d_weight.data(), with_bias ? d_bias.data() : nullptr, s.N,
                                 s.IC, s.OC);
            expect_close(to_host(d_out), want, op_tolerance<T>(), shape_name(s) + (with_bias ? " with bias" : " no bias"),
                         worst);
        }
    print_worst("CudaMatmul.ForwardMatchesCpu", precision_name<T>(), worst, op_tolerance<T>());
}

// Biases that are views at odd offsets of a flat buffer (a stacked [L, OC] bias's layer 1 for
// OC = 60 or 100, or one element in): the epilogue may not take them (a kernel that reads the
// bias 16 bytes at a time would fault), so they are added after the product. Widths 60 and 100
// as the GPU model tests use; inputs and outputs at odd offsets too.
TYPED_TEST(CudaMatmul, ForwardWithUnalignedBiasMatchesCpu) {
    WR_REQUIRE_GPU();
    using T = TypeParam;
    double worst = 0;
    uint32_t seed = 50;
    for (const Shape& s : {Shape{37, 60, 60}, Shape{64, 100, 100}, Shape{19, 60, 240}, Shape{128, 100, 400}})
        for (int64_t shift : {1, 2, 4, 60, 100}) {  // elements: 2 to 400 bytes past an aligned start
            const auto inp = round_through<T>(random_vector((size_t)s.N * s.IC, seed++));
            const auto weight = round_through<T>(random_vector((size_t)s.OC * s.IC, seed++, 1.0f / std::sqrt((float)s.IC)));
            const auto bias = round_through<T>(random_vector((size_t)s.OC, seed++));
            std::vector<float> want((size_t)s.N * s.OC);
            wr::matmul_forward(want.data(), inp.data(), weight.data(), bias.data(), s.N, s.IC, s.OC);

            std::vector<float> flat_bias((size_t)shift, 0.0f);  // the bias `shift` elements into a buffer
            flat_bias.insert(flat_bias.end(), bias.begin(), bias.end());
            auto d_inp = to_device<T>(inp), d_weight = to_device<T>(weight), d_flat_bias = to_device<T>(flat_bias);
            auto d_out = poisoned<T>(want.size());
            cuda::matmul_forward(d_out.data(), d_inp.data(), d_weight.data(), d_flat_bias.data() + shift, s.N, s.IC, s.OC);
            cuda::synchronize();  // a misaligned access would surface here as a CUDA error
            expect_close(to_host(d_out), want, op_tolerance<T>(), shape_name(s) + " bias at +" + std::to_string(shift), worst);
        }
    print_worst("CudaMatmul.ForwardWithUnalignedBiasMatchesCpu", precision_name<T>(), worst, op_tolerance<T>());
}

// More distinct shapes than the plan cache holds: it stays at its cap (descriptors of forgotten
// plans freed), and a shape whose plan was forgotten is planned again and still right.
TYPED_TEST(CudaMatmul, PlanCacheStaysBoundedAndReplans) {
    WR_REQUIRE_GPU();
    using T = TypeParam;
    const int IC = 64, OC = 64;
    const auto weight = round_through<T>(random_vector((size_t)OC * IC, 70, 0.125f));
    auto d_weight = to_device<T>(weight);
    double worst = 0;
    auto check = [&](int N) {
        const auto inp = round_through<T>(random_vector((size_t)N * IC, 71 + N));
        std::vector<float> want((size_t)N * OC);
        wr::matmul_forward(want.data(), inp.data(), weight.data(), nullptr, N, IC, OC);
        auto d_inp = to_device<T>(inp);
        auto d_out = poisoned<T>(want.size());
        cuda::matmul_forward<T>(d_out.data(), d_inp.data(), d_weight.data(), nullptr, N, IC, OC);
        expect_close(to_host(d_out), want, op_tolerance<T>(), "N=" + std::to_string(N), worst);
    };
    check(1);
    for (int N = 2; N <= (int)cuda::kMaxMatmulPlans + 40; N++) {
        const auto inp = std::vector<float>((size_t)N * IC, 0.5f);
        auto d_inp = to_device<T>(inp);
        auto d_out = to_device<T>(std::vector<float>((size_t)N * OC, 0.0f));
        cuda::matmul_forward<T>(d_out.data(), d_inp.data(), d_weight.data(), nullptr, N, IC, OC);
        EXPECT_LE(cuda::matmul_plans_cached(), cuda::kMaxMatmulPlans) << "after N=" << N;
    }
    EXPECT_EQ(cuda::matmul_plans_cached(), cuda::kMaxMatmulPlans);
    const size_t made = cuda::matmul_plans_made();
    cuda::synchronize();
    check(1);  // its plan was the least recently used: forgotten, made again
    EXPECT_EQ(cuda::matmul_plans_made(), made + 1) << "the forgotten plan of N=1 is made again, once";
    print_worst("CudaMatmul.PlanCacheStaysBoundedAndReplans", precision_name<T>(), worst, op_tolerance<T>());
}

TYPED_TEST(CudaMatmul, BackwardAccumulatesAsCpu) {
    WR_REQUIRE_GPU();
    using T = TypeParam;
    double worst = 0;
    uint32_t seed = 100;
    for (const Shape& s : kShapes) {
        const auto inp = round_through<T>(random_vector((size_t)s.N * s.IC, seed++));
        const auto weight = round_through<T>(random_vector((size_t)s.OC * s.IC, seed++, 1.0f / std::sqrt((float)s.IC)));
        const auto dout = round_through<T>(random_vector((size_t)s.N * s.OC, seed++));
        // Gradients start from earlier contributions (random), which backward must add to.
        auto dinp = round_through<T>(random_vector((size_t)s.N * s.IC, seed++));
        auto dweight = random_vector((size_t)s.OC * s.IC, seed++);
        auto dbias = random_vector((size_t)s.OC, seed++);

        auto d_inp = to_device<T>(inp), d_weight = to_device<T>(weight), d_dout = to_device<T>(dout);
        auto d_dinp = to_device<T>(dinp);
        auto d_dweight = to_device<float>(dweight), d_dbias = to_device<float>(dbias);
        cuda::matmul_backward(d_dinp.data(), d_dweight.data(), d_dbias.data(), d_dout.data(), d_inp.data(),
                              d_weight.data(), s.N, s.IC, s.OC);
        wr::matmul_backward(dinp.data(), dweight.data(), dbias.data(), dout.data(), inp.data(), weight.data(), s.N, s.IC,
                            s.OC);
        expect_close(to_host(d_dinp), dinp, op_tolerance<T>(), shape_name(s) + " dinp", worst);
        expect_close(to_host(d_dweight), dweight, op_tolerance<T>(), shape_name(s) + " dweight", worst);
        expect_close(to_host(d_dbias), dbias, op_tolerance<T>(), shape_name(s) + " dbias", worst);
    }
    print_worst("CudaMatmul.BackwardAccumulatesAsCpu", precision_name<T>(), worst, op_tolerance<T>());
}

TYPED_TEST(CudaMatmul, NullGradientsAreLeftAlone) {
    WR_REQUIRE_GPU();
    using T = TypeParam;
    const int N = 9, IC = 40, OC = 24;
    const auto inp = round_through<T>(random_vector((size_t)N * IC, 7));
    const auto weight = round_through<T>(random_vector((size_t)OC * IC, 8));
    const auto dout = round_through<T>(random_vector((size_t)N * OC, 9));
    auto d_inp = to_device<T>(inp), d_weight = to_device<T>(weight), d_dout = to_device<T>(dout);
    double worst = 0;

    // Only dweight wanted.
    std::vector<float> dweight((size_t)OC * IC, 0.0f);
    auto d_dweight = to_device<float>(dweight);
    cuda::matmul_backward<T>(nullptr, d_dweight.data(), nullptr, d_dout.data(), d_inp.data(), d_weight.data(), N, IC, OC);
    wr::matmul_backward(nullptr, dweight.data(), nullptr, dout.data(), inp.data(), weight.data(), N, IC, OC);
    expect_close(to_host(d_dweight), dweight, op_tolerance<T>(), "dweight alone", worst);

    // Only dinp wanted.
    std::vector<float> dinp((size_t)N * IC, 0.0f);
    auto d_dinp = to_device<T>(dinp);
    cuda::matmul_backward<T>(d_dinp.data(), nullptr, nullptr, d_dout.data(), d_inp.data(), d_weight.data(), N, IC, OC);
    wr::matmul_backward(dinp.data(), nullptr, nullptr, dout.data(), inp.data(), weight.data(), N, IC, OC);
    expect_close(to_host(d_dinp), dinp, op_tolerance<T>(), "dinp alone", worst);
    print_worst("CudaMatmul.NullGradientsAreLeftAlone", precision_name<T>(), worst, op_tolerance<T>());
}

TYPED_TEST(CudaMatmul, BiasBackwardIsDeterministicColumnSum) {
    WR_REQUIRE_GPU();
    using T = TypeParam;
    double worst = 0;
    // One partial chunk; several chunks with a ragged last one and a ragged column tile.
    const Shape shapes[] = {{3, 0, 5}, {1000, 0, 77}, {4096, 0, 768}};
    uint32_t seed = 200;
    for (const Shape& s : shapes) {
        const auto dout = round_through<T>(random_vector((size_t)s.N * s.OC, seed++));
        auto dbias = random_vector((size_t)s.OC, seed++);
        const auto start = dbias;
        auto d_dout = to_device<T>(dout);
        auto d_dbias = to_device<float>(dbias);
        cuda::bias_backward(d_dbias.data(), d_dout.data(), s.N, s.OC);
        wr::matmul_backward(nullptr, nullptr, dbias.data(), dout.data(), nullptr, nullptr, s.N, 0, s.OC);
        const auto got = to_host(d_dbias);
        // fp32 sums of T values on both sides: the fp32 tolerance applies in either precision.
        expect_close(got, dbias, op_tolerance<float>(), "N=" + std::to_string(s.N) + " OC=" + std::to_string(s.OC), worst);

        // The same input again gives the same bits.
        auto d_again = to_device<float>(start);
        cuda::bias_backward(d_again.data(), d_dout.data(), s.N, s.OC);
        EXPECT_EQ(to_host(d_again), got) << "bias_backward is not deterministic for N=" << s.N << " OC=" << s.OC;
    }
    print_worst("CudaMatmul.BiasBackwardIsDeterministicColumnSum", precision_name<T>(), worst, op_tolerance<float>());
}

// ---- optimizer (fp32 buffers only) ----

namespace {

float read_device_float(const float* p) {
    float x = 0;
    WR_CUDA_CHECK(cudaMemcpyAsync(&x, p, sizeof(float), cudaMemcpyDeviceToHost, cuda::stream()));
    cuda::synchronize();
    return x;
}

}  // namespace

TEST(CudaOptimizer, GradNormMatchesCpu) {
    WR_REQUIRE_GPU();
    const double tolerance = 2e-7;  // the CPU's double norm and ours differ by the rounding to float
    double worst = 0;
    const int64_t sizes[] = {1, 5, wr::kNormChunk, 3 * wr::kNormChunk + 123, 1000003};
    uint32_t seed = 300;
    for (int64_t n : sizes) {
        const auto grads = random_vector((size_t)n, seed++, 0.01f);
        auto d_grads = to_device<float>(grads);
        cuda::DeviceArray<float> d_norm(1);
        cuda::global_grad_norm(d_norm.data(), d_grads.data(), n);
        const double want = wr::global_grad_norm(grads.data(), n);
        const double got = read_device_float(d_norm.data());
        const double err = std::fabs(got - want) / want;
        worst = std::max(worst, err);
        EXPECT_LE(err, tolerance) << "n=" << n << " got " << got << " want " << want;
    }
    print_worst("CudaOptimizer.GradNormMatchesCpu", "fp32", worst, tolerance);
}

// The bf16 copy AdamW writes: every element rounded from the updated fp32 parameter.
std::vector<float> rounded_to_bf16(const std::vector<float>& x) { return round_through<cuda::bf16>(x); }

// Clipping inside AdamW (the factor from the device's norm, the gradients left as they are) against
// the CPU's clip_grad_norm then adamw_update, for a norm above the limit (clips) and below it
// (does not); the bf16 copy is the rounding of the updated parameters, bit for bit.
TEST(CudaOptimizer, ClipInsideAdamWMatchesCpu) {
    WR_REQUIRE_GPU();
    const double tolerance = 1e-6;  // the clip factor comes from the float norm here, the double one on the CPU
    double worst = 0;
    const int64_t n = 2 * wr::kNormChunk + 77;
    const wr::DecayRanges ranges = {{100, 20000}};
    const auto grads = random_vector((size_t)n, 400, 0.1f);
    const auto params0 = random_vector((size_t)n, 401, 0.05f);
    const double norm = wr::global_grad_norm(grads.data(), n);
    wr::AdamWConfig config;
    for (double max_norm : {norm / 3, norm * 2, 0.0}) {  // clips; leaves alone; clipping off
        auto want_grads = grads, params = params0;
        std::vector<float> m((size_t)n, 0.0f), v((size_t)n, 0.0f);
        if (max_norm > 0) wr::clip_grad_norm(want_grads.data(), n, max_norm);
        wr::adamw_update(params.data(), want_grads.data(), m.data(), v.data(), n, ranges, config, 1);

        auto d_grads = to_device<float>(grads), d_params = to_device<float>(params0);
        auto d_m = to_device<float>(std::vector<float>((size_t)n, 0.0f)), d_v = to_device<float>(std::vector<float>((size_t)n, 0.0f));
        cuda::DeviceArray<cuda::bf16> d_copy(n);
        cuda::DeviceArray<float> d_norm(1);
        cuda::global_grad_norm(d_norm.data(), d_grads.data(), n);
        cuda::adamw_update(d_params.data(), d_copy.data(), d_grads.data(), d_m.data(), d_v.data(), wr::update_spans(ranges, n),
                           config, 1, d_norm.data(), max_norm);
        const std::string at = "max_norm=" + std::to_string(max_norm);
        const auto got_params = to_host(d_params);
        expect_close(got_params, params, tolerance, at + " params", worst);
        expect_close(to_host(d_m), m, tolerance, at + " m", worst);
        expect_close(to_host(d_v), v, tolerance, at + " v", worst);
        EXPECT_EQ(to_host(d_grads), grads) << at << ": the gradients are read, never written";
        EXPECT_EQ(to_host(d_copy), rounded_to_bf16(got_params)) << at << ": the bf16 copy";
    }
    print_worst("CudaOptimizer.ClipInsideAdamWMatchesCpu", "fp32", worst, tolerance);
}

TEST(CudaOptimizer, AdamWMatchesCpuOverSteps) {
    WR_REQUIRE_GPU();
    const double tolerance = 1e-6;
    double worst = 0;
    const int64_t n = 10000;
    // A leading gap, two touching ranges, a gap, a range up to one element before the end.
    const wr::DecayRanges ranges = {{100, 2000}, {2000, 2500}, {5000, 9999}};
    auto params = random_vector((size_t)n, 500, 0.05f);
    std::vector<float> m((size_t)n, 0.0f), v((size_t)n, 0.0f);
    auto d_params = to_device<float>(params), d_m = to_device<float>(m), d_v = to_device<float>(v);
    cuda::DeviceArray<float> d_norm(1);
    wr::AdamWConfig config;
    config.weight_decay = 0.1;
    for (int64_t step = 1; step <= 5; step++) {
        config.lr = 1e-3 * (double)step / 5.0;
        const auto grads = random_vector((size_t)n, 600 + (uint32_t)step, 0.01f);
        auto d_grads = to_device<float>(grads);
        wr::adamw_update(params.data(), grads.data(), m.data(), v.data(), n, ranges, config, step);
        // Steps with a (finite) device norm, as training runs, and one without.
        const float* norm = nullptr;
        if (step != 3) {
            cuda::global_grad_norm(d_norm.data(), d_grads.data(), n);
            norm = d_norm.data();
        }
        cuda::adamw_update(d_params.data(), nullptr, d_grads.data(), d_m.data(), d_v.data(), wr::update_spans(ranges, n), config,
                           step, norm, 0.0);
        const std::string at = "step " + std::to_string(step);
        expect_close(to_host(d_params), params, tolerance, at + " params", worst);
        expect_close(to_host(d_m), m, tolerance, at + " m", worst);
        expect_close(to_host(d_v), v, tolerance, at + " v", worst);
    }
    print_worst("CudaOptimizer.AdamWMatchesCpuOverSteps", "fp32", worst, tolerance);
}

// The GPU layout's padding lies between spans: AdamW never touches it (not even with zero
// gradients, which eps = 0 would turn into NaN), and spans of many blocks grid-stride correctly.
TEST(CudaOptimizer, AdamWLeavesElementsOutsideTheSpansAlone) {
    WR_REQUIRE_GPU();
    const int64_t n = 65535LL * 256 + 10000;  // the big span needs more than 65535 blocks: grid-stride
    const wr::UpdateSpans spans = {{64, 1000, true}, {1024, 1030, false}, {2048, n - 5, true}};
    const auto params0 = random_vector((size_t)n, 800, 0.05f), grads = random_vector((size_t)n, 801, 0.01f);
    std::vector<float> want = params0, m((size_t)n, 0.0f), v((size_t)n, 0.0f);
    wr::AdamWConfig config;
    config.eps = 0.0;
    for (const wr::UpdateSpan& s : spans)  // the CPU op over each span, as a buffer of its own
        wr::adamw_update(want.data() + s.begin, grads.data() + s.begin, m.data() + s.begin, v.data() + s.begin, s.end - s.begin,
                         s.decay ? wr::DecayRanges{{0, s.end - s.begin}} : wr::DecayRanges{}, config, 1);
    auto d_params = to_device<float>(params0), d_grads = to_device<float>(grads);
    auto d_m = to_device<float>(std::vector<float>((size_t)n, 0.0f)), d_v = to_device<float>(std::vector<float>((size_t)n, 0.0f));
    cuda::DeviceArray<cuda::bf16> d_copy = to_device<cuda::bf16>(std::vector<float>((size_t)n, 3.0f));
    cuda::adamw_update(d_params.data(), d_copy.data(), d_grads.data(), d_m.data(), d_v.data(), spans, config, 1, nullptr, 0.0);
    const auto got = to_host(d_params), copy = to_host(d_copy);
    double worst = 0;
    expect_close(got, want, 1e-6, "params", worst);
    long touched = 0;
    int64_t at = 0;
    for (const wr::UpdateSpan& s : spans) {
        for (int64_t i = at; i < s.begin; i++) touched += got[(size_t)i] != params0[(size_t)i] || copy[(size_t)i] != 3.0f;
        at = s.end;
    }
    for (int64_t i = at; i < n; i++) touched += got[(size_t)i] != params0[(size_t)i] || copy[(size_t)i] != 3.0f;
    EXPECT_EQ(touched, 0) << "elements outside the spans changed";
    print_worst("CudaOptimizer.AdamWLeavesElementsOutsideTheSpansAlone", "fp32", worst, 1e-6);
}

TEST(CudaOptimizer, NonFiniteNormSkipsAdamW) {
    WR_REQUIRE_GPU();
    const int64_t n = 3000;
    const wr::UpdateSpans spans = wr::update_spans({{0, 1000}}, n);
    const auto params = random_vector((size_t)n, 700), m = random_vector((size_t)n, 701, 0.01f);
    const std::vector<float> v((size_t)n, 1e-4f);
    const auto grads = random_vector((size_t)n, 703);
    const wr::AdamWConfig config;
    for (float bad : {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
        auto d_params = to_device<float>(params), d_m = to_device<float>(m), d_v = to_device<float>(v);
        auto d_grads = to_device<float>(grads), d_norm = to_device<float>({bad});
        auto d_copy = to_device<cuda::bf16>(std::vector<float>((size_t)n, 3.0f));
        cuda::adamw_update(d_params.data(), d_copy.data(), d_grads.data(), d_m.data(), d_v.data(), spans, config, 2, d_norm.data(), 1.0);
        EXPECT_EQ(to_host(d_params), params) << "norm " << bad;
        EXPECT_EQ(to_host(d_m), m) << "norm " << bad;
        EXPECT_EQ(to_host(d_v), v) << "norm " << bad;
        EXPECT_EQ(to_host(d_copy), std::vector<float>((size_t)n, 3.0f)) << "norm " << bad;
    }
    // Bad arguments are refused before anything runs.
    auto d_params = to_device<float>(params), d_m = to_device<float>(m), d_v = to_device<float>(v);
    auto d_grads = to_device<float>(grads);
    EXPECT_THROW(cuda::adamw_update(d_params.data(), nullptr, d_grads.data(), d_m.data(), d_v.data(), spans, config, 0, nullptr, 0.0),
                 wr::Error);
    EXPECT_THROW(cuda::adamw_update(d_params.data(), nullptr, d_grads.data(), d_m.data(), d_v.data(), {{10, 20, true}, {15, 30, false}},
                                    config, 1, nullptr, 0.0),
                 wr::Error);
    std::printf("[ worst    ] CudaOptimizer.NonFiniteNormSkipsAdamW (fp32): bit-exact no-op\n");
}
