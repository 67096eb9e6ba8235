// tests/test_ops.cpp: the CPU ops in kernels/: LayerNorm, GELU, tanh, residual add, dropout,
// embedding, attention, cross-entropy. For each: the forward pass against a naive reference
// written plainly here in double; the backward pass against central finite differences
// (tests/gradcheck.h) with gradients that start non-zero, so a backward that overwrites instead
// of accumulating fails; and, where threads share work, bitwise equality for 1 and 2 threads.
//
// Finite-difference bounds (float32 ops, h = 1e-2, inputs of size ~1): relative error of the
// whole gradient tensor (||analytic - numeric|| / ||numeric||) below kGradTol.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "common/cpu_isa.h"
#include "kernels/activations.h"
#include "kernels/attention.h"
#include "kernels/cross_entropy.h"
#include "kernels/dropout.h"
#include "kernels/embedding.h"
#include "kernels/layernorm.h"
#include "gradcheck.h"

using namespace wr;
using wr::testing::random_vector;
using wr::testing::weighted_sum;

namespace {

constexpr double kH = 1e-2;        // finite-difference step
constexpr double kGradTol = 2e-4;  // relative error bound for every finite-difference check

using Vec = std::vector<float>;

// Largest |got[i] - want[i]|.
double max_abs_diff(const Vec& got, const std::vector<double>& want) {
    double worst = 0.0;
    for (size_t i = 0; i < got.size(); i++) worst = std::fmax(worst, std::fabs((double)got[i] - want[i]));
    return worst;
}

// a - b element-wise: the part of a gradient added by one backward call onto a prefilled buffer.
Vec minus(const Vec& a, const Vec& b) {
    Vec d(a.size());
    for (size_t i = 0; i < a.size(); i++) d[i] = a[i] - b[i];
    return d;
}

bool bitwise_equal(const Vec& a, const Vec& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Runs f() with `threads` OpenMP threads, then restores the previous setting.
template <class F>
void with_threads(int threads, F f) {
    const int before = omp_get_max_threads();
    omp_set_num_threads(threads);
    f();
    omp_set_num_threads(before);
}

// check_gradient on one thread: its thousands of forward calls on tiny tensors would otherwise
// spend their time in OpenMP barriers (thread counts are tested separately, bitwise).
wr::testing::GradCheckResult check_gradient(const std::function<double()>& loss, float* x, const float* analytic,
                                            int64_t n, int64_t stride = 1) {
    wr::testing::GradCheckResult r;
    with_threads(1, [&] { r = wr::testing::check_gradient(loss, x, analytic, n, kH, stride); });
    return r;
}

// ---- naive references, in double ----

// Softmax cross-entropy of one row: logsumexp(row) - row[y].
double reference_cross_entropy(const float* row, int V, int y) {
    double max = row[0];
    for (int v = 1; v < V; v++) max = std::fmax(max, row[v]);
    double sum = 0.0;
    for (int v = 0; v < V; v++) sum += std::exp(row[v] - max);
    return std::log(sum) + max - row[y];
}

// Attention as written in Hugging Face BertSelfAttention: per head, scores + mask, softmax,
// dropout (via the project's mask rule), probs @ v. Returns out[B,T,C]; fills att[B,NH,T,T].
std::vector<double> reference_attention(std::vector<double>& att, const Vec& qkv, const std::vector<int>& lengths,
                                        int B, int T, int C, int NH, float p, uint64_t seed) {
    const int HS = C / NH;
    std::vector<double> out((size_t)B * T * C, 0.0);
    att.assign((size_t)B * NH * T * T, 0.0);
    const uint64_t key = dropout_key(seed);
    auto q = [&](int b, int t, int h, int c) { return (double)qkv[((size_t)b * T + t) * 3 * C + h * HS + c]; };
    auto k = [&](int b, int t, int h, int c) { return (double)qkv[((size_t)b * T + t) * 3 * C + C + h * HS + c]; };
    auto v = [&](int b, int t, int h, int c) { return (double)qkv[((size_t)b * T + t) * 3 * C + 2 * C + h * HS + c]; };
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < T; i++) {
                std::vector<double> s(T);
                for (int j = 0; j < T; j++) {
                    double dot = 0.0;
                    for (int c = 0; c < HS; c++) dot += q(b, i, h, c) * k(b, j, h, c);
                    s[j] = dot / std::sqrt((double)HS) + (j < lengths[b] ? 0.0 : -1e300);
                }
                double max = s[0], sum = 0.0;
                for (int j = 1; j < T; j++) max = std::fmax(max, s[j]);
                for (int j = 0; j < T; j++) sum += std::exp(s[j] - max);
                for (int j = 0; j < T; j++) {
                    const size_t idx = (((size_t)b * NH + h) * T + i) * T + j;
                    const double prob = std::exp(s[j] - max) / sum;
                    att[idx] = prob;
                    const double dropped = dropout_keep(key, idx, p) ? prob / (1.0 - p) : 0.0;
                    for (int c = 0; c < HS; c++) out[((size_t)b * T + i) * C + h * HS + c] += dropped * v(b, j, h, c);
                }
            }
    return out;
}

}  // namespace

// ================================ LayerNorm ================================

