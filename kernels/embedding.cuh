// kernels/embedding.cuh: the embedding lookup on the GPU (CPU version and math: embedding.h).
// The backward scatter-adds into the word table without atomics: the rows are sorted by token id
// (CUB's stable radix sort), and each distinct id's rows are summed by one block in row order,
// so the result is deterministic.
#pragma once
#include "kernels/cuda_common.cuh"

namespace wr::cuda {

// out[B,T,C] = wte[ids] + wpe[t] + wtt[types]
template <typename T>
void embedding_forward(T* out, const int* ids, const int* token_types, const T* wte, const T* wpe, const T* wtt, int B,
                       int T_, int C);
// dwte[V,C], dwpe[P,C], dwtt[types,C] += from dout[B,T,C]; any may be null.
template <typename T>
void embedding_backward(float* dwte, float* dwpe, float* dwtt, const T* dout, const int* ids, const int* token_types, int B,
                        int T_, int C);

}  // namespace wr::cuda
