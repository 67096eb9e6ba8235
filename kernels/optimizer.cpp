// kernels/optimizer.cpp: AdamW, the global gradient norm and clipping on the CPU (OpenMP). The
// math is in kernels/optimizer.h.
#include "kernels/optimizer.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/util.h"

namespace wr {
namespace {

void check_decay_ranges(const DecayRanges& ranges, int64_t n) {
    int64_t previous_end = 0;
    for (size_t i = 0; i < ranges.size(); i++) {
        const ParamRange& r = ranges[i];
        if (r.begin < previous_end || r.end < r.begin || r.end > n)
            throw Error("adamw_update: decay range " + std::to_string(i) + " [" + std::to_string(r.begin) + ", " +
                        std::to_string(r.end) + ") is out of order, overlaps the previous one or leaves [0, " +
                        std::to_string(n) + ")");
        previous_end = r.end;
    }
}

// The AdamW update of elements [begin, end) with the decay factor `keep` (1 - lr * wd, or 1 for
// elements that do not decay). Called inside a parallel region: the elements are shared among
// the threads (no barrier at the end; the spans are disjoint).
inline void adamw_span(float* params, const float* grads, float* m, float* v, int64_t begin, int64_t end, float keep,
                       float one_minus_beta1, float beta2, float one_minus_beta2, float neg_step_size,
                       float bias_correction2_sqrt, float eps) {
#pragma omp for schedule(static) nowait
    for (int64_t i = begin; i < end; i++) {
        const float g = grads[i];
        const float p = params[i] * keep;
        const float m_new = m[i] + one_minus_beta1 * (g - m[i]);
        const float v_new = v[i] * beta2 + one_minus_beta2 * g * g;
        const float denom = std::sqrt(v_new) / bias_correction2_sqrt + eps;
        params[i] = p + neg_step_size * m_new / denom;
        m[i] = m_new;
        v[i] = v_new;
    }
}

}  // namespace

void adamw_update(float* params, const float* grads, float* m, float* v, int64_t n, const DecayRanges& decay_ranges,
                  const AdamWConfig& c, int64_t step) {
    if (step < 1) throw Error("adamw_update: step is " + std::to_string(step) + ", it counts from 1");
    check_decay_ranges(decay_ranges, n);
    const double bias_correction1 = 1.0 - std::pow(c.beta1, (double)step);
    const double bias_correction2 = 1.0 - std::pow(c.beta2, (double)step);
    const float neg_step_size = (float)(-(c.lr / bias_correction1));
    const float bias_correction2_sqrt = (float)std::sqrt(bias_correction2);
    const float decay_keep = (float)(1.0 - c.lr * c.weight_decay);
    const float one_minus_beta1 = (float)(1.0 - c.beta1), beta2 = (float)c.beta2, one_minus_beta2 = (float)(1.0 - c.beta2);
    const float eps = (float)c.eps;
#pragma omp parallel
    {
        // The buffer alternates: a gap that does not decay, a range that does, ..., a final gap.
        int64_t at = 0;
        for (const ParamRange& r : decay_ranges) {
            adamw_span(params, grads, m, v, at, r.begin, 1.0f, one_minus_beta1, beta2, one_minus_beta2, neg_step_size,
                       bias_correction2_sqrt, eps);
            adamw_span(params, grads, m, v, r.begin, r.end, decay_keep, one_minus_beta1, beta2, one_minus_beta2,
                       neg_step_size, bias_correction2_sqrt, eps);
            at = r.end;
        }
        adamw_span(params, grads, m, v, at, n, 1.0f, one_minus_beta1, beta2, one_minus_beta2, neg_step_size,
                   bias_correction2_sqrt, eps);
    }
}

UpdateSpans update_spans(const DecayRanges& decay_ranges, int64_t n) {
    check_decay_ranges(decay_ranges, n);
    UpdateSpans spans;
    const auto add = [&](int64_t begin, int64_t end, bool decay) {
        if (end > begin) spans.push_back({begin, end, decay});
    };
    int64_t at = 0;
    for (const ParamRange& r : decay_ranges) {
        add(at, r.begin, false);
        add(r.begin, r.end, true);
        at = r.end;
    }
    add(at, n, false);
    return spans;
}

double global_grad_norm(const float* grads, int64_t n) {
    if (n <= 0) return 0.0;
    const int64_t chunks = (n + kNormChunk - 1) / kNormChunk;
    std::vector<double> chunk_sums(chunks);
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < chunks; c++) {
        const int64_t begin = c * kNormChunk, end = std::min(n, begin + kNormChunk);
        // Eight interleaved lanes: independent additions the compiler can vectorize without
        // reassociating anything, so the order (and the result) is fixed by this code.
        double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t i = begin;
        for (; i + 8 <= end; i += 8)
            for (int k = 0; k < 8; k++) lanes[k] += (double)grads[i + k] * (double)grads[i + k];
        for (int k = 0; i < end; i++, k++) lanes[k] += (double)grads[i] * (double)grads[i];
        double sum = 0.0;
        for (int k = 0; k < 8; k++) sum += lanes[k];
        chunk_sums[c] = sum;
    }
    double total = 0.0;
    for (int64_t c = 0; c < chunks; c++) total += chunk_sums[c];
    return std::sqrt(total);
}

double clip_grad_norm(float* grads, int64_t n, double max_norm) {
    const double norm = global_grad_norm(grads, n);
    const double scale = max_norm / (norm + 1e-6);
    if (std::isfinite(norm) && scale < 1.0) {
        const float s = (float)scale;
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) grads[i] *= s;
    }
    return norm;
}

}  // namespace wr
