// tests/test_gpu_check.cpp: dev/gpu_check.sh and its library dev/gpu_check_lib.sh, without a GPU.
// The library's parsers and judgements run on fabricated log.jsonl files, test output and
// benchmark figures whose answers are worked out here by hand. The whole script runs twice over:
// on this machine with nvidia-smi failing (it must build nothing, print its table last and fail,
// saying there is no GPU), and in a scratch copy on a faked GPU machine, where nvidia-smi, make,
// nvcc, python3, train_mlm and the test binary are small scripts writing what the real ones write:
// every stage must run and be judged, and a stage that fails must not stop the others.
// Needs bash and awk (no Python, no jq, no GPU).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "test_helpers.h"

using wr::testing::RunResult;
using wr::testing::run_command;
using wr::testing::ScratchDir;
using wr::testing::write_text;

namespace {

std::string repo_root() {
    char buf[4096];
    return getcwd(buf, sizeof buf) ? std::string(buf) : std::string(".");
}

// Runs BODY in bash after sourcing dev/gpu_check_lib.sh (from a script file: no quoting trouble).
RunResult lib(const ScratchDir& dir, const std::string& body) {
    write_text(dir / "t.sh", "set -u\n. '" + repo_root() + "/dev/gpu_check_lib.sh'\ncd '" + dir.path + "'\n" + body + "\n");
    return run_command("bash '" + dir / "t.sh" + "'");
}

std::string train_line(int step, const std::string& loss) {
    return "{\"kind\":\"train\",\"step\":" + std::to_string(step) + ",\"loss\":" + loss +
           ",\"accuracy\":0.100000,\"lr\":1.000000e-03,\"grad_norm\":1.000000,\"ms\":2.000,\"tokens_per_second\":2048000.0}\n";
}
std::string eval_line(int step, const std::string& loss) {
    return "{\"kind\":\"eval\",\"step\":" + std::to_string(step) + ",\"loss\":" + loss + ",\"accuracy\":0.200000,\"perplexity\":400.0000}\n";
}

std::map<std::string, std::string> parse_kv(const std::string& text) {
    std::map<std::string, std::string> kv;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
        if (const size_t eq = line.find('='); eq != std::string::npos) kv[line.substr(0, eq)] = line.substr(eq + 1);
    return kv;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
        if (!line.empty()) lines.push_back(line);
    return lines;
}

bool contains(const std::string& text, const std::string& piece) { return text.find(piece) != std::string::npos; }

// The summary row whose check column is LABEL ("| LABEL | status | result |"), or "".
std::string row(const std::string& output, const std::string& label) {
    for (const std::string& line : lines_of(output))
        if (line.rfind("| " + label + " | ", 0) == 0) return line;
    return "";
}

std::string read_all(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

void make_executable(const std::string& path, const std::string& text) {
    write_text(path, text);
    std::filesystem::permissions(path, std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                                           std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
                                           std::filesystem::perms::others_exec);
}

}  // namespace

TEST(GpuCheck, ScriptsParse) {
    for (const char* script : {"dev/gpu_check.sh", "dev/gpu_check_lib.sh"}) {
        const RunResult r = run_command(std::string("bash -n ") + script);
        EXPECT_EQ(r.exit_code, 0) << script << ":\n" << r.output;
    }
    ScratchDir dir;  // the check has teeth: a script that does not parse is refused
    write_text(dir / "broken.sh", "if then fi\n");
    EXPECT_NE(run_command("bash -n '" + dir / "broken.sh" + "'").exit_code, 0);
}

// Log A against reference B: steps 1..4 in both (A 1% above B at step 2, 2.5% at step 3), a
// step 5 and an evaluation at 5 in A alone; evaluations at 2 and 4 in both, the last 3% apart.
TEST(GpuCheck, CompareCurvesMeasuresRelativeDifferences) {
    ScratchDir dir;
    write_text(dir / "a.jsonl", train_line(1, "8.000000") + train_line(2, "7.070000") + eval_line(2, "6.600000") +
                                    train_line(3, "6.150000") + train_line(4, "6.000000") + eval_line(4, "5.150000") +
                                    train_line(5, "1.000000") + eval_line(5, "1.000000"));
    write_text(dir / "b.jsonl", train_line(1, "8.000000") + train_line(2, "7.000000") + eval_line(2, "6.500000") +
                                    train_line(3, "6.000000") + train_line(4, "6.000000") + eval_line(4, "5.000000"));
    RunResult r = lib(dir, "compare_curves a.jsonl b.jsonl");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto kv = parse_kv(r.output);
    EXPECT_EQ(kv["train_steps"], "4") << r.output;
    EXPECT_NEAR(std::stod(kv["train_max_rel"]), 0.025, 1e-9) << r.output;
    EXPECT_EQ(kv["train_max_rel_step"], "3");
    EXPECT_EQ(kv["train_last_step"], "4");
    EXPECT_EQ(kv["val_step"], "4");
    EXPECT_EQ(kv["val_a"], "5.150000");
    EXPECT_EQ(kv["val_b"], "5.000000");
    EXPECT_NEAR(std::stod(kv["val_rel"]), 0.03, 1e-9);

    // Only the first two train steps.
    r = lib(dir, "compare_curves a.jsonl b.jsonl 2");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    kv = parse_kv(r.output);
    EXPECT_EQ(kv["train_steps"], "2");
    EXPECT_NEAR(std::stod(kv["train_max_rel"]), 0.01, 1e-9);
    EXPECT_EQ(kv["train_max_rel_step"], "2");

    // The reference is the second log: B against A gives |8 - 7.07| / 7.07 at step 2, not 1%.
    r = lib(dir, "compare_curves b.jsonl a.jsonl 2");
    EXPECT_NEAR(std::stod(parse_kv(r.output)["train_max_rel"]), 0.07 / 7.07, 1e-7) << r.output;

    // No shared step: a failure, not a silent zero.
    write_text(dir / "c.jsonl", train_line(9, "1.000000"));
    r = lib(dir, "compare_curves c.jsonl b.jsonl");
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_EQ(parse_kv(r.output)["train_steps"], "0");
    EXPECT_NE(lib(dir, "compare_curves missing.jsonl b.jsonl").exit_code, 0);
}

TEST(GpuCheck, JudgeCurvesAppliesItsTolerances) {
    ScratchDir dir;
    const std::string ref = train_line(1, "8.000000") + train_line(2, "7.000000") + eval_line(2, "6.000000");
    write_text(dir / "ref.jsonl", ref);
    // Final validation loss 2.5% off (6.15 vs 6), train steps 1% off: within 3% and 10%.
    write_text(dir / "near.jsonl", train_line(1, "8.080000") + train_line(2, "7.000000") + eval_line(2, "6.150000"));
    // 3.5% off (6.21 vs 6): over 3%.
    write_text(dir / "far.jsonl", train_line(1, "8.000000") + train_line(2, "7.000000") + eval_line(2, "6.210000"));
    // A loss that is not a number.
    write_text(dir / "nan.jsonl", train_line(1, "nan") + train_line(2, "7.000000") + eval_line(2, "6.000000"));

    RunResult r = lib(dir, "compare_curves near.jsonl ref.jsonl | judge_curves 0.03 0.10");
    EXPECT_EQ(r.output.substr(0, 3), "ok\t") << r.output;
    EXPECT_TRUE(contains(r.output, "final val loss 6.150000 vs 6.000000: 2.50% (tolerance 3.00%)")) << r.output;
    EXPECT_TRUE(contains(r.output, "max diff 1.00% at step 1")) << r.output;

    r = lib(dir, "compare_curves far.jsonl ref.jsonl | judge_curves 0.03 0.10");
    EXPECT_EQ(r.output.substr(0, 5), "FAIL\t") << r.output;
    EXPECT_TRUE(contains(r.output, "3.50%")) << r.output;

    // The same 1% step difference fails a tolerance of 1e-4 (the fp32 check's).
    r = lib(dir, "compare_curves near.jsonl ref.jsonl | judge_curves 0.03 1e-4");
    EXPECT_EQ(r.output.substr(0, 5), "FAIL\t") << r.output;
    EXPECT_TRUE(contains(r.output, "(tolerance 1.00e-04)")) << r.output;

    r = lib(dir, "compare_curves nan.jsonl ref.jsonl | judge_curves 0.03 0.10");
    EXPECT_EQ(r.output.substr(0, 5), "FAIL\t") << r.output;
    EXPECT_TRUE(contains(r.output, "max diff inf at step 1")) << r.output;

    // at_most: numbers only.
    EXPECT_EQ(lib(dir, "at_most 0.0299 0.03").exit_code, 0);
    EXPECT_NE(lib(dir, "at_most 0.0301 0.03").exit_code, 0);
    EXPECT_EQ(lib(dir, "at_most 5e-5 1e-4").exit_code, 0);
    EXPECT_NE(lib(dir, "at_most inf 1").exit_code, 0);
    EXPECT_NE(lib(dir, "at_most - 1").exit_code, 0);
}

TEST(GpuCheck, SameLossesDemandsIdenticalRecords) {
    ScratchDir dir;
    const std::string log = train_line(1, "8.000000") + train_line(2, "7.500000") + eval_line(2, "7.000000") + train_line(3, "7.250000");
    write_text(dir / "a.jsonl", log);
    write_text(dir / "same.jsonl", log);
    write_text(dir / "last_digit.jsonl", train_line(1, "8.000000") + train_line(2, "7.500001") + eval_line(2, "7.000000") +
                                             train_line(3, "7.250000"));
    write_text(dir / "short.jsonl", train_line(1, "8.000000") + train_line(2, "7.500000") + eval_line(2, "7.000000"));

    RunResult r = lib(dir, "same_losses a.jsonl same.jsonl");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "identical: 3 train steps, 1 evaluations")) << r.output;
    r = lib(dir, "same_losses a.jsonl last_digit.jsonl");
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "first at record 2: train 2 7.500000 vs train 2 7.500001")) << r.output;
    r = lib(dir, "same_losses a.jsonl short.jsonl");
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "record 4: train 3 7.250000 vs (none)")) << r.output;
}