TEST(OpLayerNorm, ForwardMatchesReference) {
    const int N = 7, C = 37;  // C not a multiple of the channel block
    for (float eps : {1e-12f, 1e-5f}) {
        Vec inp = random_vector(N * C, 1, 2.0f, 5.0f);  // an offset mean, so centering matters
        Vec weight = random_vector(C, 2), bias = random_vector(C, 3);
        Vec out(N * C), mean(N), rstd(N);
        layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), weight.data(), bias.data(), N, C, eps);
        std::vector<double> want(N * C), want_mean(N), want_rstd(N);
        for (int n = 0; n < N; n++) {
            double m = 0.0, var = 0.0;
            for (int c = 0; c < C; c++) m += inp[n * C + c];
            m /= C;
            for (int c = 0; c < C; c++) var += (inp[n * C + c] - m) * (inp[n * C + c] - m);
            var /= C;  // biased, as torch
            want_mean[n] = m;
            want_rstd[n] = 1.0 / std::sqrt(var + eps);
            for (int c = 0; c < C; c++) want[n * C + c] = (inp[n * C + c] - m) * want_rstd[n] * weight[c] + bias[c];
        }
        EXPECT_LT(max_abs_diff(out, want), 2e-6) << "eps " << eps;
        EXPECT_LT(max_abs_diff(mean, want_mean), 1e-6);
        for (int n = 0; n < N; n++) EXPECT_NEAR(rstd[n], want_rstd[n], 1e-6 * want_rstd[n]);
    }
}

TEST(OpLayerNorm, BackwardMatchesFiniteDifferences) {
    const int N = 5, C = 19;
    const float eps = 1e-12f;
    Vec inp = random_vector(N * C, 4, -2.0f, 2.0f), weight = random_vector(C, 5, 0.5f, 1.5f);
    Vec bias = random_vector(C, 6), R = random_vector(N * C, 7);
    Vec out(N * C), mean(N), rstd(N);
    auto loss = [&] {
        layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), weight.data(), bias.data(), N, C, eps);
        return weighted_sum(out, R);
    };
    loss();
    const Vec dinp0 = random_vector(N * C, 8), dweight0 = random_vector(C, 9), dbias0 = random_vector(C, 10);
    Vec dinp = dinp0, dweight = dweight0, dbias = dbias0;
    layernorm_backward(dinp.data(), dweight.data(), dbias.data(), R.data(), inp.data(), weight.data(), mean.data(),
                       rstd.data(), N, C);
    const auto r_inp = check_gradient(loss, inp.data(), minus(dinp, dinp0).data(), N * C);
    const auto r_weight = check_gradient(loss, weight.data(), minus(dweight, dweight0).data(), C);
    const auto r_bias = check_gradient(loss, bias.data(), minus(dbias, dbias0).data(), C);
    EXPECT_LT(r_inp.rel_err, kGradTol) << "dinp: " << r_inp;
    EXPECT_LT(r_weight.rel_err, kGradTol) << "dweight: " << r_weight;
    EXPECT_LT(r_bias.rel_err, kGradTol) << "dbias: " << r_bias;
}

TEST(OpLayerNorm, BackwardIsBitwiseSameForOneAndTwoThreads) {
    const int N = 300, C = 200;
    const Vec inp = random_vector(N * C, 11), weight = random_vector(C, 12), bias = random_vector(C, 13);
    const Vec dout = random_vector(N * C, 14);
    Vec out(N * C), mean(N), rstd(N);
    layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), weight.data(), bias.data(), N, C, 1e-12f);
    Vec grads[2][3];  // [threads - 1][dinp, dweight, dbias]
    for (int threads = 1; threads <= 2; threads++) {
        Vec& dinp = grads[threads - 1][0] = Vec(N * C, 0.0f);
        Vec& dweight = grads[threads - 1][1] = Vec(C, 0.0f);
        Vec& dbias = grads[threads - 1][2] = Vec(C, 0.0f);
        with_threads(threads, [&] {
            layernorm_backward(dinp.data(), dweight.data(), dbias.data(), dout.data(), inp.data(), weight.data(),
                               mean.data(), rstd.data(), N, C);
        });
    }
    EXPECT_TRUE(bitwise_equal(grads[0][0], grads[1][0])) << "dinp";
    EXPECT_TRUE(bitwise_equal(grads[0][1], grads[1][1])) << "dweight";
    EXPECT_TRUE(bitwise_equal(grads[0][2], grads[1][2])) << "dbias";
}

TEST(OpLayerNorm, NullGradientsAreSkipped) {
    const int N = 3, C = 8;
    const Vec inp = random_vector(N * C, 15), weight(C, 1.0f), bias(C, 0.0f), dout = random_vector(N * C, 16);
    Vec out(N * C), mean(N), rstd(N), dweight(C, 0.0f), dweight_alone(C, 0.0f), dinp(N * C, 0.0f);
    layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), weight.data(), bias.data(), N, C, 1e-12f);
    layernorm_backward(dinp.data(), dweight.data(), nullptr, dout.data(), inp.data(), weight.data(), mean.data(),
                       rstd.data(), N, C);
    layernorm_backward(nullptr, dweight_alone.data(), nullptr, dout.data(), inp.data(), weight.data(), mean.data(),
                       rstd.data(), N, C);
    EXPECT_TRUE(bitwise_equal(dweight, dweight_alone));
}

// ================================ GELU, tanh, residual add ================================

