// kernels/attention.h: multi-head scaled dot-product self-attention with a padding mask and
// dropout on the probabilities, as Hugging Face BertSelfAttention (the Q, K, V projections
// before it and the output projection after it are linear ops, not part of this file).
//
// Input qkv[B, T, 3C]: the query, key and value projections concatenated along the last axis,
// q = qkv[..., 0:C], k = qkv[..., C:2C], v = qkv[..., 2C:3C]; each split into NH heads of
// HS = C / NH channels (head h owns channels h*HS .. h*HS + HS - 1 of each).
// Padding: sequence b has lengths[b] real tokens; keys at positions t >= lengths[b] get
// probability exactly 0 (HF adds the dtype minimum to their scores, which underflows to exactly 0
// after the softmax in fp32). Query rows of padded positions are computed like any other row;
// their outputs are finite and nobody uses them.
//
// Forward, per sequence b, head h, query i, key j < len = lengths[b]:
//   s[i, j]   = q_i . k_j / sqrt(HS)
//   att[i, j] = exp(s[i, j] - max_j s) / sum_j exp(s[i, j] - max_j s)   (0 for j >= len; saved)
//   d[i, j]   = att[i, j] * m[i, j],  m = dropout mask * 1 / (1 - p)   (see kernels/dropout.h; the
//               element index is that of att[b, h, i, j] in [B, NH, T, T])
//   out_i     = sum_j d[i, j] v_j          written to out[b, i, h*HS .. h*HS + HS - 1]
// Backward, from dout:
//   dv_j      += sum_i d[i, j] dout_i
//   datt[i,j]  = m[i, j] (dout_i . v_j)                      (gradient of att, before dropout)
//   ds[i, j]   = att[i, j] (datt[i, j] - sum_k att[i, k] datt[i, k])       (softmax backward)
//   dq_i      += sum_j ds[i, j] k_j / sqrt(HS),   dk_j += sum_i ds[i, j] q_i / sqrt(HS)
// Each (b, h) pair is one OpenMP task and writes its own slice of out / dqkv, so the results do
// not depend on the thread count.
// Not here: flash-style tiling (T <= 512 on the CPU keeps a row of scores in cache), attention
// to a second sequence (BERT uses self-attention only), causal masks.
#pragma once
#include <cstdint>

#include "kernels/common.h"
#include "kernels/matmul.h"

namespace wr {

// out[B, T, C], att[B, NH, T, T] (softmax probabilities, before dropout)  <-  qkv[B, T, 3C],
// lengths[B] (each in 1..T; null = no padding). dropout_p = 0 turns dropout off. `precision`: of
// the two products per head (the softmax is fp32 either way).
void attention_forward(float* out, float* att, const float* qkv, const int* lengths, int B, int T, int C, int NH,
                       float dropout_p, uint64_t seed, MatmulPrecision precision = MatmulPrecision::fp32);

// dqkv[B, T, 3C] += from dout[B, T, C]; datt[B, NH, T, T] is scratch (overwritten). att is the
// forward's output; dropout_p and seed must be the forward's.
void attention_backward(float* dqkv, float* datt, const float* dout, const float* qkv, const float* att,
                        const int* lengths, int B, int T, int C, int NH, float dropout_p, uint64_t seed,
                        MatmulPrecision precision = MatmulPrecision::fp32);

}  // namespace wr
