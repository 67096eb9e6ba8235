// kernels/matmul.cpp: the CPU linear layer and the one SGEMM under it.
//
// Every matrix product of the model runs through sgemm():
//   C[M,N] = (accumulate ? C : 0) + bias[N] + op(A)[M,K] @ op(B)[K,N]
// with op() a transpose or not, so the linear forward and both backward products are three calls
// with different transposes, not three loop nests:
//   forward   out[N,OC]     = inp[N,IC]    @ weight[OC,IC]^T   sgemm(no,  yes, M=N,  N=OC, K=IC)
//   backward  dinp[N,IC]   += dout[N,OC]   @ weight[OC,IC]     sgemm(no,  no,  M=N,  N=IC, K=OC)
//             dweight[OC,IC] += dout[N,OC]^T @ inp[N,IC]       sgemm(yes, no,  M=OC, N=IC, K=N)
//
// The algorithm is the classic Goto/BLIS one, run by each thread on its own block of C:
//   for jc over the block's columns in steps of NC
//     for pc over K in slices of KC
//       pack op(B)[pc:pc+KC, jc:jc+NC] into Bp: NR-wide column panels, each [KC][NR] contiguous
//       for ic over the block's rows in steps of MC (at most 24 panels)
//         pack op(A)[ic:ic+MC, pc:pc+KC] into Ap: MR-tall row panels, each [KC][MR] contiguous
//         for each NR panel jr, for each MR panel ir: micro-kernel C[MR,NR] (+)= Ap_ir @ Bp_jr
// Packing turns every transpose case into the same two contiguous streams (a row copy or an
// in-register VL x VL transpose, whichever the layout needs), zero-padded to whole panels so the
// micro-kernel never branches on edges (edge tiles are computed in full, only their valid part
// stored). The micro-kernel keeps an MR x NR tile of C in vector registers (MR x NV accumulators
// of VL floats) and per k does NV vector loads of B, MR broadcasts of A and MR*NV fused
// multiply-adds: with AVX-512, 14 x 32 (28 of the 32 zmm registers), which alone runs at ~97% of
// the FMA peak. A block of Ap (in L2) is reused across all NR panels of Bp, each panel of Bp
// across all MR panels of the block.
// Threads: C is cut into one block per thread (a grid along panel boundaries, chosen to balance
// multiply-adds and packing); each thread packs what its block needs and never waits for
// another until the end of the call. On a loaded machine a barrier inside the product is a
// chance to wait for a descheduled thread; without them this kernel ran 1.5-3x faster there
// than a version that shared packed panels between threads.
// Vectors: AVX-512 (VL=16) or AVX2+FMA (VL=8) intrinsics, else GCC vector extensions (VL=4,
// any target); the build's -march=native picks one. Tuned on AVX-512 only.
//
// Determinism: each element of C is computed by one thread, never reduced across threads, as
//   c = (((init + s_1) + s_2) + ...),   s_p = the FMA chain over slice p, k in order,
// init = (C or 0) + bias. The slices depend on K alone (slice_length); the thread count only
// changes which thread computes which tile, never this order. So results are bitwise identical
// for any thread count and schedule (not across vector ISAs: FMA vs separate multiply-add).
//
// Accuracy: fp32 accumulation. Each output satisfies the recursive-summation bound
//   |c - c_exact| <= gamma_n * (|init| + |bias| + sum_k |a_ik b_kj|),  gamma_n = n u / (1 - n u),
//   u = 2^-24,  n = (longest slice, <= 768) + (number of slices) + 1 <= K + 2
// (one rounding per FMA of a slice's chain, one per slice added to C, one for init); typical
// errors are far smaller (random signs: ~sqrt(n) u relative to sum |a b|).
//
// dbias is a column sum of dout, done directly: each column by one thread, rows in order.
// Left out: alpha/beta other than 0/1, strided batches (callers loop), non-fp32 types.
#include "kernels/matmul.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

