// kernels/parallel.h: the one OpenMP loop the element-wise and row-wise CPU ops run in.
//
//   parallel_for(n, body)   runs body(i) for i in [0, n), split into equal static shares over the
//                           threads (each i on one thread, so results do not depend on the count)
//
// The loop is compiled twice: for the build's baseline (x86-64-v3: 256-bit AVX2) and, through a
// target attribute, for AVX-512 with 512-bit vectors; the second runs where the CPU has AVX-512
// (common/cpu_isa.h, so --cpu-isa avx2 selects the first). `body` is a lambda that each copy
// inlines, so the compiler vectorizes its loops for that copy's width. Both give the same bits,
// for any thread count: without -ffast-math the compiler reorders no floating-point sum, and with
// -ffp-contract=off (Makefile) it fuses no multiply-add on its own, so every element goes
// through the same roundings in the vector body, in the remainder iterations and in either copy
// (tests/test_ops.cpp, OpVectorWidths, checks the ops at both widths and thread counts).
#pragma once
#include <cstdint>

#include "common/cpu_isa.h"

namespace wr {

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define WR_TARGET_AVX512 __attribute__((target("arch=x86-64-v4,prefer-vector-width=512")))
#define WR_HAVE_AVX512_COPY 1
#else
#define WR_TARGET_AVX512
#define WR_HAVE_AVX512_COPY 0
#endif

template <class Body>
WR_TARGET_AVX512 void parallel_for_avx512(int64_t n, const Body& body) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) body(i);
}

template <class Body>
void parallel_for(int64_t n, const Body& body) {
    if (WR_HAVE_AVX512_COPY && cpu_isa() >= CpuIsa::avx512) {
        parallel_for_avx512(n, body);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) body(i);
}

}  // namespace wr
