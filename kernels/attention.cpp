// kernels/attention.cpp: self-attention forward and backward (math and layout in the header).
// One (sequence, head) pair per OpenMP task, one query row at a time; the per-head products are
// plain loops over HS-long vectors (dot and axpy below): clear, not fast (about 10 GFLOP/s per
// core); the batched matmul kernel is the way to speed them up if attention shows in a profile.
#include "kernels/attention.h"

#include <cmath>
#include <cstddef>

#include "kernels/activations.h"  // exp_nonpositive
#include "kernels/dropout.h"

namespace wr {

namespace {

// a . b, summed in 8 lanes (a fixed order the compiler can keep in one SIMD register), then the
// lanes and the tail in order.
float dot(const float* a, const float* b, int n) {
    float lane[8] = {};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) lane[l] += a[i + l] * b[i + l];
    float s = 0.0f;
    for (int l = 0; l < 8; l++) s += lane[l];
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

// y += alpha * x
void axpy(float* y, float alpha, const float* x, int n) {
    for (int i = 0; i < n; i++) y[i] += alpha * x[i];
}

// The dropout factor m of the probability with flat index `index` in [B, NH, T, T]:
// 1 / (1 - p) if kept, 0 if dropped, 1 when dropout is off.
float dropout_factor(uint64_t key, uint64_t index, float p, float scale) {
    if (p <= 0.0f) return 1.0f;
    return dropout_keep(key, index, p) ? scale : 0.0f;
}

}  // namespace

void attention_forward(float* out, float* att, const float* qkv, const int* lengths, int B, int T, int C, int NH,
                       float dropout_p, uint64_t seed) {
    const int HS = C / NH;
    const float scale = 1.0f / std::sqrt((float)HS);
    const float drop_scale = dropout_scale(dropout_p);
    const uint64_t key = dropout_key(seed);
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * NH; bh++) {
        const int b = bh / NH, h = bh % NH;
        const int len = lengths ? lengths[b] : T;
        const size_t stride = (size_t)3 * C;
        const float* q = qkv + (size_t)b * T * stride + (size_t)h * HS;
        const float* k = q + C;
        const float* v = q + 2 * C;
        for (int i = 0; i < T; i++) {
            float* a = att + ((size_t)bh * T + i) * T;
            const float* qi = q + i * stride;
            // scores and softmax over the real keys; padding keys get exactly 0
            float max_score = -INFINITY;
            for (int j = 0; j < len; j++) {
                a[j] = dot(qi, k + j * stride, HS) * scale;
                max_score = a[j] > max_score ? a[j] : max_score;
            }
            float sum = 0.0f;
            for (int j = 0; j < len; j++) {
                a[j] = exp_nonpositive(a[j] - max_score);
                sum += a[j];
            }
            const float inv_sum = 1.0f / sum;
            for (int j = 0; j < len; j++) a[j] *= inv_sum;
            for (int j = len; j < T; j++) a[j] = 0.0f;
            // out_i = sum_j dropout(att[i, j]) v_j
            float* o = out + ((size_t)b * T + i) * C + (size_t)h * HS;
            for (int c = 0; c < HS; c++) o[c] = 0.0f;
            const uint64_t row_index = ((uint64_t)bh * T + i) * T;
            for (int j = 0; j < len; j++)
                axpy(o, a[j] * dropout_factor(key, row_index + j, dropout_p, drop_scale), v + j * stride, HS);
        }
    }
}

void attention_backward(float* dqkv, float* datt, const float* dout, const float* qkv, const float* att,
                        const int* lengths, int B, int T, int C, int NH, float dropout_p, uint64_t seed) {
    if (!dqkv) return;
    const int HS = C / NH;
    const float scale = 1.0f / std::sqrt((float)HS);
    const float drop_scale = dropout_scale(dropout_p);
    const uint64_t key = dropout_key(seed);
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * NH; bh++) {
        const int b = bh / NH, h = bh % NH;
        const int len = lengths ? lengths[b] : T;
        const size_t stride = (size_t)3 * C;
        const size_t offset = (size_t)b * T * stride + (size_t)h * HS;
        const float *q = qkv + offset, *k = q + C, *v = q + 2 * C;
        float *dq = dqkv + offset, *dk = dq + C, *dv = dq + 2 * C;
        for (int i = 0; i < T; i++) {
            const float* a = att + ((size_t)bh * T + i) * T;
            float* da = datt + ((size_t)bh * T + i) * T;
            const float* doi = dout + ((size_t)b * T + i) * C + (size_t)h * HS;
            const uint64_t row_index = ((uint64_t)bh * T + i) * T;
            // through out_i = sum_j d[i, j] v_j, d = att * m (m: the dropout factor)
            for (int j = 0; j < len; j++) {
                const float m = dropout_factor(key, row_index + j, dropout_p, drop_scale);
                da[j] = m * dot(doi, v + j * stride, HS);
                axpy(dv + j * stride, a[j] * m, doi, HS);
            }
            for (int j = len; j < T; j++) da[j] = 0.0f;
            // through the softmax: ds = att * (datt - sum_k att * datt), kept in datt
            const float att_dot_datt = dot(a, da, len);
            for (int j = 0; j < len; j++) da[j] = a[j] * (da[j] - att_dot_datt);
            // through s = q k^T / sqrt(HS)
            const float* qi = q + i * stride;
            float* dqi = dq + i * stride;
            for (int j = 0; j < len; j++) {
                const float ds = da[j] * scale;
                axpy(dqi, ds, k + j * stride, HS);
                axpy(dk + j * stride, ds, qi, HS);
            }
        }
    }
}

}  // namespace wr
