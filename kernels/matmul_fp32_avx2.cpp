// kernels/matmul_fp32_avx2.cpp: the fp32 GEMM kernel (kernels/matmul_fp32.inc) compiled for
// AVX2 + FMA (x86-64-v3, 8-wide); the Makefile gives files named *_avx2.cpp their -march.
#define WR_GEMM_KERNEL gemm_fp32_avx2
#include "kernels/matmul_fp32.inc"
