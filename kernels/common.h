// kernels/common.h: what every op in kernels/ shares: the letters used in shape comments, and
// the conventions every forward/backward pair follows.
//
// Legend (one set of letters for the whole project):
//   B  batch size (sequences)           T  sequence length (tokens)
//   C  hidden size                      NH attention heads, HS = C / NH head size
//   F  feed-forward size (4C)           V  vocabulary size
//   L  encoder layers                   N  rows of a flattened [B, T] (N = B * T) or other count
//   M  masked positions the MLM head runs on
//
// Conventions:
//   - Tensors are contiguous float arrays, row-major, shapes written as [B, T, C].
//   - Linear weights are [out, in] as in PyTorch/Hugging Face: y = x W^T + b.
//   - forward(...) writes its outputs (never reads them first).
//   - backward(...) ACCUMULATES (+=) into every gradient it is given, activations and parameters
//     alike, so a tensor used twice (a residual, the tied embedding) gets both contributions; the
//     caller zeroes gradient buffers once per step. A null gradient pointer means "not needed".
//   - CPU ops are OpenMP-parallel and deterministic for a given thread count: no atomics, each
//     output element is summed by one thread in a fixed order (parameter gradients that many
//     rows contribute to are reduced from per-thread partials in thread order).
//   - The CUDA versions sit beside these with the same signatures.
#pragma once
#include <cstdint>
