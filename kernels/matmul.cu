// kernels/matmul.cu: the linear layer on the GPU (interface and conventions: matmul.cuh; CPU
// version: matmul.cpp). The three products go to cuBLASLt; the bias gradient is our own
// two-kernel column sum.
//
// Row-major arrays seen by a column-major library. cuBLASLt reads matrices column-major: a
// row-major X[R, Cc] (row stride Cc) is, to it, the column-major matrix X^T with Cc rows, R columns
// and leading dimension Cc, without moving a byte. So each row-major product Y = P @ Q is handed
// over as its transpose Y^T = Q^T @ P^T, whose operands are exactly the arrays we have:
//
//   forward   out[N,OC] = inp[N,IC] @ W[OC,IC]^T    as   out^T[OC,N]   = W[OC,IC]      @ inp^T[IC,N]
//             A = W     stored [IC rows, OC cols], op T   ->  m = OC, n = N, k = IC
//             B = inp   stored [IC rows, N cols],  op N
//             D = out   stored [OC rows, N cols]; bias[OC] has D's row count, broadcast over columns
//   dinp      dinp[N,IC] += dout[N,OC] @ W[OC,IC]     as   dinp^T[IC,N]  += W^T[IC,OC]   @ dout^T[OC,N]
//             A = W     stored [IC rows, OC cols], op N   ->  m = IC, n = N, k = OC
//             B = dout  stored [OC rows, N cols],  op N
//   dweight   dW[OC,IC] += dout[N,OC]^T @ inp[N,IC]  as   dW^T[IC,OC]   += inp^T[IC,N]  @ dout[N,OC]
//             A = inp   stored [IC rows, N cols],  op N   ->  m = IC, n = OC, k = N
//             B = dout  stored [OC rows, N cols],  op T
// Every stored matrix is packed, so its leading dimension is its stored row count. The
// accumulating products run with beta = 1 and C = D (in place, one layout for both).
//
// Types: A and B are T; D is T, except dweight, which is the fp32 gradient buffer (bf16 A and B
// with an fp32 C/D is one of cuBLASLt's supported combinations). Compute CUBLAS_COMPUTE_32F with
// fp32 alpha/beta: bf16 products are exact in fp32, and fp32 operands are NOT rounded to TF32.
//
// Plans: a matmul descriptor, three layouts and the algorithm cuBLASLt's heuristic picks are
// made once per distinct product (device, shape, transposes, types, bias or not, pointer
// alignments) and reused; the heuristic query costs more than many of the GEMMs. They are kept in
// a least-recently-used cache of kMaxMatmulPlans (a run whose shapes keep changing does not grow it
// without end; a forgotten plan's descriptors are destroyed). The pointer alignments are part of
// the key because an algorithm chosen for 16-byte aligned operands may not run on less aligned
// ones (views into the flat parameter buffer, odd row lengths), and the heuristic is told each
// operand's actual alignment (CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_{A,B,C,D}_BYTES). One algorithm
// per plan also keeps results identical from call to call (cuBLASLt is deterministic for a fixed
// algorithm).
//
// The bias. The preferences above do not cover the epilogue's bias pointer, so the heuristic may
// pick a kernel that reads the bias 16 bytes at a time and faults with a misaligned address on a
// bias that is not 16-byte aligned (a sticky error: the process's CUDA context is lost). Biases are
// views into the flat parameter buffer (a layer's slice of a stacked [L, F] bias starts l * F
// elements in), so they need not be. The epilogue is used only for a 16-byte aligned bias; any
// other bias is added by a kernel of our own after the product (bias_add_kernel), which rounds the
// product to T before adding (the epilogue adds in fp32): a difference of one rounding in bf16.
#include "kernels/matmul.cuh"

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>
#include <tuple>

#include "common/lru_cache.h"
#include "common/util.h"

