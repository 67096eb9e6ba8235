// kernels/cross_entropy.cu: the losses on the GPU (declarations in cross_entropy.cuh, math in
// cross_entropy.h): fused softmax cross-entropy, squared error, soft-target cross-entropy.
//
// Softmax cross-entropy: one block per row of logits[M, V]. Pass 1 reads the row once and keeps, per thread, the
// online softmax state of the elements it saw (v = thread, thread + blockDim, ...): their max,
// the sum of exp(x - max) rescaled whenever the max grows, and the index of the first maximum.
// The states are combined over the warp (shuffles) and then over the warps in warp order, a
// fixed order. Pass 2, with backward, overwrites the row by dloss_scale * (softmax - onehot).
#include <algorithm>
#include <climits>
#include <cmath>
#include <string>

#include "common/util.h"
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
// Row m is logits[m * ld, m * ld + V); the ld - V elements after it are padding (gradient 0).
template <bool kBackward, typename T>
__global__ void cross_entropy_kernel(T* logits, float* losses, int* correct, const int* targets, int V, int ld,
                                     float dloss_scale) {
    __shared__ SoftmaxState warp_states[32];
    const int m = blockIdx.x, lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    T* row = logits + (int64_t)m * ld;
    const int y = targets[m];
    if (y == kIgnoreIndex) {  // the whole block returns here: loss 0, not correct, zero gradient
        if (threadIdx.x == 0) {
            losses[m] = 0.0f;
            if (correct) correct[m] = 0;
        }
        if constexpr (kBackward)
            for (int v = threadIdx.x; v < ld; v += blockDim.x) row[v] = from_float<T>(0.0f);
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
        for (int v = V + threadIdx.x; v < ld; v += blockDim.x) row[v] = from_float<T>(0.0f);
    }
}

}  // namespace

template <typename T>
void cross_entropy_forward_backward(T* logits, float* losses, int* correct, const int* targets, int M, int V,
                                    float dloss_scale, bool backward, int ld) {
    if (M <= 0 || V <= 0) return;
    if (ld == 0) ld = V;
    if (ld < V) throw Error("cross_entropy_forward_backward (CUDA): row stride " + std::to_string(ld) + " is below V = " + std::to_string(V));
    // A multiple of 32 (whole warps), no more threads than elements up to kMaxThreads.
    const int threads = std::min(kMaxThreads, (int)ceil_div(V, 32) * 32);
    if (backward)
        cross_entropy_kernel<true><<<M, threads, 0, stream()>>>(logits, losses, correct, targets, V, ld, dloss_scale);
    else
        cross_entropy_kernel<false><<<M, threads, 0, stream()>>>(logits, losses, correct, targets, V, ld, dloss_scale);
    WR_CUDA_CHECK_LAUNCH();
}

template void cross_entropy_forward_backward<float>(float*, float*, int*, const int*, int, int, float, bool, int);
template void cross_entropy_forward_backward<bf16>(bf16*, float*, int*, const int*, int, int, float, bool, int);

// ---- Squared error of a regression head: element-wise, grid-stride. ----

namespace {

constexpr int kMseThreads = 256;

// losses[b] = (pred[b] - target[b])^2
template <typename T>
__global__ void mse_forward_kernel(float* losses, const T* pred, const float* target, int B) {
    for (int b = blockIdx.x * blockDim.x + threadIdx.x; b < B; b += gridDim.x * blockDim.x) {
        const float d = to_float(pred[b]) - target[b];
        losses[b] = d * d;
    }
}

// dpred[b] += weight * (2 (pred[b] - target[b]) / B), in the CPU's order of operations
template <typename T>
__global__ void mse_backward_kernel(T* dpred, const T* pred, const float* target, int B, float weight) {
    for (int b = blockIdx.x * blockDim.x + threadIdx.x; b < B; b += gridDim.x * blockDim.x) {
        const float d = 2.0f * (to_float(pred[b]) - target[b]) / (float)B;
        dpred[b] = from_float<T>(to_float(dpred[b]) + weight * d);
    }
}

unsigned mse_blocks(int B) { return std::min(ceil_div(B, kMseThreads), 1024u); }

}  // namespace

template <typename T>
void mse_forward(float* losses, const T* pred, const float* target, int B) {
    if (B <= 0) return;
    mse_forward_kernel<<<mse_blocks(B), kMseThreads, 0, stream()>>>(losses, pred, target, B);
    WR_CUDA_CHECK_LAUNCH();
}

template <typename T>
void mse_backward(T* dpred, const T* pred, const float* target, int B, float weight) {
    if (B <= 0 || !dpred) return;
    mse_backward_kernel<<<mse_blocks(B), kMseThreads, 0, stream()>>>(dpred, pred, target, B, weight);
    WR_CUDA_CHECK_LAUNCH();
}

template void mse_forward<float>(float*, const float*, const float*, int);
template void mse_forward<bf16>(float*, const bf16*, const float*, int);
template void mse_backward<float>(float*, const float*, const float*, int, float);
template void mse_backward<bf16>(bf16*, const bf16*, const float*, int, float);

