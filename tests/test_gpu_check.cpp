// tests/test_gpu_check.cpp: dev/gpu_check.sh, its library dev/gpu_check_lib.sh and dev/gpu_bundle.sh,
// without a GPU. The library's parsers and judgements run on fabricated log.jsonl files, test and
// sanitizer output and benchmark figures whose answers are worked out here by hand (the GPU tests'
// error lines are printed with their own format strings). The whole script runs on this machine
// with nvidia-smi failing (it must build nothing, print its table last and fail, saying there is no
// GPU), and as a dry run (GPU_CHECK_DRY_RUN=1: the stubs of dev/gpu_check_stubs/ stand in for the
// GPU's programs) against a bundle made here from the installed packages: every stage must run and
// be judged with the prerequisites from the bundle alone, a stage that fails must not stop the
// others, a stage over its budget and a TERM in the middle must still leave the table in $OUT.
// Needs bash, awk, g++ and, for the bundle, dpkg (no Python, no jq, no GPU, no network).
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdarg>
#include <cstdio>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
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
    for (const char* script : {"dev/gpu_check.sh", "dev/gpu_check_lib.sh", "dev/gpu_bundle.sh", "dev/gpu_check_stubs/test_wellread",
                               "dev/gpu_check_stubs/train_mlm", "dev/gpu_check_stubs/compute-sanitizer", "dev/gpu_check_stubs/bench_gpu",
                               "dev/gpu_check_stubs/nvidia-smi"}) {
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
// Every error line the GPU tests print, in the formats of their printf calls (copied here from
// tests/test_cuda_*.cu), must reach the records: the attention test's per-shape and summary lines,
// the classifier's "evaluation forward" after a bounded error, the fine-tuning steps' second
// "rel diff", the ops' per-check lines (whose bound is stated once, on the test's worst line).
namespace {
std::string printed(const char* format, ...) {
    char buf[512];
    va_list args;
    va_start(args, format);
    std::vsnprintf(buf, sizeof buf, format, args);
    va_end(args);
    return buf;
}
}  // namespace

TEST(GpuCheck, EveryErrorTheGpuTestsPrintIsRecorded) {
    ScratchDir dir;
    std::string out;
    // tests/test_cuda_attention.cu: per shape, then the worst with the tolerance.
    out += "[ RUN      ] CudaAttention/1.MatchesCpuForwardAndBackward\n";
    out += printed("  %s %-44s out %.2e  lse %.2e  dqkv %.2e  dqkv+= %.2e\n", "bf16", "B=3 T=7 C=64 NH=2 lengths=7,3,1 p=0.0",
                   1.5e-3, 2e-4, 2.5e-3, 2.4e-3);
    out += printed("  %s %-44s out %.2e  lse %.2e  dqkv %.2e  dqkv+= %.2e\n", "bf16", "B=3 T=64 C=256 NH=4 lengths=64,33,1 p=0.1",
                   2e-3, 1e-4, 1.2e-2, 3e-3);
    out += printed("CudaAttention %s worst relative errors (tolerance %.0e): out %.2e  lse %.2e  dqkv %.2e  dqkv+= %.2e\n", "bf16",
                   1e-2, 2e-3, 2e-4, 1.2e-2, 3e-3);
    out += "[  FAILED  ] CudaAttention/1.MatchesCpuForwardAndBackward (40 ms)\n";
    // tests/test_cuda_model.cu: the classifier (two errors, one bound), the fine-tuning steps.
    out += "[ RUN      ] CudaModel.ClassifierMatchesTheCpu\n";
    out += printed("[%s] %s: logits rel err %.2e (bound %.0e), evaluation forward %.2e\n", "fp32", "classes", 1e-6, 1e-5, 2e-6);
    out += printed("[%s] %s: loss gpu %.6f cpu %.6f, hard %.6f / %.6f, soft %.6f / %.6f: worst rel diff %.2e (bound %.0e); "
                   "counted %d/%d, correct %d/%d, agree %d/%d\n",
                   "fp32", "classes", 0.69, 0.69, 0.69, 0.69, 0.0, 0.0, 3e-7, 1e-5, 8, 8, 4, 4, 0, 0);
    out += "[ RUN      ] CudaModel.ClassifierTrainingStepsMatchTheCpu\n";
    for (const char* p : {"fp32", "bf16"})
        out += printed("[%s] %zu fine-tuning steps, dropout on: cpu %.5f -> %.5f, gpu %.5f -> %.5f, worst rel diff %.2e (bound %.0e); "
                       "weight updates rel diff %.2e\n",
                       p, (size_t)6, 0.69, 0.6, 0.69, 0.6, 2e-6, p[0] == 'f' ? 1e-4 : 2e-2, 5e-3);
    // tests/test_cuda_ops.cu: each check, then the worst at teardown; a count is not an error.
    out += "[ RUN      ] CudaOps/fp32.Gelu\n";
    out += printed("    [%s] %-58s rel err %.3g\n", "fp32", "gelu_forward n=7 offset 0", 1e-7);
    out += printed("    [%s] %-58s %ld (want %ld)\n", "fp32", "dropout mask mismatches", 0L, 0L);
    out += printed("    [%s] worst rel err %.3g (tolerance %.0e): %s\n", "fp32", 2e-6, 1e-5, "gelu_forward n=4099 offset 1");
    // tests/test_cuda_matmul_optimizer.cu
    out += "[ RUN      ] CudaMatmul/bf16.ForwardMatchesCpu\n";
    out += printed("[ worst    ] %s (%s): relative error %.3g (tolerance %.3g)\n", "CudaMatmul.ForwardMatchesCpu", "bf16", 1.5e-3, 1e-2);
    write_text(dir / "out.txt", out);

    const RunResult r = lib(dir, "error_records out.txt");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const std::vector<std::string> records = lines_of(r.output);
    // 8 + 4 (attention), 3 (classifier), 4 (fine-tuning), 2 (ops), 1 (matmul)
    ASSERT_EQ(records.size(), 22u) << r.output;
    std::map<std::string, std::string> by_context;  // "test: context" -> "error bound"
    for (const std::string& rec : records) {
        std::vector<std::string> f;
        std::istringstream in(rec);
        for (std::string x; std::getline(in, x, '\t');) f.push_back(x);
        ASSERT_EQ(f.size(), 5u) << rec;
        by_context[f[3] + ": " + f[4]] = f[1] + " " + f[2];
    }
    const std::string att = "CudaAttention/1.MatchesCpuForwardAndBackward: ";
    // the per-shape lines take the tolerance their test states once
    EXPECT_EQ(by_context[att + "bf16 B=3 T=7 C=64 NH=2 lengths=7,3,1 p=0.0: out"], "1.50e-03 1e-02") << r.output;
    EXPECT_EQ(by_context[att + "bf16 B=3 T=64 C=256 NH=4 lengths=64,33,1 p=0.1: dqkv+="], "3.00e-03 1e-02") << r.output;
    EXPECT_EQ(by_context[att + "CudaAttention bf16 worst: dqkv"], "1.20e-02 1e-02") << r.output;
    EXPECT_EQ(by_context[att + "CudaAttention bf16 worst: lse"], "2.00e-04 1e-02") << r.output;
    EXPECT_EQ(by_context["CudaModel.ClassifierMatchesTheCpu: [fp32] classes: logits"], "1.00e-06 1e-05") << r.output;
    EXPECT_EQ(by_context["CudaModel.ClassifierMatchesTheCpu: [fp32] classes: evaluation forward"], "2.00e-06 1e-05") << r.output;
    // two bounds in that test (fp32 and bf16): the weight updates keep none
    EXPECT_EQ(by_context["CudaModel.ClassifierTrainingStepsMatchTheCpu: [bf16] weight updates"], "5.00e-03 -") << r.output;
    EXPECT_EQ(by_context["CudaOps/fp32.Gelu: [fp32] gelu_forward n=7 offset 0"], "1e-07 1e-05") << r.output;
    EXPECT_EQ(by_context["CudaOps/fp32.Gelu: [fp32] worst: gelu_forward n=4099 offset 1"], "2e-06 1e-05") << r.output;
    EXPECT_EQ(by_context["CudaMatmul/bf16.ForwardMatchesCpu: CudaMatmul.ForwardMatchesCpu (bf16)"], "0.0015 0.01") << r.output;

    // 1.2e-2 of 1e-2, in the shape's line and in the worst line: the two over their bounds.
    EXPECT_EQ(lib(dir, "errors_over_bound out.txt").output, "22 2\n");
    EXPECT_EQ(lines_of(lib(dir, "worst_errors out.txt 1").output)[0],
              "1.20e-02 (bound 1e-02) in CudaAttention/1.MatchesCpuForwardAndBackward: CudaAttention bf16 worst: dqkv");
}

TEST(GpuCheck, SanitizerResultReadsItsSummaries) {
    ScratchDir dir;
    write_text(dir / "clean.txt", "========= COMPUTE-SANITIZER\n3 passed, 0 failed, 0 skipped\n========= ERROR SUMMARY: 0 errors\n");
    write_text(dir / "memcheck.txt", "========= COMPUTE-SANITIZER\n========= Invalid __global__ read of size 4 bytes\n"
                                     "=========     at gelu_kernel+0x40\n========= ERROR SUMMARY: 2 errors\n");
    write_text(dir / "racecheck.txt", "========= COMPUTE-SANITIZER\n========= Error: Race reported between Write access at k+0x1a0\n"
                                      "========= RACECHECK SUMMARY: 3 hazards displayed (1 error, 2 warnings)\n");
    write_text(dir / "died.txt", "========= COMPUTE-SANITIZER\nSegmentation fault\n");
    EXPECT_EQ(lib(dir, "sanitizer_result clean.txt").output, "0 0\t\n");
    EXPECT_EQ(lib(dir, "sanitizer_result memcheck.txt").output, "2 0\tInvalid __global__ read of size 4 bytes\n");
    EXPECT_EQ(lib(dir, "sanitizer_result racecheck.txt").output, "1 2\tError: Race reported between Write access at k+0x1a0\n");
    const RunResult r = lib(dir, "sanitizer_result died.txt");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(r.output, "");
}

TEST(GpuCheck, SummaryTableSaysWhatDidNotRun) {
    ScratchDir dir;
    // A check that did not run (budget spent) leaves the whole incomplete, not ok.
    RunResult r = lib(dir, "row_add a.tsv GPU ok H100 && row_add a.tsv curves 'not run' 'budget' && summary_table a.tsv");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(lines_of(r.output).back(), "| overall | incomplete | 2 checks, 1 not run |");
    // Out of time and interrupted are failures, named apart.
    r = lib(dir, "row_add b.tsv tests 'out of time' x && row_add b.tsv build FAIL y && row_add b.tsv sanitizer interrupted z && "
                 "row_add b.tsv resume 'not run' w && summary_table b.tsv");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(lines_of(r.output).back(), "| overall | FAIL | failed: build; out of time: tests; interrupted: sanitizer, 1 not run |");
}

// The toolkit line comes first: nvcc's version and the three things the build includes from the
// toolkit, read from a fake toolkit folder here (CUDA 13's layout: cub under include/cccl/).
TEST(GpuCheck, ToolkitLineNamesNvccAndItsHeaders) {
    ScratchDir dir;
    namespace fs = std::filesystem;
    for (const char* d : {"cuda/bin", "cuda/include/cccl/cub", "cuda/include/nvtx3"}) fs::create_directories(dir / d);
    write_text(dir / "cuda/include/cublasLt.h", "\n");
    make_executable(dir / "cuda/bin/nvcc", "#!/usr/bin/env bash\necho 'Cuda compilation tools, release 13.0, V13.0.88'\n");
    RunResult r = lib(dir, "PATH=\"$PWD/cuda/bin:$PATH\" toolkit_line");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output, "nvcc 13.0 (V13.0.88) at " + dir / "cuda/bin/nvcc" + "; " + dir / "cuda/include" +
                            ": cublasLt.h yes, cub/ yes (cccl/cub), nvtx3/ yes\n");
    fs::remove_all(dir / "cuda/include/nvtx3");
    r = lib(dir, "PATH=\"$PWD/cuda/bin:$PATH\" toolkit_line");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_TRUE(contains(r.output, "nvtx3/ NO")) << r.output;
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
    EXPECT_EQ(r.output.rfind("nvcc", 0), 0u) << "the toolkit line comes first:\n" << r.output;
    EXPECT_TRUE(contains(r.output, "no GPU (NVIDIA-SMI has failed because it couldn't communicate")) << r.output;
    EXPECT_FALSE(std::filesystem::exists(dir / "make_was_called")) << "built without a GPU";
    const std::vector<std::string> lines = lines_of(r.output);
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines.back(), "| overall | FAIL | failed: GPU, 8 skipped |") << r.output;
    EXPECT_TRUE(contains(row(r.output, "GPU"), "| FAIL | no GPU: NVIDIA-SMI has failed")) << r.output;
    for (const char* label : {"build (sm_90)", "GPU tests (Cuda*)", "memcheck (CudaOps*)", "curves: GPU bf16 vs CPU", "resume on the GPU"})
        EXPECT_EQ(row(r.output, label), std::string("| ") + label + " | skipped | no GPU |") << r.output;
    // The table is the output's end, and $OUT/summary.md holds it.
    const std::string summary = read_all(dir / "out/summary.md");
    ASSERT_FALSE(summary.empty());
    EXPECT_EQ(r.output.substr(r.output.size() - summary.size()), summary);
    EXPECT_TRUE(std::filesystem::exists(dir / "out/a_build.log"));
}