namespace wr {
namespace {

// ---- vectors: the few operations the kernels need ----------------------------------------------
// vload_first / vstore_first touch only the first n < VL lanes (the rest load as 0).
#if defined(__AVX512F__)
using vfloat = __m512;
constexpr int VL = 16;
inline vfloat vzero() { return _mm512_setzero_ps(); }
inline vfloat vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, vfloat v) { _mm512_storeu_ps(p, v); }
inline vfloat vload_first(const float* p, int n) { return _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p); }
inline void vstore_first(float* p, vfloat v, int n) { _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), v); }
inline vfloat vset1(float x) { return _mm512_set1_ps(x); }
inline vfloat vadd(vfloat a, vfloat b) { return _mm512_add_ps(a, b); }
inline vfloat vfma(vfloat a, vfloat b, vfloat c) { return _mm512_fmadd_ps(a, b, c); }  // a*b+c
constexpr int MR = 14, NV = 2;  // 28 accumulators + 2 B vectors + 1 broadcast <= 32 zmm
#else
#if defined(__AVX2__) && defined(__FMA__)
using vfloat = __m256;
constexpr int VL = 8;
inline vfloat vfma(vfloat a, vfloat b, vfloat c) { return _mm256_fmadd_ps(a, b, c); }
constexpr int MR = 6, NV = 2;  // 12 accumulators + 2 + 1 <= 16 ymm
#else
typedef float vfloat __attribute__((vector_size(16)));
constexpr int VL = 4;
inline vfloat vfma(vfloat a, vfloat b, vfloat c) { return a * b + c; }
constexpr int MR = 6, NV = 2;
#endif
// Written with GCC vector extensions, which lower to whatever the target has.
inline vfloat vzero() { return vfloat{}; }
inline vfloat vload(const float* p) { vfloat v; std::memcpy(&v, p, sizeof v); return v; }
inline void vstore(float* p, vfloat v) { std::memcpy(p, &v, sizeof v); }
inline vfloat vload_first(const float* p, int n) {
    vfloat v = vzero();
    std::memcpy(&v, p, n * sizeof(float));
    return v;
}
inline void vstore_first(float* p, vfloat v, int n) { std::memcpy(p, &v, n * sizeof(float)); }
inline vfloat vset1(float x) { return vzero() + x; }
inline vfloat vadd(vfloat a, vfloat b) { return a + b; }
#endif
constexpr int NR = NV * VL;

// In-register transpose of VL rows of VL floats: log2(VL) stages, stage S swapping the
// off-diagonal S x S blocks of every 2S x 2S block (lane l of the pair (r[i], r[i+S]) comes from
// r[i] or r[i+S] as the masks say). GCC turns each __builtin_shuffle into one permute.
typedef int32_t vint __attribute__((vector_size(sizeof(vfloat))));
template <int S, bool LOW>
inline vint stage_mask() {
    vint m;
    for (int l = 0; l < VL; ++l) m[l] = LOW ? ((l & S) ? VL + l - S : l) : ((l & S) ? VL + l : l + S);
    return m;
}
template <int S>
inline void transpose_stage(vfloat* r) {
    if constexpr (S >= 1) {
        const vint low = stage_mask<S, true>(), high = stage_mask<S, false>();
#pragma GCC unroll 16
        for (int i = 0; i < VL; ++i)
            if (!(i & S)) {
                const vfloat a = r[i], b = r[i + S];
                r[i] = __builtin_shuffle(a, b, low);
                r[i + S] = __builtin_shuffle(a, b, high);
            }
        transpose_stage<S / 2>(r);
    }
}
inline void transpose(vfloat* r) { transpose_stage<VL / 2>(r); }

// ---- blocking ---------------------------------------------------------------------------------
constexpr int KC_MAX = 768;      // longest reduction slice (see slice_length: the summation order)
constexpr int MC_PANELS = 24;    // at most this many MR panels per packed block of A (MC x KC, in L2)
constexpr int NC = NR * 32;      // columns of B per packed block (KC x NC floats)

// The reduction is cut into ceil(K / KC_MAX) slices of equal length (rounded up to a multiple
// of 16, the last one shorter). A function of K alone: this fixes each output's summation order.
int slice_length(int K) {
    const int slices = std::max(1, (K + KC_MAX - 1) / KC_MAX);
    return std::max(16, ((K + slices - 1) / slices + 15) / 16 * 16);
}

