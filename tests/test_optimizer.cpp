// tests/test_optimizer.cpp: AdamW against PyTorch's numbers and a plain double reference, the
// decay ranges, the global gradient norm and clipping, determinism over thread counts, and the
// learning-rate schedule's formula at its landmarks (warmup, peak, end, cosine midpoint).
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "common/schedule.h"
#include "kernels/optimizer.h"
#include "test_helpers.h"

using namespace wr;

namespace {

// The gradient of element i at step t in the PyTorch comparison: exact dyadic values in [-0.625, 0.625].
float table_grad(int i, int t) { return (float)(((i * 7 + t * 3) % 11 - 5) * 0.125); }

// Plain double AdamW, the formula of kernels/optimizer.h written out once more.
void reference_adamw(std::vector<double>& p, const std::vector<double>& g, std::vector<double>& m, std::vector<double>& v,
                     const std::vector<bool>& decays, double lr, double b1, double b2, double eps, double wd, int t) {
    for (size_t i = 0; i < p.size(); i++) {
        if (decays[i]) p[i] *= 1 - lr * wd;
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        const double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
        p[i] -= (lr / bc1) * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + eps);
    }
}

std::vector<float> random_floats(int64_t n, uint32_t seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::vector<float> x(n);
    for (float& f : x) f = scale * ((float)(rng() % 2000001) / 1000000.0f - 1.0f);
    return x;
}

// Runs `body` with `threads` OpenMP threads, then puts the previous count back.
template <class F>
void with_threads(int threads, F body) {
    const int before = omp_get_max_threads();
    omp_set_num_threads(threads);
    body();
    omp_set_num_threads(before);
}

}  // namespace

TEST(Optimizer, AdamWMatchesPyTorch) {
    // torch 2.x, torch.optim.AdamW(betas=(0.9, 0.999), eps=1e-8, foreach=False), two parameter
    // groups (weight_decay 0.1 on elements [2,5) and [7,9), 0 elsewhere), p0[i] = 0.5 - 0.125 i,
    // grads table_grad(i, t), lr per step 1e-3, 2e-3, 3e-3, 2.5e-3, 1e-3; final parameters:
    const float expected[10] = {5.005831718e-01f, 3.723179698e-01f,  2.468895167e-01f,  1.284374595e-01f,
                                -1.020746189e-03f, -1.245396212e-01f, -2.470848262e-01f, -3.732886612e-01f,
                                -5.020977259e-01f, -6.201259494e-01f};
    const int n = 10;
    std::vector<float> p(n), g(n), m(n, 0.0f), v(n, 0.0f);
    for (int i = 0; i < n; i++) p[i] = 0.5f - 0.125f * (float)i;
    const DecayRanges decay = {{2, 5}, {7, 9}};
    const double lrs[5] = {1e-3, 2e-3, 3e-3, 2.5e-3, 1e-3};
    AdamWConfig config;
    config.weight_decay = 0.1;
    for (int t = 1; t <= 5; t++) {
        for (int i = 0; i < n; i++) g[i] = table_grad(i, t);
        config.lr = lrs[t - 1];
        adamw_update(p.data(), g.data(), m.data(), v.data(), n, decay, config, t);
    }
    std::printf("  %-3s %-16s %-16s\n", "i", "ours", "pytorch");
    for (int i = 0; i < n; i++) {
        std::printf("  %-3d %-16.9e %-16.9e\n", i, p[i], expected[i]);
        EXPECT_NEAR(p[i], expected[i], 4e-7 * std::fabs(expected[i]) + 1e-9) << "element " << i;
    }
}

