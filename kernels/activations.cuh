// kernels/activations.cuh: element-wise ops on the GPU (CPU versions and math: activations.h).
// GELU is the exact one, 0.5 x (1 + erf(x / sqrt 2)), with CUDA's erff.
#pragma once
#include "kernels/cuda_common.cuh"

namespace wr::cuda {

template <typename T> void gelu_forward(T* out, const T* inp, int64_t n);
template <typename T> void gelu_backward(T* dinp, const T* inp, const T* dout, int64_t n);
template <typename T> void tanh_forward(T* out, const T* inp, int64_t n);
template <typename T> void tanh_backward(T* dinp, const T* out, const T* dout, int64_t n);
template <typename T> void add_forward(T* out, const T* a, const T* b, int64_t n);
template <typename T> void add_backward(T* da, T* db, const T* dout, int64_t n);

// Rows of x picked by index, and the reverse (the MLM head's masked positions):
//   out[m, :] = x[rows[m], :]                 out [M,C], x [N,C], rows [M] (distinct)
//   dx[rows[m], :] += dout[m, :]
template <typename T> void gather_rows(T* out, const T* x, const int* rows, int M, int C);
template <typename T> void gather_rows_backward(T* dx, const T* dout, const int* rows, int M, int C);

}  // namespace wr::cuda