// ---- dev/gpu_bundle.sh and the dry run (GPU_CHECK_DRY_RUN=1) ----

namespace {

// One bundle for the suite, made from this machine's installed packages (no network): what
// dev/gpu_bundle.sh makes from the downloaded .deb files, but for its MANIFEST.
class GpuCheckDryRun : public ::testing::Test {
  public:
    static void SetUpTestSuite() {
        if (std::system("command -v dpkg-query >/dev/null 2>&1") != 0) {
            skip_reason_ = new std::string("not a Debian-like system: no packages to bundle");
            return;
        }
        scratch_ = new ScratchDir;
        const RunResult r = run_command("bash dev/gpu_bundle.sh --installed --out '" + *scratch_ / "bundle" + "'");
        bundle_output_ = new std::string(r.output);
        bundle_ok_ = r.exit_code == 0;
    }
    static void TearDownTestSuite() {
        delete scratch_;
        delete bundle_output_;
        delete skip_reason_;
        scratch_ = nullptr, bundle_output_ = nullptr, skip_reason_ = nullptr;
    }

  protected:
    void SetUp() override {
        if (skip_reason_) GTEST_SKIP() << *skip_reason_;
        ASSERT_TRUE(bundle_ok_) << "dev/gpu_bundle.sh --installed failed (this machine built the tests, so it has the packages):\n"
                                << *bundle_output_;
    }
    static std::string bundle() { return *scratch_ / "bundle"; }
    // The dry run in the repository, its $OUT in `out`, with the settings given and short runs.
    static RunResult dry_run(const std::string& out, const std::string& env = "", const std::string& args = "") {
        return run_command(dry_run_command(out, env, args));
    }
    static std::string dry_run_command(const std::string& out, const std::string& env, const std::string& args = "") {
        return "env GPU_CHECK_DRY_RUN=1 GPU_CHECK_BUNDLE='" + bundle() + "' OUT='" + out + "' CURVE_STEPS=30 RESUME_STEPS=5 " + env +
               " bash dev/gpu_check.sh " + args;
    }