TEST(Optimizer, AdamWMatchesDoubleReference) {
    const int64_t n = 3 * kNormChunk + 123;
    std::vector<float> p = random_floats(n, 1), m(n, 0.0f), v(n, 0.0f);
    std::vector<double> pd(p.begin(), p.end()), md(n, 0.0), vd(n, 0.0), gd(n);
    const DecayRanges decay = {{0, 1000}, {1000, 5000}, {20000, 40000}, {n - 10, n}};
    std::vector<bool> decays(n, false);
    for (const ParamRange& r : decay)
        for (int64_t i = r.begin; i < r.end; i++) decays[i] = true;
    AdamWConfig config;
    config.lr = 1e-2;
    config.weight_decay = 0.05;
    for (int t = 1; t <= 4; t++) {
        std::vector<float> g = random_floats(n, 100 + t, 0.01f);
        for (int64_t i = 0; i < n; i++) gd[i] = g[i];
        adamw_update(p.data(), g.data(), m.data(), v.data(), n, decay, config, t);
        reference_adamw(pd, gd, md, vd, decays, config.lr, config.beta1, config.beta2, config.eps, config.weight_decay, t);
    }
    double worst = 0;
    int64_t worst_at = 0;
    for (int64_t i = 0; i < n; i++) {
        const double err = std::fabs(p[i] - pd[i]) / (std::fabs(pd[i]) + 0.1);  // p ~ U(-1, 1): a few float ulps
        if (err > worst) worst = err, worst_at = i;
        ASSERT_NEAR(m[i], md[i], 1e-6 * std::fabs(md[i]) + 1e-9) << i;  // m ~ g ~ 1e-2: float rounding of its terms
        ASSERT_NEAR(v[i], vd[i], 1e-5 * std::fabs(vd[i]) + 1e-15) << i;
    }
    std::printf("  worst parameter error / (|p| + 0.1) after 4 steps: %.3g (element %ld: %.9g vs %.9g)\n", worst,
                (long)worst_at, p[worst_at], pd[worst_at]);
    EXPECT_LT(worst, 1e-6);
}

TEST(Optimizer, AdamWFirstStepByHand) {
    // Step 1: m/bc1 = g and sqrt(v/bc2) = |g|, so p -= lr * g / (|g| + eps), after the decay.
    float p[3] = {1.0f, 2.0f, -3.0f}, g[3] = {0.5f, -4.0f, 0.0f}, m[3] = {}, v[3] = {};
    AdamWConfig config;
    config.lr = 0.1;
    config.weight_decay = 0.5;
    adamw_update(p, g, m, v, 3, {{1, 2}}, config, 1);
    EXPECT_NEAR(p[0], 1.0 - 0.1 * 0.5 / (0.5 + 1e-8), 1e-6);         // no decay
    EXPECT_NEAR(p[1], 2.0 * (1 - 0.1 * 0.5) + 0.1 * 4 / (4 + 1e-8), 1e-6);  // decayed: 1.9 + 0.1
    EXPECT_FLOAT_EQ(p[2], -3.0f);                                      // no gradient, no decay: unchanged
    EXPECT_FLOAT_EQ(m[0], 0.05f);
    EXPECT_FLOAT_EQ(v[1], 0.001f * 16.0f);
}

TEST(Optimizer, AdamWDecaysOnlyTheGivenRanges) {
    const int64_t n = 50;
    std::vector<float> p(n, 1.0f), g(n, 0.0f), m(n, 0.0f), v(n, 0.0f);
    AdamWConfig config;
    config.lr = 0.01;
    config.weight_decay = 0.1;
    adamw_update(p.data(), g.data(), m.data(), v.data(), n, {{5, 10}, {10, 12}, {40, 50}}, config, 1);
    for (int64_t i = 0; i < n; i++) {
        const bool decays = (i >= 5 && i < 12) || i >= 40;
        EXPECT_EQ(p[i], decays ? (float)(1.0 - 0.01 * 0.1) : 1.0f) << "element " << i;
    }
    // No ranges: no decay at all.
    std::vector<float> q(n, 1.0f);
    adamw_update(q.data(), g.data(), m.data(), v.data(), n, {}, config, 2);
    for (float x : q) EXPECT_EQ(x, 1.0f);
}

