// kernels/optimizer.cu: the optimizer step on the GPU (interface: optimizer.cuh; the math and the
// CPU version: optimizer.h / optimizer.cpp, which this file mirrors). Three element-wise passes
// over the flat fp32 buffers: the gradient norm (a deterministic two-kernel reduction), clipping,
// and AdamW. The norm never leaves the device: clipping and AdamW read it there.
#include "kernels/optimizer.cuh"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/util.h"

namespace wr::cuda {
namespace {

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n elements.
unsigned elementwise_blocks(int64_t n) { return std::min<unsigned>(ceil_div(n, kThreads), 65535u * 8u); }

// ---- global gradient norm ----

__device__ __forceinline__ double warp_sum_double(double v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

// chunk_sums[c] = sum of g^2 over chunk c (kNormChunk elements, the CPU's chunks), in double.
// One block per chunk: thread t sums elements t, t + 256, ... of the chunk in order, each warp
// adds its 32 sums in a fixed butterfly, thread 0 adds the warp sums in warp order.
__global__ void norm_chunks_kernel(double* chunk_sums, const float* grads, int64_t n) {
    __shared__ double warp_sums[kThreads / 32];
    const int64_t begin = blockIdx.x * kNormChunk, end = min(n, begin + kNormChunk);
    double s = 0.0;
    for (int64_t i = begin + threadIdx.x; i < end; i += kThreads) {
        const double g = grads[i];
        s += g * g;
    }
    s = warp_sum_double(s);
    if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = s;
    __syncthreads();
    if (threadIdx.x == 0) {
        double total = 0.0;
        for (int w = 0; w < kThreads / 32; w++) total += warp_sums[w];
        chunk_sums[blockIdx.x] = total;
    }
}

// norm[0] = sqrt(sum of the chunk sums, added in chunk order), rounded to float. One block: it
// stages 256 chunk sums at a time in shared memory (one coalesced load), thread 0 adds them in
// order (a single thread reading global memory one sum at a time would wait on every load).
__global__ void norm_total_kernel(float* norm, const double* chunk_sums, int64_t chunks) {
    __shared__ double tile[kThreads];
    double total = 0.0;  // meaningful in thread 0
    for (int64_t base = 0; base < chunks; base += kThreads) {
        const int count = (int)min((int64_t)kThreads, chunks - base);
        if (threadIdx.x < count) tile[threadIdx.x] = chunk_sums[base + threadIdx.x];
        __syncthreads();
        if (threadIdx.x == 0)
            for (int i = 0; i < count; i++) total += tile[i];
        __syncthreads();  // the tile is read before it is refilled
    }
    if (threadIdx.x == 0) norm[0] = (float)sqrt(total);
}

// ---- clipping ----

// grads *= (float)(max_norm / (norm + 1e-6)) when that is < 1 and the norm is finite.
__global__ void clip_kernel(float* grads, int64_t n, const float* norm, double max_norm) {
    const double total_norm = norm[0];
    const double scale = max_norm / (total_norm + 1e-6);
    if (!isfinite(total_norm) || !(scale < 1.0)) return;
    const float s = (float)scale;
    for (int64_t i = blockIdx.x * (int64_t)kThreads + threadIdx.x; i < n; i += (int64_t)gridDim.x * kThreads)
        grads[i] *= s;
}

// ---- AdamW ----

// The per-step scalars, computed on the host in double and rounded to float once (as the CPU).
struct AdamWScalars {
    float one_minus_beta1, beta2, one_minus_beta2;
    float neg_step_size;          // -lr / (1 - beta1^t)
    float bias_correction2_sqrt;  // sqrt(1 - beta2^t)
    float eps;
};

// The AdamW update of elements [begin, end), parameters first multiplied by `keep` (1 - lr * wd
// where they decay, else 1). The element math is the CPU's adamw_span, expression for expression
// (both compilers may fuse a multiply and an add into one FMA, so the two agree to about an ulp,
// not bit for bit). Does nothing when `norm` is given and not finite.
__global__ void adamw_kernel(float* params, const float* grads, float* m, float* v, int64_t begin, int64_t end,
                             float keep, AdamWScalars s, const float* norm) {
    if (norm != nullptr && !isfinite(norm[0])) return;
    for (int64_t i = begin + blockIdx.x * (int64_t)kThreads + threadIdx.x; i < end; i += (int64_t)gridDim.x * kThreads) {
        const float g = grads[i];
        const float p = params[i] * keep;
        const float m_new = m[i] + s.one_minus_beta1 * (g - m[i]);
        const float v_new = v[i] * s.beta2 + s.one_minus_beta2 * g * g;
        const float denom = sqrtf(v_new) / s.bias_correction2_sqrt + s.eps;
        params[i] = p + s.neg_step_size * m_new / denom;
        m[i] = m_new;
        v[i] = v_new;
    }
}

// The CPU's check of the decay ranges: sorted, not overlapping, inside [0, n).
void check_decay_ranges(const DecayRanges& ranges, int64_t n) {
    int64_t previous_end = 0;
    for (size_t i = 0; i < ranges.size(); i++) {
        const ParamRange& r = ranges[i];
        if (r.begin < previous_end || r.end < r.begin || r.end > n)
            throw Error("cuda::adamw_update: decay range " + std::to_string(i) + " [" + std::to_string(r.begin) + ", " +
                        std::to_string(r.end) + ") is out of order, overlaps the previous one or leaves [0, " +
                        std::to_string(n) + ")");
        previous_end = r.end;
    }
}

}  // namespace

void global_grad_norm(float* norm, const float* grads, int64_t n) {
    if (n <= 0) {
        WR_CUDA_CHECK(cudaMemsetAsync(norm, 0, sizeof(float), stream()));
        return;
    }
    const int64_t chunks = (n + kNormChunk - 1) / kNormChunk;
    double* chunk_sums = static_cast<double*>(scratch(sizeof(double) * (size_t)chunks));
    norm_chunks_kernel<<<(unsigned)chunks, kThreads, 0, stream()>>>(chunk_sums, grads, n);
    WR_CUDA_CHECK_LAUNCH();
    norm_total_kernel<<<1, kThreads, 0, stream()>>>(norm, chunk_sums, chunks);
    WR_CUDA_CHECK_LAUNCH();
}

void clip_grad_norm(float* grads, int64_t n, const float* norm, double max_norm) {
    if (n <= 0) return;
    clip_kernel<<<elementwise_blocks(n), kThreads, 0, stream()>>>(grads, n, norm, max_norm);
    WR_CUDA_CHECK_LAUNCH();
}

void adamw_update(float* params, const float* grads, float* m, float* v, int64_t n, const DecayRanges& decay_ranges,
                  const AdamWConfig& c, int64_t step, const float* norm) {
    if (step < 1) throw Error("cuda::adamw_update: step is " + std::to_string(step) + ", it counts from 1");
    check_decay_ranges(decay_ranges, n);
    const double bias_correction1 = 1.0 - std::pow(c.beta1, (double)step);
    const double bias_correction2 = 1.0 - std::pow(c.beta2, (double)step);
    AdamWScalars s;
    s.one_minus_beta1 = (float)(1.0 - c.beta1);
    s.beta2 = (float)c.beta2;
    s.one_minus_beta2 = (float)(1.0 - c.beta2);
    s.neg_step_size = (float)(-(c.lr / bias_correction1));
    s.bias_correction2_sqrt = (float)std::sqrt(bias_correction2);
    s.eps = (float)c.eps;
    const float decay_keep = (float)(1.0 - c.lr * c.weight_decay);

    auto span = [&](int64_t begin, int64_t end, float keep) {
        if (end <= begin) return;
        adamw_kernel<<<elementwise_blocks(end - begin), kThreads, 0, stream()>>>(params, grads, m, v, begin, end, keep,
                                                                                 s, norm);
        WR_CUDA_CHECK_LAUNCH();
    };
    // The buffer alternates: a gap that does not decay, a range that does, ..., a final gap.
    int64_t at = 0;
    for (const ParamRange& r : decay_ranges) {
        span(at, r.begin, 1.0f);
        span(r.begin, r.end, decay_keep);
        at = r.end;
    }
    span(at, n, 1.0f);
}

}  // namespace wr::cuda
