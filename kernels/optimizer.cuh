// kernels/optimizer.cuh: the optimizer step on the GPU over the flat fp32 parameter buffer (CPU
// version and math: optimizer.h): the global gradient norm (two kernels), then ONE kernel that
// clips, updates (AdamW) and writes the bf16 copy of the weights the bf16 model reads. The norm
// stays on the device; the AdamW kernel reads it there and derives the clip factor itself, so a
// step needs no host round trip (the host reads the norm afterwards, with the step's losses, to
// log it). A non-finite norm turns the whole update into a no-op on the device, as the CPU path
// skips it.
#pragma once
#include "kernels/cuda_common.cuh"
#include "kernels/optimizer.h"

namespace wr::cuda {

// norm[0] = sqrt(sum grads^2) (float result, summed in double in fixed chunks, deterministic).
void global_grad_norm(float* norm, const float* grads, int64_t n);

// One AdamW update of the elements of `spans` (update_spans in optimizer.h; elements outside
// every span, the GPU layout's padding, are not touched), clipping and the bf16 copy fused in.
// Per element i of a span:
//   g = grads[i] * clip        clip = max_norm / (norm + 1e-6) where max_norm > 0 and that is < 1,
//                              else 1: clip_grad_norm's factor, from the device's norm (grads
//                              themselves are left as they are)
//   params[i], m[i], v[i]      as wr::adamw_update from g (same scalars, same order of operations;
//                              weight decay where the span decays)
//   params_bf16[i] = bf16(params[i])    when params_bf16 is not null
// Nothing at all happens when *norm is not finite (the step is skipped). norm null: no clipping,
// never skipped. Throws wr::Error on step < 1 or spans out of order, overlapping or too many
// (more than 64).
void adamw_update(float* params, bf16* params_bf16, const float* grads, float* m, float* v, const UpdateSpans& spans,
                  const AdamWConfig& config, int64_t step, const float* norm, double max_norm);

}  // namespace wr::cuda