TEST(Optimizer, AdamWRejectsBadInput) {
    float p[4] = {}, g[4] = {}, m[4] = {}, v[4] = {};
    AdamWConfig c;
    EXPECT_ERROR_MENTIONS(adamw_update(p, g, m, v, 4, {}, c, 0), "step is 0");
    EXPECT_ERROR_MENTIONS(adamw_update(p, g, m, v, 4, {{2, 3}, {0, 1}}, c, 1), "decay range 1");
    EXPECT_ERROR_MENTIONS(adamw_update(p, g, m, v, 4, {{0, 2}, {1, 3}}, c, 1), "decay range 1");
    EXPECT_ERROR_MENTIONS(adamw_update(p, g, m, v, 4, {{1, 5}}, c, 1), "decay range 0", "[1, 5)");
    EXPECT_ERROR_MENTIONS(adamw_update(p, g, m, v, 4, {{3, 2}}, c, 1), "decay range 0");
}

TEST(Optimizer, SameResultForAnyThreadCount) {
    const int64_t n = 5 * kNormChunk + 7;
    const std::vector<float> p0 = random_floats(n, 7), g = random_floats(n, 8, 1e-3f);
    std::vector<std::vector<float>> results;
    std::vector<double> norms;
    for (int threads : {1, 2, 3}) {
        with_threads(threads, [&] {
            std::vector<float> p = p0, m(n, 0.0f), v(n, 0.0f);
            AdamWConfig config;
            for (int t = 1; t <= 3; t++) adamw_update(p.data(), g.data(), m.data(), v.data(), n, {{100, 70000}}, config, t);
            results.push_back(p);
            norms.push_back(global_grad_norm(g.data(), n));
        });
    }
    for (size_t k = 1; k < results.size(); k++) {
        EXPECT_EQ(results[k], results[0]) << "AdamW differs with " << k + 1 << " threads";
        EXPECT_EQ(norms[k], norms[0]) << "grad norm differs with " << k + 1 << " threads";
    }
}

TEST(Optimizer, GlobalGradNorm) {
    const float three_four[2] = {3.0f, -4.0f};
    EXPECT_EQ(global_grad_norm(three_four, 2), 5.0);
    EXPECT_EQ(global_grad_norm(three_four, 0), 0.0);
    const int64_t n = 2 * kNormChunk + 999;
    const std::vector<float> g = random_floats(n, 3);
    long double sum = 0;
    for (float x : g) sum += (long double)x * x;
    EXPECT_NEAR(global_grad_norm(g.data(), n), std::sqrt((double)sum), 1e-12 * std::sqrt((double)sum));
}

TEST(Optimizer, ClipGradNorm) {
    // Above max_norm: scaled by max_norm / (norm + 1e-6); returns the norm before clipping.
    std::vector<float> g = {3.0f, -4.0f, 0.0f};
    EXPECT_EQ(clip_grad_norm(g.data(), 3, 1.0), 5.0);
    const double scale = 1.0 / (5.0 + 1e-6);
    EXPECT_FLOAT_EQ(g[0], (float)(3.0 * scale));
    EXPECT_FLOAT_EQ(g[1], (float)(-4.0 * scale));
    EXPECT_EQ(g[2], 0.0f);
    EXPECT_NEAR(global_grad_norm(g.data(), 3), 1.0, 1e-6);

    // At or below max_norm: untouched (scale >= 1).
    std::vector<float> small = {0.3f, 0.4f};
    EXPECT_NEAR(clip_grad_norm(small.data(), 2, 1.0), 0.5, 1e-7);
    EXPECT_EQ(small[0], 0.3f);
    EXPECT_EQ(small[1], 0.4f);

    // Non-finite norm: gradients left alone, the norm tells the caller to skip the step.
    std::vector<float> bad = {1.0f, INFINITY, 2.0f};
    EXPECT_TRUE(std::isinf(clip_grad_norm(bad.data(), 3, 1.0)));
    EXPECT_EQ(bad[0], 1.0f);
    EXPECT_EQ(bad[2], 2.0f);
}

// ---- Schedule ---------------------------------------------------------------------------------

