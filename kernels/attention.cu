// kernels/attention.cu: fused self-attention on the GPU in the flash-attention manner (interface:
// attention.cuh; math, layout, padding and dropout rules: attention.h; CPU twin: attention.cpp).
// No [B, NH, T, T] array ever reaches device memory: score tiles live in shared memory only.
//
// Forward, one block per (sequence b, head h, tile of BQ query rows), looping over key tiles of
// BK keys (only tiles that hold a real key, k0 < len), online softmax:
//   s       = q k^T * scale                         (keys j >= len: -inf, so probability 0)
//   m_new   = max(m, max_j s),  c = exp(m - m_new)  (c = 0 on the first tile, where m = -inf)
//   p       = exp(s - m_new)
//   l       = l * c + sum_j p
//   o       = o * c + (p * drop) v                  (drop: the dropout factor of element (i, j))
// at the end out = o / l and lse = m + log(l), the log-sum-exp of the row's scores, kept for the
// backward. Dropout multiplies the probabilities that make `out`, never the ones that make lse.
//
// Backward. With P the softmax probabilities, drop the dropout factors and dout the incoming
// gradient of out:
//   dP[i, j] = drop[i, j] (dout_i . v_j)                  (gradient of P)
//   dS[i, j] = P[i, j] (dP[i, j] - D_i),  D_i = sum_k P[i, k] dP[i, k]
// and D_i needs no [T, T] row: sum_k P_ik drop_ik (dout_i . v_k) = dout_i . (sum_k drop_ik P_ik v_k)
// = dout_i . out_i, dropout or not. So three kernels:
//   1. row_dot:  D[b, h, i] = dout_i . out_i (one warp per row; kept in scratch()).
//   2. dkdv:     one block per (b, h, tile of BK keys), looping over every query tile (padded query
//                rows included, as on the CPU): recompute S and P = exp(s - lse), then
//                dV += (P * drop)^T dout and dK += dS^T q * scale.
//   3. dq:       one block per (b, h, tile of BQ query rows), looping over the key tiles:
//                dQ += dS k * scale.
// Every gradient element is summed inside one block in a fixed order and added (+=) to dqkv once:
// no atomics, the same bits on every run. P and dS are recomputed twice (once per kernel); that
// is the price of determinism without atomics. Key tiles past lengths[b] are skipped entirely,
// so padding keys and values get no gradient at all (not even += 0), as on the CPU.
//
// Threads and tiles: 256 threads (8 warps) per block in every kernel. BQ is a number of query
// rows, BK of keys; the block owns one tile and loops over tiles of the other kind:
//   forward  owns BQ = 64 query rows, loops over BK = 64 keys at a time
//   dkdv     owns BK = 64 keys (32 when HS = 128), loops over BQ = 32 query rows at a time
//   dq       owns BQ = 64 query rows, loops over BK = 32 keys at a time
// Shared memory per block, all tiles row-major with rows padded by 16 bytes (keeps 16-byte
// vector copies and WMMA pointers aligned and moves consecutive rows to other banks):
//   forward: q[BQ,HS], k[BK,HS], v[BK,HS] (T); s[BQ,BK] (float); p[BQ,BK] (T); o[BQ,HS] (float)
//   dkdv:    k, v[BK,HS]; q, dout[BQ,HS]; s, dp[BQ,BK] (float); pd, ds[BQ,BK]; dk, dv[BK,HS] (float)
//   dq:      q, dout[BQ,HS]; k, v[BK,HS]; s, dp[BQ,BK] (float); ds[BQ,BK]; dq[BQ,HS] (float)
// At HS = 64 that is 70 / 87 / 68 KiB in bf16 (2, 2 and 3 blocks per H100 SM, counting the
// forward's 126 registers a thread) and 102 / 119 / 96 KiB in fp32. The running max and sum of
// the forward's rows stay in registers of the warp that owns the row.
//
// Products: every matrix product is one call of block_matmul (below): C (a float tile) = or +=
// A B, with A and B tiles of T, either read transposed. bf16 runs it on the tensor cores (WMMA
// 16x16x16, fp32 accumulation); fp32 runs it as FMAs on a 16 x 16 thread grid with a register
// micro-tile per thread (tf32 tensor cores would miss the 1e-5 agreement with the CPU that the
// fp32 path is for). Everything else (mask, softmax, dropout, dS) is an element-wise pass over
// float tiles in shared memory, where the thread of an element is obvious.
// Precision in bf16: q, k, v, dout are bf16 as stored; P (times dropout) and dS are rounded to
// bf16 before their products, as flash attention does; all sums are fp32.
//
// Head sizes. The kernels are built for HS = 32, 64 and 128 (template parameters: tile shapes and
// register arrays depend on them). Any other head size up to 128 (an imported or custom width:
// C = 60 with one head, C = 100 with two) runs through the padded path at the end of the file:
// qkv (and out, dout) are copied into arrays whose heads have the next built size, the extra
// channels zero, which leaves every product unchanged; the results are copied back. The same path
// serves qkv or dout pointers that are not 16-byte aligned. It costs the copies, nothing else.
//
// A faster version would keep S and P in registers in the documented mma.sync (or Hopper wgmma)
// fragment layouts instead of the round trip through shared memory that WMMA's opaque fragments
// force here; double-buffer the k/v (and q/dout) tiles with cp.async or the TMA copy engine so
// loads overlap the math; fold log2(e) into the scale and use exp2; and, for fp32, read shared
// memory as float4 in the FMA loop. Those make the code much harder to read; do them when a
// profile says attention matters.
#include "kernels/attention.cuh"

#include <mma.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <type_traits>

#include "common/util.h"
#include "kernels/dropout.h"

