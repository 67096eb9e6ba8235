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
// The algorithm is the classic Goto/BLIS one:
//   for jc over N in steps of NC                       (a column block of C)
//     for pc over K in steps of KC                     (a slice of the reduction)
//       pack op(B)[pc:pc+KC, jc:jc+NC] into Bp: NR-wide column panels, each [KC][NR] contiguous
//       for each work item = (row block of MC rows, range of NR panels)      <- OpenMP
//         pack op(A)[ic:ic+MC, pc:pc+KC] into Ap: MR-tall row panels, each [KC][MR] contiguous
//         for each NR panel jr, for each MR panel ir: micro-kernel C[MR,NR] (+)= Ap_ir @ Bp_jr
// Packing turns every transpose case into the same two contiguous streams, zero-padded to whole
// panels so the micro-kernel never branches on edges (edge tiles are computed in full and only
// their valid part is stored). The micro-kernel keeps an MR x NR tile of C in vector registers
// (MR x NV accumulators of VL floats each) and per k does NV vector loads of B, MR broadcasts
// of A and MR*NV fused multiply-adds. Sizes: a KC x NR panel of B (32 KiB) stays in L1 while the
// MR panels of the MC x KC block of A (in L2) stream past it.
// Vectors: AVX-512 (VL=16) or AVX2+FMA (VL=8) intrinsics, else GCC vector extensions (VL=4,
// any target); the build's -march=native picks one.
//
// Determinism: C elements are split between threads (by row blocks and column panels), never a
// reduction: each element is computed by one thread as
//   c = (((init + s_0) + s_1) + ...),  s_p = sum over k in slice p, in k order, by FMA chains,
// with init = C or 0, plus bias. The slices are fixed by KC, a constant; the thread count only
// changes the work split (MC, item ranges), never this order. So results are bitwise identical
// for any thread count and schedule (not across vector ISAs: FMA vs separate multiply-add).
//
// Accuracy: fp32 accumulation. Each output satisfies the usual recursive-summation bound
//   |c - c_exact| <= gamma_n * (|init| + |bias| + sum_k |a_ik b_kj|),  gamma_n = n u / (1 - n u),
//   n = min(K, KC) + ceil(K / KC) + 2,  u = 2^-24,
// (a chain of at most KC FMAs per slice, then one add per slice) - tighter than the n = K of a
// plain loop; observed errors are far smaller (random signs, ~sqrt(n) u).
//
// Left out: alpha/beta other than 0/1, strided batches (callers loop), non-fp32 types.
#include "kernels/matmul.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif
#ifndef XMR
#define XMR 14
#define XNV 2
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
constexpr int MR = XMR, NV = XNV;  // 28 accumulators + 2 B vectors + 1 broadcast <= 32 zmm
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
inline vfloat vload_first(const float* p, int n) { vfloat v = vzero(); std::memcpy(&v, p, n * sizeof(float)); return v; }
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
#ifndef XKC
#define XKC 256
#endif
#ifndef XMCP
#define XMCP 24
#endif
#ifndef XNCP
#define XNCP 32
#endif
constexpr int KC = XKC;                  // reduction slice; fixed: it defines the summation order
constexpr int MC_MAX = MR * XMCP;        // rows of A per packed block (MC x KC floats, in L2)
constexpr int NC = NR * XNCP;            // columns of B per packed block (KC x NC floats)

// A 64-byte aligned float buffer owned by one thread, freed when the thread exits.
struct Buffer {
    float* p = nullptr;
    explicit Buffer(size_t n) : p(static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64))) {}
    ~Buffer() { std::free(p); }
};

// ---- packing ----------------------------------------------------------------------------------
// One panel: P[k][i] = X(i, k) for k < kc, i < n, lanes n..width-1 zero (P has row stride width).
// X(i, k) is X[k*ld + i] when k_major (rows of X are k: a straight copy), else X[i*ld + k]
// (a transpose, VL x VL blocks at a time). A panel of op(A) is X = A with i = row of C; a panel
// of op(B) is X = B with i = column of C; which of the two layouts applies depends on the transpose.
void pack_panel(const float* X, int ld, bool k_major, int kc, int n, float* P, int width) {
    for (int g = 0; g < width; g += VL) {  // groups of VL lanes
        const int w = std::min(VL, width - g), rows = std::max(0, std::min(VL, n - g));
        if (k_major) {
            for (int k = 0; k < kc; ++k) {
                const float* src = X + (size_t)k * ld + g;
                const vfloat v = rows == VL ? vload(src) : rows > 0 ? vload_first(src, rows) : vzero();
                if (w == VL) vstore(P + (size_t)k * width + g, v);
                else vstore_first(P + (size_t)k * width + g, v, w);
            }
            continue;
        }
        for (int k0 = 0; k0 < kc; k0 += VL) {
            const int kn = std::min(VL, kc - k0);
            vfloat r[VL];
            for (int i = 0; i < VL; ++i) {
                const float* src = X + (size_t)(g + i) * ld + k0;
                r[i] = i >= rows ? vzero() : kn == VL ? vload(src) : vload_first(src, kn);
            }
            transpose(r);
            for (int k = 0; k < kn; ++k) {
                if (w == VL) vstore(P + (size_t)(k0 + k) * width + g, r[k]);
                else vstore_first(P + (size_t)(k0 + k) * width + g, r[k], w);
            }
        }
    }
}

