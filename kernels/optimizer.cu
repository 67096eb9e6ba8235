// kernels/optimizer.cu: the optimizer step on the GPU (interface: optimizer.cuh; the math and the
// CPU version: optimizer.h / optimizer.cpp, which this file mirrors). Two passes over the flat
// fp32 buffers: the gradient norm (a deterministic two-kernel reduction), then one kernel that
// clips, runs AdamW and writes the bf16 copy. The norm never leaves the device: the AdamW kernel
// reads it there.
#include "kernels/optimizer.cuh"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/util.h"

namespace wr::cuda {
namespace {

constexpr int kThreads = 256;

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

// ---- AdamW, with clipping and the bf16 copy ----

// The per-step scalars, computed on the host in double and rounded to float once (as the CPU).
struct AdamWScalars {
    float one_minus_beta1, beta2, one_minus_beta2;
    float neg_step_size;          // -lr / (1 - beta1^t)
    float bias_correction2_sqrt;  // sqrt(1 - beta2^t)
    float eps;
};

// The spans of one launch, passed by value (kernel parameters): span k is [begin[k], end[k])
// with decay factor keep[k], worked on by blocks first_block[k] .. first_block[k + 1] - 1.
constexpr int kMaxSpans = 64;
struct SpanTable {
    int count;
    int64_t begin[kMaxSpans], end[kMaxSpans];
    float keep[kMaxSpans];
    unsigned first_block[kMaxSpans + 1];
};

// The AdamW update of every span's elements; parameters first multiplied by the span's `keep`
// (1 - lr * wd where it decays, else 1). The element math is the CPU's adamw_span, expression for
// expression, on the clipped gradient (both compilers may fuse a multiply and an add into one
// FMA, so the two agree to about an ulp, not bit for bit). Each block finds its span in the
// table (a few comparisons) and grid-strides over it with the span's blocks. Does nothing when
// `norm` is given and not finite.
__global__ void adamw_kernel(float* params, bf16* params_bf16, const float* grads, float* m, float* v, SpanTable t,
                             AdamWScalars s, const float* norm, double max_norm) {
    float clip = 1.0f;  // clip_grad_norm's factor: max_norm / (norm + 1e-6) in double, rounded to float
    if (norm != nullptr) {
        const double total_norm = norm[0];
        if (!isfinite(total_norm)) return;
        const double scale = max_norm / (total_norm + 1e-6);
        if (max_norm > 0.0 && scale < 1.0) clip = (float)scale;
    }
    int k = 0;
    while (k + 1 < t.count && blockIdx.x >= t.first_block[k + 1]) k++;
    const int64_t stride = (int64_t)(t.first_block[k + 1] - t.first_block[k]) * kThreads;
    const float keep = t.keep[k];
    for (int64_t i = t.begin[k] + (int64_t)(blockIdx.x - t.first_block[k]) * kThreads + threadIdx.x; i < t.end[k]; i += stride) {
        const float g = grads[i] * clip;  // the CPU's grads[i] *= (float)scale (times 1: unchanged)
        const float p = params[i] * keep;
        const float m_new = m[i] + s.one_minus_beta1 * (g - m[i]);
        const float v_new = v[i] * s.beta2 + s.one_minus_beta2 * g * g;
        const float denom = sqrtf(v_new) / s.bias_correction2_sqrt + s.eps;
        const float p_new = p + s.neg_step_size * m_new / denom;
        params[i] = p_new;
        m[i] = m_new;
        v[i] = v_new;
        if (params_bf16) params_bf16[i] = __float2bfloat16_rn(p_new);
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

void adamw_update(float* params, bf16* params_bf16, const float* grads, float* m, float* v, const UpdateSpans& spans,
                  const AdamWConfig& c, int64_t step, const float* norm, double max_norm) {
    if (step < 1) throw Error("cuda::adamw_update: step is " + std::to_string(step) + ", it counts from 1");
    if ((int)spans.size() > kMaxSpans)
        throw Error("cuda::adamw_update: " + std::to_string(spans.size()) + " spans, more than the " + std::to_string(kMaxSpans) +
                    " one launch takes");
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

    SpanTable t{};
    unsigned blocks = 0;
    int64_t previous_end = 0;
    for (const UpdateSpan& span : spans) {
        if (span.begin < previous_end || span.end < span.begin)
            throw Error("cuda::adamw_update: span [" + std::to_string(span.begin) + ", " + std::to_string(span.end) +
                        ") is out of order, overlaps the previous one or is reversed");
        previous_end = span.end;
        if (span.end == span.begin) continue;
        t.begin[t.count] = span.begin, t.end[t.count] = span.end;
        t.keep[t.count] = span.decay ? decay_keep : 1.0f;
        t.first_block[t.count] = blocks;
        blocks += std::min<unsigned>(ceil_div(span.end - span.begin, kThreads), 65535u);  // more elements: grid-stride
        t.count++;
    }
    t.first_block[t.count] = blocks;
    if (blocks == 0) return;
    adamw_kernel<<<blocks, kThreads, 0, stream()>>>(params, params_bf16, grads, m, v, t, s, norm, max_norm);
    WR_CUDA_CHECK_LAUNCH();
}

}  // namespace wr::cuda
