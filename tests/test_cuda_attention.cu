// tests/test_cuda_attention.cu: the fused CUDA attention (kernels/attention.cu) against the CPU op
// (kernels/attention.cpp), in fp32 and bf16, on random qkv over several shapes: T shorter than a
// tile, T on and off tile boundaries, head sizes 32, 64 and 128, head sizes the kernels run on
// zero-padded heads (30, 48, 50, 60, 100: widths 60 and 100 with one and two heads), qkv and dout
// not 16-byte aligned, padded lengths (1, mid-tile, on a tile boundary, full) and no lengths at
// all, dropout off and on. Per case it compares
//   - out (NaN-poisoned before the forward, so an unwritten element fails) with the CPU's out;
//   - lse with the log-sum-exp of the scores computed here in double;
//   - the gradient alone (dqkv from zero) with the CPU's, and that two runs give the same bits;
//   - dqkv from random values (the += convention) with those values plus the CPU's gradient, and
//     that the k and v gradients of padding keys stay exactly as they were.
// Relative errors (tests/cuda_test_util.cuh) must stay within op_tolerance<T>(); the worst are
// printed. The inputs are rounded through T first, so the CPU sees exactly what the GPU reads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/util.h"
#include "kernels/attention.cuh"
#include "kernels/attention.h"
#include "tests/cuda_test_util.cuh"

namespace {

using wr::cuda::DeviceArray;
using wr::testing::op_tolerance;
using wr::testing::poisoned;
using wr::testing::precision_name;
using wr::testing::random_vector;
using wr::testing::relative_error;
using wr::testing::round_through;
using wr::testing::to_device;
using wr::testing::to_device_int;
using wr::testing::to_host;

struct AttentionCase {
    int B, T, C, NH;
    std::vector<int> lengths;  // empty: pass null (every sequence full)
    bool unaligned = false;    // qkv and dout one element past a 16-byte boundary
};

// Tiles are 64 query rows x 64 (forward) or 32 (backward) keys; see kernels/attention.cu.
const std::vector<AttentionCase> kCases = {
    {3, 7, 64, 2, {7, 3, 1}},          // HS 32; T shorter than one tile
    {3, 64, 256, 4, {64, 33, 1}},      // HS 64; T exactly one tile, a length mid-tile
    {3, 128, 768, 12, {}},             // BERT-base heads, no lengths
    {3, 128, 768, 12, {128, 100, 1}},  // the same with padding
    {3, 200, 128, 2, {200, 64, 1}},    // T not a multiple of 16; a length on a tile boundary
    {3, 128, 128, 4, {128, 97, 1}},    // HS 32
    {3, 70, 256, 2, {70, 40, 1}},      // HS 128
    // Head sizes without kernels of their own (padded with zeros to 32, 64 or 128).
    {3, 37, 60, 2, {37, 20, 1}},       // HS 30
    {2, 70, 60, 1, {70, 33}},          // HS 60
    {3, 65, 96, 2, {}},                // HS 48
    {3, 40, 100, 2, {40, 7, 1}},       // HS 50
    {2, 129, 100, 1, {129, 64}},       // HS 100
    // Unaligned arrays (a slice at an odd element) run through the same copies.
    {3, 64, 256, 4, {64, 33, 1}, true},  // HS 64
};

// WR_GPU_TEST_SMALL=1 (dev/gpu_check.sh, under compute-sanitizer's racecheck, which is slow): only
// the shapes with C <= 256, which still hold every head size, T under, on and off a tile boundary,
// and padded and full lengths (no lengths at all, a null pointer, only in the BERT-base shapes).
std::vector<AttentionCase> cases_to_run() {
    const char* small = std::getenv("WR_GPU_TEST_SMALL");
    if (!small || std::string(small) != "1") return kCases;
    std::vector<AttentionCase> cases;
    for (const AttentionCase& c : kCases)
        if (c.C <= 256) cases.push_back(c);
    std::printf("CudaAttention: WR_GPU_TEST_SMALL=1: %zu of %zu shapes (C <= 256)\n", cases.size(), kCases.size());
    return cases;
}

std::string describe(const AttentionCase& c, float p) {
    std::string s = std::string(c.unaligned ? "unaligned " : "") + "B=" + std::to_string(c.B) + " T=" + std::to_string(c.T) + " C=" + std::to_string(c.C) +
                    " NH=" + std::to_string(c.NH) + " lengths=";
    if (c.lengths.empty()) s += "null";
    for (size_t b = 0; b < c.lengths.size(); b++) s += (b ? "," : "") + std::to_string(c.lengths[b]);
    char buf[32];
    std::snprintf(buf, sizeof buf, " p=%.1f", p);
    return s + buf;
}

// lse[b, h, i] = log sum_{j < len} exp(q_i . k_j / sqrt(HS)), in double.
std::vector<float> reference_lse(const std::vector<float>& qkv, const int* lengths, int B, int T, int C, int NH) {
    const int HS = C / NH;
    std::vector<float> lse((size_t)B * NH * T);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < T; i++) {
                const int len = lengths ? lengths[b] : T;
                const float* q = &qkv[((size_t)b * T + i) * 3 * C + (size_t)h * HS];
                std::vector<double> s(len);
                double max = -INFINITY;
                for (int j = 0; j < len; j++) {
                    const float* k = &qkv[((size_t)b * T + j) * 3 * C + C + (size_t)h * HS];
                    double dot = 0;
                    for (int c = 0; c < HS; c++) dot += (double)q[c] * k[c];
                    s[j] = dot / std::sqrt((double)HS);
                    max = std::max(max, s[j]);
                }
                double sum = 0;
                for (int j = 0; j < len; j++) sum += std::exp(s[j] - max);
                lse[((size_t)b * NH + h) * T + i] = (float)(max + std::log(sum));
            }
    return lse;
}