namespace wr::cuda {

namespace {

constexpr int kThreads = 256;  // per block, in every kernel here
constexpr int kWarps = kThreads / 32;

// ---- Shared-memory tiles ----

// A ROWS x COLS tile of E in shared memory, row-major, each row padded by 16 bytes.
template <typename E, int ROWS, int COLS>
struct Tile {
    static constexpr int kLd = COLS + 16 / (int)sizeof(E);  // elements from one row to the next
    static constexpr size_t kBytes = ((size_t)ROWS * kLd * sizeof(E) + 127) / 128 * 128;  // 128-aligned
};
// Shared floats for per-row values (lse, D) of ROWS rows.
template <int ROWS>
constexpr size_t row_values_bytes() { return ((size_t)ROWS * sizeof(float) + 127) / 128 * 128; }

// Copies rows row0 .. row0 + ROWS - 1 of a [rows, HS] slice of a row-major array into a shared
// tile (tile row r = slice row row0 + r); rows at or past `rows` become 0, so that a product
// over the tile never meets garbage (0 * NaN would be NaN). `src` is the slice's row 0, rows are
// `stride` elements apart. 16-byte copies: the caller guarantees 16-byte aligned rows.
template <int ROWS, int HS, typename T>
__device__ __forceinline__ void load_tile(T* tile, int ld, const T* src, int64_t stride, int row0, int rows) {
    constexpr int kVec = 16 / sizeof(T);  // elements per 16-byte copy
    constexpr int kVecsPerRow = HS / kVec;
    for (int e = threadIdx.x; e < ROWS * kVecsPerRow; e += kThreads) {
        const int r = e / kVecsPerRow, c = (e % kVecsPerRow) * kVec;
        uint4 x = make_uint4(0, 0, 0, 0);  // all-zero bits: 0.0 in float and in bf16
        if (row0 + r < rows) x = *reinterpret_cast<const uint4*>(src + (row0 + r) * stride + c);
        *reinterpret_cast<uint4*>(tile + r * ld + c) = x;
    }
}

// dst[r * stride + c] += tile[r * ld + c] for r < rows (at most ROWS), c < HS.
template <int ROWS, int HS, typename T>
__device__ __forceinline__ void add_tile_to(T* dst, int64_t stride, const float* tile, int ld, int rows) {
    for (int e = threadIdx.x; e < ROWS * HS; e += kThreads) {
        const int r = e / HS, c = e % HS;
        if (r < rows) {
            T& d = dst[r * stride + c];
            d = from_float<T>(to_float(d) + tile[r * ld + c]);
        }
    }
}

template <int ROWS>
__device__ __forceinline__ void zero_tile(float* tile, int ld, int cols) {
    for (int e = threadIdx.x; e < ROWS * cols; e += kThreads) tile[(e / cols) * ld + e % cols] = 0.0f;
}

// ---- The one matrix product: C[M, N] (=, or += when kAccumulate) A[M, K] B[K, N] ----
// A(m, k) is a[m * lda + k], or a[k * lda + m] when kTransA (the tile holds A^T, row-major);
// B(k, n) is b[k * ldb + n], or b[n * ldb + k] when kTransB. C(m, n) is c[m * ldc + n], float.
// All in shared memory. Called by every thread of the block; no barrier inside: the caller puts
// __syncthreads() between writing the inputs and this call, and between this call and reading C.
template <int M, int N, int K, bool kTransA, bool kTransB, bool kAccumulate, typename T>
__device__ __forceinline__ void block_matmul(float* c, int ldc, const T* a, int lda, const T* b, int ldb) {
    static_assert(M % 16 == 0 && N % 16 == 0 && K % 16 == 0, "tiles come in 16s");
    if constexpr (std::is_same_v<T, bf16>) {
        // Tensor cores: warp w computes the 16 x 16 blocks w, w + kWarps, ... of C (row-major order
        // of blocks), each over K in steps of 16. A WMMA "col_major" operand is the transposed read.
        namespace wmma = nvcuda::wmma;
        using LayoutA = std::conditional_t<kTransA, wmma::col_major, wmma::row_major>;
        using LayoutB = std::conditional_t<kTransB, wmma::col_major, wmma::row_major>;
        const int warp = threadIdx.x / 32;
        for (int f = warp; f < (M / 16) * (N / 16); f += kWarps) {
            const int m0 = (f / (N / 16)) * 16, n0 = (f % (N / 16)) * 16;
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            if constexpr (kAccumulate) wmma::load_matrix_sync(acc, c + m0 * ldc + n0, ldc, wmma::mem_row_major);
            else wmma::fill_fragment(acc, 0.0f);
#pragma unroll
            for (int k0 = 0; k0 < K; k0 += 16) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, LayoutA> fa;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, LayoutB> fb;
                wmma::load_matrix_sync(fa, kTransA ? a + k0 * lda + m0 : a + m0 * lda + k0, lda);
                wmma::load_matrix_sync(fb, kTransB ? b + n0 * ldb + k0 : b + k0 * ldb + n0, ldb);
                wmma::mma_sync(acc, fa, fb, acc);
            }
            wmma::store_matrix_sync(c + m0 * ldc + n0, acc, ldc, wmma::mem_row_major);
        }
    } else {
        // FMAs: the 256 threads form a 16 x 16 grid (ty, tx); thread (ty, tx) computes
        // C(ty + 16 i, tx + 16 j) for i < M/16, j < N/16, summing over k in order 0 .. K-1.
        // Per k it reads M/16 values of A and N/16 of B from shared memory for (M/16)(N/16) FMAs.
        static_assert(kThreads == 256, "the FMA product maps 256 threads to a 16 x 16 grid");
        const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
        float acc[M / 16][N / 16];
#pragma unroll
        for (int i = 0; i < M / 16; i++)
#pragma unroll
            for (int j = 0; j < N / 16; j++) acc[i][j] = kAccumulate ? c[(ty + 16 * i) * ldc + tx + 16 * j] : 0.0f;
#pragma unroll 4
        for (int k = 0; k < K; k++) {
            float av[M / 16], bv[N / 16];
#pragma unroll
            for (int i = 0; i < M / 16; i++) av[i] = kTransA ? a[k * lda + ty + 16 * i] : a[(ty + 16 * i) * lda + k];
#pragma unroll
            for (int j = 0; j < N / 16; j++) bv[j] = kTransB ? b[(tx + 16 * j) * ldb + k] : b[k * ldb + tx + 16 * j];
#pragma unroll
            for (int i = 0; i < M / 16; i++)
#pragma unroll
                for (int j = 0; j < N / 16; j++) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
        }
#pragma unroll
        for (int i = 0; i < M / 16; i++)
#pragma unroll
            for (int j = 0; j < N / 16; j++) c[(ty + 16 * i) * ldc + tx + 16 * j] = acc[i][j];
    }
}

// The dropout factor of the probability with flat index `index` in [B, NH, T, T]: 1 when dropout
// is off, else 1 / (1 - p) if kept and 0 if dropped (the CPU's rule, kernels/dropout.h).
__device__ __forceinline__ float dropout_factor(uint64_t key, uint64_t index, float p, float drop_scale) {
    if (p <= 0.0f) return 1.0f;
    return dropout_keep(key, index, p) ? drop_scale : 0.0f;
}

// What every kernel here is told besides its arrays.
struct Shape {
    int T;             // sequence length (T_ in the interface)
    int NH;            // heads; C = NH * HS
    float scale;       // 1 / sqrt(HS), computed as the CPU does
    float dropout_p;   // probability of dropping an attention probability (<= 0: off)
    float drop_scale;  // 1 / (1 - p)
    uint64_t key;      // dropout_key(seed)
};

// ============================== forward ==============================

template <typename T, int HS, int BQ, int BK>
struct ForwardSmem {
    using Q = Tile<T, BQ, HS>;
    using K = Tile<T, BK, HS>;  // k and v
    using S = Tile<float, BQ, BK>;
    using P = Tile<T, BQ, BK>;
    using O = Tile<float, BQ, HS>;
    static constexpr size_t kQ = 0, kK = kQ + Q::kBytes, kV = kK + K::kBytes, kS = kV + K::kBytes,
                            kP = kS + S::kBytes, kO = kP + P::kBytes, kBytes = kO + O::kBytes;
};

// out[B, T, C], lse[B, NH, T]  <-  qkv[B, T, 3C].
// Grid (ceil(T / BQ), B * NH): block (x, y) does query rows x*BQ .. x*BQ + BQ - 1 of (b, h) = y.
// Warp w owns query rows w, w + 8, ... of the tile for the softmax; it keeps their running max
// and sum in registers (the same value in every lane).
template <typename T, int HS, int BQ, int BK>
__global__ void __launch_bounds__(kThreads)
    attention_forward_kernel(T* out, float* lse, const T* qkv, const int* lengths, Shape shape) {
    using L = ForwardSmem<T, HS, BQ, BK>;
    extern __shared__ __align__(128) unsigned char smem[];
    T* q_s = reinterpret_cast<T*>(smem + L::kQ);
    T* k_s = reinterpret_cast<T*>(smem + L::kK);
    T* v_s = reinterpret_cast<T*>(smem + L::kV);
    float* s_s = reinterpret_cast<float*>(smem + L::kS);
    T* p_s = reinterpret_cast<T*>(smem + L::kP);
    float* o_s = reinterpret_cast<float*>(smem + L::kO);

    const int T_ = shape.T, NH = shape.NH, C = NH * HS;
    const int bh = blockIdx.y, b = bh / NH, h = bh % NH;
    const int q0 = blockIdx.x * BQ;
    const int len = lengths ? lengths[b] : T_;
    const int64_t stride = 3 * (int64_t)C;                       // qkv row stride
    const T* q_g = qkv + (int64_t)b * T_ * stride + h * HS;      // q of (b, token 0, head h)
    const T* k_g = q_g + C;
    const T* v_g = q_g + 2 * C;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    constexpr int kRowsPerWarp = BQ / kWarps;

    load_tile<BQ, HS>(q_s, L::Q::kLd, q_g, stride, q0, T_);
    zero_tile<BQ>(o_s, L::O::kLd, HS);
    float run_max[kRowsPerWarp], run_sum[kRowsPerWarp];  // of rows warp + kWarps * rr
#pragma unroll
    for (int rr = 0; rr < kRowsPerWarp; rr++) run_max[rr] = -INFINITY, run_sum[rr] = 0.0f;

    for (int k0 = 0; k0 < len; k0 += BK) {
        __syncthreads();  // the previous tile's k, v, p are read; (first tile: q, o are written)
        load_tile<BK, HS>(k_s, L::K::kLd, k_g, stride, k0, T_);
        load_tile<BK, HS>(v_s, L::K::kLd, v_g, stride, k0, T_);
        __syncthreads();
        block_matmul<BQ, BK, HS, false, true, false>(s_s, L::S::kLd, q_s, L::Q::kLd, k_s, L::K::kLd);  // s = q k^T
        __syncthreads();

        // Online softmax of this tile, one row per warp at a time (lanes: columns lane, lane + 32):
        // p = exp(s - m_new) * drop into p_s, and the row of o rescaled by c = exp(m - m_new).
#pragma unroll
        for (int rr = 0; rr < kRowsPerWarp; rr++) {
            const int r = warp + kWarps * rr, i = q0 + r;
            float score[BK / 32];
            float tile_max = -INFINITY;
#pragma unroll
            for (int u = 0; u < BK / 32; u++) {
                const int col = lane + 32 * u, j = k0 + col;
                score[u] = j < len ? s_s[r * L::S::kLd + col] * shape.scale : -INFINITY;
                tile_max = fmaxf(tile_max, score[u]);
            }
            const float new_max = fmaxf(run_max[rr], warp_max(tile_max));  // finite: key k0 < len is here
            const float correction = expf(run_max[rr] - new_max);          // exp(-inf) = 0 on the first tile
            const uint64_t row_index = ((uint64_t)bh * T_ + i) * T_;        // flat index of (b, h, i, 0)
            float tile_sum = 0.0f;
#pragma unroll
            for (int u = 0; u < BK / 32; u++) {
                const int col = lane + 32 * u, j = k0 + col;
                const float p = expf(score[u] - new_max);  // 0 for padding keys
                tile_sum += p;
                const float dropped = j < len ? p * dropout_factor(shape.key, row_index + j, shape.dropout_p, shape.drop_scale) : 0.0f;
                p_s[r * L::P::kLd + col] = from_float<T>(dropped);
            }
            run_sum[rr] = run_sum[rr] * correction + warp_sum(tile_sum);
            run_max[rr] = new_max;
            for (int col = lane; col < HS; col += 32) o_s[r * L::O::kLd + col] *= correction;
        }
        __syncthreads();
        block_matmul<BQ, HS, BK, false, false, true>(o_s, L::O::kLd, p_s, L::P::kLd, v_s, L::K::kLd);  // o += p v
    }
    __syncthreads();

    // out = o / l, lse = m + log(l), for the tile's rows that exist (the warp's own rows).
#pragma unroll
    for (int rr = 0; rr < kRowsPerWarp; rr++) {
        const int r = warp + kWarps * rr, i = q0 + r;
        if (i >= T_) continue;
        const float inv_sum = 1.0f / run_sum[rr];
        T* out_row = out + ((int64_t)b * T_ + i) * C + h * HS;
        for (int col = lane; col < HS; col += 32) out_row[col] = from_float<T>(o_s[r * L::O::kLd + col] * inv_sum);
        if (lane == 0) lse[(int64_t)bh * T_ + i] = run_max[rr] + logf(run_sum[rr]);
    }
}

// ============================== backward ==============================

// D[b, h, i] = dout[b, i, h*HS : h*HS + HS] . out[b, i, h*HS : h*HS + HS], for every row i < T
// (padded query rows too). One warp per row; rows numbered (b * NH + h) * T + i.
template <typename T, int HS>
__global__ void __launch_bounds__(kThreads)
    attention_row_dot_kernel(float* row_dot, const T* dout, const T* out, int B, Shape shape) {
    const int T_ = shape.T, NH = shape.NH, C = NH * HS;
    const int64_t row = (int64_t)blockIdx.x * kWarps + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (row >= (int64_t)B * NH * T_) return;  // the whole warp leaves together
    const int i = (int)(row % T_), bh = (int)(row / T_), b = bh / NH, h = bh % NH;
    const int64_t offset = ((int64_t)b * T_ + i) * C + h * HS;
    float sum = 0.0f;
    for (int c = lane; c < HS; c += 32) sum += to_float(dout[offset + c]) * to_float(out[offset + c]);
    sum = warp_sum(sum);
    if (lane == 0) row_dot[row] = sum;
}

// The element-wise middle of both backward kernels, for one [BQ, BK] tile of (query i0 + r,
// key j0 + c) pairs: from s = q k^T and dp = dout v^T (both without scale or dropout) in float
// tiles, and the rows' lse and D,
//   P    = exp(s * scale - lse)               (0 for padding keys and for rows past T)
//   drop = the dropout factor of (b, h, i, j)
//   pd   = P * drop                           (only if pd_s: the dkdv kernel needs it)
//   ds   = P * (drop * dp - D) * scale        (scale: the gradient through s = q k^T * scale)
// Element e of the tile goes to thread e % 256: consecutive threads, consecutive columns.
template <typename T, int BQ, int BK, typename SmemS, typename SmemP>
__device__ __forceinline__ void probabilities_and_score_gradients(T* pd_s, T* ds_s, const float* s_s, const float* dp_s,
                                                                  const float* lse_s, const float* dot_s, int i0, int j0,
                                                                  int len, int bh, Shape shape) {
    for (int e = threadIdx.x; e < BQ * BK; e += kThreads) {
        const int r = e / BK, col = e % BK, i = i0 + r, j = j0 + col;
        float pd = 0.0f, ds = 0.0f;
        if (i < shape.T && j < len) {
            const float p = expf(s_s[r * SmemS::kLd + col] * shape.scale - lse_s[r]);
            const uint64_t index = ((uint64_t)bh * shape.T + i) * shape.T + j;
            const float drop = dropout_factor(shape.key, index, shape.dropout_p, shape.drop_scale);
            pd = p * drop;
            ds = p * (drop * dp_s[r * SmemS::kLd + col] - dot_s[r]) * shape.scale;
        }
        if (pd_s) pd_s[r * SmemP::kLd + col] = from_float<T>(pd);
        ds_s[r * SmemP::kLd + col] = from_float<T>(ds);
    }
}

// lse and D of query rows i0 .. i0 + ROWS - 1 into shared memory (0 past T: those rows are masked).
template <int ROWS>
__device__ __forceinline__ void load_row_values(float* lse_s, float* dot_s, const float* lse, const float* row_dot, int bh,
                                                int i0, int T_) {
    for (int r = threadIdx.x; r < ROWS; r += kThreads) {
        const int i = i0 + r;
        const bool real = i < T_;
        lse_s[r] = real ? lse[(int64_t)bh * T_ + i] : 0.0f;
        dot_s[r] = real ? row_dot[(int64_t)bh * T_ + i] : 0.0f;
    }
}

template <typename T, int HS, int BK, int BQ>
struct KeyValueSmem {
    using KV = Tile<T, BK, HS>;      // k, v
    using QD = Tile<T, BQ, HS>;      // q, dout
    using S = Tile<float, BQ, BK>;   // s, dp
    using P = Tile<T, BQ, BK>;       // pd, ds
    using G = Tile<float, BK, HS>;   // dk, dv
    static constexpr size_t kK = 0, kV = kK + KV::kBytes, kQ = kV + KV::kBytes, kDout = kQ + QD::kBytes,
                            kS = kDout + QD::kBytes, kDp = kS + S::kBytes, kPd = kDp + S::kBytes, kDs = kPd + P::kBytes,
                            kDk = kDs + P::kBytes, kDv = kDk + G::kBytes, kLse = kDv + G::kBytes,
                            kDot = kLse + row_values_bytes<BQ>(), kBytes = kDot + row_values_bytes<BQ>();
};

// dqkv[b, j, C + h*HS ...] += dk_j and dqkv[b, j, 2C + h*HS ...] += dv_j for the keys j of one tile.
// Grid (ceil(T / BK), B * NH): block (x, y) does keys x*BK .. x*BK + BK - 1 of (b, h) = y, looping
// over all query rows BQ at a time:
//   s = q k^T, dp = dout v^T                         [BQ, BK]
//   pd, ds (probabilities_and_score_gradients)
//   dv += pd^T dout,  dk += ds^T q                   [BK, HS]
template <typename T, int HS, int BK, int BQ>
__global__ void __launch_bounds__(kThreads)
    attention_backward_dkdv_kernel(T* dqkv, const T* dout, const T* qkv, const float* lse, const float* row_dot,
                                   const int* lengths, Shape shape) {
    using L = KeyValueSmem<T, HS, BK, BQ>;
    const int T_ = shape.T, NH = shape.NH, C = NH * HS;
    const int bh = blockIdx.y, b = bh / NH, h = bh % NH;
    const int j0 = blockIdx.x * BK;
    const int len = lengths ? lengths[b] : T_;
    if (j0 >= len) return;  // only padding keys here: they get no gradient (the whole block leaves)

    extern __shared__ __align__(128) unsigned char smem[];
    T* k_s = reinterpret_cast<T*>(smem + L::kK);
    T* v_s = reinterpret_cast<T*>(smem + L::kV);
    T* q_s = reinterpret_cast<T*>(smem + L::kQ);
    T* dout_s = reinterpret_cast<T*>(smem + L::kDout);
    float* s_s = reinterpret_cast<float*>(smem + L::kS);
    float* dp_s = reinterpret_cast<float*>(smem + L::kDp);
    T* pd_s = reinterpret_cast<T*>(smem + L::kPd);
    T* ds_s = reinterpret_cast<T*>(smem + L::kDs);
    float* dk_s = reinterpret_cast<float*>(smem + L::kDk);
    float* dv_s = reinterpret_cast<float*>(smem + L::kDv);
    float* lse_s = reinterpret_cast<float*>(smem + L::kLse);
    float* dot_s = reinterpret_cast<float*>(smem + L::kDot);

    const int64_t stride = 3 * (int64_t)C;
    const T* q_g = qkv + (int64_t)b * T_ * stride + h * HS;
    const T* dout_g = dout + (int64_t)b * T_ * C + h * HS;
    load_tile<BK, HS>(k_s, L::KV::kLd, q_g + C, stride, j0, T_);
    load_tile<BK, HS>(v_s, L::KV::kLd, q_g + 2 * C, stride, j0, T_);
    zero_tile<BK>(dk_s, L::G::kLd, HS);
    zero_tile<BK>(dv_s, L::G::kLd, HS);

    for (int i0 = 0; i0 < T_; i0 += BQ) {
        __syncthreads();  // the previous step's q, dout, pd, ds are read
        load_tile<BQ, HS>(q_s, L::QD::kLd, q_g, stride, i0, T_);
        load_tile<BQ, HS>(dout_s, L::QD::kLd, dout_g, C, i0, T_);
        load_row_values<BQ>(lse_s, dot_s, lse, row_dot, bh, i0, T_);
        __syncthreads();
        block_matmul<BQ, BK, HS, false, true, false>(s_s, L::S::kLd, q_s, L::QD::kLd, k_s, L::KV::kLd);      // s = q k^T
        block_matmul<BQ, BK, HS, false, true, false>(dp_s, L::S::kLd, dout_s, L::QD::kLd, v_s, L::KV::kLd);  // dp = dout v^T
        __syncthreads();
        probabilities_and_score_gradients<T, BQ, BK, typename L::S, typename L::P>(pd_s, ds_s, s_s, dp_s, lse_s, dot_s, i0,
                                                                                  j0, len, bh, shape);
        __syncthreads();
        block_matmul<BK, HS, BQ, true, false, true>(dv_s, L::G::kLd, pd_s, L::P::kLd, dout_s, L::QD::kLd);  // dv += pd^T dout
        block_matmul<BK, HS, BQ, true, false, true>(dk_s, L::G::kLd, ds_s, L::P::kLd, q_s, L::QD::kLd);     // dk += ds^T q
    }
    __syncthreads();

    const int keys = min(BK, len - j0);  // real keys of the tile
    T* grad_g = dqkv + ((int64_t)b * T_ + j0) * stride + h * HS;  // dq of (b, token j0, head h)
    add_tile_to<BK, HS>(grad_g + C, stride, dk_s, L::G::kLd, keys);
    add_tile_to<BK, HS>(grad_g + 2 * C, stride, dv_s, L::G::kLd, keys);
}

template <typename T, int HS, int BQ, int BK>
struct QuerySmem {
    using QD = Tile<T, BQ, HS>;      // q, dout
    using KV = Tile<T, BK, HS>;      // k, v
    using S = Tile<float, BQ, BK>;   // s, dp
    using P = Tile<T, BQ, BK>;       // ds
    using G = Tile<float, BQ, HS>;   // dq
    static constexpr size_t kQ = 0, kDout = kQ + QD::kBytes, kK = kDout + QD::kBytes, kV = kK + KV::kBytes,
                            kS = kV + KV::kBytes, kDp = kS + S::kBytes, kDs = kDp + S::kBytes, kDq = kDs + P::kBytes,
                            kLse = kDq + G::kBytes, kDot = kLse + row_values_bytes<BQ>(),
                            kBytes = kDot + row_values_bytes<BQ>();
};

// dqkv[b, i, h*HS ...] += dq_i for the query rows i of one tile.
// Grid (ceil(T / BQ), B * NH): block (x, y) does query rows x*BQ .. x*BQ + BQ - 1 of (b, h) = y,
// looping over the key tiles that hold a real key, BK keys at a time:
//   s = q k^T, dp = dout v^T                         [BQ, BK]
//   ds (probabilities_and_score_gradients)
//   dq += ds k                                       [BQ, HS]
template <typename T, int HS, int BQ, int BK>
__global__ void __launch_bounds__(kThreads)
    attention_backward_dq_kernel(T* dqkv, const T* dout, const T* qkv, const float* lse, const float* row_dot,
                                 const int* lengths, Shape shape) {
    using L = QuerySmem<T, HS, BQ, BK>;
    extern __shared__ __align__(128) unsigned char smem[];
    T* q_s = reinterpret_cast<T*>(smem + L::kQ);
    T* dout_s = reinterpret_cast<T*>(smem + L::kDout);
    T* k_s = reinterpret_cast<T*>(smem + L::kK);
    T* v_s = reinterpret_cast<T*>(smem + L::kV);
    float* s_s = reinterpret_cast<float*>(smem + L::kS);
    float* dp_s = reinterpret_cast<float*>(smem + L::kDp);
    T* ds_s = reinterpret_cast<T*>(smem + L::kDs);
    float* dq_s = reinterpret_cast<float*>(smem + L::kDq);
    float* lse_s = reinterpret_cast<float*>(smem + L::kLse);
    float* dot_s = reinterpret_cast<float*>(smem + L::kDot);

    const int T_ = shape.T, NH = shape.NH, C = NH * HS;
    const int bh = blockIdx.y, b = bh / NH, h = bh % NH;
    const int i0 = blockIdx.x * BQ;
    const int len = lengths ? lengths[b] : T_;
    const int64_t stride = 3 * (int64_t)C;
    const T* q_g = qkv + (int64_t)b * T_ * stride + h * HS;
    const T* dout_g = dout + (int64_t)b * T_ * C + h * HS;
    load_tile<BQ, HS>(q_s, L::QD::kLd, q_g, stride, i0, T_);
    load_tile<BQ, HS>(dout_s, L::QD::kLd, dout_g, C, i0, T_);
    load_row_values<BQ>(lse_s, dot_s, lse, row_dot, bh, i0, T_);
    zero_tile<BQ>(dq_s, L::G::kLd, HS);

    for (int j0 = 0; j0 < len; j0 += BK) {
        __syncthreads();  // the previous step's k, v, ds are read; (first step: q, dout, rows, dq written)
        load_tile<BK, HS>(k_s, L::KV::kLd, q_g + C, stride, j0, T_);
        load_tile<BK, HS>(v_s, L::KV::kLd, q_g + 2 * C, stride, j0, T_);
        __syncthreads();
        block_matmul<BQ, BK, HS, false, true, false>(s_s, L::S::kLd, q_s, L::QD::kLd, k_s, L::KV::kLd);      // s = q k^T
        block_matmul<BQ, BK, HS, false, true, false>(dp_s, L::S::kLd, dout_s, L::QD::kLd, v_s, L::KV::kLd);  // dp = dout v^T
        __syncthreads();
        probabilities_and_score_gradients<T, BQ, BK, typename L::S, typename L::P>(nullptr, ds_s, s_s, dp_s, lse_s, dot_s, i0,
                                                                                  j0, len, bh, shape);
        __syncthreads();
        block_matmul<BQ, HS, BK, false, false, true>(dq_s, L::G::kLd, ds_s, L::P::kLd, k_s, L::KV::kLd);  // dq += ds k
    }
    __syncthreads();

    const int rows = min(BQ, T_ - i0);
    add_tile_to<BQ, HS>(dqkv + ((int64_t)b * T_ + i0) * stride + h * HS, stride, dq_s, L::G::kLd, rows);
}

// ============================== host side ==============================

// Tile sizes per head size (see the file-top comment).
template <int HS>
struct Config {
    static constexpr int kForwardBQ = 64, kForwardBK = 64;
    static constexpr int kKeyValueBK = HS == 128 ? 32 : 64, kKeyValueBQ = 32;
    static constexpr int kQueryBQ = 64, kQueryBK = 32;
};

// Lets `kernel` take `bytes` of dynamic shared memory (more than 48 KiB needs an opt-in), or throws
// wr::Error if the device has less. The opt-in belongs to the current device's context: the
// callers run it once per device (OncePerDevice).
template <typename Kernel>
void allow_shared_memory(Kernel kernel, size_t bytes, const char* name) {
    int device = 0, limit = 0;
    WR_CUDA_CHECK(cudaGetDevice(&device));
    WR_CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    if (bytes > (size_t)limit)
        throw Error(std::string("attention (CUDA): ") + name + " needs " + std::to_string(bytes) +
                    " bytes of shared memory per block; this device allows " + std::to_string(limit));
    WR_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}

// The head size the kernels run for head size HS: HS itself for 32, 64 and 128, else the next of
// them (the heads are padded with zeros: see the padded path below); 0 when HS is over 128.
int kernel_head_size(int HS) { return HS <= 32 ? 32 : HS <= 64 ? 64 : HS <= 128 ? 128 : 0; }

// The checks both directions share. Returns HS.
int check_arguments(const char* op, int B, int T_, int C, int NH) {
    const std::string where = std::string("attention_") + op + " (CUDA): ";
    if (B < 0 || T_ < 0 || NH <= 0 || C <= 0 || C % NH != 0)
        throw Error(where + "bad shape B=" + std::to_string(B) + " T=" + std::to_string(T_) + " C=" + std::to_string(C) +
                    " NH=" + std::to_string(NH) + " (C must be a positive multiple of NH)");
    const int HS = C / NH;
    if (kernel_head_size(HS) == 0)
        throw Error(where + "head size C / NH = " + std::to_string(HS) + " is not supported (at most 128)");
    if ((int64_t)B * NH > 65535)
        throw Error(where + "B * NH = " + std::to_string((int64_t)B * NH) + " is over the grid's limit of 65535");
    return HS;
}

// Whether the kernels can read the arrays in place: a head size they are built for, and qkv and
// dout 16-byte aligned (their rows are read 16 bytes at a time; rows of 3C and C elements then
// stay aligned, as C = NH * HS is a multiple of 32). Otherwise the padded path copies them.
bool runs_in_place(int HS, std::initializer_list<const void*> vector_read) {
    return kernel_head_size(HS) == HS && all_aligned16(vector_read);
}

// The scale is 1 / sqrt(HS) of the real head size, also when the kernels run on padded heads.
Shape make_shape(int T_, int C, int NH, float dropout_p, uint64_t seed) {
    return Shape{T_, NH, 1.0f / std::sqrt((float)(C / NH)), dropout_p, dropout_scale(dropout_p), dropout_key(seed)};
}

template <typename T, int HS>
void launch_forward(T* out, float* lse, const T* qkv, const int* lengths, int B, const Shape& shape) {
    constexpr int BQ = Config<HS>::kForwardBQ, BK = Config<HS>::kForwardBK;
    const auto kernel = attention_forward_kernel<T, HS, BQ, BK>;
    const size_t bytes = ForwardSmem<T, HS, BQ, BK>::kBytes;
    static OncePerDevice ready;
    ready([&] { allow_shared_memory(kernel, bytes, "the forward kernel"); });
    const dim3 grid(ceil_div(shape.T, BQ), B * shape.NH);
    kernel<<<grid, kThreads, bytes, stream()>>>(out, lse, qkv, lengths, shape);
    WR_CUDA_CHECK_LAUNCH();
}

// row_dot: [B * NH * T] floats of device memory the caller provides.
template <typename T, int HS>
void launch_backward(T* dqkv, const T* dout, const T* out, const T* qkv, const float* lse, const int* lengths, int B,
                     const Shape& shape, float* row_dot) {
    const int64_t rows = (int64_t)B * shape.NH * shape.T;
    attention_row_dot_kernel<T, HS><<<ceil_div(rows, kWarps), kThreads, 0, stream()>>>(row_dot, dout, out, B, shape);
    WR_CUDA_CHECK_LAUNCH();

    {
        constexpr int BK = Config<HS>::kKeyValueBK, BQ = Config<HS>::kKeyValueBQ;
        const auto kernel = attention_backward_dkdv_kernel<T, HS, BK, BQ>;
        const size_t bytes = KeyValueSmem<T, HS, BK, BQ>::kBytes;
        static OncePerDevice ready;
        ready([&] { allow_shared_memory(kernel, bytes, "the dk/dv kernel"); });
        const dim3 grid(ceil_div(shape.T, BK), B * shape.NH);
        kernel<<<grid, kThreads, bytes, stream()>>>(dqkv, dout, qkv, lse, row_dot, lengths, shape);
        WR_CUDA_CHECK_LAUNCH();
    }
    {
        constexpr int BQ = Config<HS>::kQueryBQ, BK = Config<HS>::kQueryBK;
        const auto kernel = attention_backward_dq_kernel<T, HS, BQ, BK>;
        const size_t bytes = QuerySmem<T, HS, BQ, BK>::kBytes;
        static OncePerDevice ready;
        ready([&] { allow_shared_memory(kernel, bytes, "the dq kernel"); });
        const dim3 grid(ceil_div(shape.T, BQ), B * shape.NH);
        kernel<<<grid, kThreads, bytes, stream()>>>(dqkv, dout, qkv, lse, row_dot, lengths, shape);
        WR_CUDA_CHECK_LAUNCH();
    }
}

// The kernels of head size HSK (32, 64 or 128) on arrays whose heads have that size.
template <typename T>
void forward_heads(int HSK, T* out, float* lse, const T* qkv, const int* lengths, int B, const Shape& shape) {
    if (HSK == 32) launch_forward<T, 32>(out, lse, qkv, lengths, B, shape);
    else if (HSK == 64) launch_forward<T, 64>(out, lse, qkv, lengths, B, shape);
    else launch_forward<T, 128>(out, lse, qkv, lengths, B, shape);
}
template <typename T>
void backward_heads(int HSK, T* dqkv, const T* dout, const T* out, const T* qkv, const float* lse, const int* lengths, int B,
                    const Shape& shape, float* row_dot) {
    if (HSK == 32) launch_backward<T, 32>(dqkv, dout, out, qkv, lse, lengths, B, shape, row_dot);
    else if (HSK == 64) launch_backward<T, 64>(dqkv, dout, out, qkv, lse, lengths, B, shape, row_dot);
    else launch_backward<T, 128>(dqkv, dout, out, qkv, lse, lengths, B, shape, row_dot);
}

// ---- The padded path: head sizes without kernels of their own, and unaligned arrays ----
// A [rows, G * HS] array (G groups of HS channels: the 3 NH heads of qkv, or the NH of out) is
// copied to a [rows, G * HSK] array whose groups have HSK >= HS channels, the HS real ones first
// and zeros after. Zero channels change nothing: they add 0 to every q . k and to every dot
// product of the backward, and their out, dq, dk and dv come out 0 (the scale stays the real
// 1 / sqrt(HS)). So the padded run gives the unpadded result exactly, at the cost of the copies.

// dst[r, g * HSK + c] = c < HS ? src[r, g * HS + c] : 0. One thread per element of dst.
template <typename T>
__global__ void pad_heads_kernel(T* dst, const T* src, int64_t rows, int groups, int HS, int HSK) {
    const int64_t n = rows * groups * HSK;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = i / ((int64_t)groups * HSK);
        const int rest = (int)(i % ((int64_t)groups * HSK)), g = rest / HSK, c = rest % HSK;
        dst[i] = c < HS ? src[r * groups * HS + (int64_t)g * HS + c] : from_float<T>(0.0f);
    }
}