TEST(GpuCheck, TestOutputGivesCountsFailuresAndWorstErrors) {
    ScratchDir dir;
    write_text(dir / "out.txt",
               "[==========] Running 16 tests from 3 test suites.\n"
               "[ RUN      ] CudaMatmul.ForwardMatchesCpu\n"
               "[ worst    ] CudaMatmul.ForwardMatchesCpu (bf16): relative error 1.2e-3 (tolerance 1e-2)\n"
               "[       OK ] CudaMatmul.ForwardMatchesCpu (12 ms)\n"
               "[ RUN      ] CudaModel.MatchesTorch\n"
               "[bf16] logits: gpu 0.1 0.2 0.3  torch 0.1 0.2 0.3  rel err 4.00e-03 (bound 1e-02)\n"
               "[bf16] gradients: worst encoder.layer1.ffn_w2, rel err 9.00e-03 (bound 1e-02)\n"
               "[  FAILED  ] CudaModel.MatchesTorch (30 ms)\n"
               "[ RUN      ] CudaOps.Softmax\n"
               "[fp32] softmax rel err 3.00e-05 (bound 1e-05)\n"
               "[  FAILED  ] CudaOps.Softmax (3 ms)\n"
               "[ RUN      ] CudaOps.Gelu\n"
               "[fp32] gelu rel err inf (bound 1e-05)\n"
               "[       OK ] CudaOps.Gelu (3 ms)\n"
               "[==========] 16 tests from 3 test suites ran. (45 ms total)\n"
               "[  FAILED  ] 2 tests, listed below:\n"
               "[  FAILED  ] CudaModel.MatchesTorch\n"
               "[  FAILED  ] CudaOps.Softmax\n"
               "12 passed, 1 failed, 3 skipped\n");
    RunResult r = lib(dir, "test_counts out.txt");
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.output, "12 1 3\n");
    EXPECT_EQ(lib(dir, "failed_tests out.txt").output, "CudaModel.MatchesTorch, CudaOps.Softmax\n");

    // Nearest to (or most over) its bound first: inf, then 3e-5 of 1e-5 (3x), then 9e-3 of 1e-2.
    r = lib(dir, "worst_errors out.txt 3");
    const std::vector<std::string> worst = lines_of(r.output);
    ASSERT_EQ(worst.size(), 3u) << r.output;
    EXPECT_EQ(worst[0], "inf (bound 1e-05) in CudaOps.Gelu: [fp32] gelu");
    EXPECT_EQ(worst[1], "3.00e-05 (bound 1e-05) in CudaOps.Softmax: [fp32] softmax");
    EXPECT_EQ(worst[2], "9.00e-03 (bound 1e-02) in CudaModel.MatchesTorch: [bf16] gradients: worst encoder.layer1.ffn_w2");
    EXPECT_EQ(lib(dir, "errors_over_bound out.txt").output, "5 2\n");

    // A run that died before its last line has no counts.
    write_text(dir / "crashed.txt", "[ RUN      ] CudaOps.Gelu\nSegmentation fault\n");
    r = lib(dir, "test_counts crashed.txt");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(r.output, "");
}