// Ap = MR-row panels of op(A)[i0:i0+mc, p0:p0+kc], each [kc][MR].
void pack_a(const float* A, int lda, bool trans, int i0, int mc, int p0, int kc, float* Ap) {
    for (int ip = 0; ip < mc; ip += MR) {
        const float* X = trans ? A + (size_t)p0 * lda + i0 + ip : A + (size_t)(i0 + ip) * lda + p0;
        pack_panel(X, lda, trans, kc, std::min(MR, mc - ip), Ap + (size_t)ip * kc, MR);
    }
}

// One NR-column panel of op(B)[p0:p0+kc, j0:j0+nr], [kc][NR].
void pack_b_panel(const float* B, int ldb, bool trans, int p0, int kc, int j0, int nr, float* Bp) {
    const float* X = trans ? B + (size_t)j0 * ldb + p0 : B + (size_t)p0 * ldb + j0;
    pack_panel(X, ldb, !trans, kc, nr, Bp, NR);
}

// ---- micro-kernel -----------------------------------------------------------------------------
// C[mr,nr] = init + Ap[KC][MR] @ Bp[KC][NR] (the valid mr x nr corner of the MR x NR tile), where
// init = (load_c ? C : 0) + (bias ? bias[j] : 0), added in that order, then the tile sum.
void micro_kernel(int kc, const float* __restrict Ap, const float* __restrict Bp, float* C, int ldc, int mr, int nr,
                  bool load_c, const float* bias) {
    vfloat acc[MR][NV];
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < NV; ++j) acc[i][j] = vzero();

    for (int k = 0; k < kc; ++k) {
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

}  // namespace

void sgemm(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C,
           int ldc, bool accumulate, const float* bias) {
    if (M <= 0 || N <= 0) return;
    // Threads: all of them, unless nested inside a parallel region or too small to pay a fork.
    const double flops = 2.0 * M * N * std::max(K, 1);
    const int nthreads = (omp_in_parallel() || flops < 2e5) ? 1 : omp_get_max_threads();

    // Row blocks: as many as MC_MAX needs, rounded up to a multiple of the thread count while
    // blocks stay at least 4 panels tall, then evened out. If that still does not divide among
    // the threads, column panels are split too, so every thread gets a share of similar size.
    int n_ic = (M + MC_MAX - 1) / MC_MAX;
    if (nthreads > 1) {
        const int rounded = (n_ic + nthreads - 1) / nthreads * nthreads;
        if (M >= rounded * 4 * MR) n_ic = rounded;
    }
    const int mc_block = ((M + n_ic - 1) / n_ic + MR - 1) / MR * MR;
    n_ic = (M + mc_block - 1) / mc_block;
    const int n_j = (nthreads > 1 && n_ic % nthreads != 0) ? nthreads * 2 : 1;

    static thread_local Buffer bbuf((size_t)KC * NC);  // shared by the team of this call
    float* Bp = bbuf.p;

#pragma omp parallel num_threads(nthreads)
    {
        static thread_local Buffer abuf((size_t)KC * MC_MAX);  // private to each thread
        float* Ap = abuf.p;
        for (int jc = 0; jc < N; jc += NC) {
            const int nc = std::min(NC, N - jc);
            const int n_panels = (nc + NR - 1) / NR;
            // K == 0 still makes one pass (kc = 0) so that C gets its init and bias.
            for (int pc = 0; pc < std::max(K, 1); pc += KC) {
                const int kc = std::min(KC, K - pc);
                const bool load_c = accumulate || pc > 0;
                const float* bias_here = (bias && pc == 0) ? bias + jc : nullptr;
#pragma omp for schedule(static)
                for (int q = 0; q < n_panels; ++q)
                    pack_b_panel(B, ldb, trans_b, pc, kc, jc + q * NR, std::min(NR, nc - q * NR), Bp + (size_t)q * NR * kc);
#pragma omp for schedule(dynamic)
                for (int item = 0; item < n_ic * n_j; ++item) {
                    const int ic = (item / n_j) * mc_block, mc = std::min(mc_block, M - ic);
                    const int q0 = (item % n_j) * n_panels / n_j, q1 = (item % n_j + 1) * n_panels / n_j;
                    if (q0 == q1) continue;
                    pack_a(A, lda, trans_a, ic, mc, pc, kc, Ap);
                    for (int q = q0; q < q1; ++q) {
                        const int nr = std::min(NR, nc - q * NR);
                        for (int ip = 0; ip < mc; ip += MR)
                            micro_kernel(kc, Ap + (size_t)ip * kc, Bp + (size_t)q * NR * kc,
                                         C + (size_t)(ic + ip) * ldc + jc + q * NR, ldc, std::min(MR, mc - ip), nr,
                                         load_c, bias_here ? bias_here + q * NR : nullptr);
                    }
                }
            }
        }
    }
}

void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N, int IC, int OC) {
    sgemm(false, true, N, OC, IC, inp, IC, weight, IC, out, OC, /*accumulate=*/false, bias);
}

void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int IC, int OC) {
    if (dinp) sgemm(false, false, N, IC, OC, dout, OC, weight, IC, dinp, IC, /*accumulate=*/true);
    if (dweight) sgemm(true, false, OC, IC, N, dout, OC, inp, IC, dweight, IC, /*accumulate=*/true);
    if (dbias) {
        // Each column summed by one thread, rows in order: deterministic for any thread count.
        const int chunk = 64;
#pragma omp parallel for schedule(static) if ((double)N * OC > 1e5 && !omp_in_parallel())
        for (int j0 = 0; j0 < OC; j0 += chunk) {
            const int j1 = std::min(OC, j0 + chunk);
            for (int n = 0; n < N; ++n) {
                const float* row = dout + (size_t)n * OC;
                for (int j = j0; j < j1; ++j) dbias[j] += row[j];
            }
        }
    }
}

}  // namespace wr
