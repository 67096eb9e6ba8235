// kernels/attention.cuh: fused self-attention on the GPU in the flash-attention manner (CPU
// version and math: attention.h). The [B, NH, T, T] probabilities never go to device memory:
// the forward keeps only the log-sum-exp of each query row's scores; the backward recomputes
// the probabilities tile by tile from q, k and that log-sum-exp. Padding keys (j >= lengths[b])
// get probability 0 as on the CPU; every query row, padded or not, is computed as on the CPU.
// Dropout on the probabilities uses the mask of kernels/dropout.h with the flat index of
// [B, NH, T, T], exactly as kernels/attention.cpp does, so the two paths drop the same entries.
// Head sizes C / NH up to 128 (32, 64 and 128 in place; others on heads padded with zeros, see
// attention.cu). See docs/cuda.md for why this kernel and not cuDNN's fused attention.
#pragma once
#include "kernels/cuda_common.cuh"

namespace wr::cuda {

// out[B,T,C] from qkv[B,T,3C] (q | k | v, heads side by side in each); lse[B,NH,T] (float) kept.
template <typename T>
void attention_forward(T* out, float* lse, const T* qkv, const int* lengths, int B, int T_, int C, int NH, float dropout_p,
                       uint64_t seed);
// dqkv[B,T,3C] += from dout[B,T,C]; out, qkv, lse are the forward's; dropout_p and seed too.
template <typename T>
void attention_backward(T* dqkv, const T* dout, const T* out, const T* qkv, const float* lse, const int* lengths, int B, int T_,
                        int C, int NH, float dropout_p, uint64_t seed);

}  // namespace wr::cuda