TEST(GpuCheck, BenchRowsAndSummaryTable) {
    ScratchDir dir;
    write_text(dir / "bench.tsv",
               "preset\tlayers\thidden\tbatch\tours_tps\tours_mfu\ttorch_tps\ttorch_mfu\ttorch_mode\n"
               "mini\t4\t256\t64\t1600000\t0.12\t1000000\t0.075\tcompiled\n"
               "L12-H768\t12\t768\t32\t300000\t0.45\t250000\t0.375\teager: torch.compile failed\n"
               "mini\t4\t256\t128\t1200000\t0.09\t1000000\t0.075\tcompiled\n"
               "small\t4\t512\t32\t-\t-\t500000\t0.1\tcompiled\n");
    RunResult r = lib(dir, "bench_rows bench.tsv");
    const std::vector<std::string> rows = lines_of(r.output);
    ASSERT_EQ(rows.size(), 4u) << r.output;
    EXPECT_EQ(rows[0], "bench mini (L4-H256), B 64\tok\tours 1.60M tok/s, MFU 12.0%; PyTorch (compiled) 1.00M tok/s, "
                       "MFU 7.5%; ours/PyTorch 1.60x (goal ours/PyTorch >= 1.5x)");
    EXPECT_EQ(rows[1], "bench L12-H768, B 32\tbelow goal\tours 300.0k tok/s, MFU 45.0%; PyTorch (eager: torch.compile "
                       "failed) 250.0k tok/s, MFU 37.5%; ours/PyTorch 1.20x (goal MFU >= 50%)");
    EXPECT_TRUE(contains(rows[2], "\tbelow goal\t") && contains(rows[2], "1.20x")) << rows[2];
    EXPECT_TRUE(contains(rows[3], "bench small (L4-H512), B 32\tFAIL\tours: no figure")) << rows[3];

    // Rows that are ok or below a goal pass; one FAIL fails the table, which names it.
    ASSERT_EQ(lib(dir, "bench_rows bench.tsv | head -n 3 > rows.tsv && row_add rows.tsv GPU ok 'Fake | H100'").exit_code, 0);
    r = lib(dir, "summary_table rows.tsv 'Fake H100'");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    std::vector<std::string> table = lines_of(r.output);
    ASSERT_EQ(table.size(), 8u) << r.output;
    EXPECT_EQ(table[0], "## dev/gpu_check.sh: Fake H100");
    EXPECT_EQ(table[1], "| check | status | result |");
    EXPECT_EQ(table[6], "| GPU | ok | Fake \\| H100 |");
    EXPECT_EQ(table[7], "| overall | ok | 4 checks, 2 below the benchmark goals |");

    ASSERT_EQ(lib(dir, "row_add rows.tsv 'resume on the GPU' FAIL 'no: differ'").exit_code, 0);
    r = lib(dir, "summary_table rows.tsv");
    EXPECT_NE(r.exit_code, 0) << r.output;
    table = lines_of(r.output);
    EXPECT_EQ(table.back(), "| overall | FAIL | failed: resume on the GPU, 2 below the benchmark goals |");

    // A row that is incomplete (a figure missing where no code of ours failed) is said, not failed.
    r = lib(dir, "row_add part.tsv GPU ok H100 && row_add part.tsv 'bench mini' incomplete 'PyTorch: no figure' && summary_table part.tsv");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(lines_of(r.output).back(), "| overall | ok | 2 checks, 1 incomplete |");

    r = lib(dir, ": > empty.tsv; summary_table empty.tsv");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(lines_of(r.output).back(), "| overall | FAIL | no check ran |");
}

