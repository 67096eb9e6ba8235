// tests/wide_constant_avx512.cpp: GCC 12.2's wide-constant miscompilation (docs/decisions.md),
// compiled with the flags every AVX-512 file of the build gets (the Makefile's ISA_avx512), so
// that tests/test_common.cpp can check that the build avoids it. Without the Makefile's guard
// this copy comes out as {6, 6, 6, 6} on GCC 12.2: SLP vectorization makes {6, 6, 0, 0} one
// 256-bit constant, and the x86 back end expands it as a broadcast of its low 64-bit word.
#include <stdint.h>
#include <string.h>

extern "C" __attribute__((noinline)) void wide_constant_copy_avx512(int64_t* out) {
    int64_t src[4] = {6, 6, 0, 0};
    memcpy(out, src, sizeof src);
}
