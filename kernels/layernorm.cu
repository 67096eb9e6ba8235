// kernels/layernorm.cu: LayerNorm and the fused residual + dropout + LayerNorm on the GPU
// (declarations in layernorm.cuh, math in layernorm.h).
//
// One warp per row: lane l handles the packs of K channels c = l K, (l + 32) K, ... of its row,
// where a pack is 16 bytes (4 floats or 8 bf16) when C is a multiple of K and every pointer is
// 16-byte aligned, else one element (K = 1). A row is read more than once; after the first pass
// it is in L1. The residual form is the plain one with the first read replaced by
// res = a + dropout(b), which is stored (rounded to T) and then normalized as stored, so the
// backward pass, which reads res, sees what the forward normalized.
//
// The parameter gradients are column sums over rows: each warp sums its rows into its own
// columns in shared memory, the warps of a block are added in warp order into a per-block
// partial in scratch(), and column_sums_kernel adds the blocks in block order. Fixed order
// throughout, no atomics. In shared memory, channel c lies at column_slot<K>(c),
// so that the 32 lanes, each adding element k of its own pack, touch 32 consecutive floats
// (no bank conflicts).
#include <algorithm>
#include <cstdint>
#include <initializer_list>

#include "kernels/dropout.h"
#include "kernels/layernorm.cuh"

namespace wr::cuda {

namespace {

constexpr int kForwardWarps = 8;   // rows per block in the forward pass
constexpr int kBackwardWarps = 4;  // warps per block in the backward pass (each has 2C floats of shared memory)

// dropout(v) for flat element index i, as kernels/dropout.h: keep ? v * scale : 0, the product
// rounded before any add (__fmul_rn), as the CPU's separate dropout op does; p <= 0 is v itself.
__device__ __forceinline__ float dropout_value(float v, uint64_t key, int64_t i, float p, float scale) {
    if (p <= 0.0f) return v;
    return dropout_keep(key, (uint64_t)i, p) ? __fmul_rn(v, scale) : 0.0f;
}

// Forward, one warp per row of [N, C]:
//   (kResidual) res = a + dropout(b), stored;  x = res   (else x = inp)
//   mean = sum(x) / C;  rstd = 1 / sqrt(sum((x - mean)^2) / C + eps)   (two passes, as the CPU)
//   out = (x - mean) * rstd * weight + bias
// `inp` is a in the residual form. No __restrict__: res is written and read back by the same lane.
template <int K, bool kResidual, typename T>
__global__ void layernorm_forward_kernel(T* out, float* mean, float* rstd, T* res, const T* inp, const T* b,
                                         const T* weight, const T* bias, int N, int C, float eps, float p,
                                         uint64_t key, float scale) {
    const int row = blockIdx.x * kForwardWarps + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N) return;
    const int64_t base = (int64_t)row * C;
    const T* x = (kResidual ? res : inp) + base;

    float sum = 0.0f;
    for (int c = lane * K; c < C; c += 32 * K) {
        Pack<T, K> v;
        if constexpr (kResidual) {
            const Pack<T, K> va = load_pack<K>(inp + base + c), vb = load_pack<K>(b + base + c);
#pragma unroll
            for (int k = 0; k < K; k++)
                v.v[k] = from_float<T>(to_float(va.v[k]) + dropout_value(to_float(vb.v[k]), key, base + c + k, p, scale));
            store_pack<K>(res + base + c, v);
        } else {
            v = load_pack<K>(x + c);
        }
#pragma unroll
        for (int k = 0; k < K; k++) sum += to_float(v.v[k]);
    }
    const float m = warp_sum(sum) / C;

    float sq = 0.0f;
    for (int c = lane * K; c < C; c += 32 * K) {
        const Pack<T, K> v = load_pack<K>(x + c);
#pragma unroll
        for (int k = 0; k < K; k++) sq += (to_float(v.v[k]) - m) * (to_float(v.v[k]) - m);
    }
    const float s = 1.0f / sqrtf(warp_sum(sq) / C + eps);