TEST(OpVectorMath, ExpAndErfMatchLibm) {
    double exp_worst = 0.0, erf_worst = 0.0;
    for (int i = 0; i <= 200000; i++) {
        const float x = -87.0f * i / 200000;
        const double want = std::exp((double)x);
        exp_worst = std::fmax(exp_worst, std::fabs(exp_nonpositive(x) - want) / want);
        const float y = -10.0f + 20.0f * i / 200000;
        erf_worst = std::fmax(erf_worst, std::fabs(erf_approx(y) - std::erf((double)y)));
    }
    EXPECT_LT(exp_worst, 1.5e-7) << "relative";
    EXPECT_LT(erf_worst, 2e-7) << "absolute";
    EXPECT_EQ(exp_nonpositive(0.0f), 1.0f);
    EXPECT_EQ(erf_approx(0.0f), 0.0f);
    EXPECT_EQ(erf_approx(-20.0f), -1.0f);
    EXPECT_LT(exp_nonpositive(-1000.0f), 1e-37f);
}

TEST(OpGelu, ForwardMatchesErfFormula) {
    const int n = 1001;
    Vec x(n), out(n);
    for (int i = 0; i < n; i++) x[i] = -8.0f + 16.0f * i / (n - 1);
    gelu_forward(out.data(), x.data(), n);
    std::vector<double> want(n);
    for (int i = 0; i < n; i++) want[i] = 0.5 * x[i] * (1.0 + std::erf(x[i] / std::sqrt(2.0)));
    EXPECT_LT(max_abs_diff(out, want), 1e-6);
    EXPECT_EQ(out[n / 2], 0.0f);  // x = 0
}

TEST(OpGelu, BackwardMatchesFiniteDifferences) {
    const int n = 64;
    Vec x = random_vector(n, 20, -4.0f, 4.0f), R = random_vector(n, 21), out(n);
    auto loss = [&] {
        gelu_forward(out.data(), x.data(), n);
        return weighted_sum(out, R);
    };
    const Vec dx0 = random_vector(n, 22);
    Vec dx = dx0;
    gelu_backward(dx.data(), x.data(), R.data(), n);
    const auto r = check_gradient(loss, x.data(), minus(dx, dx0).data(), n);
    EXPECT_LT(r.rel_err, kGradTol) << r;
}

TEST(OpTanh, ForwardAndBackward) {
    const int n = 64;
    Vec x = random_vector(n, 23, -3.0f, 3.0f), R = random_vector(n, 24), out(n);
    tanh_forward(out.data(), x.data(), n);
    std::vector<double> want(n);
    for (int i = 0; i < n; i++) want[i] = std::tanh((double)x[i]);
    EXPECT_LT(max_abs_diff(out, want), 1e-6);
    const Vec dx0 = random_vector(n, 25);
    Vec dx = dx0;
    tanh_backward(dx.data(), out.data(), R.data(), n);  // from the output
    auto loss = [&] {
        tanh_forward(out.data(), x.data(), n);
        return weighted_sum(out, R);
    };
    const auto r = check_gradient(loss, x.data(), minus(dx, dx0).data(), n);
    EXPECT_LT(r.rel_err, kGradTol) << r;
}

TEST(OpResidualAdd, ForwardAndBackwardAccumulate) {
    const int n = 100;
    const Vec a = random_vector(n, 26), b = random_vector(n, 27), dout = random_vector(n, 28);
    Vec out(n);
    add_forward(out.data(), a.data(), b.data(), n);
    for (int i = 0; i < n; i++) EXPECT_EQ(out[i], a[i] + b[i]);
    const Vec da0 = random_vector(n, 29), db0 = random_vector(n, 30);
    Vec da = da0, db = db0;
    add_backward(da.data(), db.data(), dout.data(), n);
    add_backward(nullptr, db.data(), dout.data(), n);  // db gets a second contribution
    for (int i = 0; i < n; i++) {
        EXPECT_EQ(da[i], da0[i] + dout[i]);
        EXPECT_EQ(db[i], (db0[i] + dout[i]) + dout[i]);
    }
}

// ================================ dropout ================================

TEST(OpDropout, MixerIsSplitMix64) {
    // Vigna's splitmix64.c from state 0 outputs mix(1 * golden), mix(2 * golden), ...
    EXPECT_EQ(splitmix64_mix(0x9E3779B97F4A7C15ULL), 0xE220A8397B1DCDAFULL);
    EXPECT_EQ(splitmix64_mix(2 * 0x9E3779B97F4A7C15ULL), 0x6E789E6AA1B965F4ULL);
}

TEST(OpDropout, MaskMatchesPinnedValues) {
    // Computed independently (Python, from the rule in kernels/dropout.h) for seed 1234: the GPU
    // version must produce this same pattern.
    const uint64_t key = dropout_key(1234);
    EXPECT_EQ(dropout_uniform(key, 0), 8001409.0f / 16777216.0f);
    EXPECT_EQ(dropout_uniform(key, 3), 11637157.0f / 16777216.0f);
    const char* want = "0101000110000010000010001011000010100110000000000001110101011011";  // keep at p = 0.5
    for (int i = 0; i < 64; i++) EXPECT_EQ(dropout_keep(key, i, 0.5f), want[i] == '1') << "element " << i;
}

TEST(OpDropout, ZeroProbabilityIsExactCopy) {
    const int n = 1000;
    const Vec x = random_vector(n, 31), dout = random_vector(n, 32), dx0 = random_vector(n, 33);
    Vec out(n, 7.0f), dx = dx0;
    dropout_forward(out.data(), x.data(), n, 0.0f, 99);
    EXPECT_TRUE(bitwise_equal(out, x));
    dropout_backward(dx.data(), dout.data(), n, 0.0f, 99);
    for (int i = 0; i < n; i++) EXPECT_EQ(dx[i], dx0[i] + dout[i]);
}

