// kernels/cross_entropy.cuh: softmax cross-entropy on the GPU, fused so that the probabilities
// are never stored (CPU version and math: cross_entropy.h). One block per row: a pass for the
// max and the sum of exp (online), then, when a gradient is asked for, a pass that overwrites
// the logits with dloss_scale * (softmax - onehot) in place. Ignored rows (target -100) get
// loss 0 and a zero gradient row.
#pragma once
#include "kernels/cuda_common.cuh"

namespace wr::cuda {

// losses[M] (float); correct[M] = 1 where argmax(logits row) == target (first maximum on ties,
// as std::max_element), else 0 (may be null). With `backward`, logits[M,V] is overwritten by
// dloss_scale * (softmax - onehot): it becomes d loss / d logits (NOT accumulated: it replaces).
template <typename T>
void cross_entropy_forward_backward(T* logits, float* losses, int* correct, const int* targets, int M, int V,
                                    float dloss_scale, bool backward);

}  // namespace wr::cuda