    static ScratchDir* scratch_;
    static std::string* bundle_output_;
    static std::string* skip_reason_;
    static bool bundle_ok_;
};
ScratchDir* GpuCheckDryRun::scratch_ = nullptr;
std::string* GpuCheckDryRun::bundle_output_ = nullptr;
std::string* GpuCheckDryRun::skip_reason_ = nullptr;
bool GpuCheckDryRun::bundle_ok_ = false;

std::vector<int> pids_in(const std::string& path) {
    std::vector<int> pids;
    std::istringstream in(read_all(path));
    for (int pid; in >> pid;) pids.push_back(pid);
    return pids;
}

bool running(int pid) {  // alive and not a zombie
    if (kill(pid, 0) != 0) return false;
    const std::string stat = read_all("/proc/" + std::to_string(pid) + "/stat");
    const size_t close = stat.rfind(')');
    return close == std::string::npos || stat.size() < close + 3 || stat[close + 2] != 'Z';
}

}  // namespace

// The bundle: headers, static archives (nothing to find at run time) and googletest's sources,
// small enough to travel (the device call carries at most 64 MiB), no .deb and no shared library.
TEST_F(GpuCheckDryRun, TheBundleHoldsHeadersStaticLibrariesAndSources) {
    namespace fs = std::filesystem;
    for (const char* f : {"include/gtest/gtest.h", "include/nlohmann/json.hpp", "include/utf8proc.h", "include/zlib.h", "include/zconf.h",
                          "lib/libgtest.a", "lib/libutf8proc.a", "lib/libz.a", "src/googletest/src/gtest-all.cc",
                          "src/googletest/include/gtest/gtest.h", "MANIFEST"})
        EXPECT_TRUE(fs::is_regular_file(bundle() + "/" + f)) << f;
    uintmax_t bytes = 0;
    for (const auto& e : fs::recursive_directory_iterator(bundle())) {
        const std::string name = e.path().filename().string();
        EXPECT_FALSE(contains(name, ".so") || contains(name, ".deb")) << e.path();
        if (e.is_regular_file()) bytes += e.file_size();
    }
    EXPECT_LT(bytes, 16u << 20) << "the bundle should be a few MB";
    const std::string manifest = read_all(bundle() + "/MANIFEST");
    for (const char* p : {"libgtest-dev ", "googletest ", "libutf8proc-dev ", "zlib1g-dev ", "nlohmann-json3-dev "})
        EXPECT_TRUE(contains(manifest, std::string("\n") + p)) << p << " in\n" << manifest;
    EXPECT_TRUE(contains(*bundle_output_, "a program using them built and ran against it alone")) << *bundle_output_;
}