TEST(OpDropout, KeepRateAndScale) {
    const int n = 1 << 20;
    const Vec ones(n, 1.0f);
    Vec out(n);
    for (float p : {0.1f, 0.5f}) {
        dropout_forward(out.data(), ones.data(), n, p, 5);
        int64_t kept = 0;
        for (int i = 0; i < n; i++) {
            if (out[i] != 0.0f) {
                kept++;
                EXPECT_EQ(out[i], 1.0f / (1.0f - p)) << "element " << i;
            }
        }
        const double rate = (double)kept / n, sigma = std::sqrt(p * (1.0 - p) / n);
        EXPECT_NEAR(rate, 1.0 - p, 5 * sigma) << "p " << p;
    }
    dropout_forward(out.data(), ones.data(), n, 1.0f, 5);  // p = 1 drops everything, no NaN
    for (int i = 0; i < n; i += 997) EXPECT_EQ(out[i], 0.0f);
}

TEST(OpDropout, SameMaskOnOneAndTwoThreadsAndInPlace) {
    const int n = 100003;
    const Vec x = random_vector(n, 34);
    Vec out1(n), out2(n), inplace = x;
    with_threads(1, [&] { dropout_forward(out1.data(), x.data(), n, 0.1f, 77); });
    with_threads(2, [&] { dropout_forward(out2.data(), x.data(), n, 0.1f, 77); });
    dropout_forward(inplace.data(), inplace.data(), n, 0.1f, 77);
    EXPECT_TRUE(bitwise_equal(out1, out2));
    EXPECT_TRUE(bitwise_equal(out1, inplace));
    Vec other(n);
    dropout_forward(other.data(), x.data(), n, 0.1f, 78);  // another seed, another mask
    int differ = 0;
    for (int i = 0; i < n; i++) differ += (out1[i] == 0.0f) != (other[i] == 0.0f);
    EXPECT_NEAR((double)differ / n, 2 * 0.1 * 0.9, 0.01);
}

TEST(OpDropout, BackwardUsesTheForwardMask) {
    const int n = 4096;
    const float p = 0.3f;
    const Vec x = random_vector(n, 35, 0.5f, 1.0f);  // never 0, so out == 0 means dropped
    const Vec dout = random_vector(n, 36), dx0 = random_vector(n, 37);
    Vec out(n), dx = dx0;
    dropout_forward(out.data(), x.data(), n, p, 2024);
    dropout_backward(dx.data(), dout.data(), n, p, 2024);
    for (int i = 0; i < n; i++) {
        const float want = out[i] == 0.0f ? dx0[i] : dx0[i] + dout[i] * (1.0f / (1.0f - p));
        ASSERT_EQ(dx[i], want) << "element " << i;
    }
    // and as a finite-difference check (the mask does not depend on the input)
    Vec R = random_vector(n, 38), xv = x;
    auto loss = [&] {
        dropout_forward(out.data(), xv.data(), n, p, 2024);
        return weighted_sum(out, R);
    };
    Vec dxr(n, 0.0f);
    dropout_backward(dxr.data(), R.data(), n, p, 2024);
    const auto r = check_gradient(loss, xv.data(), dxr.data(), n, 37);
    EXPECT_LT(r.rel_err, kGradTol) << r;
}

// ================================ embedding ================================

TEST(OpEmbedding, ForwardMatchesReference) {
    const int B = 2, T = 5, C = 7, V = 11, types = 2;
    const std::vector<int> ids = {1, 4, 4, 10, 0, 3, 3, 3, 7, 1}, tt = {0, 0, 1, 1, 1, 0, 1, 0, 1, 0};
    const Vec wte = random_vector(V * C, 40), wpe = random_vector(T * C, 41), wtt = random_vector(types * C, 42);
    Vec out(B * T * C), out_no_types(B * T * C);
    embedding_forward(out.data(), ids.data(), tt.data(), wte.data(), wpe.data(), wtt.data(), B, T, C);
    embedding_forward(out_no_types.data(), ids.data(), nullptr, wte.data(), wpe.data(), wtt.data(), B, T, C);
    std::vector<double> want(B * T * C), want_no_types(B * T * C);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) {
                const int n = b * T + t;
                const double wp = (double)wte[ids[n] * C + c] + wpe[t * C + c];
                want[n * C + c] = wp + wtt[tt[n] * C + c];
                want_no_types[n * C + c] = wp + wtt[c];
            }
    EXPECT_LT(max_abs_diff(out, want), 1e-6);
    EXPECT_LT(max_abs_diff(out_no_types, want_no_types), 1e-6);
}

