// kernels/layernorm.cuh: LayerNorm on the GPU (CPU version and math: layernorm.h), plus the
// fused residual form the encoder uses after attention and after the FFN:
//   res = a + dropout(b)          (the residual add, with the hidden dropout of b folded in)
//   out = LayerNorm(res)
// One warp per row; mean and rstd kept in float for the backward. Parameter gradients (float)
// are reduced from per-block partial sums in a fixed order.
#pragma once
#include "kernels/cuda_common.cuh"

namespace wr::cuda {

// out[N,C] = (inp - mean) * rstd * weight + bias;  mean[N], rstd[N] kept (float)
template <typename T>
void layernorm_forward(T* out, float* mean, float* rstd, const T* inp, const T* weight, const T* bias, int N, int C,
                       float eps);
// dinp[N,C] += ..., dweight[C] += ..., dbias[C] += ...   (any may be null)
template <typename T>
void layernorm_backward(T* dinp, float* dweight, float* dbias, const T* dout, const T* inp, const T* weight,
                        const float* mean, const float* rstd, int N, int C);

// res[N,C] = a + dropout(b; p, seed);  out[N,C] = LayerNorm(res).  The dropout mask is the one of
// kernels/dropout.h over the flat index of [N,C]; p = 0 is a plain residual add.
template <typename T>
void residual_layernorm_forward(T* res, T* out, float* mean, float* rstd, const T* a, const T* b, const T* weight,
                                const T* bias, int N, int C, float eps, float dropout_p, uint64_t seed);
// From dout (d loss / d out): d_res = LayerNorm backward;  da += d_res;  db += dropout'(d_res).
template <typename T>
void residual_layernorm_backward(T* da, T* db, float* dweight, float* dbias, const T* dout, const T* res, const T* weight,
                                 const float* mean, const float* rstd, int N, int C, float dropout_p, uint64_t seed);

}  // namespace wr::cuda