// From .deb files: each package must be there; the missing ones are named, nothing is made.
TEST_F(GpuCheckDryRun, TheBundleFromDebFilesNamesAMissingPackage) {
    ScratchDir dir;
    std::filesystem::create_directories(dir / "pkg/DEBIAN");
    std::filesystem::create_directories(dir / "pkg/usr/include/nlohmann");
    std::filesystem::create_directories(dir / "debs");
    write_text(dir / "pkg/DEBIAN/control", "Package: nlohmann-json3-dev\nVersion: 1.0\nArchitecture: all\nMaintainer: test <t@t>\n"
                                           "Description: a stand-in\n");
    write_text(dir / "pkg/usr/include/nlohmann/json.hpp", "// stand-in\n");
    const RunResult built = run_command("dpkg-deb -Znone --build '" + dir / "pkg" + "' '" + dir / "debs/json.deb" + "' 2>&1");
    ASSERT_EQ(built.exit_code, 0) << built.output;
    const RunResult r = run_command("bash dev/gpu_bundle.sh --debs '" + dir / "debs" + "' --out '" + dir / "bundle" + "'");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_TRUE(contains(r.output, "gpu_bundle: no .deb of libgtest-dev in " + dir / "debs")) << r.output;
    EXPECT_FALSE(std::filesystem::exists(dir / "bundle"));
}