// dst[r, g * HS + c] (+)= src[r, g * HSK + c] for c < HS. One thread per element of dst.
template <bool kAccumulate, typename T>
__global__ void unpad_heads_kernel(T* dst, const T* src, int64_t rows, int groups, int HS, int HSK) {
    const int64_t n = rows * groups * HS;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = i / ((int64_t)groups * HS);
        const int rest = (int)(i % ((int64_t)groups * HS)), g = rest / HS, c = rest % HS;
        const T v = src[r * groups * HSK + (int64_t)g * HSK + c];
        dst[i] = kAccumulate ? from_float<T>(to_float(dst[i]) + to_float(v)) : v;
    }
}

unsigned copy_blocks(int64_t n) { return std::min<unsigned>(ceil_div(n, 256), 65535u * 8u); }

template <typename T>
void pad_heads(T* dst, const T* src, int64_t rows, int groups, int HS, int HSK) {
    pad_heads_kernel<<<copy_blocks(rows * groups * HSK), 256, 0, stream()>>>(dst, src, rows, groups, HS, HSK);
    WR_CUDA_CHECK_LAUNCH();
}
template <bool kAccumulate, typename T>
void unpad_heads(T* dst, const T* src, int64_t rows, int groups, int HS, int HSK) {
    unpad_heads_kernel<kAccumulate><<<copy_blocks(rows * groups * HS), 256, 0, stream()>>>(dst, src, rows, groups, HS, HSK);
    WR_CUDA_CHECK_LAUNCH();
}

