// kernels/matmul_bf16_amx.cpp: the bf16 GEMM on Intel AMX (Sapphire Rapids and later):
//   C[M,N] = (accumulate ? C : 0) + bias + bf16(op(A)) @ bf16(op(B)),  fp32 products and sums.
// Compiled with -march=x86-64-v4 -mavx512bf16 -mamx-tile -mamx-bf16 (Makefile: *_amx.cpp); run
// only where common/cpu_isa.cpp found AMX and got the kernel's permission to use it.
//
// How AMX works, as far as this kernel needs it:
//   - Eight tile registers, tmm0..tmm7, each up to 16 rows of 64 bytes (1 KiB). Their shapes are
//     set by one 64-byte configuration (_tile_loadconfig); here all eight are 16 rows x 64 bytes.
//   - _tile_loadd / _tile_stored move a tile between registers and memory, one 64-byte row at a
//     time from `base + row * stride`.
//   - _tile_dpbf16ps(c, a, b) is the one arithmetic instruction used:
//         c[m][n] += sum_{p<16}  a[m][2p] * b[p][2n]  +  a[m][2p+1] * b[p][2n+1]
//     with c a 16 x 16 fp32 tile, a a 16 x 32 bf16 tile (row m: 32 consecutive k of row m of A)
//     and b a 16 x 32 bf16 tile holding a 32 x 16 block of B "in pairs": row p has, for each of the
//     16 columns n, the two values B[2p][n], B[2p+1][n] side by side. One instruction is
//     16 x 16 x 32 multiply-adds (16,384 flops); a core issues one every 16 cycles.
//   - The OS keeps tile state off until the process asks (common/cpu_isa.cpp); _tile_release()
//     returns the tiles to their initial state so that context switches stay cheap.
//
// The packing and the loop nest around the micro-kernel are kernels/matmul_bf16.inc. The
// micro-kernel: a 32 x 32 block of C in four accumulator tiles (tmm0..3); per 32-deep step of k,
// two tiles of A (rows 0-15, 16-31: tmm4, tmm5) and two of B (columns 0-15, 16-31: tmm6, tmm7),
// then four tdpbf16ps. The packed tiles are laid out so that each is one contiguous KiB, loaded
// with a 64-byte stride. The order of the additions inside a tdpbf16ps is the hardware's; a full
// 32 x 32 block accumulates onto C (or the bias) in the tiles, an edge block adds its tile sums to
// C afterwards: both fixed by M, N and K alone, so the result does not depend on the threads.
#include "kernels/matmul_bf16.inc"

namespace wr {
namespace {

struct alignas(64) TileConfig {
    uint8_t palette_id = 1, start_row = 0, reserved[14] = {};
    uint16_t colsb[16] = {};  // bytes per row of each tile
    uint8_t rows[16] = {};
};

struct AmxMicro {
    static constexpr int MR = 32, NR = 32, MC_PANELS = 8, NC = 1024;
    static constexpr bool A_ROWS_ALONG_I = true;  // AMX's A tile: row m holds 32 k of row m

    // All eight tiles 16 rows x 64 bytes. The configuration is per thread; it is loaded for each
    // block (a few hundred cycles against the block's millions) and released after it.
    static void begin() {
        TileConfig config;
        for (int t = 0; t < 8; t++) config.rows[t] = 16, config.colsb[t] = 64;
        _tile_loadconfig(&config);
    }
    static void end() { _tile_release(); }

    // Ap: `steps` pairs of A tiles (rows 0-15, 16-31); Bp: `steps` pairs of B tiles (columns 0-15,
    // 16-31), as pack_panels lays out panels 32 wide. A full 32 x 32 block starts its accumulators
    // from C (accumulate) or from the bias (a tile load with stride 0 repeats one row 16 times)
    // and is stored straight back; an edge block, or one that needs both, goes through a buffer.
    static void kernel(int steps, const uint32_t* Ap, const uint32_t* Bp, float* C, int ldc, int mr, int nr, bool load_c,
                       const float* bias) {
        const bool direct = mr == MR && nr == NR && !(load_c && bias);
        const long stride = (long)ldc * 4;
        if (direct && load_c) {
            _tile_loadd(0, C, stride);
            _tile_loadd(1, C + 16, stride);
            _tile_loadd(2, C + 16 * ldc, stride);
            _tile_loadd(3, C + 16 * ldc + 16, stride);
        } else if (direct && bias) {
            _tile_loadd(0, bias, 0);
            _tile_loadd(1, bias + 16, 0);
            _tile_loadd(2, bias, 0);
            _tile_loadd(3, bias + 16, 0);
        } else {
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
        }
        for (int kb = 0; kb < steps; kb++) {
            const uint32_t* a = Ap + (size_t)kb * 2 * TILE_WORDS;
            const uint32_t* b = Bp + (size_t)kb * 2 * TILE_WORDS;
            _tile_loadd(4, a, 64);
            _tile_loadd(5, a + TILE_WORDS, 64);
            _tile_loadd(6, b, 64);
            _tile_loadd(7, b + TILE_WORDS, 64);
            _tile_dpbf16ps(0, 4, 6);  // C rows 0-15,  columns 0-15
            _tile_dpbf16ps(1, 4, 7);  // C rows 0-15,  columns 16-31
            _tile_dpbf16ps(2, 5, 6);  // C rows 16-31, columns 0-15
            _tile_dpbf16ps(3, 5, 7);  // C rows 16-31, columns 16-31
        }
        if (direct) {
            _tile_stored(0, C, stride);
            _tile_stored(1, C + 16, stride);
            _tile_stored(2, C + 16 * ldc, stride);
            _tile_stored(3, C + 16 * ldc + 16, stride);
            return;
        }
        alignas(64) float tile[MR][NR];
        _tile_stored(0, &tile[0][0], NR * 4);
        _tile_stored(1, &tile[0][16], NR * 4);
        _tile_stored(2, &tile[16][0], NR * 4);
        _tile_stored(3, &tile[16][16], NR * 4);
        store_block<MR, NR>(tile, C, ldc, mr, nr, load_c, bias);
    }
};

}  // namespace

extern const GemmKernel gemm_bf16_amx = {"gemm_bf16_amx", AmxMicro::MR, AmxMicro::NR, AmxMicro::NC, gemm_block<AmxMicro>};

}  // namespace wr
