// kernels/gemm_kernels.h: the interface between the GEMM driver (kernels/matmul.cpp: threads,
// the split of C between them, the choice of kernel) and the kernels compiled once per
// instruction set (kernels/matmul_*.cpp). Internal to kernels/; callers use kernels/matmul.h.
//
// A kernel computes one rectangular block of C on the calling thread, with its own packing
// buffers:   C[i0:i1, j0:j1] = (accumulate ? C : 0) + bias + op(A) @ op(B)   over all of K.
// i0 and j0 are multiples of the kernel's mr and nr (its register or tile block), which the
// driver needs to cut C along panel boundaries.
//
// The translation units that define these are compiled with wider -march flags than the rest of
// the build. They include no C++ library header with inline functions or templates (no <vector>,
// <algorithm>, ...): an inline function compiled there for AVX-512 could be the copy the linker
// keeps for the whole program, and then crash a CPU without AVX-512.
#pragma once

namespace wr {

struct GemmArgs {
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
    bool round_bf16;  // fp32 kernels: round both operands to bf16 while packing (the bf16 fallback)
};

struct GemmKernel {
    const char* name;      // "fp32 avx512 14x32", "bf16 amx 32x32"
    int mr, nr;            // rows and columns of C per micro-kernel call
    int nc;                // columns of C per packed block of B (the split prefers multiples of it)
    void (*block)(const GemmArgs& g, int i0, int i1, int j0, int j1);
};

// fp32: the same summation order on every instruction set (see kernels/matmul.cpp), FMA on all
// but generic.
extern const GemmKernel gemm_fp32_generic, gemm_fp32_avx2, gemm_fp32_avx512;
// bf16 operands, fp32 accumulation.
extern const GemmKernel gemm_bf16_avx512bf16, gemm_bf16_amx;

// ---- helpers for the kernel files (static: each translation unit keeps its own copy) ----------
static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

// The fp32 kernels cut the reduction into ceil(K / kKcMax) slices of equal length (rounded up to
// a multiple of 16, the last one shorter). A function of K alone: this fixes each output's
// summation order, the same for every fp32 kernel, thread count and split of C.
constexpr int kKcMax = 768;
static inline int slice_length(int K) {
    const int slices = imax(1, (K + kKcMax - 1) / kKcMax);
    return imax(16, ((K + slices - 1) / slices + 15) / 16 * 16);
}

}  // namespace wr