// ---- Soft-target cross-entropy (distillation): one warp per row of K logits. ----
//
// Each lane takes the elements k = lane, lane + 32, ... of the row. Per row, for the student's
// logits z and the teacher's t alike: the first maximum (value and index), then
// log_sum = log sum_k exp((x_k - max) / tau), so that log softmax(x / tau)_k = (x_k - max) / tau - log_sum.
// Warp reductions are butterflies over the 32 lanes: a fixed order, the same bits on every run.

namespace {

constexpr int kSoftWarps = 8;  // rows per block of 256 threads

// The first maximum of a set of elements: the larger value, the smaller index on ties.
struct ArgMax {
    float value;
    int index;
};
__device__ __forceinline__ ArgMax first_max(const ArgMax& a, const ArgMax& b) {
    return a.value > b.value || (a.value == b.value && a.index < b.index) ? a : b;
}

// The log-softmax of a row at temperature tau, as its two numbers (and its argmax).
struct RowLogSoftmax {
    float max, log_sum;
    int arg;
    __device__ float at(float x, float tau) const { return (x - max) / tau - log_sum; }  // log softmax(x / tau)_k
};

template <typename X>
__device__ RowLogSoftmax row_log_softmax(const X* row, int K, float tau, int lane) {
    ArgMax best = {-INFINITY, INT_MAX};
    for (int k = lane; k < K; k += 32) {  // k increasing: a strict > keeps this lane's first maximum
        const float x = to_float(row[k]);
        if (x > best.value) best = {x, k};
    }
    for (int offset = 16; offset > 0; offset >>= 1) {
        ArgMax other;
        other.value = __shfl_xor_sync(0xffffffffu, best.value, offset);
        other.index = __shfl_xor_sync(0xffffffffu, best.index, offset);
        best = first_max(best, other);
    }
    float sum = 0.0f;
    for (int k = lane; k < K; k += 32) sum += expf((to_float(row[k]) - best.value) / tau);
    sum = warp_sum(sum);
    return {best.value, logf(sum), best.index};
}

// losses[m] = -tau^2 sum_k p_k log q_k;  agree[m] = argmax z == argmax t
template <typename T>
__global__ void soft_cross_entropy_forward_kernel(float* losses, int* agree, const T* logits, const float* teacher, int M, int K,
                                                  float tau) {
    const int m = blockIdx.x * kSoftWarps + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (m >= M) return;  // the whole warp: every lane of a row takes part in the shuffles
    const T* z = logits + (int64_t)m * K;
    const float* t = teacher + (int64_t)m * K;
    const RowLogSoftmax q = row_log_softmax(z, K, tau, lane), p = row_log_softmax(t, K, tau, lane);
    float cross = 0.0f;
    for (int k = lane; k < K; k += 32) cross += expf(p.at(t[k], tau)) * q.at(to_float(z[k]), tau);
    cross = warp_sum(cross);
    if (lane == 0) {
        losses[m] = -tau * tau * cross;
        if (agree) agree[m] = q.arg == p.arg;
    }
}

// dlogits[m, k] += dloss_scale * tau * (q_k - p_k)
template <typename T>
__global__ void soft_cross_entropy_backward_kernel(T* dlogits, const T* logits, const float* teacher, int M, int K, float tau,
                                                   float dloss_scale) {
    const int m = blockIdx.x * kSoftWarps + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (m >= M) return;
    const T* z = logits + (int64_t)m * K;
    const float* t = teacher + (int64_t)m * K;
    T* dz = dlogits + (int64_t)m * K;
    const RowLogSoftmax q = row_log_softmax(z, K, tau, lane), p = row_log_softmax(t, K, tau, lane);
    const float scale = dloss_scale * tau;
    for (int k = lane; k < K; k += 32) {
        const float g = scale * (expf(q.at(to_float(z[k]), tau)) - expf(p.at(t[k], tau)));
        dz[k] = from_float<T>(to_float(dz[k]) + g);
    }
}

}  // namespace

template <typename T>
void soft_cross_entropy_forward(float* losses, const T* logits, const float* teacher_logits, int M, int K, float tau, int* agree) {
    if (M <= 0 || K <= 0) return;
    soft_cross_entropy_forward_kernel<<<ceil_div(M, kSoftWarps), kSoftWarps * 32, 0, stream()>>>(losses, agree, logits,
                                                                                                  teacher_logits, M, K, tau);
    WR_CUDA_CHECK_LAUNCH();
}

template <typename T>
void soft_cross_entropy_backward(T* dlogits, const T* logits, const float* teacher_logits, int M, int K, float tau,
                                 float dloss_scale) {
    if (M <= 0 || K <= 0 || !dlogits) return;
    soft_cross_entropy_backward_kernel<<<ceil_div(M, kSoftWarps), kSoftWarps * 32, 0, stream()>>>(dlogits, logits, teacher_logits,
                                                                                                   M, K, tau, dloss_scale);
    WR_CUDA_CHECK_LAUNCH();
}

template void soft_cross_entropy_forward<float>(float*, const float*, const float*, int, int, float, int*);
template void soft_cross_entropy_forward<bf16>(float*, const bf16*, const float*, int, int, float, int*);
template void soft_cross_entropy_backward<float>(float*, const float*, const float*, int, int, float, float);
template void soft_cross_entropy_backward<bf16>(bf16*, const bf16*, const float*, int, int, float, float);

}  // namespace wr::cuda
