// kernels/matmul_fp32_avx512.cpp: the fp32 GEMM kernel (kernels/matmul_fp32.inc) compiled for
// AVX-512 (x86-64-v4, 16-wide); the Makefile gives files named *_avx512.cpp their -march.
#define WR_GEMM_KERNEL gemm_fp32_avx512
#include "kernels/matmul_fp32.inc"
