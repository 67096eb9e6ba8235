// kernels/attention.cpp: self-attention forward and backward (math and layout in the header).
// One (sequence, head) pair per task of parallel_for (kernels/parallel.h). Inside a task the four
// products of each direction are small strided matrix products handed to the project's GEMM
// (kernels/matmul.h), which runs serially inside a parallel region; what is left is the row
// softmax, the dropout mask and the softmax backward, with the row sums in 8 fixed lanes
// (kernels/activations.h). Per head, with len = lengths[b] real keys:
//   forward   S[T, len]  = Q[T, HS] K[len, HS]^T            (then scaled, softmax per row -> att)
//             out[T, HS] = D[T, len] V[len, HS]              D = att * dropout mask
//   backward  dD[T, len] = dout[T, HS] V[len, HS]^T
//             dV[len,HS] += D^T dout
//             dS = att * (m dD - rowsum(att * m dD)) / sqrt(HS)      (kept in datt)
//             dQ[T, HS] += dS K,    dK[len, HS] += dS^T Q
// Q, K, V and their gradients are read in place from qkv / dqkv (row stride 3C); att and datt
// have row stride T.
#include "kernels/attention.h"

#include <cmath>
#include <cstddef>
#include <vector>

#include "kernels/activations.h"  // exp_nonpositive
#include "kernels/dropout.h"
#include "kernels/matmul.h"
#include "kernels/parallel.h"