TEST(OpEmbedding, BackwardMatchesFiniteDifferences) {
    const int B = 2, T = 4, C = 6, V = 5, types = 2;
    const std::vector<int> ids = {1, 4, 4, 1, 0, 4, 2, 1}, tt = {0, 0, 1, 1, 1, 0, 1, 0};  // repeated ids
    Vec wte = random_vector(V * C, 43), wpe = random_vector(T * C, 44), wtt = random_vector(types * C, 45);
    const Vec R = random_vector(B * T * C, 46);
    Vec out(B * T * C);
    auto loss = [&] {
        embedding_forward(out.data(), ids.data(), tt.data(), wte.data(), wpe.data(), wtt.data(), B, T, C);
        return weighted_sum(out, R);
    };
    const Vec dwte0 = random_vector(V * C, 47), dwpe0 = random_vector(T * C, 48), dwtt0 = random_vector(types * C, 49);
    Vec dwte = dwte0, dwpe = dwpe0, dwtt = dwtt0;
    embedding_backward(dwte.data(), dwpe.data(), dwtt.data(), R.data(), ids.data(), tt.data(), B, T, C);
    const auto r_wte = check_gradient(loss, wte.data(), minus(dwte, dwte0).data(), V * C);
    const auto r_wpe = check_gradient(loss, wpe.data(), minus(dwpe, dwpe0).data(), T * C);
    const auto r_wtt = check_gradient(loss, wtt.data(), minus(dwtt, dwtt0).data(), types * C);
    EXPECT_LT(r_wte.rel_err, kGradTol) << "dwte: " << r_wte;
    EXPECT_LT(r_wpe.rel_err, kGradTol) << "dwpe: " << r_wpe;
    EXPECT_LT(r_wtt.rel_err, kGradTol) << "dwtt: " << r_wtt;
    for (int c = 0; c < C; c++) EXPECT_EQ(dwte[3 * C + c], dwte0[3 * C + c]) << "id 3 is never used";
}

TEST(OpEmbedding, BackwardIsBitwiseSameForOneAndTwoThreads) {
    const int B = 8, T = 64, C = 200, V = 50, types = 2;  // C spans several channel blocks
    std::vector<int> ids(B * T), tt(B * T);
    for (int n = 0; n < B * T; n++) {
        ids[n] = (n * 7 + n / 3) % V;  // many tokens per row of wte
        tt[n] = (n / 5) % types;
    }
    const Vec dout = random_vector(B * T * C, 50);
    Vec grads[2][3];  // [threads - 1][dwte, dwpe, dwtt]
    for (int threads = 1; threads <= 2; threads++) {
        Vec& dwte = grads[threads - 1][0] = Vec(V * C, 0.0f);
        Vec& dwpe = grads[threads - 1][1] = Vec(T * C, 0.0f);
        Vec& dwtt = grads[threads - 1][2] = Vec(types * C, 0.0f);
        with_threads(threads, [&] {
            embedding_backward(dwte.data(), dwpe.data(), dwtt.data(), dout.data(), ids.data(), tt.data(), B, T, C);
        });
    }
    EXPECT_TRUE(bitwise_equal(grads[0][0], grads[1][0])) << "dwte";
    EXPECT_TRUE(bitwise_equal(grads[0][1], grads[1][1])) << "dwpe";
    EXPECT_TRUE(bitwise_equal(grads[0][2], grads[1][2])) << "dwtt";
    // and the sums are right
    std::vector<double> want_wte(V * C, 0.0);
    for (int n = 0; n < B * T; n++)
        for (int c = 0; c < C; c++) want_wte[ids[n] * C + c] += dout[n * C + c];
    EXPECT_LT(max_abs_diff(grads[1][0], want_wte), 1e-4);
}

// ================================ attention ================================

namespace {
// A small case with padding: sequence 0 full, sequence 1 with 3 real tokens, sequence 2 with 1.
// HS = 12: the 8-lane dot products and their tails both run.
constexpr int kAttB = 3, kAttT = 6, kAttC = 24, kAttNH = 2;
const std::vector<int> kAttLengths = {6, 3, 1};
}  // namespace

TEST(OpAttention, ForwardMatchesReferenceWithPadding) {
    const int B = kAttB, T = kAttT, C = kAttC, NH = kAttNH;
    const Vec qkv = random_vector(B * T * 3 * C, 60, -2.0f, 2.0f);
    Vec out(B * T * C), att(B * NH * T * T);
    attention_forward(out.data(), att.data(), qkv.data(), kAttLengths.data(), B, T, C, NH, 0.0f, 0);
    std::vector<double> want_att;
    const std::vector<double> want = reference_attention(want_att, qkv, kAttLengths, B, T, C, NH, 0.0f, 0);
    EXPECT_LT(max_abs_diff(out, want), 1e-5);
    EXPECT_LT(max_abs_diff(att, want_att), 1e-6);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < T; i++) {  // padded query rows too
                const float* row = &att[(((size_t)b * NH + h) * T + i) * T];
                double sum = 0.0;
                for (int j = 0; j < T; j++) {
                    sum += row[j];
                    if (j >= kAttLengths[b]) {
                        EXPECT_EQ(row[j], 0.0f) << "padding key " << j << " of sequence " << b;
                    }
                }
                EXPECT_NEAR(sum, 1.0, 1e-6);
            }
    for (float o : out) ASSERT_TRUE(std::isfinite(o));
    // no lengths = every sequence full
    const std::vector<int> full(B, T);
    Vec out_full(B * T * C), out_null(B * T * C);
    attention_forward(out_full.data(), att.data(), qkv.data(), full.data(), B, T, C, NH, 0.0f, 0);
    attention_forward(out_null.data(), att.data(), qkv.data(), nullptr, B, T, C, NH, 0.0f, 0);
    EXPECT_TRUE(bitwise_equal(out_full, out_null));
}