// This machine, or any, with nvidia-smi failing as it does without a driver: nothing is built or
// run, the table comes last and the script fails, saying why.
TEST(GpuCheck, WithoutAGpuTheScriptPrintsItsTableLastAndFails) {
    ScratchDir dir;
    std::filesystem::create_directories(dir / "bin");
    make_executable(dir / "bin/nvidia-smi",
                    "#!/usr/bin/env bash\necho \"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\"\nexit 9\n");
    make_executable(dir / "bin/make", "#!/usr/bin/env bash\necho \"$*\" >> '" + dir / "make_was_called" + "'\n");
    const RunResult r = run_command("PATH='" + dir / "bin" + "':\"$PATH\" OUT='" + dir / "out" + "' bash dev/gpu_check.sh");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_TRUE(contains(r.output, "no GPU (NVIDIA-SMI has failed because it couldn't communicate")) << r.output;
    EXPECT_FALSE(std::filesystem::exists(dir / "make_was_called")) << "built without a GPU";
    const std::vector<std::string> lines = lines_of(r.output);
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines.back(), "| overall | FAIL | failed: GPU, 7 skipped |") << r.output;
    EXPECT_TRUE(contains(row(r.output, "GPU"), "| FAIL | no GPU: NVIDIA-SMI has failed")) << r.output;
    for (const char* label : {"build", "GPU tests (Cuda*)", "curves: GPU bf16 vs CPU", "resume on the GPU", "benchmark"})
        EXPECT_EQ(row(r.output, label), std::string("| ") + label + " | skipped | no GPU |") << r.output;
    // The table is the output's end, and $OUT/summary.md holds it.
    const std::string summary = read_all(dir / "out/summary.md");
    ASSERT_FALSE(summary.empty());
    EXPECT_EQ(r.output.substr(r.output.size() - summary.size()), summary);
    EXPECT_TRUE(std::filesystem::exists(dir / "out/a_build.log"));
}