// Carves 256-byte aligned arrays out of one scratch() allocation: a sizing pass, then pointers.
struct ScratchParts {
    size_t bytes = 0;
    template <typename X>
    size_t add(int64_t n) {
        const size_t at = bytes;
        bytes = (bytes + sizeof(X) * (size_t)n + 255) / 256 * 256;
        return at;
    }
};

}  // namespace

template <typename T>
void attention_forward(T* out, float* lse, const T* qkv, const int* lengths, int B, int T_, int C, int NH, float dropout_p,
                       uint64_t seed) {
    const int HS = check_arguments("forward", B, T_, C, NH);
    if (B == 0 || T_ == 0) return;
    const Shape shape = make_shape(T_, C, NH, dropout_p, seed);
    const int HSK = kernel_head_size(HS);
    if (runs_in_place(HS, {qkv})) return forward_heads(HSK, out, lse, qkv, lengths, B, shape);
    // qkv [N, 3C] -> [N, 3 NH HSK]; out [N, NH HSK] -> [N, C].
    const int64_t N = (int64_t)B * T_, CK = (int64_t)NH * HSK;
    ScratchParts parts;
    const size_t at_qkv = parts.add<T>(N * 3 * CK), at_out = parts.add<T>(N * CK);
    char* base = static_cast<char*>(scratch(parts.bytes));
    T *qkv_k = reinterpret_cast<T*>(base + at_qkv), *out_k = reinterpret_cast<T*>(base + at_out);
    pad_heads(qkv_k, qkv, N, 3 * NH, HS, HSK);
    forward_heads(HSK, out_k, lse, qkv_k, lengths, B, shape);
    unpad_heads<false>(out, out_k, N, NH, HS, HSK);
}

