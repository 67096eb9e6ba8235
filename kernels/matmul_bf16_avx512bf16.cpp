// kernels/matmul_bf16_avx512bf16.cpp: the bf16 GEMM on AVX512-BF16 (Cooper Lake, Zen 4, and any
// CPU with AMX when it is not used):
//   C[M,N] = (accumulate ? C : 0) + bias + bf16(op(A)) @ bf16(op(B)),  fp32 products and sums.
// Compiled with -march=x86-64-v4 -mavx512bf16 (Makefile: *_avx512bf16.cpp).
//
// vdpbf16ps (_mm512_dpbf16_ps) is the arithmetic: for 16 lanes of 32-bit words, each word a pair
// of bf16,   acc[l] += a[l].lo * b[l].lo + a[l].hi * b[l].hi   in fp32. The micro-kernel is the
// fp32 kernel's register tile with k stepped two at a time: a 16 x 16 block of C in 16 zmm
// accumulators; per k-pair, one vector of B (the pairs of 16 columns) and, for each of the 16
// rows, that row's pair of A broadcast to all lanes (folded into the instruction as a {1to16}
// memory operand). Both operands are packed as tiles with rows along k (kernels/matmul_bf16.inc),
// so row p of a tile is the k-pair p of 16 rows of A, or of 16 columns of B.
#include "kernels/matmul_bf16.inc"

namespace wr {
namespace {

struct DpMicro {
    static constexpr int MR = 16, NR = 16, MC_PANELS = 16, NC = 256;
    static constexpr bool A_ROWS_ALONG_I = false;
    static void begin() {}
    static void end() {}

    static void kernel(int steps, const uint32_t* Ap, const uint32_t* Bp, float* C, int ldc, int mr, int nr, bool load_c,
                       const float* bias) {
        __m512 acc[MR];
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) acc[i] = _mm512_setzero_ps();
        for (int p = 0; p < steps * 16; p++) {  // k-pairs: row p % 16 of tile p / 16
            const __m512bh b = (__m512bh)_mm512_load_si512((const __m512i*)(Bp + p * 16));
            const uint32_t* a = Ap + p * 16;
#pragma GCC unroll 16
            for (int i = 0; i < MR; i++) acc[i] = _mm512_dpbf16_ps(acc[i], (__m512bh)_mm512_set1_epi32((int)a[i]), b);
        }
        alignas(64) float tile[MR][NR];
        for (int i = 0; i < MR; i++) _mm512_store_ps(tile[i], acc[i]);
        store_block<MR, NR>(tile, C, ldc, mr, nr, load_c, bias);
    }
};

}  // namespace

extern const GemmKernel gemm_bf16_avx512bf16 = {"gemm_bf16_avx512bf16", DpMicro::MR, DpMicro::NR, DpMicro::NC,
                                                gemm_block<DpMicro>};

}  // namespace wr