namespace {

// A scratch copy of the scripts beside fakes of everything the GPU machine provides.
struct FakeGpuMachine {
    ScratchDir dir;
    FakeGpuMachine() {
        namespace fs = std::filesystem;
        for (const char* d : {"dev", "bin", "build", "docs"}) fs::create_directories(dir / d);
        for (const char* f : {"dev/gpu_check.sh", "dev/gpu_check_lib.sh"}) fs::copy_file(f, dir / f);
        write_text(dir / "docs/benchmarks.md", "# Benchmarks\n");
        make_executable(dir / "bin/nvidia-smi", R"SH(#!/usr/bin/env bash
if [ "${1:-}" = -L ]; then echo "GPU 0: Fake H100 80GB HBM3 (UUID: GPU-0000)"; else echo "Fake H100 80GB HBM3, 1.0, 81559 MiB, 1980 MHz"; fi
)SH");
        make_executable(dir / "bin/make", "#!/usr/bin/env bash\necho \"fake make $*\"\n");
        make_executable(dir / "bin/nvcc", "#!/usr/bin/env bash\necho \"fake nvcc\"\n");
        // dev/bench_gpu.py --tsv FILE: the figures of a good run.
        make_executable(dir / "bin/python3", R"SH(#!/usr/bin/env bash
while [ $# -gt 0 ]; do [ "$1" = --tsv ] && tsv=$2; shift; done
printf 'preset\tlayers\thidden\tbatch\tours_tps\tours_mfu\ttorch_tps\ttorch_mfu\ttorch_mode\n' > "$tsv"
printf 'mini\t4\t256\t64\t1600000\t0.12\t1000000\t0.075\tcompiled\n' >> "$tsv"
printf 'L12-H768\t12\t768\t32\t330000\t0.55\t250000\t0.42\tcompiled\n' >> "$tsv"
)SH");
        // train_mlm: log.jsonl, checkpoints and latest as the real one writes them; losses
        // (8 - 0.01 step) for train, (6 - 0.001 step) for eval, times FAKE_BF16_FACTOR (1.01) on
        // the GPU in bf16. Each call's arguments go to $FAKE_ARGV_LOG.
        make_executable(dir / "train_mlm", R"SH(#!/usr/bin/env bash
echo "$*" >> "$FAKE_ARGV_LOG"
out="" steps=0 every=0 device=auto precision=bf16 resume=""
while [ $# -gt 0 ]; do
    case $1 in
        --out) out=$2; shift ;;
        --steps) steps=$2; shift ;;
        --eval-every) every=$2; shift ;;
        --device) device=$2; shift ;;
        --precision) precision=$2; shift ;;
        --resume) resume=$2; shift ;;
        --overwrite) ;;
        *) shift ;;
    esac
    shift