// The whole check, rehearsed here: every stage runs and is judged; the prerequisites come from the
// bundle alone (each header and library path the probe found is under it, although this machine
// has the same files in /usr); the attention test's errors reach the table.
TEST_F(GpuCheckDryRun, EveryStageRunsWithTheBundleAlone) {
    ScratchDir dir;
    const RunResult r = dry_run(dir / "out", "FAKE_ARGV_LOG='" + dir / "argv.log" + "'");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output.rfind("nvcc", 0), 0u) << "the toolkit line comes first:\n" << r.output;
    EXPECT_EQ(lines_of(r.output).back(), "| overall | ok | 10 checks |") << r.output;
    EXPECT_EQ(row(r.output, "GPU"), "| GPU | ok | Stub GPU 80GB |");
    EXPECT_EQ(row(r.output, "build prerequisites"), "| build prerequisites | ok | gtest, nlohmann/json, utf8proc, zlib: all from the bundle bundle |");
    const std::string build_log = read_all(dir / "out/a_build.log");
    for (const char* h : {"gtest/gtest.h", "nlohmann/json.hpp", "utf8proc.h", "zlib.h"})
        EXPECT_TRUE(contains(build_log, std::string(h) + ": " + bundle() + "/include/" + h)) << h << ":\n" << build_log;
    for (const char* l : {"gtest", "utf8proc", "z"})
        EXPECT_TRUE(contains(build_log, std::string("-l") + l + ": " + bundle() + "/lib/../lib/lib" + l + ".a")) << l << ":\n" << build_log;

    EXPECT_EQ(row(r.output, "GPU tests (Cuda*)"), "| GPU tests (Cuda*) | ok | 5 passed, 0 failed, 1 skipped |");
    // The stub prints 30 errors: model 2, classifier 2, attention 2 x (4 + 4 + 4), ops 2.
    EXPECT_EQ(row(r.output, "worst GPU test errors"),
              "| worst GPU test errors | ok | 6.00e-03 (bound 1e-02) in CudaModel.Bf16MatchesPyTorchWithinBf16Bounds: [bf16] gradients: "
              "worst word_embeddings; 0 of 30 reported errors above their bounds |");
    EXPECT_TRUE(contains(read_all(dir / "out/b_tests.log"),
                         "5.50e-03 (bound 1e-02) in CudaAttention/1.MatchesCpuForwardAndBackward: CudaAttention bf16 worst: dqkv"));
    EXPECT_EQ(row(r.output, "memcheck (CudaOps*)"), "| memcheck (CudaOps*) | ok | 0 errors, 0 warnings; tests: 1 passed, 0 failed, 0 skipped |");
    EXPECT_EQ(row(r.output, "racecheck (CudaAttention*, small sizes)"),
              "| racecheck (CudaAttention*, small sizes) | ok | 0 errors, 0 warnings; tests: 2 passed, 0 failed, 0 skipped |");
    EXPECT_TRUE(contains(read_all(dir / "out/c_sanitizer.log"), "CudaAttention: WR_GPU_TEST_SMALL=1")) << "racecheck at small sizes";
    // bf16: every loss 1% above the CPU's; 30 steps, evaluations every 10.
    EXPECT_TRUE(contains(row(r.output, "curves: GPU bf16 vs CPU"),
                         "| ok | final val loss 6.029700 vs 5.970000: 1.00% (tolerance 3.00%); train losses at 30 steps"))
        << r.output;
    EXPECT_TRUE(contains(row(r.output, "curves: GPU fp32 vs CPU"), "| ok | final val loss 5.970000 vs 5.970000: 0.00% (tolerance "
                                                                    "1.00%); train losses at 10 steps (up to step 10)"))
        << r.output;
    EXPECT_EQ(row(r.output, "resume on the GPU"), "| resume on the GPU | ok | yes: losses identical: 10 train steps, 2 evaluations, "
                                                  "and the same ckpt_00000010.bin (resumed after step 5) |");

    // The curve runs: the same flags on both devices, but for device, precision, threads and folder.
    std::vector<std::string> curve_runs;
    for (std::string line : lines_of(read_all(dir / "argv.log")))
        if (contains(line, "--steps 30 ")) {
            for (const char* flag : {"--device ", "--precision ", "--threads ", "--out "}) {
                const size_t at = line.find(flag);
                if (at == std::string::npos) continue;
                const size_t value_end = line.find(' ', at + std::string(flag).size());
                line.erase(at, value_end == std::string::npos ? std::string::npos : value_end - at + 1);
            }
            curve_runs.push_back(line);
        }
    ASSERT_EQ(curve_runs.size(), 3u) << read_all(dir / "argv.log");
    EXPECT_EQ(curve_runs[1], curve_runs[0]);
    EXPECT_EQ(curve_runs[2], curve_runs[0]);
    EXPECT_TRUE(contains(curve_runs[0], "--seed 1")) << curve_runs[0];

    // $OUT: at most 8 plain files with plain names (what comes back from the GPU machine).
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir / "out")) {
        EXPECT_TRUE(e.is_regular_file()) << e.path();
        names.push_back(e.path().filename().string());
        EXPECT_EQ(names.back().find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"),
                  std::string::npos);
    }
    EXPECT_LE(names.size(), 8u);
    for (const char* f : {"summary.md", "a_build.log", "b_tests.log", "c_sanitizer.log", "d_curves.log", "e_resume.log", "details.tar.gz"})
        EXPECT_TRUE(std::filesystem::exists(dir / (std::string("out/") + f))) << f;
}