TEST(OpAttention, DropoutOnProbabilitiesMatchesReference) {
    const int B = kAttB, T = kAttT, C = kAttC, NH = kAttNH;
    const float p = 0.3f;
    const Vec qkv = random_vector(B * T * 3 * C, 61, -2.0f, 2.0f);
    Vec out(B * T * C), att(B * NH * T * T), att_no_dropout(B * NH * T * T), out_no_dropout(B * T * C);
    attention_forward(out.data(), att.data(), qkv.data(), kAttLengths.data(), B, T, C, NH, p, 555);
    attention_forward(out_no_dropout.data(), att_no_dropout.data(), qkv.data(), kAttLengths.data(), B, T, C, NH,
                      0.0f, 555);
    std::vector<double> want_att;
    const std::vector<double> want = reference_attention(want_att, qkv, kAttLengths, B, T, C, NH, p, 555);
    EXPECT_LT(max_abs_diff(out, want), 1e-5);
    EXPECT_TRUE(bitwise_equal(att, att_no_dropout)) << "att is saved before dropout";
    EXPECT_FALSE(bitwise_equal(out, out_no_dropout));
}

TEST(OpAttention, BackwardMatchesFiniteDifferencesWithPaddingAndDropout) {
    const int B = kAttB, T = kAttT, C = kAttC, NH = kAttNH;
    for (float p : {0.0f, 0.2f}) {
        Vec qkv = random_vector(B * T * 3 * C, 62);
        const Vec R = random_vector(B * T * C, 63);
        Vec out(B * T * C), att(B * NH * T * T), datt(B * NH * T * T);
        auto loss = [&] {
            attention_forward(out.data(), att.data(), qkv.data(), kAttLengths.data(), B, T, C, NH, p, 9);
            return weighted_sum(out, R);
        };
        loss();
        const Vec dqkv0 = random_vector(B * T * 3 * C, 64);
        Vec dqkv = dqkv0;
        attention_backward(dqkv.data(), datt.data(), R.data(), qkv.data(), att.data(), kAttLengths.data(), B, T, C,
                           NH, p, 9);
        const Vec grad = minus(dqkv, dqkv0);
        const auto r = check_gradient(loss, qkv.data(), grad.data(), B * T * 3 * C);
        EXPECT_LT(r.rel_err, kGradTol) << "p " << p << ": " << r;
        // padding keys and values get exactly no gradient
        for (int b = 0; b < B; b++)
            for (int t = kAttLengths[b]; t < T; t++)
                for (int c = C; c < 3 * C; c++) EXPECT_EQ(dqkv[((size_t)b * T + t) * 3 * C + c], dqkv0[((size_t)b * T + t) * 3 * C + c]);
    }
}

TEST(OpAttention, BitwiseSameForOneAndTwoThreads) {
    const int B = 2, T = 16, C = 32, NH = 4;
    const std::vector<int> lengths = {16, 9};
    const Vec qkv = random_vector(B * T * 3 * C, 65), dout = random_vector(B * T * C, 66);
    Vec out[2], dqkv[2];
    for (int threads = 1; threads <= 2; threads++) {
        Vec att(B * NH * T * T), datt(B * NH * T * T);
        out[threads - 1] = Vec(B * T * C);
        dqkv[threads - 1] = Vec(B * T * 3 * C, 0.0f);
        with_threads(threads, [&] {
            attention_forward(out[threads - 1].data(), att.data(), qkv.data(), lengths.data(), B, T, C, NH, 0.1f, 3);
            attention_backward(dqkv[threads - 1].data(), datt.data(), dout.data(), qkv.data(), att.data(),
                               lengths.data(), B, T, C, NH, 0.1f, 3);
        });
    }
    EXPECT_TRUE(bitwise_equal(out[0], out[1]));
    EXPECT_TRUE(bitwise_equal(dqkv[0], dqkv[1]));
}

// ================================ cross-entropy ================================

TEST(OpCrossEntropy, ForwardMatchesReferenceAndIgnoresRows) {
    const int M = 6;
    const std::vector<int> targets = {3, kIgnoreIndex, 0, 12, kIgnoreIndex, 7};
    for (int V : {13, 1003}) {  // a short row, and one long enough for the 8-lane sums
        const Vec logits = random_vector(M * V, 70 + V, -8.0f, 8.0f);
        Vec losses(M, 5.0f);
        cross_entropy_forward(losses.data(), logits.data(), targets.data(), M, V);
        double sum = 0.0;
        for (int m = 0; m < M; m++) {
            if (targets[m] == kIgnoreIndex) {
                EXPECT_EQ(losses[m], 0.0f);
                continue;
            }
            const double want = reference_cross_entropy(&logits[m * V], V, targets[m]);
            EXPECT_NEAR(losses[m], want, 1e-6 * (1.0 + want)) << "V " << V << " row " << m;
            sum += want;
        }
        EXPECT_EQ(cross_entropy_count(targets.data(), M), 4);
        EXPECT_NEAR(cross_entropy_mean(losses.data(), targets.data(), M), sum / 4, 1e-6 * (1.0 + sum / 4));
    }
    const std::vector<int> none(M, kIgnoreIndex);
    const Vec zeros(M, 0.0f);
    EXPECT_EQ(cross_entropy_mean(zeros.data(), none.data(), M), 0.0f);
}

TEST(OpCrossEntropy, LargeLogitsStayFinite) {
    const int V = 4;
    const Vec logits = {1000.0f, -1000.0f, 0.0f, 999.0f};
    const std::vector<int> targets = {0, 1};
    Vec losses(2);
    cross_entropy_forward(losses.data(), logits.data(), targets.data(), 1, V);
    EXPECT_NEAR(losses[0], std::log1p(std::exp(-1.0)), 1e-6);  // log(1 + e^-1 + ...)
    cross_entropy_forward(losses.data(), logits.data(), targets.data() + 1, 1, V);
    EXPECT_NEAR(losses[0], 2000.0 + std::log1p(std::exp(-1.0)), 1e-3);
    Vec dlogits(V, 0.0f);
    cross_entropy_backward(dlogits.data(), logits.data(), targets.data(), 1, V, 1.0f);
    for (float d : dlogits) EXPECT_TRUE(std::isfinite(d));
}

