// kernels/dropout.h: inverted dropout whose mask is a pure function of (seed, element index), so
// it is never stored: the backward pass, another thread count or the GPU regenerates it exactly.
// The same rule drops attention probabilities inside kernels/attention.cpp.
//
// The mask rule (the contract the CUDA version must follow bit for bit):
//   key  = splitmix64_mix(seed)
//   h(i) = splitmix64_mix(key + (i + 1) * 0x9E3779B97F4A7C15)   (i = flat element index, uint64)
//   u(i) = (h(i) >> 40) * 2^-24                                 (top 24 bits: a float in [0, 1))
//   keep element i  iff  u(i) >= p
// i.e. element i uses the (i+1)-th output of the SplitMix64 generator (Steele, Lea, Flood 2014;
// Vigna's reference splitmix64.c) started from the mixed seed. Mixing the seed first makes
// nearby seeds (seed, seed + 1, ...) give unrelated masks. u and p compare as float and u is
// exact in float, so the decision is the same on every machine. Kept values are scaled by
// 1 / (1 - p), as torch.nn.Dropout does, so the expected value is unchanged.
//
// Use a different seed for every call site and step (e.g. derived from the step and the
// layer); the same seed on two tensors gives them the same pattern.
// Not here: dropout in evaluation mode is no call at all (or p = 0, an exact copy).
#pragma once
#include <cstdint>

#include "common/random.h"
#include "kernels/common.h"

namespace wr {

// The per-call key: compute once per call, then ask dropout_keep for each element.
WR_HOST_DEVICE inline uint64_t dropout_key(uint64_t seed) { return splitmix64_mix(seed); }

// u(i) in [0, 1) with 24 random bits, exactly representable as a float.
WR_HOST_DEVICE inline float dropout_uniform(uint64_t key, uint64_t i) {
    const uint64_t h = splitmix64_mix(key + (i + 1) * 0x9E3779B97F4A7C15ULL);
    return (float)(h >> 40) * (1.0f / 16777216.0f);
}

// Whether element i survives dropout with probability p of being dropped.
WR_HOST_DEVICE inline bool dropout_keep(uint64_t key, uint64_t i, float p) {
    return dropout_uniform(key, i) >= p;
}

// The factor kept values are multiplied by: 1 / (1 - p); 0 when p >= 1 (everything dropped).
WR_HOST_DEVICE inline float dropout_scale(float p) { return p < 1.0f ? 1.0f / (1.0f - p) : 0.0f; }

// out[n] = keep(i) ? inp[i] / (1 - p) : 0, for p in [0, 1]. p = 0 copies inp exactly.
// out may equal inp (in place).
void dropout_forward(float* out, const float* inp, int64_t n, float p, uint64_t seed);

// dinp[n] += keep(i) ? dout[i] / (1 - p) : 0, with the mask regenerated from (p, seed): pass the
// same p and seed as the forward call.
void dropout_backward(float* dinp, const float* dout, int64_t n, float p, uint64_t seed);

}  // namespace wr
