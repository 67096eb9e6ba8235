// kernels/matmul.h: the linear layer (matmul + bias) on the CPU, and the general blocked SGEMM
// underneath it that every product in the engine goes through (forward, both backward products,
// and any other caller with strided operands, e.g. attention per head).
// Letters as in kernels/common.h; the algorithm, blocking, determinism and error bound are
// described at the top of kernels/matmul.cpp.
#pragma once
#include "kernels/common.h"

namespace wr {

// The precision of the products: fp32, or bf16 operands (each rounded to the nearest bf16 as it
// is packed) with fp32 products, sums and output. Inputs and outputs are fp32 arrays either way.
enum class MatmulPrecision { fp32, bf16 };

// C[M,N] = (accumulate ? C : 0) + bias[N] (broadcast over rows, when bias != null) + op(A) @ op(B)
//   op(A) is [M,K]: A is [M,K] with row stride lda, or, when trans_a, A is [K,M] (stride lda);
//   op(B) is [K,N]: B is [K,N] with row stride ldb, or, when trans_b, B is [N,K] (stride ldb).
// fp32 arrays, fp32 accumulation (operands rounded to bf16 first in bf16 precision), row-major, C has row stride ldc. Deterministic: each C element is
// summed in the same order whatever the thread count. Runs serially when called from inside an
// OpenMP parallel region (so per-head callers can parallelize outside it).
void sgemm(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C,
           int ldc, bool accumulate, const float* bias = nullptr, MatmulPrecision precision = MatmulPrecision::fp32);

// The kernel sgemm uses for a precision on this machine's instruction-set level (common/cpu_isa.h),
// for start-up lines and benchmarks: "gemm_fp32_avx512", "gemm_bf16_amx".
const char* gemm_kernel_name(MatmulPrecision precision);

// Linear forward, PyTorch layout (weight is [out, in]):
//   out[N,OC] = inp[N,IC] @ weight[OC,IC]^T + bias[OC]        (bias may be null)
void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N, int IC, int OC,
                    MatmulPrecision precision = MatmulPrecision::fp32);

// Linear backward; ACCUMULATES into every gradient given, any of which may be null:
//   dinp[N,IC]     += dout[N,OC] @ weight[OC,IC]
//   dweight[OC,IC] += dout[N,OC]^T @ inp[N,IC]
//   dbias[OC]      += sum_n dout[n,:]
void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int IC, int OC, MatmulPrecision precision = MatmulPrecision::fp32);

}  // namespace wr