    for (int c = lane * K; c < C; c += 32 * K) {
        const Pack<T, K> v = load_pack<K>(x + c), w = load_pack<K>(weight + c), bb = load_pack<K>(bias + c);
        Pack<T, K> o;
#pragma unroll
        for (int k = 0; k < K; k++) o.v[k] = from_float<T>((to_float(v.v[k]) - m) * s * to_float(w.v[k]) + to_float(bb.v[k]));
        store_pack<K>(out + base + c, o);
    }
    if (lane == 0) {
        if (mean) mean[row] = m;
        if (rstd) rstd[row] = s;
    }
}

template <bool kResidual, typename T>
void launch_layernorm_forward(T* out, float* mean, float* rstd, T* res, const T* inp, const T* b, const T* weight,
                              const T* bias, int N, int C, float eps, float p, uint64_t seed) {
    if (N <= 0 || C <= 0) return;
    constexpr int K = 16 / sizeof(T);
    const bool vectorize = C % K == 0 && all_aligned16({out, res, inp, b, weight, bias});
    const unsigned blocks = ceil_div(N, kForwardWarps);
    const uint64_t key = dropout_key(seed);
    const float scale = dropout_scale(p);
    if (vectorize)
        layernorm_forward_kernel<K, kResidual><<<blocks, kForwardWarps * 32, 0, stream()>>>(
            out, mean, rstd, res, inp, b, weight, bias, N, C, eps, p, key, scale);
    else
        layernorm_forward_kernel<1, kResidual><<<blocks, kForwardWarps * 32, 0, stream()>>>(
            out, mean, rstd, res, inp, b, weight, bias, N, C, eps, p, key, scale);
    WR_CUDA_CHECK_LAUNCH();
}

// Where channel c sits in a warp's shared-memory columns: channel c = j 32K + l K + k (round j,
// lane l, element k of the pack) at (j K + k) 32 + l. A permutation of [0, round_up(C, 32K)).
template <int K> __device__ __forceinline__ int column_slot(int c) {
    const int j = c / (32 * K), l = c % (32 * K) / K, k = c % K;
    return (j * K + k) * 32 + l;
}
__host__ __device__ inline int padded_columns(int C, int K) { return (C + 32 * K - 1) / (32 * K) * (32 * K); }

// Backward. Block g handles rows [g R, min(N, (g + 1) R)) (R = rows_per_block), its warp w the rows
// g R + w, g R + w + kBackwardWarps, ... in increasing order. Per row, with xhat = (x - mean) rstd
// and g = dout * weight:
//   pass 1: the row sums of g and g xhat; when partials is given, dout xhat and dout added to the
//           warp's columns dweight, dbias in shared memory
//   pass 2: d = rstd (g - mean(g) - xhat mean(g xhat));  da += d;  db += dropout(d)  (either may be null)
// At the end, partials[g] ([2, C]: dweight, dbias) = the block's warps' columns added in warp order.
template <int K, typename T>
__global__ void layernorm_backward_kernel(T* da, T* db, float* partials, const T* dout, const T* x, const T* weight,
                                          const float* mean, const float* rstd, int N, int C, int rows_per_block,
                                          float p, uint64_t key, float scale) {
    // [kBackwardWarps][2][Cp] when partials is given: each warp's dweight and dbias columns, in
    // column_slot order, Cp = C rounded up to a multiple of 32 K
    extern __shared__ float columns[];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, Cp = padded_columns(C, K);
    float* dw_col = columns + (size_t)warp * 2 * Cp;
    float* db_col = dw_col + Cp;
    if (partials) {
        for (int i = threadIdx.x; i < kBackwardWarps * 2 * Cp; i += blockDim.x) columns[i] = 0.0f;
        __syncthreads();
    }

    const int row_begin = (int)blockIdx.x * rows_per_block, row_end = min(N, row_begin + rows_per_block);
    for (int row = row_begin + warp; row < row_end; row += kBackwardWarps) {
        const int64_t base = (int64_t)row * C;
        const float m = mean[row], s = rstd[row];
        float g_sum = 0.0f, gx_sum = 0.0f;
        for (int c = lane * K; c < C; c += 32 * K) {
            const Pack<T, K> dy = load_pack<K>(dout + base + c), xv = load_pack<K>(x + base + c), w = load_pack<K>(weight + c);
#pragma unroll
            for (int k = 0; k < K; k++) {
                const float d = to_float(dy.v[k]), xhat = (to_float(xv.v[k]) - m) * s, g = d * to_float(w.v[k]);
                g_sum += g;
                gx_sum += g * xhat;
                if (partials) {
                    dw_col[column_slot<K>(c + k)] += d * xhat;
                    db_col[column_slot<K>(c + k)] += d;
                }
            }
        }
        if (!da && !db) continue;
        const float g_mean = warp_sum(g_sum) / C, gx_mean = warp_sum(gx_sum) / C;
        for (int c = lane * K; c < C; c += 32 * K) {
            const Pack<T, K> dy = load_pack<K>(dout + base + c), xv = load_pack<K>(x + base + c), w = load_pack<K>(weight + c);
            Pack<T, K> ga, gb;
            if (da) ga = load_pack<K>(da + base + c);
            if (db) gb = load_pack<K>(db + base + c);
#pragma unroll
            for (int k = 0; k < K; k++) {
                const float xhat = (to_float(xv.v[k]) - m) * s, g = to_float(dy.v[k]) * to_float(w.v[k]);
                const float d = s * (g - g_mean - xhat * gx_mean);
                if (da) ga.v[k] = from_float<T>(to_float(ga.v[k]) + d);
                if (db) gb.v[k] = from_float<T>(to_float(gb.v[k]) + dropout_value(d, key, base + c + k, p, scale));
            }
            if (da) store_pack<K>(da + base + c, ga);
            if (db) store_pack<K>(db + base + c, gb);
        }
    }

    if (partials) {
        __syncthreads();
        float* out = partials + (size_t)blockIdx.x * 2 * C;
        for (int c = threadIdx.x; c < C; c += blockDim.x) {
            const int slot = column_slot<K>(c);
            float dweight_c = 0.0f, dbias_c = 0.0f;
            for (int w = 0; w < kBackwardWarps; w++) {
                dweight_c += columns[(size_t)w * 2 * Cp + slot];
                dbias_c += columns[(size_t)w * 2 * Cp + Cp + slot];
            }
            out[c] = dweight_c;
            out[C + c] = dbias_c;
        }
    }
}

// dweight[c] += sum_g partials[g, c], dbias[c] += sum_g partials[g, C + c] over the G blocks'
// partials ([G, 2C]). Column j is summed by the kSplit threads threadIdx.y = 0..kSplit-1 of
// its threadIdx.x, each over g = y, y + kSplit, ..., and those kSplit sums are added in y order.
constexpr int kSplit = 8;
__global__ void column_sums_kernel(float* dweight, float* dbias, const float* partials, int G, int C) {
    __shared__ float part[kSplit][32];
    const int j = blockIdx.x * 32 + threadIdx.x;
    float acc = 0.0f;
    if (j < 2 * C)
        for (int g = threadIdx.y; g < G; g += kSplit) acc += partials[(size_t)g * 2 * C + j];
    part[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y != 0 || j >= 2 * C) return;
    float total = 0.0f;
    for (int y = 0; y < kSplit; y++) total += part[y][threadIdx.x];
    float* target = j < C ? (dweight ? dweight + j : nullptr) : (dbias ? dbias + (j - C) : nullptr);
    if (target) *target += total;
}

template <int K, typename T>
void launch_layernorm_backward_k(T* da, T* db, float* dweight, float* dbias, const T* dout, const T* x, const T* weight,
                                 const float* mean, const float* rstd, int N, int C, float p, uint64_t seed) {
    const auto kernel = layernorm_backward_kernel<K, T>;
    const bool params = dweight || dbias;
    const int threads = kBackwardWarps * 32;
    const size_t smem = params ? sizeof(float) * kBackwardWarps * 2 * (size_t)padded_columns(C, K) : 0;
    if (smem > 48 * 1024)  // beyond the default limit: opt in (H100: up to 227 KiB, C up to ~7000)
        WR_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    int blocks = (int)ceil_div(N, kBackwardWarps);  // one row per warp
    if (params) {  // at most one wave of blocks, each looping over its rows: fewer partials to add
        int per_sm = 0;
        WR_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem));
        blocks = std::min(blocks, std::max(per_sm, 1) * multiprocessor_count());
    }
    const int rows_per_block = (int)ceil_div(N, blocks);
    blocks = (int)ceil_div(N, rows_per_block);  // no block without rows
    float* partials = params ? (float*)scratch(sizeof(float) * (size_t)blocks * 2 * C) : nullptr;
    kernel<<<blocks, threads, smem, stream()>>>(da, db, partials, dout, x, weight, mean, rstd, N, C, rows_per_block, p,
                                                dropout_key(seed), dropout_scale(p));
    WR_CUDA_CHECK_LAUNCH();
    if (params) {
        column_sums_kernel<<<ceil_div(2 * (int64_t)C, 32), dim3(32, kSplit), 0, stream()>>>(dweight, dbias, partials, blocks, C);
        WR_CUDA_CHECK_LAUNCH();
    }
}

