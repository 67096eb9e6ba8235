// kernels/optimizer.cuh: the optimizer step on the GPU over the one flat fp32 parameter buffer
// (CPU version and math: optimizer.h): the global gradient norm, clipping, and AdamW, each one
// kernel (AdamW is launched once per run of decayed / not-decayed elements). The norm stays on
// the device; clipping and AdamW read it there, so a step needs no host round trip (the host
// reads the norm afterwards only to log it). A non-finite norm turns the whole step into a no-op
// on the device, as the CPU path skips it.
#pragma once
#include "kernels/cuda_common.cuh"
#include "kernels/optimizer.h"

namespace wr::cuda {

// norm[0] = sqrt(sum grads^2) (float result, summed in double in fixed chunks, deterministic).
void global_grad_norm(float* norm, const float* grads, int64_t n);
// grads *= max_norm / (norm + 1e-6) when that is < 1 and norm is finite (norm read on device).
void clip_grad_norm(float* grads, int64_t n, const float* norm, double max_norm);
// AdamW as wr::adamw_update (same scalars, same element order of operations); skipped entirely
// when *norm (device) is not finite. Pass norm = nullptr to never skip.
void adamw_update(float* params, const float* grads, float* m, float* v, int64_t n, const DecayRanges& decay_ranges,
                  const AdamWConfig& config, int64_t step, const float* norm);

}  // namespace wr::cuda
