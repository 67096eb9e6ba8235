// kernels/optimizer.h: the optimizer step on the one flat parameter buffer: AdamW exactly as
// torch.optim.AdamW, the global gradient L2 norm, and clipping as torch.nn.utils.clip_grad_norm_.
// All three run over n floats of the flat buffers (parameters, gradients, first and second
// moments mirror each other element for element), so they know nothing of the model's layout;
// the model tells AdamW which parts get weight decay with a list of ranges (below).
// Not here: the learning-rate schedule (common/schedule.h), loss scaling, the CUDA versions.
//
// Determinism: AdamW is element-wise (the result does not depend on how the elements are split
// among threads); the norm is summed in fixed chunks, in chunk order, so it is bit-identical for
// every thread count.
#pragma once
#include <cstdint>
#include <vector>

namespace wr {

// A half-open range [begin, end) of element indices of the flat parameter buffer.
struct ParamRange {
    int64_t begin = 0, end = 0;
};

// Which parameters get weight decay: the ranges of the buffer that decay (BERT: every weight
// matrix and embedding table), every element outside them does not (LayerNorm weights, biases).
// The ranges must be sorted by begin, not overlap (touching is fine), and lie within [0, n); the
// model builds this list once from its named parameter views. An empty list: no decay anywhere.
using DecayRanges = std::vector<ParamRange>;

// The parts of a flat buffer an update touches, each with whether it decays: the form the GPU's
// AdamW takes (its parameter buffer has zero padding between tensors, which it must never touch:
// model/device_layout.h). Sorted, not overlapping; elements outside every span are left alone.
struct UpdateSpan {
    int64_t begin = 0, end = 0;
    bool decay = false;
};
using UpdateSpans = std::vector<UpdateSpan>;
// The spans of the whole buffer [0, n) under `decay_ranges` (checked as adamw_update checks them):
// the gaps (no decay) and the ranges (decay) in order, empty ones left out.
UpdateSpans update_spans(const DecayRanges& decay_ranges, int64_t n);

// Hyperparameters in double, like PyTorch's Python floats, so that 1 - beta1 and friends round
// exactly as there (0.9f would make 1 - beta1 = 0.0999999762).
struct AdamWConfig {
    double lr = 1e-4;            // this step's learning rate (from the schedule)
    double beta1 = 0.9, beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0.01;  // decoupled: applied to the ranges in DecayRanges only
};

// One AdamW update, step t = 1, 2, ... (the number of updates including this one), per element:
//   p = p * (1 - lr * wd)                      (decayed elements only; decoupled, done first)
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g^2
//   p = p - (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps),   bc1 = 1 - beta1^t, bc2 = 1 - beta2^t
// params, m, v: [n], updated in place (m and v start at 0); grads: [n], read only.
// The scalars (bias corrections, step size, decay factor) are computed in double and rounded to
// float once; the element math is float, in the order of PyTorch's single-tensor (CPU) AdamW:
// m += (1 - beta1) * (g - m) (its lerp_, the same m), v = v * beta2 + (1 - beta2) * g * g,
// p += (-step_size * m) / denom (its addcdiv_).
// Throws wr::Error on t < 1 or malformed decay ranges.
void adamw_update(float* params, const float* grads, float* m, float* v, int64_t n,
                  const DecayRanges& decay_ranges, const AdamWConfig& config, int64_t step);

// L2 norm of grads[0..n), sqrt(sum g^2), accumulated in double: fixed chunks of kNormChunk
// elements, each summed in eight interleaved lanes then lane by lane, chunk sums added in chunk
// order. The result depends only on the values, never on the thread count.
constexpr int64_t kNormChunk = 1 << 14;
double global_grad_norm(const float* grads, int64_t n);

// torch.nn.utils.clip_grad_norm_: norm = global_grad_norm; scale = max_norm / (norm + 1e-6);
// when scale < 1 every gradient is multiplied by (float)scale. Returns the norm before clipping.
// A non-finite norm leaves the gradients as they are: the caller sees it and skips the step.
double clip_grad_norm(float* grads, int64_t n, double max_norm);

}  // namespace wr
