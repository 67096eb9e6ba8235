// common/cpu_isa.cpp: cpuid and xgetbv decoding, the AMX permission request, and the level in use
// (see common/cpu_isa.h).
#include "common/cpu_isa.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "common/util.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace wr {
namespace {

const char* const kNames[] = {"generic", "avx2", "avx512", "avx512bf16", "amx"};
constexpr int kLevels = 5;

#if defined(__x86_64__)
// Extended control register 0: which register states the OS saves and restores.
unsigned long long xcr0() {
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

// Linux (5.16+): ask for the AMX tile data state; true when granted (or already granted).
bool request_amx_permission() {
    constexpr int ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18;
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

// The build's baseline (the Makefile's BASE_ARCH) is checked before any other code of the program
// runs (a constructor of the highest priority), so that a CPU without it gets a message instead
// of an illegal-instruction crash somewhere later. This function itself is compiled for plain
// x86-64.
#if defined(__AVX2__)
__attribute__((constructor(101), target("arch=x86-64"))) void check_build_baseline() {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
        std::fputs("error: this build needs AVX2 and FMA (x86-64-v3), which this CPU lacks; "
                   "rebuild with: make clean && make BASE_ARCH=-march=x86-64-v2\n", stderr);
        std::_Exit(1);
    }
}
#endif

// The highest level this machine can run.
CpuIsa detect() {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return CpuIsa::generic;
    const bool osxsave = c & (1u << 27), fma = c & (1u << 12), avx = c & (1u << 28);
    if (!osxsave || !avx || !fma) return CpuIsa::generic;
    const unsigned long long xcr = xcr0();
    if ((xcr & 0x6) != 0x6) return CpuIsa::generic;  // XMM and YMM state
    if (__get_cpuid_max(0, nullptr) < 7) return CpuIsa::generic;
    __cpuid_count(7, 0, a, b, c, d);
    const bool avx2 = b & (1u << 5), bmi2 = b & (1u << 8);
    if (!avx2 || !bmi2) return CpuIsa::generic;
    // AVX-512 as x86-64-v4 has it: F, DQ, CD, BW, VL; the OS must save opmask and ZMM state.
    const bool avx512 = (b & (1u << 16)) && (b & (1u << 17)) && (b & (1u << 28)) && (b & (1u << 30)) &&
                        (b & (1u << 31)) && (xcr & 0xe0) == 0xe0;
    if (!avx512) return CpuIsa::avx2;
    const bool amx_bf16 = d & (1u << 22), amx_tile = d & (1u << 24);
    __cpuid_count(7, 1, a, b, c, d);
    const bool avx512bf16 = a & (1u << 5);
    if (!avx512bf16) return CpuIsa::avx512;
    // Tile config (bit 17) and tile data (bit 18) in XCR0, then the per-process permission.
    if (amx_bf16 && amx_tile && (xcr & (3ull << 17)) == (3ull << 17) && request_amx_permission()) return CpuIsa::amx;
    return CpuIsa::avx512bf16;
}
#else
CpuIsa detect() { return CpuIsa::generic; }
#endif

int parse(const std::string& name, const std::string& where) {
    if (name == "auto") return (int)cpu_isa_best();
    for (int i = 0; i < kLevels; i++)
        if (name == kNames[i]) return i;
    throw Error(where + ": '" + name + "' is not one of: " + cpu_isa_choices());
}

// The level in use; -1 until first asked, then the best or what WR_CPU_ISA names.
std::atomic<int> g_level{-1};

}  // namespace

const char* cpu_isa_name(CpuIsa isa) { return kNames[(int)isa]; }

CpuIsa cpu_isa_best() {
    static const CpuIsa best = detect();  // once: the AMX request is a system call
    return best;
}

std::vector<CpuIsa> cpu_isas_available() {
    std::vector<CpuIsa> out;
    for (int i = 0; i <= (int)cpu_isa_best(); i++) out.push_back((CpuIsa)i);
    return out;
}

CpuIsa cpu_isa() {
    int level = g_level.load(std::memory_order_relaxed);
    if (level < 0) {
        const char* env = std::getenv("WR_CPU_ISA");
        level = (int)cpu_isa_best();
        if (env && *env) {
            const int wanted = parse(env, "environment variable WR_CPU_ISA");
            if (wanted > level)
                throw Error(std::string("environment variable WR_CPU_ISA: '") + env + "': this machine runs at most '" +
                            kNames[level] + "'");
            level = wanted;
        }
        g_level.store(level);
    }
    return (CpuIsa)level;
}

std::string cpu_isa_name() { return cpu_isa_name(cpu_isa()); }

bool set_cpu_isa(const std::string& name, const std::string& where) {
    const int wanted = parse(name, where);
    if (wanted > (int)cpu_isa_best()) return false;
    g_level.store(wanted);
    return true;
}

std::string cpu_isa_choices() {
    std::string s = "auto";
    for (const char* n : kNames) s += std::string(", ") + n;
    return s;
}

}  // namespace wr