// A bundle without one header fails the build at once, with one line naming it (this machine's
// /usr/include/utf8proc.h does not count: the build must not need it); nothing runs after it.
TEST_F(GpuCheckDryRun, ABundleLackingAHeaderFailsAtOnceNamingIt) {
    ScratchDir dir;
    ASSERT_EQ(run_command("cp -R '" + bundle() + "' '" + dir / "partial" + "' && rm '" + dir / "partial/include/utf8proc.h" + "'").exit_code, 0);
    const RunResult r = run_command("env GPU_CHECK_DRY_RUN=1 GPU_CHECK_BUNDLE='" + dir / "partial" + "' OUT='" + dir / "out" +
                                    "' bash dev/gpu_check.sh");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_TRUE(contains(row(r.output, "build prerequisites"), "| FAIL | found outside " + dir / "partial" + ": utf8proc.h (")) << r.output;
    EXPECT_EQ(row(r.output, "GPU tests (Cuda*)"), "| GPU tests (Cuda*) | not run | nothing to run: the build failed (see a_build.log) |");
    EXPECT_EQ(lines_of(r.output).back(), "| overall | FAIL | failed: build prerequisites, 7 not run |") << r.output;
}

// A libgtest.a that does not link (here: an empty archive) is compiled again from the bundle's
// sources (here a one-function stand-in for gtest-all.cc, to stay fast), and the build goes on.
TEST_F(GpuCheckDryRun, AGtestThatDoesNotLinkIsCompiledFromTheBundleSources) {
    ScratchDir dir;
    ASSERT_EQ(run_command("cp -R '" + bundle() + "' '" + dir / "b" + "' && rm '" + dir / "b/lib/libgtest.a" + "' && ar rc '" +
                          dir / "b/lib/libgtest.a" + "'")
                  .exit_code,
              0);
    write_text(dir / "b/src/googletest/src/gtest-all.cc", "#include <string>\nnamespace testing { std::string TempDir() { return \"/tmp/\"; } }\n");
    const RunResult r = run_command("env GPU_CHECK_DRY_RUN=1 GPU_CHECK_BUNDLE='" + dir / "b" + "' OUT='" + dir / "out" +
                                    "' CURVE_STEPS=30 RESUME_STEPS=5 bash dev/gpu_check.sh");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(row(r.output, "build prerequisites"), "| ok | gtest, nlohmann/json, utf8proc, zlib: all from the bundle b "
                                                               "(libgtest.a compiled here from its sources: the prebuilt one did not link)"))
        << r.output;
}