struct Errors {
    double out = 0, lse = 0, grad = 0, accumulated = 0;
};

template <typename T>
Errors check_case(const AttentionCase& cs, float p, uint32_t seed) {
    const int B = cs.B, T_ = cs.T, C = cs.C, NH = cs.NH;
    const size_t n_qkv = (size_t)B * T_ * 3 * C, n_out = (size_t)B * T_ * C, n_att = (size_t)B * NH * T_ * T_;
    const int* lengths = cs.lengths.empty() ? nullptr : cs.lengths.data();
    const std::vector<float> qkv = round_through<T>(random_vector(n_qkv, seed));
    const std::vector<float> dout = round_through<T>(random_vector(n_out, seed + 1));
    const std::vector<float> dqkv0 = round_through<T>(random_vector(n_qkv, seed + 2));

    // CPU reference: out, and the gradient alone (from zero).
    std::vector<float> out_ref(n_out), att(n_att), datt(n_att), grad_ref(n_qkv, 0.0f);
    wr::attention_forward(out_ref.data(), att.data(), qkv.data(), lengths, B, T_, C, NH, p, seed);
    wr::attention_backward(grad_ref.data(), datt.data(), dout.data(), qkv.data(), att.data(), lengths, B, T_, C, NH, p,
                           seed);
    const std::vector<float> lse_ref = reference_lse(qkv, lengths, B, T_, C, NH);

    // GPU. Unaligned: qkv and dout start one element into their arrays.
    const size_t shift = cs.unaligned ? 1 : 0;
    auto shifted = [&](const std::vector<float>& v) {
        std::vector<float> x(shift, 0.0f);
        x.insert(x.end(), v.begin(), v.end());
        return x;
    };
    DeviceArray<T> d_qkv_base = to_device<T>(shifted(qkv)), d_dout_base = to_device<T>(shifted(dout));
    const T *d_qkv = d_qkv_base.data() + shift, *d_dout = d_dout_base.data() + shift;
    DeviceArray<int> d_lengths;
    if (lengths) d_lengths = to_device_int(cs.lengths);
    const int* d_len = lengths ? d_lengths.data() : nullptr;
    DeviceArray<T> d_out = poisoned<T>(n_out);
    DeviceArray<float> d_lse = poisoned<float>((size_t)B * NH * T_);
    wr::cuda::attention_forward<T>(d_out.data(), d_lse.data(), d_qkv, d_len, B, T_, C, NH, p, seed);

    auto backward = [&](const std::vector<float>& start) {
        DeviceArray<T> d_dqkv = to_device<T>(start);
        wr::cuda::attention_backward<T>(d_dqkv.data(), d_dout, d_out.data(), d_qkv, d_lse.data(), d_len, B,
                                        T_, C, NH, p, seed);
        return to_host(d_dqkv);
    };
    const std::vector<float> zeros(n_qkv, 0.0f);
    const std::vector<float> grad = backward(zeros), grad_again = backward(zeros);
    const std::vector<float> accumulated = backward(dqkv0);

    Errors e;
    e.out = relative_error(to_host(d_out), out_ref);
    e.lse = relative_error(to_host(d_lse), lse_ref);
    e.grad = relative_error(grad, grad_ref);
    std::vector<float> want(n_qkv);
    for (size_t i = 0; i < n_qkv; i++) want[i] = dqkv0[i] + grad_ref[i];
    e.accumulated = relative_error(accumulated, want);

    const std::string what = std::string(precision_name<T>()) + " " + describe(cs, p);
    EXPECT_EQ(std::memcmp(grad.data(), grad_again.data(), n_qkv * sizeof(float)), 0) << what << ": backward not deterministic";
    int changed = 0;  // k, v gradients of padding keys must be untouched
    for (int b = 0; b < B; b++)
        for (int t = lengths ? lengths[b] : T_; t < T_; t++)
            for (int c = C; c < 3 * C; c++) {
                const size_t k = ((size_t)b * T_ + t) * 3 * C + c;
                changed += accumulated[k] != dqkv0[k];
            }
    EXPECT_EQ(changed, 0) << what << ": k/v gradients of padding keys changed";
    const double tol = op_tolerance<T>();
    EXPECT_LE(e.out, tol) << what << ": out";
    EXPECT_LE(e.lse, tol) << what << ": lse";
    EXPECT_LE(e.grad, tol) << what << ": dqkv (from zero)";
    EXPECT_LE(e.accumulated, tol) << what << ": dqkv (+= onto random values)";
    std::printf("  %s %-44s out %.2e  lse %.2e  dqkv %.2e  dqkv+= %.2e\n", precision_name<T>(), describe(cs, p).c_str(), e.out,
                e.lse, e.grad, e.accumulated);
    return e;
}