namespace wr::cuda {
namespace {

template <typename T> constexpr cudaDataType_t data_type();
template <> constexpr cudaDataType_t data_type<float>() { return CUDA_R_32F; }
template <> constexpr cudaDataType_t data_type<bf16>() { return CUDA_R_16BF; }

// The largest power of two, at most 256 (cuBLASLt's default assumption), dividing the address.
uint32_t alignment_of(const void* p) {
    uint32_t align = 256;
    while (align > 1 && (uintptr_t)p % align != 0) align /= 2;
    return align;
}

// One column-major product D[m,n] = op(A)[m,k] @ op(B)[k,n] (+ D when accumulating)
// (+ bias[m] on every column), with packed operands; also the key of its cached plan.
struct Gemm {
    int device = 0;
    bool trans_a = false, trans_b = false;
    int m = 0, n = 0, k = 0;
    cudaDataType_t ab_type = CUDA_R_32F, d_type = CUDA_R_32F;
    bool has_bias = false;
    uint32_t align_a = 0, align_b = 0, align_d = 0, align_bias = 0;

    auto key() const {
        return std::tie(device, trans_a, trans_b, m, n, k, ab_type, d_type, has_bias, align_a, align_b, align_d, align_bias);
    }
    bool operator<(const Gemm& o) const { return key() < o.key(); }
    std::string describe() const {
        return "device " + std::to_string(device) + ": m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k) +
               (trans_a ? " A^T" : " A") + (trans_b ? " B^T" : " B") + (ab_type == CUDA_R_16BF ? " bf16" : " fp32") +
               (d_type == CUDA_R_16BF ? "->bf16" : "->fp32") + (has_bias ? " +bias" : "") +
               " align " + std::to_string(align_a) + "/" + std::to_string(align_b) + "/" + std::to_string(align_d) +
               "/" + std::to_string(align_bias);
    }
};

// The descriptors and algorithm of one product; owns the descriptors (destroyed with it).
struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;  // d serves as C too
    cublasLtMatmulAlgo_t algo{};

    Plan() = default;
    Plan(Plan&& o) noexcept { *this = std::move(o); }
    Plan& operator=(Plan&& o) noexcept {
        if (this != &o) {
            release();
            desc = o.desc, a = o.a, b = o.b, d = o.d, algo = o.algo;
            o.desc = nullptr, o.a = o.b = o.d = nullptr;
        }
        return *this;
    }
    Plan(const Plan&) = delete;
    Plan& operator=(const Plan&) = delete;
    ~Plan() { release(); }

  private:
    void release() {  // host objects: no device work to wait for
        if (desc) cublasLtMatmulDescDestroy(desc);
        for (cublasLtMatrixLayout_t layout : {a, b, d})
            if (layout) cublasLtMatrixLayoutDestroy(layout);
        desc = nullptr, a = b = d = nullptr;
    }
};

template <typename V>
void set_desc(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attribute, const V& value) {
    WR_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc, attribute, &value, sizeof(value)));
}
template <typename V>
void set_pref(cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attribute, const V& value) {
    WR_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attribute, &value, sizeof(value)));
}

// Builds the descriptors of g and asks the heuristic for its best algorithm. `bias` is the
// call's bias pointer (the heuristic reads its alignment from the descriptor).
Plan make_plan(const Gemm& g, const void* bias) {
    Plan p;
    WR_CUDA_CHECK(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t op_a = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, op_b = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    set_desc(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, op_a);
    set_desc(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, op_b);
    if (g.has_bias) {
        set_desc(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, CUBLASLT_EPILOGUE_BIAS);
        set_desc(p.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, (int32_t)g.d_type);  // bias has D's type
        set_desc(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias);
    }
    // Stored shapes: op(A) is [m,k], so A is stored [k,m] when transposed; likewise B.
    const int a_rows = g.trans_a ? g.k : g.m, a_cols = g.trans_a ? g.m : g.k;
    const int b_rows = g.trans_b ? g.n : g.k, b_cols = g.trans_b ? g.k : g.n;
    WR_CUDA_CHECK(cublasLtMatrixLayoutCreate(&p.a, g.ab_type, a_rows, a_cols, a_rows));
    WR_CUDA_CHECK(cublasLtMatrixLayoutCreate(&p.b, g.ab_type, b_rows, b_cols, b_rows));
    WR_CUDA_CHECK(cublasLtMatrixLayoutCreate(&p.d, g.d_type, g.m, g.n, g.m));

    cublasLtMatmulPreference_t pref = nullptr;
    WR_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    set_pref(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, (uint64_t)kCublasLtWorkspaceBytes);
    set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, g.align_a);
    set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, g.align_b);
    set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, g.align_d);
    set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, g.align_d);
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    const cublasStatus_t status =
        cublasLtMatmulAlgoGetHeuristic(cublaslt(), p.desc, p.a, p.b, p.d, p.d, pref, 1, &result, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (status != CUBLAS_STATUS_SUCCESS || found == 0 || result.state != CUBLAS_STATUS_SUCCESS)
        throw Error("matmul: cuBLASLt has no algorithm for " + g.describe() + " (status " + std::to_string((int)status) +
                    ")");
    p.algo = result.algo;
    return p;
}

