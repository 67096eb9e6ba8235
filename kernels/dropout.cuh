// kernels/dropout.cuh: dropout on the GPU, with the mask rule of kernels/dropout.h bit for bit
// (the same seed drops the same elements as the CPU).
#pragma once
#include "kernels/cuda_common.cuh"

namespace wr::cuda {

template <typename T> void dropout_forward(T* out, const T* inp, int64_t n, float p, uint64_t seed);
template <typename T> void dropout_backward(T* dinp, const T* dout, int64_t n, float p, uint64_t seed);

}  // namespace wr::cuda
