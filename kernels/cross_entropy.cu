// kernels/cross_entropy.cu: fused softmax cross-entropy on the GPU (declarations in
// cross_entropy.cuh, math in cross_entropy.h).
//
// One block per row of logits[M, V]. Pass 1 reads the row once and keeps, per thread, the
// online softmax state of the elements it saw (v = thread, thread + blockDim, ...): their max,
// the sum of exp(x - max) rescaled whenever the max grows, and the index of the first maximum.
// The states are combined over the warp (shuffles) and then over the warps in warp order, a
// fixed order. Pass 2, with backward, overwrites the row by dloss_scale * (softmax - onehot).
#include <algorithm>
#include <climits>
#include <cmath>

#include "kernels/cross_entropy.cuh"
#include "kernels/cross_entropy.h"

namespace wr::cuda {

namespace {

constexpr int kMaxThreads = 512;

// Softmax over a set of elements of a row: max, sum of exp(x - max), index of the first max.
// A plain struct (no constructor: it also lives in __shared__ memory); empty_state() is the
// empty set: max -inf, sum 0, no index.
struct SoftmaxState {
    float max;
    float sum;
    int arg;
};
__device__ __forceinline__ SoftmaxState empty_state() { return {-INFINITY, 0.0f, INT_MAX}; }

// The state of the union of two disjoint sets. Symmetric in a and b (the same bits either way),
// and the tie rule is the smaller index, so the result is the first maximum of the row.
__device__ __forceinline__ SoftmaxState combine(const SoftmaxState& a, const SoftmaxState& b) {
    SoftmaxState r;
    r.max = fmaxf(a.max, b.max);
    // a set with sum 0 is empty (max -inf): it adds nothing, and exp(-inf - -inf) would be NaN
    r.sum = (a.sum == 0.0f ? 0.0f : a.sum * expf(a.max - r.max)) + (b.sum == 0.0f ? 0.0f : b.sum * expf(b.max - r.max));
    r.arg = a.max > b.max || (a.max == b.max && a.arg < b.arg) ? a.arg : b.arg;
    return r;
}

// losses[m], correct[m], and with kBackward the row of logits replaced by its gradient.
template <bool kBackward, typename T>
__global__ void cross_entropy_kernel(T* logits, float* losses, int* correct, const int* targets, int V, float dloss_scale) {
    __shared__ SoftmaxState warp_states[32];
    const int m = blockIdx.x, lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    T* row = logits + (int64_t)m * V;
    const int y = targets[m];
    if (y == kIgnoreIndex) {  // the whole block returns here: loss 0, not correct, zero gradient
        if (threadIdx.x == 0) {
            losses[m] = 0.0f;
            if (correct) correct[m] = 0;
        }
        if constexpr (kBackward)
            for (int v = threadIdx.x; v < V; v += blockDim.x) row[v] = from_float<T>(0.0f);
        return;
    }
    // Read before the barrier below, so before any thread overwrites the row in pass 2.
    const float x_target = threadIdx.x == 0 ? to_float(row[y]) : 0.0f;

    // Pass 1: online max / sum of exp / first argmax of this thread's elements (v increasing).
    SoftmaxState s = empty_state();
#pragma unroll 4
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        const float x = to_float(row[v]);
        if (x > s.max) {
            s.sum = s.sum * expf(s.max - x) + 1.0f;  // rescale to the new max (first element: 0 * 0 + 1)
            s.max = x;
            s.arg = v;
        } else {
            s.sum += expf(x - s.max);
        }
    }
    for (int offset = 16; offset > 0; offset >>= 1) {
        SoftmaxState other;
        other.max = __shfl_xor_sync(0xffffffffu, s.max, offset);
        other.sum = __shfl_xor_sync(0xffffffffu, s.sum, offset);
        other.arg = __shfl_xor_sync(0xffffffffu, s.arg, offset);
        s = combine(s, other);
    }
    if (lane == 0) warp_states[warp] = s;
    __syncthreads();
    s = warp_states[0];
    for (int w = 1; w < warps; w++) s = combine(s, warp_states[w]);

    // losses = log(sum exp(x - max)) + max - x[y]
    if (threadIdx.x == 0) {
        losses[m] = logf(s.sum) + s.max - x_target;
        if (correct) correct[m] = s.arg == y;
    }
    // Pass 2: d loss / d x[v] = dloss_scale * (exp(x[v] - max) / sum - [v == y])
    if constexpr (kBackward) {
        const float scale_over_sum = dloss_scale / s.sum;
        for (int v = threadIdx.x; v < V; v += blockDim.x) {
            float g = expf(to_float(row[v]) - s.max) * scale_over_sum;
            if (v == y) g -= dloss_scale;
            row[v] = from_float<T>(g);
        }
    }
}

}  // namespace

template <typename T>
void cross_entropy_forward_backward(T* logits, float* losses, int* correct, const int* targets, int M, int V,
                                    float dloss_scale, bool backward) {
    if (M <= 0 || V <= 0) return;
    // A multiple of 32 (whole warps), no more threads than elements up to kMaxThreads.
    const int threads = std::min(kMaxThreads, (int)ceil_div(V, 32) * 32);
    if (backward)
        cross_entropy_kernel<true><<<M, threads, 0, stream()>>>(logits, losses, correct, targets, V, dloss_scale);
    else
        cross_entropy_kernel<false><<<M, threads, 0, stream()>>>(logits, losses, correct, targets, V, dloss_scale);
    WR_CUDA_CHECK_LAUNCH();
}

template void cross_entropy_forward_backward<float>(float*, float*, int*, const int*, int, int, float, bool);
template void cross_entropy_forward_backward<bf16>(bf16*, float*, int*, const int*, int, int, float, bool);

}  // namespace wr::cuda