// A 64-byte aligned float buffer owned by one thread, freed when the thread exits.
struct Buffer {
    float* p = nullptr;
    explicit Buffer(size_t n) : p(static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64))) {}
    ~Buffer() { std::free(p); }
};

// ---- packing ----------------------------------------------------------------------------------
// Panels of `width` lanes: P[p][k][l] = X(p*width + l, k) for k < kc, lanes past n zero; panel p
// starts at P + p*width*kc. X(i, k) is X[k*ld + i] when k_major (rows of X are k: straight
// copies, row by row so that the reads stream), else X[i*ld + k] (a transpose, VL x VL blocks at
// a time). Panels of op(A): i = row of C, width MR; panels of op(B): i = column of C, width NR.
void pack_panels(const float* X, int ld, bool k_major, int kc, int n, float* P, int width) {
    const int n_panels = (n + width - 1) / width;
    if (k_major) {
        for (int k = 0; k < kc; ++k)
            for (int p = 0; p < n_panels; ++p)
                for (int g = 0; g < width; g += VL) {  // groups of VL lanes
                    const int lanes = std::min(VL, width - g), valid = std::max(0, std::min(VL, n - p * width - g));
                    const float* src = X + (size_t)k * ld + p * width + g;
                    const vfloat v = valid == VL ? vload(src) : valid > 0 ? vload_first(src, valid) : vzero();
                    float* dst = P + ((size_t)p * kc + k) * width + g;
                    if (lanes == VL) vstore(dst, v);
                    else vstore_first(dst, v, lanes);
                }
        return;
    }
    for (int p = 0; p < n_panels; ++p)
        for (int g = 0; g < width; g += VL) {
            const int lanes = std::min(VL, width - g), valid = std::max(0, std::min(VL, n - p * width - g));
            for (int k0 = 0; k0 < kc; k0 += VL) {
                const int kn = std::min(VL, kc - k0);
                vfloat r[VL];
                for (int i = 0; i < VL; ++i) {
                    const float* src = X + (size_t)(p * width + g + i) * ld + k0;
                    r[i] = i >= valid ? vzero() : kn == VL ? vload(src) : vload_first(src, kn);
                }
                transpose(r);
                for (int k = 0; k < kn; ++k) {
                    float* dst = P + ((size_t)p * kc + k0 + k) * width + g;
                    if (lanes == VL) vstore(dst, r[k]);
                    else vstore_first(dst, r[k], lanes);
                }
            }
        }
}

// MR-row panels of op(A)[i0:i0+m, p0:p0+kc].
void pack_a(const float* A, int lda, bool trans, int i0, int m, int p0, int kc, float* Ap) {
    const float* X = trans ? A + (size_t)p0 * lda + i0 : A + (size_t)i0 * lda + p0;
    pack_panels(X, lda, trans, kc, m, Ap, MR);
}

// NR-column panels of op(B)[p0:p0+kc, j0:j0+n].
void pack_b(const float* B, int ldb, bool trans, int p0, int kc, int j0, int n, float* Bp) {
    const float* X = trans ? B + (size_t)j0 * ldb + p0 : B + (size_t)p0 * ldb + j0;
    pack_panels(X, ldb, !trans, kc, n, Bp, NR);
}