TEST(OpCrossEntropy, BackwardMatchesFiniteDifferencesOfTheMean) {
    const int M = 6, V = 9;
    const std::vector<int> targets = {3, kIgnoreIndex, 0, 8, kIgnoreIndex, 5};
    Vec logits = random_vector(M * V, 71, -3.0f, 3.0f), losses(M);
    const float scale = 1.0f / cross_entropy_count(targets.data(), M);
    auto loss = [&] {  // the mean over non-ignored rows, accumulated in double
        cross_entropy_forward(losses.data(), logits.data(), targets.data(), M, V);
        double sum = 0.0;
        for (int m = 0; m < M; m++) sum += losses[m];
        return sum * scale;
    };
    const Vec dlogits0 = random_vector(M * V, 72);
    Vec dlogits = dlogits0;
    cross_entropy_backward(dlogits.data(), logits.data(), targets.data(), M, V, scale);
    const Vec grad = minus(dlogits, dlogits0);
    const auto r = check_gradient(loss, logits.data(), grad.data(), M * V);
    EXPECT_LT(r.rel_err, kGradTol) << r;
    for (int m = 0; m < M; m++) {
        if (targets[m] != kIgnoreIndex) continue;
        for (int v = 0; v < V; v++) EXPECT_EQ(dlogits[m * V + v], dlogits0[m * V + v]) << "ignored row " << m;
    }
}

// ---------------------------------------------------------------------------------------------
// Soft-target cross-entropy (distillation)

TEST(OpSoftCrossEntropy, MatchesPyTorch) {
    // Inputs and expected values: dev/soft_ce_reference.py (autograd in double).
    const int M = 2, K = 3;
    const Vec student = {1.5f, -0.25f, 0.75f, -2.0f, 3.0f, 0.5f}, teacher = {0.5f, 0.25f, -1.0f, 1.0f, 2.0f, -3.0f};
    struct Case {
        float tau;
        std::vector<double> losses, mean_gradient;
    };
    const Case cases[] = {
        {1.0f, {1.26281995652, 1.43546723974},
         {0.0539819161244, -0.141730166262, 0.0877482501374, -0.130717434439, 0.0954739049819, 0.0352435294567}},
        {2.0f, {4.58817924221, 5.09005863133},
         {0.0505979240308, -0.176640930565, 0.126043006535, -0.299210310467, 0.138478059017, 0.160732251451}},
    };
    for (const Case& c : cases) {
        Vec losses(M), dlogits(M * K, 0.0f);
        soft_cross_entropy_forward(losses.data(), student.data(), teacher.data(), M, K, c.tau);
        soft_cross_entropy_backward(dlogits.data(), student.data(), teacher.data(), M, K, c.tau, 1.0f / M);
        for (int m = 0; m < M; m++) EXPECT_NEAR(losses[m], c.losses[m], 1e-6) << "tau " << c.tau << " row " << m;
        for (int i = 0; i < M * K; i++) EXPECT_NEAR(dlogits[i], c.mean_gradient[i], 1e-7) << "tau " << c.tau << " element " << i;
    }
}

TEST(OpSoftCrossEntropy, BackwardMatchesFiniteDifferences) {
    const int M = 5, K = 4;
    for (float tau : {0.5f, 1.0f, 3.0f}) {
        Vec logits = random_vector(M * K, 81, -3.0f, 3.0f), losses(M);
        const Vec teacher = random_vector(M * K, 82, -3.0f, 3.0f);
        const float scale = 0.7f;
        auto loss = [&] {
            soft_cross_entropy_forward(losses.data(), logits.data(), teacher.data(), M, K, tau);
            double sum = 0.0;
            for (float l : losses) sum += l;
            return sum * scale;
        };
        const Vec dlogits0 = random_vector(M * K, 83);  // backward accumulates
        Vec dlogits = dlogits0;
        soft_cross_entropy_backward(dlogits.data(), logits.data(), teacher.data(), M, K, tau, scale);
        const Vec grad = minus(dlogits, dlogits0);
        const auto r = check_gradient(loss, logits.data(), grad.data(), M * K);
        EXPECT_LT(r.rel_err, kGradTol) << "tau " << tau << ": " << r;
    }
}

TEST(OpSoftCrossEntropy, AStudentEqualToItsTeacherGetsNoGradientAndTheEntropyAsLoss) {
    const int M = 3, K = 5;
    const Vec logits = random_vector(M * K, 91, -4.0f, 4.0f);
    Vec losses(M), dlogits(M * K, 0.0f);
    soft_cross_entropy_forward(losses.data(), logits.data(), logits.data(), M, K, 1.0f);
    soft_cross_entropy_backward(dlogits.data(), logits.data(), logits.data(), M, K, 1.0f, 1.0f);
    for (float d : dlogits) EXPECT_NEAR(d, 0.0f, 1e-7);
    for (int m = 0; m < M; m++) {  // the cross-entropy of p with itself is p's entropy
        double top = -1e30, sum = 0, entropy = 0;
        for (int k = 0; k < K; k++) top = std::max(top, (double)logits[m * K + k]);
        for (int k = 0; k < K; k++) sum += std::exp(logits[m * K + k] - top);
        for (int k = 0; k < K; k++) {
            const double p = std::exp(logits[m * K + k] - top) / sum;
            entropy -= p * std::log(p);
        }
        EXPECT_NEAR(losses[m], entropy, 1e-6);
    }
}