done
[ -z "$resume" ] || out=$resume
mkdir -p "$out"
first=1
if [ -n "$resume" ]; then first=$(($(cat "$out/latest") + 1)); else rm -f "$out/log.jsonl"; fi
factor=1
if [ "$device" = cuda ]; then
    [ "$precision" = fp32 ] || factor=${FAKE_BF16_FACTOR:-1.01}
    echo "device: cuda (Fake H100, $precision)"
else
    echo "device: cpu (fp32)"
fi
for ((s = first; s <= steps; s++)); do
    printf '{"kind":"train","step":%d,"loss":%s,"accuracy":0.1,"lr":1e-3,"grad_norm":1.0,"ms":2.0,"tokens_per_second":2048000.0}\n' \
        "$s" "$(awk -v s="$s" -v f="$factor" 'BEGIN { printf "%.6f", (8 - 0.01 * s) * f }')" >>"$out/log.jsonl"
    if [ "$s" = "$steps" ] || { [ "$every" -gt 0 ] && [ $((s % every)) = 0 ]; }; then
        printf '{"kind":"eval","step":%d,"loss":%s,"accuracy":0.2,"perplexity":400.0}\n' \
            "$s" "$(awk -v s="$s" -v f="$factor" 'BEGIN { printf "%.6f", (6 - 0.001 * s) * f }')" >>"$out/log.jsonl"
        echo "weights after step $s" >"$out/$(printf 'ckpt_%08d.bin' "$s")"
        echo "$s" >"$out/latest"
    fi
done
)SH");
        // The test binary: GoogleTest output with errors and bounds; FAKE_TEST_FAIL=1 adds a failure.
        make_executable(dir / "build/test_wellread", R"SH(#!/usr/bin/env bash
case "$*" in
*Cuda*)
    echo "[ RUN      ] CudaModel.MatchesTorch"
    echo "[bf16] logits: gpu 0.1 0.2 0.3  torch 0.1 0.2 0.3  rel err 4.00e-03 (bound 1e-02)"
    echo "[bf16] gradients: worst word_embeddings, rel err 6.00e-03 (bound 1e-02)"
    if [ -n "${FAKE_TEST_FAIL:-}" ]; then
        echo "[fp32] loss:   gpu 7.1  torch 7.2  rel err 2.00e-05 (bound 1e-05)"
        echo "[  FAILED  ] CudaModel.MatchesTorch (30 ms)"
        echo "[  FAILED  ] CudaModel.MatchesTorch"
        echo "4 passed, 1 failed, 1 skipped"
        exit 1
    fi
    echo "[       OK ] CudaModel.MatchesTorch (30 ms)"
    echo "5 passed, 0 failed, 1 skipped" ;;
*Model*) echo "7 passed, 0 failed, 0 skipped" ;;
esac
)SH");
    }
    RunResult run(const std::string& env = "") const {
        return run_command("cd '" + dir.path + "' && PATH='" + dir / "bin" + "':\"$PATH\" OUT='" + dir / "out" + "' FAKE_ARGV_LOG='" +
                           dir / "argv.log" + "' CUDA_ARCH=90 CURVE_STEPS=30 RESUME_STEPS=5 " + env + " bash dev/gpu_check.sh");
    }
};

}  // namespace