// ---- micro-kernel -----------------------------------------------------------------------------
// C[mr,nr] = init + Ap[KC][MR] @ Bp[KC][NR] (the valid mr x nr corner of the MR x NR tile), where
// init = (load_c ? C : 0) + (bias ? bias[j] : 0), added in that order, then the tile sum.
void micro_kernel(int kc, const float* __restrict Ap, const float* __restrict Bp, float* C, int ldc, int mr, int nr,
                  bool load_c, const float* bias) {
    // The C tile's rows are far apart; start fetching them (a 64-byte line at a time) now, they
    // are needed at the end.
    for (int i = 0; i < mr; ++i)
        for (int j = 0; j < nr; j += 16) __builtin_prefetch(C + (size_t)i * ldc + j, 1);
    vfloat acc[MR][NV];
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < NV; ++j) acc[i][j] = vzero();

    for (int k = 0; k < kc; ++k) {
        // The panels stream from L2 (a KC x NR panel of B outgrows L1 for KC > 384): ask for the
        // lines needed 16 steps ahead, two of B and (at least) one of A.
        __builtin_prefetch(Bp + (k + 16) * NR);
        __builtin_prefetch(Bp + (k + 16) * NR + 16);
        __builtin_prefetch(Ap + (k + 16) * MR);
        vfloat b[NV];
#pragma GCC unroll 8
        for (int j = 0; j < NV; ++j) b[j] = vload(Bp + k * NR + j * VL);
#pragma GCC unroll 32
        for (int i = 0; i < MR; ++i) {
            const vfloat a = vset1(Ap[k * MR + i]);
#pragma GCC unroll 8
            for (int j = 0; j < NV; ++j) acc[i][j] = vfma(a, b[j], acc[i][j]);
        }
    }

    if (mr == MR && nr == NR) {  // full tile: straight from registers
#pragma GCC unroll 32
        for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
            for (int j = 0; j < NV; ++j) {
                float* c = C + (size_t)i * ldc + j * VL;
                vfloat v = acc[i][j];
                if (load_c && bias) v = vadd(vadd(vload(c), vload(bias + j * VL)), v);
                else if (load_c) v = vadd(vload(c), v);
                else if (bias) v = vadd(vload(bias + j * VL), v);
                vstore(c, v);
            }
        return;
    }
    alignas(64) float tile[MR][NR];  // edge tile: same arithmetic, element by element
    for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NV; ++j) vstore(&tile[i][j * VL], acc[i][j]);
    for (int i = 0; i < mr; ++i)
        for (int j = 0; j < nr; ++j) {
            float* c = C + (size_t)i * ldc + j;
            float init = 0.0f;
            if (load_c && bias) init = *c + bias[j];
            else if (load_c) init = *c;
            else if (bias) init = bias[j];
            *c = (load_c || bias) ? init + tile[i][j] : tile[i][j];
        }
}

// ---- the blocked product and its split between threads ---------------------------------------
struct Gemm {
    bool trans_a, trans_b;
    int M, N, K;
    const float* A;
    int lda;
    const float* B;
    int ldb;
    float* C;
    int ldc;
    bool accumulate;
    const float* bias;
};

// C[i0:i1, j0:j1] for all of K, by the calling thread alone, with its own packing buffers.
// i0 and j0 are multiples of MR and NR.
void gemm_block(const Gemm& g, int i0, int i1, int j0, int j1) {
    static thread_local Buffer abuf((size_t)KC_MAX * MR * MC_PANELS), bbuf((size_t)KC_MAX * NC);
    float *Ap = abuf.p, *Bp = bbuf.p;
    const int KC = slice_length(g.K);
    const int P = (i1 - i0 + MR - 1) / MR, n_ic = (P + MC_PANELS - 1) / MC_PANELS;  // row blocks
    for (int jc = j0; jc < j1; jc += NC) {
        const int nc = std::min(NC, j1 - jc);
        // K == 0 still makes one pass (kc = 0) so that C gets its init and bias.
        for (int pc = 0; pc < std::max(g.K, 1); pc += KC) {
            const int kc = std::min(KC, g.K - pc);
            const bool load_c = g.accumulate || pc > 0;
            const float* bias = (g.bias && pc == 0) ? g.bias + jc : nullptr;
            pack_b(g.B, g.ldb, g.trans_b, pc, kc, jc, nc, Bp);
            for (int b = 0; b < n_ic; ++b) {  // row block b: panels [b*P/n_ic, (b+1)*P/n_ic)
                const int ic = i0 + b * P / n_ic * MR, mc = std::min(i0 + (b + 1) * P / n_ic * MR, i1) - ic;
                pack_a(g.A, g.lda, g.trans_a, ic, mc, pc, kc, Ap);
                for (int jr = 0; jr < nc; jr += NR)
                    for (int ir = 0; ir < mc; ir += MR)
                        micro_kernel(kc, Ap + (size_t)ir * kc, Bp + (size_t)jr * kc,
                                     g.C + (size_t)(ic + ir) * g.ldc + jc + jr, g.ldc, std::min(MR, mc - ir),
                                     std::min(NR, nc - jr), load_c, bias ? bias + jr : nullptr);
            }
        }
    }
}