template <typename T>
class CudaAttention : public ::testing::Test {};
TYPED_TEST_SUITE(CudaAttention, wr::testing::Precisions);

TYPED_TEST(CudaAttention, MatchesCpuForwardAndBackward) {
    WR_REQUIRE_GPU();
    using T = TypeParam;
    Errors worst;
    uint32_t seed = 1000;
    for (const AttentionCase& cs : cases_to_run())
        for (float p : {0.0f, 0.1f}) {
            const Errors e = check_case<T>(cs, p, seed += 10);
            worst.out = std::max(worst.out, e.out), worst.lse = std::max(worst.lse, e.lse);
            worst.grad = std::max(worst.grad, e.grad), worst.accumulated = std::max(worst.accumulated, e.accumulated);
        }
    std::printf("CudaAttention %s worst relative errors (tolerance %.0e): out %.2e  lse %.2e  dqkv %.2e  dqkv+= %.2e\n",
                wr::testing::precision_name<T>(), op_tolerance<T>(), worst.out, worst.lse, worst.grad, worst.accumulated);
}

TYPED_TEST(CudaAttention, RejectsUnsupportedHeadSize) {
    WR_REQUIRE_GPU();
    using T = TypeParam;
    // C / NH = 192: over the largest kernel's 128 (smaller head sizes run on padded heads).
    EXPECT_THROW(wr::cuda::attention_forward<T>(nullptr, nullptr, nullptr, nullptr, 2, 16, 384, 2, 0.0f, 0), wr::Error);
    EXPECT_THROW(wr::cuda::attention_backward<T>(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 2, 16, 384, 2, 0.0f, 0),
                 wr::Error);
}

}  // namespace
