// kernels/activations.h: the element-wise ops of the model: GELU (the erf form, as Hugging Face
// BERT's "gelu"), tanh (the pooler) and the residual add. All act on flat arrays of n floats;
// shapes do not matter to them. Also two inline math functions other ops share (exp, erf) that
// vectorize where std::exp and std::erf are one scalar library call per element.
// Not here: the tanh approximation of GELU ("gelu_new"), which BERT does not use.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>

#include "kernels/common.h"

namespace wr {

// ---- Vectorizable math: no calls, no branches, so loops over them compile to SIMD code. ----
// The build turns off implicit contraction (-ffp-contract=off): each multiply-add that is fused
// is written as std::fma (one instruction on every CPU the build runs on), so the AVX2 and AVX-512
// copies of a loop and its remainder iterations compute every element with the same roundings.

// exp(x) for x <= 0 (softmax and Gaussian arguments). Cody-Waite reduction x = n ln2 + r with
// |r| <= ln2 / 2, Cephes' expf polynomial for exp(r), 2^n built in the exponent bits. Relative
// error under 1.5e-7 (about 2 ulp). Below -87, where exp(x) < 1.7e-38, it returns 1.6e-38
// instead of underflowing to 0.
inline float exp_nonpositive(float x) {
    x = x < -87.0f ? -87.0f : x;
    // round(x / ln2) to the nearest integer: adding and subtracting 1.5 * 2^23 leaves no fraction
    // bits (exact for |value| < 2^22; here it is within [-126, 0]). Unlike std::nearbyint, which
    // GCC compiles to a library call, this vectorizes.
    constexpr float kRound = 12582912.0f;
    const float n = (x * 1.44269504088896341f + kRound) - kRound;
    const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;  // x - n ln2, ln2 in two parts
    float p = 1.9875691500e-4f;
    p = std::fma(p, r, 1.3981999507e-3f);
    p = std::fma(p, r, 8.3334519073e-3f);
    p = std::fma(p, r, 4.1665795894e-2f);
    p = std::fma(p, r, 1.6666665459e-1f);
    p = std::fma(p, r, 5.0000001201e-1f);
    p = std::fma(p * r, r, r) + 1.0f;                    // exp(r)
    const int32_t bits = ((int32_t)n + 127) << 23;       // the float 2^n, n in [-126, 0]
    float two_to_n;
    std::memcpy(&two_to_n, &bits, sizeof two_to_n);
    return p * two_to_n;
}

// erf(x) to within 2e-7 (3 float ulp of values near 1), in two pieces selected without a branch:
//   |x| < 1:  its Maclaurin series, erf(x) = 2/sqrt(pi) sum_n (-1)^n x^(2n+1) / (n! (2n+1)),
//             to n = 10 (the next term is under 1.3e-9);
//   |x| >= 1: Abramowitz & Stegun 7.1.26, the formula of PyTorch's vectorized CPU erf:
//             erf(|x|) = 1 - t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) exp(-x^2),
//             t = 1 / (1 + 0.3275911 |x|); erf is odd.
// (A&S alone loses up to 5e-7 near 0, where 1 - poly * exp cancels.)
// erf_approx with exp(-x^2) given (GELU needs that exponential for its derivative as well).
inline float erf_approx(float x, float exp_minus_x2) {
    const float ax = std::fabs(x), x2 = x * x;
    float series = 1.480719282e-08f;
#ifndef __CUDACC__
#pragma GCC unroll 16  // unrolled before vectorization: loops over erf_approx vectorize
#endif
    for (float c : {-1.636584469e-07f, 1.646211437e-06f, -1.492565036e-05f, 1.205533298e-04f, -8.548327023e-04f,
                    5.223977625e-03f, -2.686617065e-02f, 1.128379167e-01f, -3.761263890e-01f, 1.128379167e+00f})
        series = std::fma(series, x2, c);  // Horner in x^2, highest power first
    const float t = 1.0f / (1.0f + 0.3275911f * ax);
    float poly = 1.061405429f;
#ifndef __CUDACC__
#pragma GCC unroll 16
#endif
    for (float c : {-1.453152027f, 1.421413741f, -0.284496736f, 0.254829592f}) poly = std::fma(poly, t, c);
    poly *= t;
    const float tail = std::copysign(1.0f - poly * exp_minus_x2, x);
    return ax < 1.0f ? x * series : tail;
}
inline float erf_approx(float x) { return erf_approx(x, exp_nonpositive(-x * x)); }

// Row reductions in kLanes independent partial results, combined at the end: a fixed order (the
// same on every machine and thread count) that the compiler vectorizes (the unrolled lanes are
// one vector). Sum accumulates in Acc (float, or double for long rows). n >= 1 for the max.
constexpr int kLanes = 8;
inline float lane_max(const float* x, int n) {
    const int n8 = n / kLanes * kLanes;
    float lanes[kLanes];
    for (int l = 0; l < kLanes; l++) lanes[l] = x[0];
    for (int j = 0; j < n8; j += kLanes)
#ifndef __CUDACC__
#pragma GCC unroll 8
#endif
        for (int l = 0; l < kLanes; l++) lanes[l] = x[j + l] > lanes[l] ? x[j + l] : lanes[l];
    float max = x[0];
    for (int l = 0; l < kLanes; l++) max = lanes[l] > max ? lanes[l] : max;
    for (int j = n8; j < n; j++) max = x[j] > max ? x[j] : max;
    return max;
}
// sum_j term(j) over j < n, accumulated in Acc; the sum and the dot product below are its uses.
template <typename Acc, class Term>
inline Acc lane_reduce(int n, const Term& term) {
    const int n8 = n / kLanes * kLanes;
    Acc lanes[kLanes] = {};
    for (int j = 0; j < n8; j += kLanes)
#ifndef __CUDACC__
#pragma GCC unroll 8
#endif
        for (int l = 0; l < kLanes; l++) lanes[l] += term(j + l);
    Acc sum = 0;
    for (int l = 0; l < kLanes; l++) sum += lanes[l];
    for (int j = n8; j < n; j++) sum += term(j);
    return sum;
}
template <typename Acc>
inline Acc lane_sum(const float* x, int n) {
    return lane_reduce<Acc>(n, [x](int j) { return x[j]; });
}
inline float lane_dot(const float* a, const float* b, int n) {
    return lane_reduce<float>(n, [a, b](int j) { return a[j] * b[j]; });
}

// ---- The ops ----

// GELU, erf form (not the tanh approximation), erf by erf_approx above (|error| < 2e-7):
//   out = 0.5 x (1 + erf(x / sqrt(2)))  =  x Phi(x)
// When `slope` is given (training), it also receives GELU'(x) = Phi(x) + x phi(x), all that the
// backward needs of x: gelu_backward_from_slope is then one multiply-add per element instead of
// an erf and an exp. slope may be inp itself (overwritten in place).
void gelu_forward(float* out, const float* inp, int64_t n, float* slope = nullptr);
// dinp += dout * (Phi(x) + x phi(x)),  Phi(x) = 0.5 (1 + erf(x / sqrt(2))),
//                                      phi(x) = exp(-x^2 / 2) / sqrt(2 pi);  x = inp.
void gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n);
// dinp += dout * slope, slope = GELU'(x) from gelu_forward: the same numbers as gelu_backward.
void gelu_backward_from_slope(float* dinp, const float* slope, const float* dout, int64_t n);

// out = tanh(inp)
void tanh_forward(float* out, const float* inp, int64_t n);
// dinp += dout * (1 - out^2), from the forward's OUTPUT (no need to keep the input).
void tanh_backward(float* dinp, const float* out, const float* dout, int64_t n);

// Residual add: out = a + b.
void add_forward(float* out, const float* a, const float* b, int64_t n);
// da += dout, db += dout (either may be null).
void add_backward(float* da, float* db, const float* dout, int64_t n);

}  // namespace wr