// Part `part` of `parts` equal shares of C, computed by gemm_block. C is cut into a grid of
// tr x tc blocks (tr * tc = parts) along panel boundaries; each thread packs the A rows and the
// B columns of its own block, so no thread waits for another until the product is done (no
// barriers: on a loaded machine every barrier is a chance to wait for a descheduled thread).
// The grid minimizes the time of one block: its multiply-adds plus its packing, of which the
// duplicated part (all of B for a row split, all of A for a column split) is what a grid saves.
void gemm_part(const Gemm& g, int part, int parts) {
    const int P = (g.M + MR - 1) / MR, Q = (g.N + NR - 1) / NR;  // row and column panels
    constexpr double kPackCost = 40;  // packing one float costs about as much as 40 flops here
    int tr = 1;
    double best = 0;
    for (int r = 1; r <= parts; ++r) {
        if (parts % r) continue;
        const double rows = (double)((P + r - 1) / r) * MR, cols = (double)((Q + parts / r - 1) / (parts / r)) * NR;
        const double cost = 2 * rows * cols * g.K + kPackCost * g.K * (rows * std::ceil(cols / NC) + cols);
        if (r == 1 || cost < best) best = cost, tr = r;
    }
    const int tc = parts / tr, r = part / tc, c = part % tc;
    const int i0 = r * P / tr * MR, i1 = std::min((r + 1) * P / tr * MR, g.M);
    const int j0 = c * Q / tc * NR, j1 = std::min((c + 1) * Q / tc * NR, g.N);
    if (i0 < i1 && j0 < j1) gemm_block(g, i0, i1, j0, j1);
}

// dbias[j0:j1] += sum_n dout[n, j0:j1] for part `part` of `parts` column ranges, rows in order.
void bias_grad_part(float* dbias, const float* dout, int N, int OC, int part, int parts) {
    const int j0 = part * OC / parts, j1 = (part + 1) * OC / parts;
    for (int n = 0; n < N; ++n) {
        const float* row = dout + (size_t)n * OC;
        for (int j = j0; j < j1; ++j) dbias[j] += row[j];
    }
}

// Threads for a product of this many flops: all of them, unless already inside a parallel region
// (then the caller parallelizes) or too small to pay for waking them.
int threads_for(double flops) { return (omp_in_parallel() || flops < 2e5) ? 1 : omp_get_max_threads(); }

}  // namespace

void sgemm(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C,
           int ldc, bool accumulate, const float* bias) {
    if (M <= 0 || N <= 0) return;
    const Gemm g{trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc, accumulate, bias};
    const int threads = threads_for(2.0 * M * N * std::max(K, 1));
#pragma omp parallel num_threads(threads)
    gemm_part(g, omp_get_thread_num(), omp_get_num_threads());
}

void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N, int IC, int OC) {
    sgemm(false, true, N, OC, IC, inp, IC, weight, IC, out, OC, /*accumulate=*/false, bias);
}

void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int IC, int OC) {
    if (N <= 0 || OC <= 0) return;
    // The three gradients are independent: one parallel region, each thread doing its share of
    // each, with no barrier in between.
    const Gemm gi{false, false, N, IC, OC, dout, OC, weight, IC, dinp, IC, true, nullptr};  // dinp += dout @ W
    const Gemm gw{true, false, OC, IC, N, dout, OC, inp, IC, dweight, IC, true, nullptr};   // dW += dout^T @ inp
    const int threads = threads_for(2.0 * N * IC * OC * ((dinp != nullptr) + (dweight != nullptr)) + (double)N * OC);
#pragma omp parallel num_threads(threads)
    {
        const int t = omp_get_thread_num(), T = omp_get_num_threads();
        if (dinp && IC > 0) gemm_part(gi, t, T);
        if (dweight && IC > 0) gemm_part(gw, t, T);
        if (dbias) bias_grad_part(dbias, dout, N, OC, t, T);
    }
}

}  // namespace wr
