// kernels/layernorm.h: LayerNorm over the last axis, as torch.nn.LayerNorm (biased variance, eps
// inside the square root). BERT uses eps = 1e-12 after the embeddings, after each residual add,
// and in the MLM head.
//
// Forward, per row n of inp[N, C]:
//   mean[n] = 1/C sum_c x[c]
//   rstd[n] = 1 / sqrt(1/C sum_c (x[c] - mean)^2 + eps)
//   xhat[c] = (x[c] - mean) * rstd
//   out[c]  = xhat[c] * weight[c] + bias[c]
// mean and rstd are saved for the backward pass.
//
// Backward, with g[c] = dout[c] * weight[c]:
//   dbias[c]   += sum_n dout[n, c]
//   dweight[c] += sum_n dout[n, c] * xhat[n, c]
//   dinp[c]    += rstd * (g[c] - mean_c(g) - xhat[c] * mean_c(g * xhat))
// dweight and dbias are summed over rows in row order by one thread per channel, so the result
// is bitwise the same for every thread count.
#pragma once
#include "kernels/common.h"

namespace wr {

// out[N, C], mean[N], rstd[N]  <-  inp[N, C], weight[C], bias[C]
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int N, int C, float eps);

// dinp[N, C], dweight[C], dbias[C]  +=  from dout[N, C]; any gradient pointer may be null.
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int N, int C);

}  // namespace wr