namespace wr {

namespace {

// Where head h of sequence b lives: its q, k, v (or dq, dk, dv) blocks, row stride 3C.
struct HeadView {
    size_t offset;  // of q's first element in qkv: b * T * 3C + h * HS
    int len;        // real keys of sequence b
    uint64_t att_index;  // flat index of att[b, h, 0, 0] in [B, NH, T, T] (the dropout mask's index)
};

HeadView head_view(int bh, const int* lengths, int T, int C, int NH) {
    const int b = bh / NH, h = bh % NH;
    return {(size_t)b * T * 3 * C + (size_t)h * (C / NH), lengths ? lengths[b] : T, (uint64_t)bh * T * T};
}

// D = att * m over the len real keys of each row (m: dropout factor; 0 or 1 / (1 - p)), written
// to `dropped` [T, T] (row stride T); when `factors` is given, m too (the backward needs it twice).
void apply_dropout(float* dropped, float* factors, const float* att, int T, int len, uint64_t att_index, uint64_t key,
                   float p, float scale) {
    for (int i = 0; i < T; i++)
        for (int j = 0; j < len; j++) {
            const size_t at = (size_t)i * T + j;
            const float m = dropout_keep(key, att_index + at, p) ? scale : 0.0f;
            dropped[at] = att[at] * m;
            if (factors) factors[at] = m;
        }
}

// row[0:len] = softmax(row[0:len] * scale), row[len:T] = 0 (padding keys get exactly 0). Maps and
// lane reductions (kernels/activations.h), each a loop the compiler vectorizes.
void softmax_row(float* row, int len, int T, float scale) {
    for (int j = 0; j < len; j++) row[j] *= scale;
    const float max_score = lane_max(row, len);
    for (int j = 0; j < len; j++) row[j] = exp_nonpositive(row[j] - max_score);
    const float inv_sum = 1.0f / lane_sum<float>(row, len);
    for (int j = 0; j < len; j++) row[j] *= inv_sum;
    for (int j = len; j < T; j++) row[j] = 0.0f;
}

// A thread's scratch of n floats (the dropped probabilities D, the dropout factors m).
float* scratch(std::vector<float>& buffer, size_t n) {
    if (buffer.size() < n) buffer.resize(n);
    return buffer.data();
}

}  // namespace

void attention_forward(float* out, float* att, const float* qkv, const int* lengths, int B, int T, int C, int NH,
                       float dropout_p, uint64_t seed, MatmulPrecision precision) {
    const int HS = C / NH, ld = 3 * C;
    const float scale = 1.0f / std::sqrt((float)HS);
    const float drop_scale = dropout_scale(dropout_p);
    const uint64_t key = dropout_key(seed);
    parallel_for(B * NH, [&](int64_t bh) {
        static thread_local std::vector<float> dropped;  // this thread's D
        const HeadView hv = head_view((int)bh, lengths, T, C, NH);
        const float *q = qkv + hv.offset, *k = q + C, *v = q + 2 * C;
        float* a = att + (size_t)bh * T * T;
        // scores, then the softmax of each row over the real keys; padding keys get exactly 0
        sgemm(false, true, T, hv.len, HS, q, ld, k, ld, a, T, /*accumulate=*/false, nullptr, precision);
        for (int i = 0; i < T; i++) softmax_row(a + (size_t)i * T, hv.len, T, scale);
        // out = D V, D = att with dropout
        const float* d = a;
        if (dropout_p > 0.0f) {
            float* D = scratch(dropped, (size_t)T * T);
            apply_dropout(D, nullptr, a, T, hv.len, hv.att_index, key, dropout_p, drop_scale);
            d = D;
        }
        float* o = out + (size_t)(bh / NH) * T * C + (size_t)(bh % NH) * HS;
        sgemm(false, false, T, HS, hv.len, d, T, v, ld, o, C, /*accumulate=*/false, nullptr, precision);
    });
}

void attention_backward(float* dqkv, float* datt, const float* dout, const float* qkv, const float* att,
                        const int* lengths, int B, int T, int C, int NH, float dropout_p, uint64_t seed,
                        MatmulPrecision precision) {
    if (!dqkv) return;
    const int HS = C / NH, ld = 3 * C;
    const float scale = 1.0f / std::sqrt((float)HS);
    const float drop_scale = dropout_scale(dropout_p);
    const uint64_t key = dropout_key(seed);
    parallel_for(B * NH, [&](int64_t bh) {
        static thread_local std::vector<float> dropped, factors;  // this thread's D and m
        const HeadView hv = head_view((int)bh, lengths, T, C, NH);
        const float *q = qkv + hv.offset, *k = q + C, *v = q + 2 * C;
        float *dq = dqkv + hv.offset, *dk = dq + C, *dv = dq + 2 * C;
        const float* a = att + (size_t)bh * T * T;
        float* da = datt + (size_t)bh * T * T;
        const float* dO = dout + (size_t)(bh / NH) * T * C + (size_t)(bh % NH) * HS;
        const float* d = a;  // D: att with the forward's dropout
        float* m = nullptr;  // its factors
        if (dropout_p > 0.0f) {
            float* D = scratch(dropped, (size_t)T * T);
            m = scratch(factors, (size_t)T * T);
            apply_dropout(D, m, a, T, hv.len, hv.att_index, key, dropout_p, drop_scale);
            d = D;
        }
        // through out = D V
        sgemm(true, false, hv.len, HS, T, d, T, dO, C, dv, ld, /*accumulate=*/true, nullptr, precision);   // dV += D^T dout
        sgemm(false, true, T, hv.len, HS, dO, C, v, ld, da, T, /*accumulate=*/false, nullptr, precision);  // dD = dout V^T
        // through the dropout and the softmax: ds = att * (datt - sum_k att * datt), datt = m dD
        for (int i = 0; i < T; i++) {
            const float* arow = a + (size_t)i * T;
            float* drow = da + (size_t)i * T;
            if (m)
                for (int j = 0; j < hv.len; j++) drow[j] *= m[(size_t)i * T + j];
            const float att_dot_datt = lane_dot(arow, drow, hv.len);
            for (int j = 0; j < hv.len; j++) drow[j] = arow[j] * (drow[j] - att_dot_datt) * scale;
            for (int j = hv.len; j < T; j++) drow[j] = 0.0f;
        }
        // through s = q k^T / sqrt(HS) (the scale is already in ds)
        sgemm(false, false, T, HS, hv.len, da, T, k, ld, dq, ld, /*accumulate=*/true, nullptr, precision);  // dQ += dS K
        sgemm(true, false, hv.len, HS, T, da, T, q, ld, dk, ld, /*accumulate=*/true, nullptr, precision);   // dK += dS^T Q
    });
}

}  // namespace wr
