// kernels/activations.cpp: GELU (erf form), tanh and the residual add; math in the header.
#include "kernels/activations.h"

#include <cmath>

namespace wr {

namespace {
constexpr float kInvSqrt2 = 0.70710678118654752440f;     // 1 / sqrt(2)
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;   // 1 / sqrt(2 pi)
}  // namespace

void gelu_forward(float* out, const float* inp, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float x = inp[i];
        out[i] = 0.5f * x * (1.0f + erf_approx(x * kInvSqrt2));
    }
}

void gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n) {
    if (!dinp) return;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float x = inp[i];
        const float cdf = 0.5f * (1.0f + erf_approx(x * kInvSqrt2));
        const float pdf = kInvSqrt2Pi * exp_nonpositive(-0.5f * x * x);
        dinp[i] += dout[i] * (cdf + x * pdf);
    }
}

void tanh_forward(float* out, const float* inp, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) out[i] = std::tanh(inp[i]);
}

void tanh_backward(float* dinp, const float* out, const float* dout, int64_t n) {
    if (!dinp) return;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) dinp[i] += dout[i] * (1.0f - out[i] * out[i]);
}

void add_forward(float* out, const float* a, const float* b, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void add_backward(float* da, float* db, const float* dout, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        if (da) da[i] += dout[i];
        if (db) db[i] += dout[i];
    }
}

}  // namespace wr
