// kernels/cross_entropy.cpp: softmax cross-entropy with an ignore index, squared error, and the soft
// (distillation) cross-entropies against full or top-k teacher distributions (math in the header).
// Rows are independent: one row per OpenMP iteration.
#include "kernels/cross_entropy.h"

#include <cmath>
#include <cstddef>
#include <vector>

#include "kernels/activations.h"  // exp_nonpositive
#include "kernels/parallel.h"

namespace wr {

namespace {

// The stats of softmax(row / tau): max_v row[v] and sum_v exp((row[v] - max) / tau).
using RowSoftmax = SoftmaxStats;

// The two numbers that define softmax(row / tau) without overflow (inv_tau = 1 / tau; 1 for the
// plain softmax, where the multiplication is exact): a lane max, the exps (a map), their lane sum
// in double (kernels/activations.h: a fixed order, so the result does not depend on the machine,
// and loops that vectorize: at V = 30522 they are the cost of the op). The exps go to `exps`
// when given (the fused forward and backward below scales them into the gradient instead of
// computing them again), else to a scratch row of the thread's.
RowSoftmax row_softmax(const float* row, int V, float inv_tau = 1.0f, float* exps = nullptr) {
    static thread_local std::vector<float> scratch;
    if (!exps) {
        if (scratch.size() < (size_t)V) scratch.resize(V);
        exps = scratch.data();
    }
    const float max = lane_max(row, V);
    for (int v = 0; v < V; v++) exps[v] = exp_nonpositive((row[v] - max) * inv_tau);
    return {max, lane_sum<double>(exps, V)};
}

}  // namespace

void cross_entropy_forward(float* losses, const float* logits, const int* targets, int M, int V, SoftmaxStats* stats) {
    parallel_for(M, [&](int64_t m) {
        if (targets[m] == kIgnoreIndex) {
            losses[m] = 0.0f;
            return;
        }
        const float* row = logits + (size_t)m * V;
        const RowSoftmax s = row_softmax(row, V);
        if (stats) stats[m] = s;
        losses[m] = (float)(std::log(s.sum_exp) + (double)s.max - (double)row[targets[m]]);
    });
}

int cross_entropy_count(const int* targets, int M) {
    int count = 0;
    for (int m = 0; m < M; m++) count += targets[m] != kIgnoreIndex;
    return count;
}

float cross_entropy_mean(const float* losses, const int* targets, int M) {
    double sum = 0.0;
    int count = 0;
    for (int m = 0; m < M; m++) {
        if (targets[m] == kIgnoreIndex) continue;
        sum += losses[m];
        count++;
    }
    return count > 0 ? (float)(sum / count) : 0.0f;
}

void cross_entropy_backward(float* dlogits, const float* logits, const int* targets, int M, int V,
                            float dloss_scale, const SoftmaxStats* stats) {
    if (!dlogits) return;
    parallel_for(M, [&](int64_t m) {
        if (targets[m] == kIgnoreIndex) return;
        const float* row = logits + (size_t)m * V;
        float* drow = dlogits + (size_t)m * V;
        const RowSoftmax s = stats ? stats[m] : row_softmax(row, V);
        const float scale_over_sum = (float)(dloss_scale / s.sum_exp);
        for (int v = 0; v < V; v++) drow[v] += exp_nonpositive(row[v] - s.max) * scale_over_sum;
        drow[targets[m]] -= dloss_scale;
    });
}

void cross_entropy_forward_backward(float* losses, float* dlogits, const float* logits, const int* targets, int M, int V,
                                    float dloss_scale, SoftmaxStats* stats) {
    parallel_for(M, [&](int64_t m) {
        float* drow = dlogits + (size_t)m * V;
        if (targets[m] == kIgnoreIndex) {
            losses[m] = 0.0f;
            for (int v = 0; v < V; v++) drow[v] = 0.0f;
            return;
        }
        const float* row = logits + (size_t)m * V;
        const RowSoftmax s = row_softmax(row, V, 1.0f, /*exps=*/drow);
        if (stats) stats[m] = s;
        losses[m] = (float)(std::log(s.sum_exp) + (double)s.max - (double)row[targets[m]]);
        const float scale_over_sum = (float)(dloss_scale / s.sum_exp);
        for (int v = 0; v < V; v++) drow[v] *= scale_over_sum;
        drow[targets[m]] -= dloss_scale;
    });
}

float mse_forward(float* losses, const float* pred, const float* target, int B) {
    double sum = 0;
    for (int b = 0; b < B; b++) {
        const float d = pred[b] - target[b];
        losses[b] = d * d;
        sum += losses[b];
    }
    return B > 0 ? (float)(sum / B) : 0.0f;
}

void mse_backward(float* dpred, const float* pred, const float* target, int B) {
    for (int b = 0; b < B; b++) dpred[b] += 2.0f * (pred[b] - target[b]) / (float)B;
}

namespace {

// log softmax(row / tau) into out[K], in double.
void log_softmax_at_temperature(double* out, const float* row, int K, double tau) {
    double max = row[0];
    for (int k = 1; k < K; k++) max = row[k] > max ? row[k] : max;
    double sum = 0.0;
    for (int k = 0; k < K; k++) sum += std::exp((row[k] - max) / tau);
    const double log_sum = std::log(sum);
    for (int k = 0; k < K; k++) out[k] = (row[k] - max) / tau - log_sum;
}

}  // namespace

void soft_cross_entropy_forward(float* losses, const float* logits, const float* teacher_logits, int M, int K, float tau) {
#pragma omp parallel for schedule(static)
    for (int m = 0; m < M; m++) {
        std::vector<double> log_p(K), log_q(K);
        log_softmax_at_temperature(log_p.data(), teacher_logits + (size_t)m * K, K, tau);
        log_softmax_at_temperature(log_q.data(), logits + (size_t)m * K, K, tau);
        double loss = 0.0;
        for (int k = 0; k < K; k++) loss -= std::exp(log_p[k]) * log_q[k];
        losses[m] = (float)((double)tau * tau * loss);
    }
}

void soft_cross_entropy_backward(float* dlogits, const float* logits, const float* teacher_logits, int M, int K, float tau,
                                 float dloss_scale) {
#pragma omp parallel for schedule(static)
    for (int m = 0; m < M; m++) {
        std::vector<double> log_p(K), log_q(K);
        log_softmax_at_temperature(log_p.data(), teacher_logits + (size_t)m * K, K, tau);
        log_softmax_at_temperature(log_q.data(), logits + (size_t)m * K, K, tau);
        for (int k = 0; k < K; k++)
            dlogits[(size_t)m * K + k] += (float)((double)dloss_scale * tau * (std::exp(log_q[k]) - std::exp(log_p[k])));
    }
}

namespace {

// The teacher's p_j = softmax(t / tau) over its k logits, in double, into p[k].
void topk_probabilities(double* p, const float* values, int k, double tau) {
    double max = values[0];
    for (int j = 1; j < k; j++) max = values[j] > max ? values[j] : max;
    double sum = 0.0;
    for (int j = 0; j < k; j++) sum += (p[j] = std::exp((values[j] - max) / tau));
    for (int j = 0; j < k; j++) p[j] /= sum;
}

}  // namespace

void soft_topk_cross_entropy_forward(float* losses, const float* logits, const int* topk_ids, const float* topk_values, int M, int V,
                                     int k, float tau) {
    const float inv_tau = 1.0f / tau;
#pragma omp parallel for schedule(static)
    for (int m = 0; m < M; m++) {
        std::vector<double> p(k);
        const float* row = logits + (size_t)m * V;
        const int* ids = topk_ids + (size_t)m * k;
        topk_probabilities(p.data(), topk_values + (size_t)m * k, k, tau);
        const RowSoftmax s = row_softmax(row, V, inv_tau);
        const double log_sum = std::log(s.sum_exp);
        double loss = 0.0;  // -sum_j p_j log q_{id_j}, log q_v = (z_v - max) / tau - log sum
        for (int j = 0; j < k; j++) loss -= p[j] * (((double)row[ids[j]] - (double)s.max) / tau - log_sum);
        losses[m] = (float)((double)tau * tau * loss);
    }
}

void soft_topk_cross_entropy_backward(float* dlogits, const float* logits, const int* topk_ids, const float* topk_values, int M, int V,
                                      int k, float tau, float dloss_scale) {
    if (!dlogits) return;
    const float inv_tau = 1.0f / tau;
#pragma omp parallel for schedule(static)
    for (int m = 0; m < M; m++) {
        std::vector<double> p(k);
        const float* row = logits + (size_t)m * V;
        float* drow = dlogits + (size_t)m * V;
        const int* ids = topk_ids + (size_t)m * k;
        topk_probabilities(p.data(), topk_values + (size_t)m * k, k, tau);
        const RowSoftmax s = row_softmax(row, V, inv_tau);
        // scale * tau * q_v over the whole vocabulary, then - scale * tau * p_j at the top k.
        const float scale_q = (float)((double)dloss_scale * tau / s.sum_exp);
        for (int v = 0; v < V; v++) drow[v] += exp_nonpositive((row[v] - s.max) * inv_tau) * scale_q;
        for (int j = 0; j < k; j++) drow[ids[j]] -= (float)((double)dloss_scale * tau * p[j]);
    }
}

}  // namespace wr