// The plain backward is the residual one with db = null (da = dinp, x = inp).
template <typename T>
void launch_layernorm_backward(T* da, T* db, float* dweight, float* dbias, const T* dout, const T* x, const T* weight,
                               const float* mean, const float* rstd, int N, int C, float p, uint64_t seed) {
    if (N <= 0 || C <= 0 || (!da && !db && !dweight && !dbias)) return;
    constexpr int K = 16 / sizeof(T);
    if (C % K == 0 && all_aligned16({da, db, dout, x, weight}))
        launch_layernorm_backward_k<K>(da, db, dweight, dbias, dout, x, weight, mean, rstd, N, C, p, seed);
    else
        launch_layernorm_backward_k<1>(da, db, dweight, dbias, dout, x, weight, mean, rstd, N, C, p, seed);
}

}  // namespace

template <typename T>
void layernorm_forward(T* out, float* mean, float* rstd, const T* inp, const T* weight, const T* bias, int N, int C,
                       float eps) {
    launch_layernorm_forward<false>(out, mean, rstd, (T*)nullptr, inp, (const T*)nullptr, weight, bias, N, C, eps, 0.0f, 0);
}

template <typename T>
void layernorm_backward(T* dinp, float* dweight, float* dbias, const T* dout, const T* inp, const T* weight,
                        const float* mean, const float* rstd, int N, int C) {
    launch_layernorm_backward(dinp, (T*)nullptr, dweight, dbias, dout, inp, weight, mean, rstd, N, C, 0.0f, 0);
}

