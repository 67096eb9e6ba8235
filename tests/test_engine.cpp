// tests/test_engine.cpp: the device flags of the programs that run the model through
// model/engine.h, as far as a machine without a GPU can check them: --device cuda there is a clear
// error (why: no CUDA in the build, no driver, no device) before anything is read or written, and
// bad --device / --precision values are refused. (train_mlm's are in test_train_mlm.cpp; the GPU
// engine itself is tested by tests/test_cuda_model.cu on a GPU machine.)
#include <gtest/gtest.h>

#include <cstdlib>
#include <initializer_list>
#include <string>

#include "common/util.h"
#include "test_helpers.h"

using wr::testing::run_command;
using wr::testing::RunResult;
using wr::testing::ScratchDir;

namespace {

void expect_refused(const RunResult& r, const std::string& what, std::initializer_list<const char*> pieces) {
    EXPECT_EQ(r.exit_code, 1) << what << ":\n" << r.output;
    for (const char* piece : pieces) EXPECT_NE(r.output.find(piece), std::string::npos) << what << ": expected '" << piece << "' in:\n" << r.output;
}

}  // namespace

TEST(Engine, FinetuneDeviceCudaWithoutAGpuFailsBeforeReadingOrWriting) {
    if (std::system("nvidia-smi -L > /dev/null 2>&1") == 0) GTEST_SKIP() << "a GPU is present (nvidia-smi -L lists one)";
    ScratchDir dir;
    // The checkpoint and the input do not exist: had finetune read anything before checking the
    // device, the error would name them instead.
    const std::string missing = dir / "missing.bin";
    RunResult r = run_command("./finetune --device cuda --init " + missing + " --epochs 1 --out " + dir / "train");
    expect_refused(r, "training", {"finetune: error:", "--device cuda"});
    EXPECT_EQ(r.output.find(missing), std::string::npos) << "the device is checked before the checkpoint is read:\n" << r.output;
    EXPECT_FALSE(wr::file_exists(dir / "train")) << "nothing is written";

    r = run_command("./finetune --device cuda --eval-only --init " + missing + " --dev " + dir / "dev.bin");
    expect_refused(r, "--eval-only", {"--device cuda"});
    EXPECT_EQ(r.output.find(missing), std::string::npos) << r.output;

    r = run_command("./finetune --device cuda --predict " + dir / "lines.txt" + " --init " + missing + " --out " + dir / "predict");
    expect_refused(r, "--predict", {"--device cuda"});
    EXPECT_FALSE(wr::file_exists(dir / "predict")) << "nothing is written";
}

TEST(Engine, FinetuneRefusesUnknownDevicesAndPrecisions) {
    ScratchDir dir;
    RunResult r = run_command("./finetune --device gpu --out " + dir / "a");
    expect_refused(r, "--device gpu", {"--device", "'gpu'", "cpu, cuda, auto"});
    r = run_command("./finetune --precision fp16 --out " + dir / "b");
    expect_refused(r, "--precision fp16", {"--precision", "'fp16'", "bf16, fp32"});
    EXPECT_FALSE(wr::file_exists(dir / "a") || wr::file_exists(dir / "b")) << "nothing is written";
}
