// kernels/activations.cu: the element-wise ops on the GPU (GELU, tanh, the residual add) and the
// row gather of the MLM head; declarations in activations.cuh, math in activations.h.
//
// Every element-wise op is one functor run by one grid-stride kernel: each thread reads 16 bytes
// of every operand at a time (4 floats or 8 bf16) when all pointers are 16-byte aligned, else
// one element at a time. Arithmetic is float; T is rounded once, when stored.
#include <algorithm>
#include <cstdint>

#include "kernels/activations.cuh"

namespace wr::cuda {

namespace {

constexpr int kThreads = 256;
constexpr unsigned kMaxBlocks = 4096;  // grid-stride: a few waves of a full H100, then loop

constexpr float kInvSqrt2 = 0.70710678118654752440f;    // 1 / sqrt(2)
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;  // 1 / sqrt(2 pi)


// ---- The element-wise ops: f(a, b) in float. kInputs: whether b is read. kAccumulate: out += f
// instead of out = f. ----

struct GeluForward {  // out = x Phi(x)
    static constexpr int kInputs = 1;
    static constexpr bool kAccumulate = false;
    __device__ float operator()(float x, float) const { return 0.5f * x * (1.0f + erff(x * kInvSqrt2)); }
};
struct GeluBackward {  // dinp += dout (Phi(x) + x phi(x));  a = inp, b = dout
    static constexpr int kInputs = 2;
    static constexpr bool kAccumulate = true;
    __device__ float operator()(float x, float dout) const {
        const float cdf = 0.5f * (1.0f + erff(x * kInvSqrt2));
        const float pdf = kInvSqrt2Pi * expf(-0.5f * x * x);
        return dout * (cdf + x * pdf);
    }
};
struct TanhForward {  // out = tanh(x)
    static constexpr int kInputs = 1;
    static constexpr bool kAccumulate = false;
    __device__ float operator()(float x, float) const { return tanhf(x); }
};
struct TanhBackward {  // dinp += dout (1 - y^2);  a = y (the forward's output), b = dout
    static constexpr int kInputs = 2;
    static constexpr bool kAccumulate = true;
    __device__ float operator()(float y, float dout) const { return dout * (1.0f - y * y); }
};
struct Add {  // out = a + b
    static constexpr int kInputs = 2;
    static constexpr bool kAccumulate = false;
    __device__ float operator()(float a, float b) const { return a + b; }
};
struct AddTo {  // out += a
    static constexpr int kInputs = 1;
    static constexpr bool kAccumulate = true;
    __device__ float operator()(float a, float) const { return a; }
};

// One element: out = op(a, b), or out += op(a, b).
template <typename Op, typename T>
__device__ __forceinline__ void apply(const Op& op, T& out, T a, T b) {
    const float v = op(to_float(a), to_float(b));
    if constexpr (Op::kAccumulate) out = from_float<T>(to_float(out) + v);
    else out = from_float<T>(v);
}

// out[n] (+)= op(a[n], b[n]): packs of K elements grid-stride, then the last n % K elements.
// b is not read when Op::kInputs == 1 (it may be null).
template <typename Op, int K, typename T>
__global__ void elementwise_kernel(Op op, T* out, const T* a, const T* b, int64_t n) {
    using P = Pack<T, K>;
    const int64_t tid = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t j = tid; j < n / K; j += stride) {
        const P pa = reinterpret_cast<const P*>(a)[j];
        P pb = pa;
        if constexpr (Op::kInputs == 2) pb = reinterpret_cast<const P*>(b)[j];
        P po;
        if constexpr (Op::kAccumulate) po = reinterpret_cast<const P*>(out)[j];
#pragma unroll
        for (int k = 0; k < K; k++) apply(op, po.v[k], pa.v[k], pb.v[k]);
        reinterpret_cast<P*>(out)[j] = po;
    }
    for (int64_t i = n / K * K + tid; i < n; i += stride) apply(op, out[i], a[i], Op::kInputs == 2 ? b[i] : a[i]);
}

template <typename Op, typename T>
void launch_elementwise(Op op, T* out, const T* a, const T* b, int64_t n) {
    if (n <= 0) return;
    constexpr int K = 16 / sizeof(T);
    const bool vectorize = all_aligned16({out, a, Op::kInputs == 2 ? b : nullptr});
    const int64_t work = vectorize ? (n + K - 1) / K : n;  // threads wanted: one per pack
    const unsigned blocks = std::min(ceil_div(work, kThreads), kMaxBlocks);
    if (vectorize) elementwise_kernel<Op, K><<<blocks, kThreads, 0, stream()>>>(op, out, a, b, n);
    else elementwise_kernel<Op, 1><<<blocks, kThreads, 0, stream()>>>(op, out, a, b, n);
    WR_CUDA_CHECK_LAUNCH();
}

// Row copy with optional indirection, one warp per row m in [0, M):
//   dst[dst_rows[m], :] (+)= src[src_rows[m], :]    (a null index array means row m itself)
// gather_rows reads through src_rows; its backward scatter-adds through dst_rows. The rows are
// distinct, so no two warps write the same row.
template <bool kAccumulate, typename T>
__global__ void copy_rows_kernel(T* dst, const int* dst_rows, const T* src, const int* src_rows, int M, int C) {
    const int m = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (m >= M) return;
    T* d = dst + (int64_t)(dst_rows ? dst_rows[m] : m) * C;
    const T* s = src + (int64_t)(src_rows ? src_rows[m] : m) * C;
    for (int c = lane; c < C; c += 32) {
        const float v = to_float(s[c]);
        d[c] = from_float<T>(kAccumulate ? to_float(d[c]) + v : v);
    }
}

template <bool kAccumulate, typename T>
void launch_copy_rows(T* dst, const int* dst_rows, const T* src, const int* src_rows, int M, int C) {
    if (M <= 0 || C <= 0) return;
    constexpr int kWarps = kThreads / 32;
    copy_rows_kernel<kAccumulate><<<ceil_div(M, kWarps), kThreads, 0, stream()>>>(dst, dst_rows, src, src_rows, M, C);
    WR_CUDA_CHECK_LAUNCH();
}

}  // namespace

