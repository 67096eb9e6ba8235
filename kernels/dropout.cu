// kernels/dropout.cu: inverted dropout on the GPU (declarations in dropout.cuh). The mask is
// kernels/dropout.h's, element i kept iff dropout_keep(dropout_key(seed), i, p), the same
// __host__ __device__ functions the CPU calls, so both drop the same elements.
#include <algorithm>
#include <cstdint>

#include "kernels/dropout.cuh"
#include "kernels/dropout.h"

namespace wr::cuda {

namespace {

constexpr int kThreads = 256;
constexpr unsigned kMaxBlocks = 4096;  // grid-stride: a few waves of a full H100, then loop

// out[i] = keep(i) ? in[i] * scale : 0, or out[i] += that (kAccumulate), i in [0, n), grid-stride.
// The product is rounded before the add (__fmul_rn: no fused multiply-add), as on the CPU.
// out may equal in.
template <bool kAccumulate, typename T>
__global__ void dropout_kernel(T* out, const T* in, int64_t n, float p, uint64_t key, float scale) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const float v = dropout_keep(key, (uint64_t)i, p) ? __fmul_rn(to_float(in[i]), scale) : 0.0f;
        out[i] = from_float<T>(kAccumulate ? to_float(out[i]) + v : v);
    }
}

template <bool kAccumulate, typename T>
void launch_dropout(T* out, const T* in, int64_t n, float p, uint64_t seed) {
    if (n <= 0) return;
    // p <= 0 keeps everything (u >= 0 >= p) with scale 1: a copy, or a plain accumulation.
    const float scale = p <= 0.0f ? 1.0f : dropout_scale(p);
    const unsigned blocks = std::min(ceil_div(n, kThreads), kMaxBlocks);
    dropout_kernel<kAccumulate><<<blocks, kThreads, 0, stream()>>>(out, in, n, p, dropout_key(seed), scale);
    WR_CUDA_CHECK_LAUNCH();
}

}  // namespace

template <typename T> void dropout_forward(T* out, const T* inp, int64_t n, float p, uint64_t seed) {
    if (p <= 0.0f) {  // an exact copy, no hashing
        if (out != inp && n > 0)
            WR_CUDA_CHECK(cudaMemcpyAsync(out, inp, sizeof(T) * (size_t)n, cudaMemcpyDeviceToDevice, stream()));
        return;
    }
    launch_dropout<false>(out, inp, n, p, seed);
}

template <typename T> void dropout_backward(T* dinp, const T* dout, int64_t n, float p, uint64_t seed) {
    if (dinp) launch_dropout<true>(dinp, dout, n, p, seed);
}

template void dropout_forward<float>(float*, const float*, int64_t, float, uint64_t);
template void dropout_forward<bf16>(bf16*, const bf16*, int64_t, float, uint64_t);
template void dropout_backward<float>(float*, const float*, int64_t, float, uint64_t);
template void dropout_backward<bf16>(bf16*, const bf16*, int64_t, float, uint64_t);

}  // namespace wr::cuda
