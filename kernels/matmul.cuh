// kernels/matmul.cuh: the linear layer on the GPU through cuBLASLt (CPU version: matmul.h).
// Operands T (float or bf16), accumulation in fp32 (CUBLAS_COMPUTE_32F; TF32 is NOT used, so
// fp32 mode matches the CPU to float rounding). The forward fuses the bias add into the GEMM
// (CUBLASLT_EPILOGUE_BIAS) when the bias is 16-byte aligned, and adds any other bias with a kernel
// after it (matmul.cu says why); the weight gradient is written straight into the fp32 gradient
// buffer (bf16 A and B with an fp32 C, beta = 1 to accumulate). The bias gradient is a column
// sum of dout by a kernel of our own (deterministic, and it accumulates as every backward does;
// cuBLASLt's BGRADB epilogue overwrites). GELU is not fused into the epilogue: cuBLASLt's GELU is
// the tanh approximation, and the model is the exact erf GELU of Hugging Face BERT.
#pragma once
#include "kernels/cuda_common.cuh"

namespace wr::cuda {

// out[N,OC] = inp[N,IC] @ weight[OC,IC]^T + bias[OC]      (bias may be null)
template <typename T>
void matmul_forward(T* out, const T* inp, const T* weight, const T* bias, int N, int IC, int OC);

// dinp[N,IC]     += dout[N,OC] @ weight[OC,IC]          (T)
// dweight[OC,IC] += dout[N,OC]^T @ inp[N,IC]            (float)
// dbias[OC]      += sum over rows of dout               (float)
// any gradient may be null.
template <typename T>
void matmul_backward(T* dinp, float* dweight, float* dbias, const T* dout, const T* inp, const T* weight, int N, int IC,
                     int OC);

// The cuBLASLt plans kept (all devices together; at most kMaxMatmulPlans, least recently used
// forgotten first), and the plans made since the process started (each a heuristic query): for
// tests and diagnostics.
constexpr size_t kMaxMatmulPlans = 256;
size_t matmul_plans_cached();
size_t matmul_plans_made();

// dbias[OC] += sum_n dout[n, OC]: per-block partial sums over row chunks, then the chunks in order.
template <typename T>
void bias_backward(float* dbias, const T* dout, int N, int OC);

}  // namespace wr::cuda
