// tests/test_cpu_isa.cpp: the instruction-set levels (common/cpu_isa.h) as the kernels and the
// programs see them, and the build's guard against GCC 12's wide-constant miscompilation.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>

#include "common/cpu_isa.h"
#include "common/util.h"
#include "kernels/matmul.h"
#include "test_helpers.h"

using namespace wr;

extern "C" void wide_constant_copy_avx512(int64_t* out);  // tests/wide_constant_avx512.cpp

TEST(CpuIsa, LevelsAreOrderedAndSettable) {
    const std::vector<CpuIsa> levels = cpu_isas_available();
    ASSERT_FALSE(levels.empty());
    EXPECT_EQ(levels.front(), CpuIsa::generic);
    EXPECT_EQ(levels.back(), cpu_isa_best());
    for (CpuIsa isa : levels) {
        ASSERT_TRUE(set_cpu_isa(cpu_isa_name(isa)));
        EXPECT_EQ(cpu_isa(), isa);
        // The fp32 kernel follows the level: generic, avx2, then avx512 for every level above.
        const std::string fp32 = gemm_kernel_name(MatmulPrecision::fp32), bf16 = gemm_kernel_name(MatmulPrecision::bf16);
        const char* want_fp32 = isa == CpuIsa::generic ? "gemm_fp32_generic" : isa == CpuIsa::avx2 ? "gemm_fp32_avx2" : "gemm_fp32_avx512";
        EXPECT_EQ(fp32, want_fp32);
        EXPECT_EQ(bf16, isa == CpuIsa::amx ? "gemm_bf16_amx" : isa == CpuIsa::avx512bf16 ? "gemm_bf16_avx512bf16" : want_fp32);
    }
    ASSERT_TRUE(set_cpu_isa("auto"));
    EXPECT_EQ(cpu_isa(), cpu_isa_best());
    // A level above the machine's is refused and changes nothing; a name that is no level throws.
    if (cpu_isa_best() != CpuIsa::amx) {
        EXPECT_FALSE(set_cpu_isa("amx"));
        EXPECT_EQ(cpu_isa(), cpu_isa_best());
    }
    try {
        set_cpu_isa("sse9");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("'sse9' is not one of: auto, generic, avx2"), std::string::npos) << e.what();
    }
}

// The Makefile compiles AVX-512 files with -mmove-max=128 -mstore-max=128 (where the compiler has
// them): then this copy keeps its zeros. On GCC 12.2 without them it reads {6, 6, 6, 6}.
TEST(CpuIsa, Avx512FilesKeepWideConstants) {
    if (cpu_isa_best() < CpuIsa::avx512) GTEST_SKIP() << "this CPU has no AVX-512";
    int64_t out[4] = {-1, -1, -1, -1};
    wide_constant_copy_avx512(out);
    EXPECT_EQ(out[0], 6);
    EXPECT_EQ(out[1], 6);
    EXPECT_EQ(out[2], 0);
    EXPECT_EQ(out[3], 0);
}

// The programs: --cpu-isa picks the kernels and the start-up line names them; bad values and
// levels this CPU cannot run are refused before anything is written.
TEST(CpuIsa, ProgramsTakeTheFlag) {
    wr::testing::ScratchDir dir;
    const std::string common = " --device cpu --preset tiny --steps 1 --batch 2 --seq-len 16 --eval-every 0 --val '' --overwrite";
    auto r = wr::testing::run_command("./train_mlm --cpu-isa generic --precision fp32" + common + " --out " + (dir / "a"));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("device: cpu (fp32, "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("generic: gemm_fp32_generic)"), std::string::npos) << r.output;
    r = wr::testing::run_command("./train_mlm --cpu-isa avx9" + common + " --out " + (dir / "b"));
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("--cpu-isa"), std::string::npos) << r.output;
    EXPECT_FALSE(std::filesystem::exists(dir / "b"));
    if (cpu_isa_best() != CpuIsa::amx) {
        r = wr::testing::run_command("./finetune --cpu-isa amx --out " + (dir / "c"));
        EXPECT_NE(r.exit_code, 0);
        EXPECT_NE(r.output.find("this CPU runs at most"), std::string::npos) << r.output;
    }
    // WR_CPU_ISA does the same as the flag.
    r = wr::testing::run_command("WR_CPU_ISA=avx2 ./train_mlm --precision bf16" + common + " --out " + (dir / "d"));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    if (cpu_isa_best() >= CpuIsa::avx2) {
        EXPECT_NE(r.output.find("avx2: gemm_fp32_avx2)"), std::string::npos) << r.output;
    }
}