// The plans of every device, and the lock that guards them and the bias pointer inside a plan's
// descriptor. Never destroyed, as the device contexts.
std::mutex& plans_mutex() {
    static std::mutex& mutex = *new std::mutex;
    return mutex;
}
LruCache<Gemm, Plan>& plan_cache() {
    static LruCache<Gemm, Plan>& plans = *new LruCache<Gemm, Plan>(kMaxMatmulPlans);
    return plans;
}

// out[n, j] += bias[j] for a row-major out[N, OC] (the column-major D[OC, N] of the product):
// the bias of a product whose bias pointer is not 16-byte aligned. Grid-stride over the elements.
template <typename T>
__global__ void bias_add_kernel(T* out, const T* bias, int64_t N, int OC) {
    const int64_t n = N * OC;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        out[i] = from_float<T>(to_float(out[i]) + to_float(bias[i % OC]));
}

// D = op(A) @ op(B) + (accumulate ? D : 0), through the cached plan of its shape on the current
// device; `bias` (may be null) is only ever a 16-byte aligned pointer here (see the file top).
void run_gemm(Gemm g, const void* A, const void* B, void* D, bool accumulate, const void* bias) {
    g.device = current_device();
    g.has_bias = bias != nullptr;
    g.align_a = alignment_of(A), g.align_b = alignment_of(B), g.align_d = alignment_of(D);
    g.align_bias = g.has_bias ? alignment_of(bias) : 0;

    const std::lock_guard<std::mutex> lock(plans_mutex());
    LruCache<Gemm, Plan>& plans = plan_cache();
    Plan* p = plans.find(g);
    if (!p) p = &plans.insert(g, make_plan(g, bias));
    if (g.has_bias) set_desc(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias);

    const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    WR_CUDA_CHECK(cublasLtMatmul(cublaslt(), p->desc, &alpha, A, p->a, B, p->b, &beta, D, p->d, D, p->d, &p->algo,
                                 cublaslt_workspace(), kCublasLtWorkspaceBytes, stream()));
}

// ---- bias gradient ----
constexpr int kBiasCols = 32;         // columns per block, one per lane (blockDim.x)
constexpr int kBiasRowThreads = 8;    // blockDim.y: threads sharing a chunk's rows
constexpr int kBiasChunkRows = 256;   // rows per chunk: fixes the summation order (N alone decides)

// partial[c, j] = sum of dout[r, j] over the rows r of chunk c. Grid (column tiles, chunks).
// Thread (x, y) sums rows y, y + 8, ... of the chunk in order; thread (x, 0) then adds the eight
// row-thread sums in y order.
template <typename T>
__global__ void bias_partial_kernel(float* partial, const T* dout, int N, int OC) {
    __shared__ float sums[kBiasRowThreads][kBiasCols];
    const int col = blockIdx.x * kBiasCols + threadIdx.x;
    const int chunk = blockIdx.y;
    const int row_end = min(N, (chunk + 1) * kBiasChunkRows);
    float s = 0.0f;
    if (col < OC)
        for (int row = chunk * kBiasChunkRows + threadIdx.y; row < row_end; row += kBiasRowThreads)
            s += to_float(dout[(int64_t)row * OC + col]);
    sums[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && col < OC) {
        float total = 0.0f;
        for (int y = 0; y < kBiasRowThreads; y++) total += sums[y][threadIdx.x];
        partial[(int64_t)chunk * OC + col] = total;
    }
}

