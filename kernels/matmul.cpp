// kernels/matmul.cpp: the CPU linear layer and the one GEMM driver under it.
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
// Vectors: the packing and micro-kernel live in kernels/matmul_fp32.inc, compiled three times:
// AVX-512 (VL=16), AVX2+FMA (VL=8) and baseline x86-64 with GCC vector extensions (VL=4); this
// file chooses one at run time (common/cpu_isa.h). Tuned on AVX-512 only.
//
// Determinism: each element of C is computed by one thread, never reduced across threads, as
//   c = (((init + s_1) + s_2) + ...),   s_p = the FMA chain over slice p, k in order,
// init = (C or 0) + bias. The slices depend on K alone (slice_length); the thread count only
// changes which thread computes which tile, never this order. So results are bitwise identical
// for any thread count and schedule, and between the AVX2 and AVX-512 kernels (both FMA); the
// generic kernel rounds each multiply and add separately.
//
// bf16 (MatmulPrecision::bf16): both operands are rounded to bf16 (nearest, ties to even) as they
// are packed, products and sums are fp32. With AMX (kernels/matmul_bf16_amx.cpp) the product runs
// on the tile unit, else on AVX512-BF16 (kernels/matmul_bf16_avx512bf16.cpp), else the fp32
// kernel multiplies the rounded values (a product of two bf16 numbers is exact in fp32, so this
// fallback is the bf16 product with fp32 sums). Deterministic per kernel for any thread count.
//
// Accuracy: fp32 accumulation. Each output satisfies the recursive-summation bound
//   |c - c_exact| <= gamma_n * (|init| + |bias| + sum_k |a_ik b_kj|),  gamma_n = n u / (1 - n u),
//   u = 2^-24,  n = (longest slice, <= 768) + (number of slices) + 1 <= K + 2
// (one rounding per FMA of a slice's chain, one per slice added to C, one for init); typical
// errors are far smaller (random signs: ~sqrt(n) u relative to sum |a b|).
//
// dbias is a column sum of dout, done directly: each column by one thread, rows in order.
// Left out: alpha/beta other than 0/1, strided batches (callers loop), bf16 storage of C.
#include "kernels/matmul.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "common/cpu_isa.h"
#include "kernels/gemm_kernels.h"

namespace wr {
namespace {

// The kernel for a precision on the instruction-set level in use.
const GemmKernel& pick_kernel(MatmulPrecision precision) {
    const CpuIsa isa = cpu_isa();
    if (precision == MatmulPrecision::bf16) {
        if (isa >= CpuIsa::amx) return gemm_bf16_amx;
        if (isa >= CpuIsa::avx512bf16) return gemm_bf16_avx512bf16;
    }
    if (isa >= CpuIsa::avx512) return gemm_fp32_avx512;
    if (isa >= CpuIsa::avx2) return gemm_fp32_avx2;
    return gemm_fp32_generic;
}

// Part `part` of `parts` equal shares of C, computed by the kernel's block function. C is cut into
// a grid of tr x tc blocks (tr * tc = parts) along panel boundaries; each thread packs the A rows
// and the B columns of its own block, so no thread waits for another until the product is done
// (no barriers: on a loaded machine every barrier is a chance to wait for a descheduled thread).
// The grid minimizes the time of one block: its multiply-adds plus its packing, of which the
// duplicated part (all of B for a row split, all of A for a column split) is what a grid saves.
void gemm_part(const GemmKernel& kernel, const GemmArgs& g, int part, int parts) {
    const int MR = kernel.mr, NR = kernel.nr;
    const int P = (g.M + MR - 1) / MR, Q = (g.N + NR - 1) / NR;  // row and column panels
    constexpr double kPackCost = 40;  // packing one float costs about as much as 40 flops here
    int tr = 1;
    double best = 0;
    for (int r = 1; r <= parts; ++r) {
        if (parts % r) continue;
        const double rows = (double)((P + r - 1) / r) * MR, cols = (double)((Q + parts / r - 1) / (parts / r)) * NR;
        const double cost = 2 * rows * cols * g.K + kPackCost * g.K * (rows * std::ceil(cols / kernel.nc) + cols);
        if (r == 1 || cost < best) best = cost, tr = r;
    }
    const int tc = parts / tr, r = part / tc, c = part % tc;
    const int i0 = r * P / tr * MR, i1 = std::min((r + 1) * P / tr * MR, g.M);
    const int j0 = c * Q / tc * NR, j1 = std::min((c + 1) * Q / tc * NR, g.N);
    if (i0 < i1 && j0 < j1) kernel.block(g, i0, i1, j0, j1);
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

const char* gemm_kernel_name(MatmulPrecision precision) { return pick_kernel(precision).name; }

void sgemm(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C,
           int ldc, bool accumulate, const float* bias, MatmulPrecision precision) {
    if (M <= 0 || N <= 0) return;
    const GemmKernel& kernel = pick_kernel(precision);
    const GemmArgs g{trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc, accumulate, bias, precision == MatmulPrecision::bf16};
    const int threads = threads_for(2.0 * M * N * std::max(K, 1));
#pragma omp parallel num_threads(threads)
    gemm_part(kernel, g, omp_get_thread_num(), omp_get_num_threads());
}

void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N, int IC, int OC,
                    MatmulPrecision precision) {
    sgemm(false, true, N, OC, IC, inp, IC, weight, IC, out, OC, /*accumulate=*/false, bias, precision);
}

void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int IC, int OC, MatmulPrecision precision) {
    if (N <= 0 || OC <= 0) return;
    const GemmKernel& kernel = pick_kernel(precision);
    const bool round = precision == MatmulPrecision::bf16;
    // The three gradients are independent: one parallel region, each thread doing its share of
    // each, with no barrier in between.
    const GemmArgs gi{false, false, N, IC, OC, dout, OC, weight, IC, dinp, IC, true, nullptr, round};  // dinp += dout @ W
    const GemmArgs gw{true, false, OC, IC, N, dout, OC, inp, IC, dweight, IC, true, nullptr, round};   // dW += dout^T @ inp
    const int threads = threads_for(2.0 * N * IC * OC * ((dinp != nullptr) + (dweight != nullptr)) + (double)N * OC);
#pragma omp parallel num_threads(threads)
    {
        const int t = omp_get_thread_num(), T = omp_get_num_threads();
        if (dinp && IC > 0) gemm_part(kernel, gi, t, T);
        if (dweight && IC > 0) gemm_part(kernel, gw, t, T);
        if (dbias) bias_grad_part(dbias, dout, N, OC, t, T);
    }
}

}  // namespace wr