// A stage that overruns its share of the budget is stopped at its limit (its program killed, not
// left behind) with a row saying so; the stages after it are not run, for want of budget.
TEST_F(GpuCheckDryRun, AStageOverrunningTheBudgetIsStoppedWithARow) {
    ScratchDir dir;
    const auto t0 = std::chrono::steady_clock::now();
    const RunResult r = dry_run(dir / "out", "GPU_CHECK_BUDGET=16 GPU_CHECK_MIN_S=1 FAKE_TEST_SLEEP=60 FAKE_PIDS='" + dir / "pids" + "'");
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_LT(seconds, 30) << "a budget of 16 s";
    EXPECT_TRUE(contains(row(r.output, "GPU tests (Cuda*)"), "| out of time | stopped at the limit, ")) << r.output;
    EXPECT_TRUE(contains(row(r.output, "compute-sanitizer"), "| not run | the budget was spent: ")) << r.output;
    EXPECT_TRUE(contains(row(r.output, "resume on the GPU"), "| not run | the budget was spent: ")) << r.output;
    EXPECT_EQ(lines_of(r.output).back(), "| overall | FAIL | out of time: GPU tests (Cuda*), 3 not run |") << r.output;
    EXPECT_EQ(read_all(dir / "out/summary.md").substr(0, 19), "## dev/gpu_check.sh");
    const std::vector<int> pids = pids_in(dir / "pids");
    ASSERT_EQ(pids.size(), 1u);
    EXPECT_FALSE(running(pids[0])) << "the stopped test binary is still running";
}

