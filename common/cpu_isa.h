// common/cpu_isa.h: which vector instruction sets this CPU (and its kernel) lets us use, and which
// one the hot kernels run on.
//
// The whole project is compiled for a baseline x86-64 (x86-64-v2: SSE4.2, no AVX), so one build
// runs on any 64-bit x86 machine. The hot kernels (kernels/matmul_*.cpp) are compiled once more
// for each wider instruction set, in translation units of their own, and the one to run is
// chosen here at start-up from what cpuid reports:
//
//   level        fp32 GEMM                           bf16 GEMM (MatmulPrecision::bf16)
//   generic      4-wide vectors (SSE), mul + add     operands rounded to bf16, then the fp32 kernel
//   avx2         8-wide AVX2, FMA                    same
//   avx512       16-wide AVX-512, FMA                same
//   avx512bf16   as avx512                           vdpbf16ps: 16 x (pair of bf16 products) per op
//   amx          as avx512                           AMX tiles: tdpbf16ps, 16x16 fp32 tile per op
//
// A level is available when the CPU has its instructions AND the operating system saves their
// registers on a context switch (XCR0, read with xgetbv). AMX needs one step more: Linux keeps
// the 8 KiB of tile registers off by default and a process must ask for them once with
// arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA); without that the first tile instruction
// kills the process with SIGILL. detect() makes that call.
//
// The level in use is the best available one, unless the environment variable WR_CPU_ISA or the
// programs' --cpu-isa flag names a lower one (for tests, benchmarks and bug reports). Every level
// gives the same fp32 results except generic (no FMA: each multiply-add is rounded twice).
#pragma once
#include <string>
#include <vector>

namespace wr {

enum class CpuIsa { generic = 0, avx2 = 1, avx512 = 2, avx512bf16 = 3, amx = 4 };

const char* cpu_isa_name(CpuIsa isa);              // "avx512bf16"
std::vector<CpuIsa> cpu_isas_available();          // every level this machine can run, lowest first
CpuIsa cpu_isa_best();                             // the highest of those
CpuIsa cpu_isa();                                  // the level in use (best, or as WR_CPU_ISA says)
std::string cpu_isa_name();                        // cpu_isa_name(cpu_isa())

// Use `name` ("auto" = the best) from now on. Returns false, changing nothing, when this machine
// cannot run it; throws wr::Error naming `where` for a name that is no level at all.
bool set_cpu_isa(const std::string& name, const std::string& where = "<command line>: flag --cpu-isa");

// The accepted names, for help texts: "auto, generic, avx2, avx512, avx512bf16, amx".
std::string cpu_isa_choices();

}  // namespace wr
