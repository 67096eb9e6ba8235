// kernels/dropout.cpp: inverted dropout with a counter-based mask (the rule is in dropout.h).
// Every element is independent, so any split over threads gives the same result.
#include "kernels/dropout.h"

#include <cstring>

#include "kernels/parallel.h"

namespace wr {

void dropout_forward(float* out, const float* inp, int64_t n, float p, uint64_t seed) {
    if (p <= 0.0f) {
        if (out != inp) std::memcpy(out, inp, (size_t)n * sizeof(float));
        return;
    }
    const uint64_t key = dropout_key(seed);
    const float scale = dropout_scale(p);
    parallel_for(n, [&](int64_t i) { out[i] = dropout_keep(key, (uint64_t)i, p) ? inp[i] * scale : 0.0f; });
}

void dropout_backward(float* dinp, const float* dout, int64_t n, float p, uint64_t seed) {
    if (!dinp) return;
    if (p <= 0.0f) {
        parallel_for(n, [&](int64_t i) { dinp[i] += dout[i]; });
        return;
    }
    const uint64_t key = dropout_key(seed);
    const float scale = dropout_scale(p);
    parallel_for(n, [&](int64_t i) {
        if (dropout_keep(key, (uint64_t)i, p)) dinp[i] += dout[i] * scale;
    });
}

}  // namespace wr