TEST(OpSoftCrossEntropy, LargeLogitsStayFinite) {
    const Vec student = {1000.0f, -1000.0f, 0.0f}, teacher = {-500.0f, 800.0f, 0.0f};
    Vec losses(1), dlogits(3, 0.0f);
    soft_cross_entropy_forward(losses.data(), student.data(), teacher.data(), 1, 3, 1.0f);
    soft_cross_entropy_backward(dlogits.data(), student.data(), teacher.data(), 1, 3, 1.0f, 1.0f);
    EXPECT_NEAR(losses[0], 2000.0, 1e-3);  // the teacher is sure of class 1: -log q_1 = 1000 - (-1000)
    EXPECT_NEAR(dlogits[0], 1.0f, 1e-6);
    EXPECT_NEAR(dlogits[1], -1.0f, 1e-6);
}

// ---- the two copies of the loops (kernels/parallel.h) -------------------------------------------
// Every op that runs through parallel_for gives the same bits with its AVX2 copy and its
// AVX-512 copy (only the vector width differs), with 1 thread and with 3 (other splits put other
// elements in the remainder iterations), and the fused cross-entropy forward+backward the same
// bits as the forward and the backward into zeros. Random inputs at sizes that are no multiple of
// any vector width; dropout and padding on.
TEST(OpVectorWidths, Avx2AndAvx512CopiesAgreeBitwise) {
    if (cpu_isa_best() < CpuIsa::avx512) GTEST_SKIP() << "this CPU has no AVX-512";
    std::mt19937 rng(11);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    auto randn = [&](size_t n, float s = 1.0f) {
        std::vector<float> v(n);
        for (float& x : v) x = s * normal(rng);
        return v;
    };
    const int B = 3, T = 37, C = 48, NH = 3, M = 7, V = 1001;
    const int64_t n = 4099;
    const std::vector<int> lengths = {37, 20, 5}, targets = {3, 1000, kIgnoreIndex, 0, 17, 500, 999};
    const auto x = randn(n, 3.0f), dy = randn(n), qkv = randn((size_t)B * T * 3 * C), dout = randn((size_t)B * T * C),
               logits = randn((size_t)M * V, 4.0f);
    auto run = [&](const char* isa, int threads) {
        EXPECT_TRUE(set_cpu_isa(isa));
        const int saved_threads = omp_get_max_threads();
        omp_set_num_threads(threads);
        std::vector<std::vector<float>> r;
        std::vector<float> out(n), slope(n), dx(n, 0.5f), dropped(n), ddrop(n, 0.25f);
        gelu_forward(out.data(), x.data(), n, slope.data());
        gelu_backward(dx.data(), x.data(), dy.data(), n);
        dropout_forward(dropped.data(), x.data(), n, 0.3f, 77);
        dropout_backward(ddrop.data(), dy.data(), n, 0.3f, 77);
        r.insert(r.end(), {out, slope, dx, dropped, ddrop});
        std::vector<float> att_out((size_t)B * T * C), att((size_t)B * NH * T * T), datt(att.size()), dqkv(qkv.size(), 0.0f);
        attention_forward(att_out.data(), att.data(), qkv.data(), lengths.data(), B, T, C, NH, 0.2f, 5);
        attention_backward(dqkv.data(), datt.data(), dout.data(), qkv.data(), att.data(), lengths.data(), B, T, C, NH, 0.2f, 5);
        r.insert(r.end(), {att_out, att, dqkv});
        std::vector<float> losses(M), dlogits((size_t)M * V, 0.0f), fused_losses(M), fused_dlogits((size_t)M * V, -1.0f);
        cross_entropy_forward(losses.data(), logits.data(), targets.data(), M, V);
        cross_entropy_backward(dlogits.data(), logits.data(), targets.data(), M, V, 0.125f);
        cross_entropy_forward_backward(fused_losses.data(), fused_dlogits.data(), logits.data(), targets.data(), M, V, 0.125f);
        EXPECT_TRUE(losses == fused_losses) << isa << ": fused cross-entropy loss";
        EXPECT_TRUE(dlogits == fused_dlogits) << isa << ": fused cross-entropy gradient";
        r.insert(r.end(), {losses, dlogits});
        set_cpu_isa("auto");
        omp_set_num_threads(saved_threads);
        return r;
    };
    const auto narrow = run("avx2", 1), wide = run("avx512", 1), wide3 = run("avx512", 3), narrow3 = run("avx2", 3);
    const char* names[] = {"gelu", "gelu slope", "gelu backward", "dropout", "dropout backward", "attention out",
                           "attention probabilities", "attention dqkv", "cross-entropy", "cross-entropy backward"};
    for (size_t i = 0; i < narrow.size(); i++) {
        EXPECT_TRUE(narrow[i] == wide[i]) << names[i] << " differs between AVX2 and AVX-512";
        EXPECT_TRUE(wide[i] == wide3[i]) << names[i] << " (AVX-512) differs between 1 and 3 threads";
        EXPECT_TRUE(narrow[i] == narrow3[i]) << names[i] << " (AVX2) differs between 1 and 3 threads";
    }
}