template <typename T>
void attention_backward(T* dqkv, const T* dout, const T* out, const T* qkv, const float* lse, const int* lengths, int B, int T_,
                        int C, int NH, float dropout_p, uint64_t seed) {
    const int HS = check_arguments("backward", B, T_, C, NH);
    if (!dqkv || B == 0 || T_ == 0) return;
    const Shape shape = make_shape(T_, C, NH, dropout_p, seed);
    const int HSK = kernel_head_size(HS);
    const int64_t rows = (int64_t)B * NH * T_;
    if (runs_in_place(HS, {qkv, dout})) {
        float* row_dot = static_cast<float*>(scratch(sizeof(float) * (size_t)rows));
        return backward_heads(HSK, dqkv, dout, out, qkv, lse, lengths, B, shape, row_dot);
    }
    // qkv, out, dout padded; the gradient into a zeroed padded dqkv, then added to dqkv. Padding
    // keys get 0 there, so their dqkv is left as it was (x + 0 = x).
    const int64_t N = (int64_t)B * T_, CK = (int64_t)NH * HSK;
    ScratchParts parts;
    const size_t at_qkv = parts.add<T>(N * 3 * CK), at_dqkv = parts.add<T>(N * 3 * CK), at_out = parts.add<T>(N * CK),
                 at_dout = parts.add<T>(N * CK), at_rows = parts.add<float>(rows);
    char* base = static_cast<char*>(scratch(parts.bytes));
    T *qkv_k = reinterpret_cast<T*>(base + at_qkv), *dqkv_k = reinterpret_cast<T*>(base + at_dqkv);
    T *out_k = reinterpret_cast<T*>(base + at_out), *dout_k = reinterpret_cast<T*>(base + at_dout);
    float* row_dot = reinterpret_cast<float*>(base + at_rows);
    pad_heads(qkv_k, qkv, N, 3 * NH, HS, HSK);
    pad_heads(out_k, out, N, NH, HS, HSK);
    pad_heads(dout_k, dout, N, NH, HS, HSK);
    WR_CUDA_CHECK(cudaMemsetAsync(dqkv_k, 0, sizeof(T) * (size_t)(N * 3 * CK), stream()));
    backward_heads(HSK, dqkv_k, dout_k, out_k, qkv_k, lse, lengths, B, shape, row_dot);
    unpad_heads<true>(dqkv, dqkv_k, N, 3 * NH, HS, HSK);
}

template void attention_forward<float>(float*, float*, const float*, const int*, int, int, int, int, float, uint64_t);
template void attention_forward<bf16>(bf16*, float*, const bf16*, const int*, int, int, int, int, float, uint64_t);
template void attention_backward<float>(float*, const float*, const float*, const float*, const float*, const int*, int, int, int,
                                        int, float, uint64_t);
template void attention_backward<bf16>(bf16*, const bf16*, const bf16*, const bf16*, const float*, const int*, int, int, int, int,
                                       float, uint64_t);

}  // namespace wr::cuda