template <typename T>
void residual_layernorm_forward(T* res, T* out, float* mean, float* rstd, const T* a, const T* b, const T* weight,
                                const T* bias, int N, int C, float eps, float dropout_p, uint64_t seed) {
    launch_layernorm_forward<true>(out, mean, rstd, res, a, b, weight, bias, N, C, eps, dropout_p, seed);
}

template <typename T>
void residual_layernorm_backward(T* da, T* db, float* dweight, float* dbias, const T* dout, const T* res, const T* weight,
                                 const float* mean, const float* rstd, int N, int C, float dropout_p, uint64_t seed) {
    launch_layernorm_backward(da, db, dweight, dbias, dout, res, weight, mean, rstd, N, C, dropout_p, seed);
}

#define WR_INSTANTIATE(T)                                                                                          \
    template void layernorm_forward<T>(T*, float*, float*, const T*, const T*, const T*, int, int, float);         \
    template void layernorm_backward<T>(T*, float*, float*, const T*, const T*, const T*, const float*,            \
                                        const float*, int, int);                                                   \
    template void residual_layernorm_forward<T>(T*, T*, float*, float*, const T*, const T*, const T*, const T*,    \
                                                int, int, float, float, uint64_t);                                 \
    template void residual_layernorm_backward<T>(T*, T*, float*, float*, const T*, const T*, const T*,             \
                                                 const float*, const float*, int, int, float, uint64_t);
WR_INSTANTIATE(float)
WR_INSTANTIATE(bf16)
#undef WR_INSTANTIATE

}  // namespace wr::cuda
