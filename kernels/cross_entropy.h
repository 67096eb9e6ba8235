// kernels/cross_entropy.h: softmax cross-entropy over rows of logits with an ignore index, as
// torch.nn.CrossEntropyLoss(ignore_index=-100) (the MLM loss: rows are the masked positions,
// targets the original tokens; the classifier loss: rows are sequences, targets the labels).
//
// Forward, per row m with target y = targets[m] != -100:
//   losses[m] = logsumexp(logits[m, :]) - logits[m, y]
//             = log sum_v exp(logits[m, v] - max) + max - logits[m, y]
// and losses[m] = 0 for ignored rows. The mean loss (torch's reduction="mean") is the sum over
// non-ignored rows divided by their count: cross_entropy_mean().
// Backward of L = dloss_scale * sum_m losses[m] (use dloss_scale = 1 / count for the mean):
//   dlogits[m, v] += dloss_scale * (softmax(logits[m, :])[v] - [v == y])
// ignored rows receive nothing. Row sums of exp are accumulated in double.
// Soft targets (distillation) are the ops below: a teacher's full distribution, or its top k over a vocabulary.
#pragma once
#include "kernels/common.h"

namespace wr {

constexpr int kIgnoreIndex = -100;

// The two numbers that define softmax(row) without overflow; the forward can keep them for the
// backward (at V = 30522 the passes over the row are the cost of the op).
struct SoftmaxStats {
    float max;       // max_v logits[v]
    double sum_exp;  // sum_v exp(logits[v] - max), at least 1
};

// losses[M]  <-  logits[M, V], targets[M] (each in 0..V-1, or kIgnoreIndex); stats[M] (may be
// null) receives each non-ignored row's SoftmaxStats.
void cross_entropy_forward(float* losses, const float* logits, const int* targets, int M, int V,
                           SoftmaxStats* stats = nullptr);

// The number of rows whose target is not kIgnoreIndex.
int cross_entropy_count(const int* targets, int M);

// The mean of losses over non-ignored rows, summed in double in row order; 0 when every row is
// ignored (torch returns NaN there; a batch without targets should contribute nothing).
float cross_entropy_mean(const float* losses, const int* targets, int M);

// dlogits[M, V] += dloss_scale * (softmax - onehot) on every non-ignored row. stats: the forward's
// (then one pass over each row instead of three, with the same result bit for bit), or null.
void cross_entropy_backward(float* dlogits, const float* logits, const int* targets, int M, int V,
                            float dloss_scale, const SoftmaxStats* stats = nullptr);

// Forward and backward in one pass pair, for training (as llm.c's fused classifier): losses[M]
// and stats as cross_entropy_forward, and dlogits[M, V] WRITTEN (not added) with
//   dlogits[m, v] = dloss_scale * (softmax - onehot)      (0 on ignored rows)
// the same numbers as cross_entropy_backward into zeros. Each exp is computed once, kept in
// dlogits and scaled there: two passes over a row instead of five.
void cross_entropy_forward_backward(float* losses, float* dlogits, const float* logits, const int* targets, int M, int V,
                                    float dloss_scale, SoftmaxStats* stats = nullptr);

// Mean squared error of a regression head with one output per row (torch.nn.MSELoss):
//   loss = (1/B) sum_b (pred[b] - target[b])^2;  losses[b] = (pred[b] - target[b])^2;  returns loss
//   dpred[b] += (2/B) (pred[b] - target[b])
float mse_forward(float* losses, const float* pred, const float* target, int B);
void mse_backward(float* dpred, const float* pred, const float* target, int B);

// Soft-target cross-entropy at temperature tau (distillation, as Hinton et al. 2015 and
// "Well-Read Students"): rows of K logits of a student and of a teacher,
//   p[m] = softmax(teacher[m, :] / tau)      q[m] = softmax(logits[m, :] / tau)
//   losses[m] = -tau^2 sum_k p[m,k] log q[m,k]
// The tau^2 keeps the gradient's size independent of tau. Backward of L = dloss_scale * sum_m losses[m]:
//   d log q_j / d z_k = (delta_jk - q_k) / tau, so
//   dlogits[m, k] += dloss_scale * tau * (q[m,k] - p[m,k])
// which is 0 where the student's logits equal the teacher's. Each row is computed in double.
// losses[M]  <-  logits[M, K], teacher_logits[M, K]
void soft_cross_entropy_forward(float* losses, const float* logits, const float* teacher_logits, int M, int K, float tau);
void soft_cross_entropy_backward(float* dlogits, const float* logits, const float* teacher_logits, int M, int K, float tau,
                                 float dloss_scale);

// Soft-target cross-entropy against a teacher's top-k over a large vocabulary (MLM-logit
// distillation, the soft MLM loss of DistilBERT, with the teacher truncated to its k best tokens
// as `distill cache --mlm` stores them). Row m has the student's V logits z and the teacher's k
// token ids id_j (distinct, in 0..V-1) with their logits t_j:
//   p_j = softmax_j(t / tau)             over the k teacher logits only (renormalized over the top k)
//   q_v = softmax_v(z / tau)             over the student's full vocabulary
//   losses[m] = -tau^2 sum_{j<k} p_j log q_{id_j}
// Backward of L = dloss_scale * sum_m losses[m]: with p_v = p_j where v = id_j and p_v = 0 for
// every token outside the top k (so sum_v p_v = 1),
//   d log q_u / d z_v = (delta_uv - q_v) / tau,  hence
//   dlogits[m, v] += dloss_scale * tau * (q_v - p_v)
// which vanishes only where q = p: for k < V a limit (q_v > 0 outside the top k), not a point;
// with k = V this is exactly soft_cross_entropy_* above. The student's softmax runs over V in 8
// lanes in a fixed order (max in float, sum of exp in double), the k-sums in double, so results
// do not depend on the thread count; OpenMP over rows.
// losses[M]  <-  logits[M, V], topk_ids[M, k], topk_values[M, k]
void soft_topk_cross_entropy_forward(float* losses, const float* logits, const int* topk_ids, const float* topk_values, int M, int V,
                                     int k, float tau);
void soft_topk_cross_entropy_backward(float* dlogits, const float* logits, const int* topk_ids, const float* topk_values, int M, int V,
                                      int k, float tau, float dloss_scale);

}  // namespace wr