template <typename T> void gelu_forward(T* out, const T* inp, int64_t n) {
    launch_elementwise(GeluForward{}, out, inp, (const T*)nullptr, n);
}
template <typename T> void gelu_backward(T* dinp, const T* inp, const T* dout, int64_t n) {
    if (dinp) launch_elementwise(GeluBackward{}, dinp, inp, dout, n);
}
template <typename T> void tanh_forward(T* out, const T* inp, int64_t n) {
    launch_elementwise(TanhForward{}, out, inp, (const T*)nullptr, n);
}
template <typename T> void tanh_backward(T* dinp, const T* out, const T* dout, int64_t n) {
    if (dinp) launch_elementwise(TanhBackward{}, dinp, out, dout, n);
}
template <typename T> void add_forward(T* out, const T* a, const T* b, int64_t n) {
    launch_elementwise(Add{}, out, a, b, n);
}
template <typename T> void add_backward(T* da, T* db, const T* dout, int64_t n) {
    if (da) launch_elementwise(AddTo{}, da, dout, (const T*)nullptr, n);
    if (db) launch_elementwise(AddTo{}, db, dout, (const T*)nullptr, n);
}

template <typename T> void gather_rows(T* out, const T* x, const int* rows, int M, int C) {
    launch_copy_rows<false>(out, (const int*)nullptr, x, rows, M, C);
}
template <typename T> void gather_rows_backward(T* dx, const T* dout, const int* rows, int M, int C) {
    if (dx) launch_copy_rows<true>(dx, rows, dout, (const int*)nullptr, M, C);
}

#define WR_INSTANTIATE(T)                                                                 \
    template void gelu_forward<T>(T*, const T*, int64_t);                                 \
    template void gelu_backward<T>(T*, const T*, const T*, int64_t);                      \
    template void tanh_forward<T>(T*, const T*, int64_t);                                 \
    template void tanh_backward<T>(T*, const T*, const T*, int64_t);                      \
    template void add_forward<T>(T*, const T*, const T*, int64_t);                        \
    template void add_backward<T>(T*, T*, const T*, int64_t);                             \
    template void gather_rows<T>(T*, const T*, const int*, int, int);                     \
    template void gather_rows_backward<T>(T*, const T*, const int*, int, int);
WR_INSTANTIATE(float)
WR_INSTANTIATE(bf16)
#undef WR_INSTANTIATE

}  // namespace wr::cuda