TEST(Schedule, LinearWarmupAndDecayMatchHuggingFace) {
    LrSchedule s;
    s.peak = 1e-3;
    s.warmup_steps = 10;
    s.total_steps = 110;
    s.check();
    EXPECT_EQ(s.at(0), 0.0);              // the first update has lr 0, as HF's LambdaLR
    EXPECT_DOUBLE_EQ(s.at(5), 5e-4);      // halfway through warmup
    EXPECT_DOUBLE_EQ(s.at(10), 1e-3);     // peak
    EXPECT_DOUBLE_EQ(s.at(60), 5e-4);     // halfway through the decay
    EXPECT_EQ(s.at(110), 0.0);            // end
    EXPECT_EQ(s.at(500), 0.0);            // beyond the end
    for (int64_t t = 0; t <= 120; t++) {  // HF get_linear_schedule_with_warmup, step by step
        const double hf = t < 10 ? (double)t / 10 : std::max(0.0, (110.0 - (double)t) / 100.0);
        EXPECT_NEAR(s.at(t), 1e-3 * hf, 1e-15) << "step " << t;
    }
}

TEST(Schedule, LinearDecaysToFinalFraction) {
    LrSchedule s;
    s.peak = 2.0;
    s.warmup_steps = 0;
    s.total_steps = 100;
    s.final_fraction = 0.1;
    EXPECT_DOUBLE_EQ(s.at(0), 2.0);  // no warmup: peak at once
    EXPECT_DOUBLE_EQ(s.at(50), 2.0 * (1 - 0.9 * 0.5));
    EXPECT_DOUBLE_EQ(s.at(100), 0.2);
    EXPECT_DOUBLE_EQ(s.at(1000), 0.2);
}

TEST(Schedule, CosineMidpointAndEnd) {
    LrSchedule s;
    s.peak = 1.0;
    s.warmup_steps = 20;
    s.total_steps = 220;
    s.decay = LrDecay::Cosine;
    EXPECT_DOUBLE_EQ(s.at(10), 0.5);
    EXPECT_DOUBLE_EQ(s.at(20), 1.0);
    EXPECT_NEAR(s.at(120), 0.5, 1e-15);  // midpoint: cos(pi / 2) = 0
    EXPECT_NEAR(s.at(70), 0.5 * (1 + std::cos(M_PI / 4)), 1e-15);
    EXPECT_NEAR(s.at(220), 0.0, 1e-15);
    s.final_fraction = 0.2;
    EXPECT_NEAR(s.at(120), 0.2 + 0.8 * 0.5, 1e-15);
    EXPECT_NEAR(s.at(220), 0.2, 1e-15);
    EXPECT_NEAR(s.at(300), 0.2, 1e-15);  // stays at the end value
}

TEST(Schedule, DegenerateAndBadConfigs) {
    LrSchedule s;
    s.peak = 1.0;
    s.warmup_steps = 10;
    s.total_steps = 10;  // all warmup, no decay phase: ends at f * peak as HF's linear does
    EXPECT_DOUBLE_EQ(s.at(9), 0.9);
    EXPECT_EQ(s.at(10), 0.0);
    LrSchedule bad = s;
    bad.warmup_steps = -1;
    EXPECT_ERROR_MENTIONS(bad.check(), "warmup_steps");
    bad = s;
    bad.total_steps = 0;
    EXPECT_ERROR_MENTIONS(bad.check(), "total_steps");
    bad = s;
    bad.final_fraction = 1.5;
    EXPECT_ERROR_MENTIONS(bad.check(), "final_fraction");
    bad = s;
    bad.peak = -1;
    EXPECT_ERROR_MENTIONS(bad.check(), "peak");
    EXPECT_EQ(parse_lr_decay("cosine"), LrDecay::Cosine);
    EXPECT_EQ(parse_lr_decay("linear"), LrDecay::Linear);
    EXPECT_STREQ(lr_decay_name(LrDecay::Cosine), "cosine");
    EXPECT_ERROR_MENTIONS(parse_lr_decay("step", "--schedule"), "--schedule", "step");
}