TEST(GpuCheck, OnAFakedGpuMachineEveryStageRunsAndIsJudged) {
    const FakeGpuMachine m;
    const RunResult r = m.run();
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(lines_of(r.output).back(), "| overall | ok | 10 checks |") << r.output;
    EXPECT_EQ(row(r.output, "GPU"), "| GPU | ok | Fake H100 80GB HBM3 |");
    EXPECT_TRUE(contains(row(r.output, "build (sm_90)"), "| ok |")) << r.output;
    EXPECT_EQ(row(r.output, "GPU tests (Cuda*)"), "| GPU tests (Cuda*) | ok | 5 passed, 0 failed, 1 skipped |");
    EXPECT_EQ(row(r.output, "CPU model tests (Model*)"), "| CPU model tests (Model*) | ok | 7 passed, 0 failed, 0 skipped |");
    EXPECT_EQ(row(r.output, "worst GPU test errors"),
              "| worst GPU test errors | ok | 6.00e-03 (bound 1e-02) in CudaModel.MatchesTorch: [bf16] gradients: worst "
              "word_embeddings; 0 of 2 reported errors above their bounds |");
    // bf16: every loss 1% above the CPU's; 30 steps, evaluations every 10.
    EXPECT_TRUE(contains(row(r.output, "curves: GPU bf16 vs CPU"),
                         "| ok | final val loss 6.029700 vs 5.970000: 1.00% (tolerance 3.00%); train losses at 30 steps"))
        << r.output;
    EXPECT_TRUE(contains(row(r.output, "curves: GPU fp32 vs CPU"), "| ok | final val loss 5.970000 vs 5.970000: 0.00% (tolerance "
                                                                    "1.00%); train losses at 10 steps (up to step 10)"))
        << r.output;
    EXPECT_EQ(row(r.output, "resume on the GPU"), "| resume on the GPU | ok | yes: losses identical: 10 train steps, 2 evaluations, "
                                                  "and the same ckpt_00000010.bin (resumed after step 5) |");
    EXPECT_TRUE(contains(row(r.output, "bench mini (L4-H256), B 64"), "| ok | ours 1.60M tok/s, MFU 12.0%")) << r.output;
    EXPECT_TRUE(contains(row(r.output, "bench L12-H768, B 32"), "MFU 55.0%")) << r.output;

    // The curve runs: the same flags on both devices, but for device, precision, threads and folder.
    std::vector<std::string> curve_runs;
    for (std::string line : lines_of(read_all(m.dir / "argv.log")))
        if (contains(line, "--steps 30 ")) {
            for (const char* flag : {"--device ", "--precision ", "--threads ", "--out "}) {
                const size_t at = line.find(flag);
                if (at == std::string::npos) continue;
                const size_t value_end = line.find(' ', at + std::string(flag).size());
                line.erase(at, value_end == std::string::npos ? std::string::npos : value_end - at + 1);
            }
            curve_runs.push_back(line);
        }
    ASSERT_EQ(curve_runs.size(), 3u) << read_all(m.dir / "argv.log");
    EXPECT_EQ(curve_runs[1], curve_runs[0]);
    EXPECT_EQ(curve_runs[2], curve_runs[0]);
    EXPECT_TRUE(contains(curve_runs[0], "--seed 1")) << curve_runs[0];

    // $OUT: at most 8 plain files with plain names (what comes back from the GPU machine).
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(m.dir / "out")) {
        EXPECT_TRUE(e.is_regular_file()) << e.path();
        names.push_back(e.path().filename().string());
        EXPECT_EQ(names.back().find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"),
                  std::string::npos);
    }
    EXPECT_LE(names.size(), 8u);
    for (const char* f : {"summary.md", "a_build.log", "b_tests.log", "c_curves.log", "d_resume.log", "e_bench.log", "benchmarks.md"})
        EXPECT_TRUE(std::filesystem::exists(m.dir / (std::string("out/") + f))) << f;
    EXPECT_TRUE(contains(read_all(m.dir / "out/b_tests.log"), "4.00e-03 (bound 1e-02) in CudaModel.MatchesTorch"));
}

// A bf16 curve 5% off and a failing GPU test: both are reported, the stages after them still run,
// and the script fails.
TEST(GpuCheck, OnAFakedGpuMachineFailuresAreCollected) {
    const FakeGpuMachine m;
    const RunResult r = m.run("FAKE_BF16_FACTOR=1.05 FAKE_TEST_FAIL=1");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_EQ(row(r.output, "GPU tests (Cuda*)"), "| GPU tests (Cuda*) | FAIL | 4 passed, 1 failed, 1 skipped: CudaModel.MatchesTorch |");
    EXPECT_TRUE(contains(row(r.output, "worst GPU test errors"), "| FAIL | 2.00e-05 (bound 1e-05)")) << r.output;
    EXPECT_TRUE(contains(row(r.output, "curves: GPU bf16 vs CPU"), "| FAIL | final val loss 6.268500 vs 5.970000: 5.00%")) << r.output;
    EXPECT_TRUE(contains(row(r.output, "curves: GPU fp32 vs CPU"), "| ok |")) << r.output;
    EXPECT_TRUE(contains(row(r.output, "resume on the GPU"), "| ok | yes")) << r.output;
    EXPECT_TRUE(contains(row(r.output, "bench mini (L4-H256), B 64"), "| ok |")) << r.output;
    EXPECT_EQ(lines_of(r.output).back(), "| overall | FAIL | failed: GPU tests (Cuda*), worst GPU test errors, curves: GPU bf16 vs CPU |");
}
