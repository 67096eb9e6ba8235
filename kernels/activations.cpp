// kernels/activations.cpp: GELU (erf form), tanh and the residual add; math in the header. The
// loops run through parallel_for (kernels/parallel.h): AVX-512 where the CPU has it.
#include "kernels/activations.h"

#include <cmath>

#include "kernels/parallel.h"

namespace wr {

namespace {
constexpr float kInvSqrt2 = 0.70710678118654752440f;     // 1 / sqrt(2)
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;   // 1 / sqrt(2 pi)
}  // namespace

namespace {
// Phi(x) = 0.5 (1 + erf(z)) and phi(x) = exp(-z^2) / sqrt(2 pi), z = x / sqrt(2): one exponential
// serves both.
struct Gaussian {
    float cdf, pdf;
};
inline Gaussian gaussian(float x) {
    const float z = x * kInvSqrt2, e = exp_nonpositive(-z * z);
    return {0.5f * (1.0f + erf_approx(z, e)), kInvSqrt2Pi * e};
}
}  // namespace

void gelu_forward(float* out, const float* inp, int64_t n, float* slope) {
    if (!slope) {
        parallel_for(n, [&](int64_t i) { out[i] = inp[i] * gaussian(inp[i]).cdf; });
        return;
    }
    parallel_for(n, [&](int64_t i) {
        const float x = inp[i];
        const Gaussian g = gaussian(x);
        out[i] = x * g.cdf;
        slope[i] = g.cdf + x * g.pdf;  // GELU'(x) = Phi(x) + x phi(x)
    });
}

void gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n) {
    if (!dinp) return;
    parallel_for(n, [&](int64_t i) {
        const Gaussian g = gaussian(inp[i]);
        dinp[i] += dout[i] * (g.cdf + inp[i] * g.pdf);
    });
}

void gelu_backward_from_slope(float* dinp, const float* slope, const float* dout, int64_t n) {
    if (!dinp) return;
    parallel_for(n, [&](int64_t i) { dinp[i] += dout[i] * slope[i]; });
}

void tanh_forward(float* out, const float* inp, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) out[i] = std::tanh(inp[i]);
}

void tanh_backward(float* dinp, const float* out, const float* dout, int64_t n) {
    if (!dinp) return;
    parallel_for(n, [&](int64_t i) { dinp[i] += dout[i] * (1.0f - out[i] * out[i]); });
}

void add_forward(float* out, const float* a, const float* b, int64_t n) {
    parallel_for(n, [&](int64_t i) { out[i] = a[i] + b[i]; });
}

void add_backward(float* da, float* db, const float* dout, int64_t n) {
    parallel_for(n, [&](int64_t i) {
        if (da) da[i] += dout[i];
        if (db) db[i] += dout[i];
    });
}

}  // namespace wr
