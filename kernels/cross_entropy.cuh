// kernels/cross_entropy.cuh: the losses on the GPU (CPU versions and math: cross_entropy.h).
//   - softmax cross-entropy, fused so that the probabilities are never stored. One block per row:
//     a pass for the max and the sum of exp (online), then, when a gradient is asked for, a pass
//     that overwrites the logits with dloss_scale * (softmax - onehot) in place. Ignored rows
//     (target -100) get loss 0, are never correct, and get a zero gradient row (the GPU model
//     pads the MLM head's rows with them). Rows may be padded (ld > V): the padding is ignored.
//   - the squared error of a regression head (one output per row), element-wise.
//   - the soft-target cross-entropy of distillation at temperature tau, one warp per row of K
//     logits (small K: the classifier's outputs).
// Predictions and logits are T (float or bf16); targets, teacher logits and losses are float.
#pragma once
#include "kernels/cuda_common.cuh"

namespace wr::cuda {

// losses[M] (float); correct[M] = 1 where argmax(logits row) == target (first maximum on ties,
// as std::max_element), else 0 (may be null). With `backward`, logits[M,V] is overwritten by
// dloss_scale * (softmax - onehot): it becomes d loss / d logits (NOT accumulated: it replaces).
// Rows are ld >= V elements apart (0: V). The ld - V elements after each row's V (the GPU
// decoder's padded outputs) are not logits: outside the max, the softmax and the loss, and with
// `backward` set to 0 (so the padded decoder rows get no gradient).
template <typename T>
void cross_entropy_forward_backward(T* logits, float* losses, int* correct, const int* targets, int M, int V,
                                    float dloss_scale, bool backward, int ld = 0);

// Mean squared error, per row (the mean, sum_b losses[b] / B, is the caller's: a device op
// returns nothing to the host):
//   losses[b] = (pred[b] - target[b])^2
// Backward of weight * (1/B) sum_b losses[b] (weight 1: the CPU's mse_backward):
//   dpred[b] += weight * (2 (pred[b] - target[b]) / B)
template <typename T>
void mse_forward(float* losses, const T* pred, const float* target, int B);
template <typename T>
void mse_backward(T* dpred, const T* pred, const float* target, int B, float weight = 1.0f);

// Soft-target cross-entropy at temperature tau, rows of K logits (math and the tau^2 factor:
// cross_entropy.h):
//   p[m] = softmax(teacher[m, :] / tau)      q[m] = softmax(logits[m, :] / tau)
//   losses[m] = -tau^2 sum_k p[m,k] log q[m,k]
// and, where `agree` is not null, agree[m] = 1 when the first maximum of the student's row is
// the first maximum of the teacher's (argmax as std::max_element), else 0.
// Backward of L = dloss_scale * sum_m losses[m]:
//   dlogits[m, k] += dloss_scale * tau * (q[m,k] - p[m,k])
// One warp per row; sums in float over the lanes in a fixed order (deterministic).
template <typename T>
void soft_cross_entropy_forward(float* losses, const T* logits, const float* teacher_logits, int M, int K, float tau,
                                int* agree = nullptr);
template <typename T>
void soft_cross_entropy_backward(T* dlogits, const T* logits, const float* teacher_logits, int M, int K, float tau,
                                 float dloss_scale);

}  // namespace wr::cuda
