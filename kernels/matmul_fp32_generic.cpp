// kernels/matmul_fp32_generic.cpp: the fp32 GEMM kernel (kernels/matmul_fp32.inc) compiled for
// baseline x86-64 (GCC vector extensions, 4-wide, no FMA); the Makefile gives files named *_generic.cpp their -march.
#define WR_GEMM_KERNEL gemm_fp32_generic
#include "kernels/matmul_fp32.inc"