// dbias[j] += sum over chunks c, in order, of partial[c, j]. One thread per column.
__global__ void bias_add_chunks_kernel(float* dbias, const float* partial, int chunks, int OC) {
    const int col = blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= OC) return;
    float s = 0.0f;
    for (int c = 0; c < chunks; c++) s += partial[(int64_t)c * OC + col];
    dbias[col] += s;
}

}  // namespace

size_t matmul_plans_cached() {
    const std::lock_guard<std::mutex> lock(plans_mutex());
    return plan_cache().size();
}
size_t matmul_plans_made() {  // every plan is inserted once, new (a key found is never replaced)
    const std::lock_guard<std::mutex> lock(plans_mutex());
    return plan_cache().size() + plan_cache().evicted();
}

template <typename T>
void matmul_forward(T* out, const T* inp, const T* weight, const T* bias, int N, int IC, int OC) {
    if (N <= 0 || OC <= 0) return;
    if (IC <= 0) throw Error("matmul_forward: IC is " + std::to_string(IC) + ", must be positive");
    Gemm g;
    g.trans_a = true, g.trans_b = false, g.m = OC, g.n = N, g.k = IC;
    g.ab_type = g.d_type = data_type<T>();
    const bool epilogue_bias = bias != nullptr && alignment_of(bias) >= 16;
    run_gemm(g, weight, inp, out, /*accumulate=*/false, epilogue_bias ? bias : nullptr);
    if (bias && !epilogue_bias) {
        const int64_t n = (int64_t)N * OC;
        bias_add_kernel<<<std::min<unsigned>(ceil_div(n, 256), 65535u * 8u), 256, 0, stream()>>>(out, bias, N, OC);
        WR_CUDA_CHECK_LAUNCH();
    }
}

template <typename T>
void matmul_backward(T* dinp, float* dweight, float* dbias, const T* dout, const T* inp, const T* weight, int N, int IC,
                     int OC) {
    if (N <= 0 || OC <= 0) return;
    if (dinp && IC > 0) {  // dinp^T[IC,N] += W^T[IC,OC] @ dout^T[OC,N]
        Gemm g;
        g.trans_a = false, g.trans_b = false, g.m = IC, g.n = N, g.k = OC;
        g.ab_type = g.d_type = data_type<T>();
        run_gemm(g, weight, dout, dinp, /*accumulate=*/true, nullptr);
    }
    if (dweight && IC > 0) {  // dW^T[IC,OC] += inp^T[IC,N] @ dout[N,OC]
        Gemm g;
        g.trans_a = false, g.trans_b = true, g.m = IC, g.n = OC, g.k = N;
        g.ab_type = data_type<T>(), g.d_type = CUDA_R_32F;
        run_gemm(g, inp, dout, dweight, /*accumulate=*/true, nullptr);
    }
    if (dbias) bias_backward(dbias, dout, N, OC);
}

template <typename T>
void bias_backward(float* dbias, const T* dout, int N, int OC) {
    if (N <= 0 || OC <= 0) return;
    const int chunks = (int)ceil_div(N, kBiasChunkRows);
    if (chunks > 65535) throw Error("bias_backward: N = " + std::to_string(N) + " rows is more than this kernel's grid holds");
    float* partial = static_cast<float*>(scratch(sizeof(float) * (size_t)chunks * OC));
    bias_partial_kernel<<<dim3(ceil_div(OC, kBiasCols), chunks), dim3(kBiasCols, kBiasRowThreads), 0, stream()>>>(
        partial, dout, N, OC);
    WR_CUDA_CHECK_LAUNCH();
    bias_add_chunks_kernel<<<ceil_div(OC, 256), 256, 0, stream()>>>(dbias, partial, chunks, OC);
    WR_CUDA_CHECK_LAUNCH();
}

#define WR_INSTANTIATE(T)                                                                                          \
    template void matmul_forward<T>(T*, const T*, const T*, const T*, int, int, int);                              \
    template void matmul_backward<T>(T*, float*, float*, const T*, const T*, const T*, int, int, int);             \
    template void bias_backward<T>(float*, const T*, int, int);
WR_INSTANTIATE(float)
WR_INSTANTIATE(bf16)
#undef WR_INSTANTIATE

}  // namespace wr::cuda