// TERM in the middle of a stage: the stage's program is stopped, the table and the logs are in
// $OUT (the stage interrupted, the rest not run), and the script ends at once with 128 + 15.
TEST_F(GpuCheckDryRun, TermInTheMiddleStillWritesTheTable) {
    ScratchDir dir;
    const pid_t pid = wr::testing::spawn(dry_run_command(dir / "out", "FAKE_TEST_SLEEP=60 FAKE_PIDS='" + dir / "pids" + "'"), dir / "output.txt");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (pids_in(dir / "pids").empty() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_FALSE(pids_in(dir / "pids").empty()) << "the tests stage never started:\n" << read_all(dir / "output.txt");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const auto t0 = std::chrono::steady_clock::now();
    kill(pid, SIGTERM);
    EXPECT_EQ(wr::testing::wait_exit(pid, 20), 143) << read_all(dir / "output.txt");
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10);
    const std::string summary = read_all(dir / "out/summary.md");
    EXPECT_TRUE(contains(row(summary, "build (sm_90)"), "| ok |")) << summary;
    EXPECT_TRUE(contains(row(summary, "GPU tests"), "| interrupted | TERM after ")) << summary;
    EXPECT_EQ(row(summary, "compute-sanitizer"), "| compute-sanitizer | not run | interrupted (TERM) before it started |") << summary;
    EXPECT_EQ(lines_of(summary).back(), "| overall | FAIL | interrupted: GPU tests, 3 not run |") << summary;
    EXPECT_TRUE(std::filesystem::exists(dir / "out/details.tar.gz"));
    EXPECT_TRUE(std::filesystem::exists(dir / "out/b_tests.log"));
    EXPECT_TRUE(contains(read_all(dir / "output.txt"), "| overall | FAIL |")) << "the table is printed too";
    EXPECT_FALSE(running(pids_in(dir / "pids")[0])) << "the interrupted test binary is still running";
}

// A bf16 curve 5% off, a failing GPU test and a race: each is reported, the stages after them
// still run, and the script fails.
TEST_F(GpuCheckDryRun, FailuresAreCollected) {
    ScratchDir dir;
    const RunResult r = dry_run(dir / "out", "FAKE_BF16_FACTOR=1.05 FAKE_TEST_FAIL=1 FAKE_SANITIZER_FINDING=racecheck");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_EQ(row(r.output, "GPU tests (Cuda*)"), "| GPU tests (Cuda*) | FAIL | 5 passed, 1 failed, 1 skipped: CudaModel.Fp32MatchesPyTorch |");
    EXPECT_TRUE(contains(row(r.output, "worst GPU test errors"), "| FAIL | 2.00e-05 (bound 1e-05) in CudaModel.Fp32MatchesPyTorch")) << r.output;
    EXPECT_TRUE(contains(row(r.output, "memcheck (CudaOps*)"), "| ok |")) << r.output;
    EXPECT_TRUE(contains(row(r.output, "racecheck (CudaAttention*, small sizes)"),
                         "| FAIL | 1 errors, 0 warnings; tests: 2 passed, 0 failed, 0 skipped; first: Error: Race reported between"))
        << r.output;
    EXPECT_TRUE(contains(row(r.output, "curves: GPU bf16 vs CPU"), "| FAIL | final val loss 6.268500 vs 5.970000: 5.00%")) << r.output;
    EXPECT_TRUE(contains(row(r.output, "curves: GPU fp32 vs CPU"), "| ok |")) << r.output;
    EXPECT_TRUE(contains(row(r.output, "resume on the GPU"), "| ok | yes")) << r.output;
    EXPECT_EQ(lines_of(r.output).back(), "| overall | FAIL | failed: GPU tests (Cuda*), worst GPU test errors, "
                                         "racecheck (CudaAttention*, small sizes), curves: GPU bf16 vs CPU |");
}

// The second command: the build (make all, when not yet built) and the benchmark.
TEST_F(GpuCheckDryRun, TheBenchmarkIsTheSecondCommand) {
    ScratchDir dir;
    const RunResult r = dry_run(dir / "out", "", "bench");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(row(r.output, "bench mini (L4-H256), B 64"), "| ok | ours 1.60M tok/s, MFU 12.0%")) << r.output;
    EXPECT_TRUE(contains(row(r.output, "bench L12-H768, B 32"), "MFU 55.0%")) << r.output;
    EXPECT_EQ(row(r.output, "GPU tests (Cuda*)"), "") << "the checks are the first command's";
    EXPECT_EQ(lines_of(r.output).back(), "| overall | ok | 5 checks |") << r.output;
    for (const char* f : {"summary.md", "a_build.log", "f_bench.log", "details.tar.gz"})
        EXPECT_TRUE(std::filesystem::exists(dir / (std::string("out/") + f))) << f;
}
