// tests/test_distributed.cpp: data-parallel training (common/distributed.h) against one process.
// The end-to-end tests start the programs under `mpirun -np 2` (Open MPI) and skip where this
// build has no MPI or mpirun is missing; the row split, the batch slices and the resume rules are
// plain unit tests.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <tuple>

#include "common/distributed.h"
#include "common/flags.h"
#include "data/example_batcher.h"
#include "data/mlm_batcher.h"
#include "model/checkpoint.h"
#include "model/run_folder.h"
#include "test_helpers.h"

using namespace wr;
using namespace wr::testing;

namespace {

// Two ranks on this machine, one thread each. Open MPI refuses root unless told, and wants leave
// to start more ranks than it counts cores for.
const std::string kMpirun =
    "env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 mpirun -np 2 --bind-to none ";

bool can_run_mpi() { return mpi_built() && std::system("command -v mpirun >/dev/null 2>&1") == 0; }
#define SKIP_WITHOUT_MPI() \
    if (!can_run_mpi()) GTEST_SKIP() << "this build has no MPI or mpirun is missing (dev/prerequisites.sh mpi, then make)"

// Dropout off, so that the ranks' different dropout streams do not enter the comparison.
const std::string kMlm = " --layers 1 --hidden 64 --seq-len 32 --warmup 5 --lr 1e-3 --dropout 0 --attention-dropout 0 --eval-batches 4 "
                         "--threads 1";
const std::string kFinetune = " --init '' --layers 1 --hidden 64 --lr 1e-3 --dropout 0 --attention-dropout 0 --threads 1";

struct Record {
    int64_t step;
    double loss, grad_norm;
};
std::vector<Record> records(const std::string& dir, const std::string& kind) {
    std::vector<Record> out;
    std::ifstream in(dir + "/log.jsonl");
    for (std::string line; std::getline(in, line);) {
        if (line.find("\"kind\":\"" + kind + "\"") == std::string::npos) continue;
        auto number = [&](const std::string& key) {
            const size_t at = line.find("\"" + key + "\":");
            return at == std::string::npos ? NAN : std::atof(line.c_str() + at + key.size() + 3);
        };
        out.push_back({(int64_t)number("step"), number("loss"), number("grad_norm")});
    }
    return out;
}

// The largest difference of two runs' losses and gradient norms, step by step (same steps).
double max_difference(const std::vector<Record>& a, const std::vector<Record>& b) {
    EXPECT_EQ(a.size(), b.size());
    double worst = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); i++) {
        EXPECT_EQ(a[i].step, b[i].step);
        worst = std::max({worst, std::fabs(a[i].loss - b[i].loss), std::isnan(a[i].grad_norm) ? 0.0 : std::fabs(a[i].grad_norm - b[i].grad_norm)});
    }
    return worst;
}

// The largest difference between two checkpoints' weights.
float max_weight_difference(const std::string& a, const std::string& b) {
    const Checkpoint x = load_checkpoint(a), y = load_checkpoint(b);
    EXPECT_EQ(x.params.size(), y.params.size());
    float worst = 0;
    for (size_t i = 0; i < std::min(x.params.size(), y.params.size()); i++) worst = std::max(worst, std::fabs(x.params[i] - y.params[i]));
    return worst;
}

// PROGRAM with FLAGS in one process with --batch 2B (DIR/one) and on 2 ranks with --batch B
// (DIR/two). False, with the output reported, when either fails.
bool run_one_and_two(const std::string& program, const std::string& flags, int B, const ScratchDir& dir) {
    for (const auto& [launcher, batch, out] : {std::tuple(std::string(), 2 * B, "one"), std::tuple(kMpirun, B, "two")}) {
        const RunResult r = run_command(launcher + program + flags + " --batch " + std::to_string(batch) + " --out " + dir / out);
        if (r.exit_code != 0) {
            ADD_FAILURE() << program << " (" << out << "): exit " << r.exit_code << "\n" << r.output;
            return false;
        }
    }
    return true;
}

// A run folder as a kill right after step `step`'s checkpoint leaves it: the later pairs gone,
// `latest` naming `step` (log lines after it stay; the resumed run drops them).
void cut_back_to(const std::string& dir, int64_t step) {
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        const std::string name = entry.path().filename().string();
        for (const char* prefix : {"ckpt_", "state_"})
            if (name.rfind(prefix, 0) == 0 && std::atoll(name.c_str() + std::strlen(prefix)) > step) std::filesystem::remove(entry.path());
    }
    write_text(dir + "/latest", std::to_string(step) + "\n");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The pieces, without MPI.

TEST(DataParallel, RankRowsAreConsecutiveBlocksCoveringTheBatch) {
    for (int size : {1, 2, 3, 4, 7})
        for (int rows : {0, 1, 5, 8, 13, 64}) {
            int next = 0;
            for (int rank = 0; rank < size; rank++) {
                World w;
                w.rank = rank, w.size = size;
                const RankRows mine = rank_rows(rows, w);
                EXPECT_EQ(mine.first, next) << rows << " rows, rank " << rank << " of " << size;
                EXPECT_GE(mine.count, 0);
                EXPECT_LE(mine.count, (rows + size - 1) / size);
                next += mine.count;
            }
            EXPECT_EQ(next, rows) << "every row to exactly one rank: " << rows << " rows, " << size << " ranks";
        }
    World w;
    w.rank = 1, w.size = 2;
    EXPECT_EQ(rank_rows(8, w).first, 4);
    EXPECT_EQ(rank_rows(8, w).count, 4);
    EXPECT_EQ(rank_rows(1, w).count, 0) << "a short last batch may leave a rank nothing";
}

TEST(DataParallel, RankSeedsKeepRankZeroAndDifferElsewhere) {
    EXPECT_EQ(rank_seed(1234, 0), 1234u) << "one process draws the dropout masks it always drew";
    EXPECT_NE(rank_seed(1234, 1), 1234u);
    EXPECT_NE(rank_seed(1234, 1), rank_seed(1234, 2));
    EXPECT_NE(rank_seed(1234, 1), rank_seed(1235, 1));
}

TEST(DataParallel, MlmBatchRowsRenumberTheMaskedPositions) {
    MlmBatch b;
    b.B = 3, b.T = 4;
    for (int i = 0; i < 12; i++) b.input_ids.push_back(100 + i), b.token_types.push_back(0), b.mlm_targets.push_back(MlmBatch::kNoTarget);
    b.lengths = {4, 3, 4};
    b.sequence_index = {7, 8, 9};
    b.masked_positions = {1, 5, 6, 9, 11};  // rows 0, 1, 1, 2, 2
    b.masked_targets = {11, 15, 16, 19, 21};
    MlmBatch part;
    b.rows(1, 2, part);
    EXPECT_EQ(part.B, 2);
    EXPECT_EQ(part.T, 4);
    EXPECT_EQ(part.input_ids, std::vector<int32_t>({104, 105, 106, 107, 108, 109, 110, 111}));
    EXPECT_EQ(part.lengths, std::vector<int32_t>({3, 4}));
    EXPECT_EQ(part.sequence_index, std::vector<int64_t>({8, 9}));
    EXPECT_EQ(part.masked_positions, std::vector<int32_t>({1, 2, 5, 7}));
    EXPECT_EQ(part.masked_targets, std::vector<int32_t>({15, 16, 19, 21}));
    b.rows(0, 1, part);
    EXPECT_EQ(part.masked_positions, std::vector<int32_t>({1}));
    b.rows(3, 0, part);
    EXPECT_EQ(part.B, 0);
    EXPECT_TRUE(part.masked_positions.empty());
}

TEST(DataParallel, ExampleBatchRowsKeepLabelsAndIndices) {
    ExampleBatch b;
    b.B = 3, b.T = 2;
    b.input_ids = {1, 2, 3, 4, 5, 6}, b.token_types = {0, 0, 0, 1, 0, 0}, b.lengths = {2, 2, 1};
    b.labels = {0, 1, 2}, b.values = {0, 0, 0}, b.example_index = {40, 41, 42};
    ExampleBatch part;
    b.rows(2, 1, part);
    EXPECT_EQ(part.B, 1);
    EXPECT_EQ(part.input_ids, std::vector<int32_t>({5, 6}));
    EXPECT_EQ(part.labels, std::vector<int32_t>({2}));
    EXPECT_EQ(part.example_index, std::vector<int64_t>({42}));
}

// A run started on 2 ranks and resumed in one process keeps its global batch: --batch becomes
// batch x 2 unless given, and a given --batch must make the same global batch.
TEST(DataParallel, ResumeOnOtherRanksKeepsTheGlobalBatch) {
    ScratchDir dir;
    write_text(dir / "run/run.json", "{\"program\":\"prog\",\"flags\":{\"batch\":\"4\",\"lr\":\"0.001\"},\"ranks\":2}");
    struct Settings {
        Flags flags{"prog", ""};
        int batch = 32;
        double lr = 3e-4;
        Settings(std::vector<std::string> args) {
            flags.add("batch", &batch, "");
            flags.add("lr", &lr, "");
            args.insert(args.begin(), "prog");
            std::vector<char*> argv;
            for (std::string& a : args) argv.push_back(a.data());
            flags.parse((int)argv.size(), argv.data());
        }
    };
    Settings none({});
    apply_run_settings(dir / "run", "prog", none.flags);
    EXPECT_EQ(none.batch, 8) << "one process takes both ranks' rows";
    EXPECT_EQ(none.lr, 1e-3);
    Settings same({"--batch", "8"});
    EXPECT_NO_THROW(apply_run_settings(dir / "run", "prog", same.flags));
    Settings other({"--batch", "4"});
    EXPECT_ERROR_MENTIONS(apply_run_settings(dir / "run", "prog", other.flags), "--batch", "global batch is 8", "--batch 8");
    write_text(dir / "bad/run.json", "{\"program\":\"prog\",\"flags\":{},\"ranks\":0}");
    EXPECT_ERROR_MENTIONS(apply_run_settings(dir / "bad", "prog", none.flags), "run.json", "ranks");
}

// ---------------------------------------------------------------------------------------------
// The programs under mpirun.

// The stated tolerance: 2 ranks with batch B/2 against one process with batch B, dropout off,
// fp32. The two sum the same gradients in another order (each rank's half, then the all-reduce),
// so they agree to float rounding, which AdamW carries on: measured within 2e-6 in the losses
// over 10 steps; asserted within 1e-4.
constexpr double kTolerance = 1e-4;

TEST(DataParallel, TrainMlmOnTwoRanksMatchesOneProcess) {
    SKIP_WITHOUT_MPI();
    ScratchDir dir;
    ASSERT_TRUE(run_one_and_two("./train_mlm", kMlm + " --steps 10 --eval-every 5 --precision fp32", 4, dir));
    EXPECT_NE(read_file(dir / "two/run.json").find("\"ranks\": 2"), std::string::npos) << "run.json records the ranks";
    const auto a = records(dir / "one", "train"), b = records(dir / "two", "train");
    ASSERT_EQ(a.size(), 10u);
    const double train = max_difference(a, b), eval = max_difference(records(dir / "one", "eval"), records(dir / "two", "eval"));
    const float weights = max_weight_difference(dir / "one/ckpt_00000010.bin", dir / "two/ckpt_00000010.bin");
    std::printf("2 ranks x batch 4 against 1 x 8: losses and norms within %.2e, validation within %.2e, weights within %.2e\n", train,
                eval, weights);
    EXPECT_LE(train, kTolerance);
    EXPECT_LE(eval, kTolerance);
    EXPECT_LE(weights, 1e-5f);
    EXPECT_GT(a.front().loss - a.back().loss, 0.05) << "it learns";
    // Rank 0 alone wrote: one log, one line per step.
    EXPECT_EQ(records(dir / "two", "train").size(), 10u);
}

TEST(DataParallel, FinetuneOnTwoRanksMatchesOneProcess) {
    SKIP_WITHOUT_MPI();
    ScratchDir dir;
    // An epoch of the small dev set in batches of 2 ranks x 8 rows: its last batch is short (and
    // split unevenly); dev loss after it.
    ASSERT_TRUE(run_one_and_two("./finetune", kFinetune + " --train build/default/sentiment_dev.bin --dev build/default/sentiment_dev.bin " +
                                                    "--epochs 1 --precision fp32", 8, dir));
    const auto a = records(dir / "one", "train"), b = records(dir / "two", "train");
    ASSERT_GE(a.size(), 10u);
    const double train = max_difference(a, b), eval = max_difference(records(dir / "one", "eval"), records(dir / "two", "eval"));
    std::printf("finetune, 2 ranks x batch 8 against 1 x 16: %zu steps, losses and norms within %.2e, dev loss within %.2e\n", a.size(),
                train, eval);
    EXPECT_LE(train, kTolerance);
    EXPECT_LE(eval, kTolerance);
    EXPECT_TRUE(std::filesystem::exists(dir / "two/task.json"));
}

TEST(DataParallel, DistillTrainOnTwoRanksMatchesOneProcess) {
    SKIP_WITHOUT_MPI();
    ScratchDir dir;
    // A small teacher and its logits over the built-in transfer set.
    RunResult r = run_command("./finetune" + kFinetune + " --train build/default/sentiment_dev.bin --dev build/default/sentiment_dev.bin" +
                              " --epochs 1 --out " + dir / "teacher");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = run_command("./distill cache --teacher " + dir / "teacher/best.bin" + " --out " + dir / "cache.bin --threads 2");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const std::string flags = " train --cache " + dir / "cache.bin" + " --teacher " + dir / "teacher/best.bin" +
                              " --dev '' --layers 1 --hidden 64 --epochs 0.05 --lr 1e-3 --temperature 2 --dropout 0 "
                              "--attention-dropout 0 --threads 1 --precision fp32";
    ASSERT_TRUE(run_one_and_two("./distill", flags, 8, dir));
    const auto a = records(dir / "one", "train");
    ASSERT_GE(a.size(), 10u);
    const double train = max_difference(a, records(dir / "two", "train"));
    std::printf("distill train, 2 ranks x batch 8 against 1 x 16: %zu steps, losses and norms within %.2e\n", a.size(), train);
    EXPECT_LE(train, kTolerance);
}

// 2 ranks killed after step 5 and resumed to 10 equal 10 steps straight on 2 ranks, byte for byte;
// resumed in one process instead (--batch follows), they match to the tolerance above.
TEST(DataParallel, ResumeOnTheSameOrAnotherNumberOfRanks) {
    SKIP_WITHOUT_MPI();
    ScratchDir dir;
    const std::string flags = kMlm + " --batch 4 --steps 10 --eval-every 0 --save-every 5 --keep 3 --precision fp32";
    RunResult r = run_command(kMpirun + "./train_mlm" + flags + " --out " + dir / "straight");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ASSERT_EQ(std::system(("cp -r " + dir / "straight " + dir / "two && cp -r " + dir / "straight " + dir / "one").c_str()), 0);
    cut_back_to(dir / "two", 5);
    cut_back_to(dir / "one", 5);

    r = run_command(kMpirun + "./train_mlm --resume " + dir / "two");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(read_file(dir / "two/ckpt_00000010.bin"), read_file(dir / "straight/ckpt_00000010.bin"));
    EXPECT_EQ(read_file(dir / "two/state_00000010.bin"), read_file(dir / "straight/state_00000010.bin"));
    EXPECT_EQ(max_difference(records(dir / "two", "train"), records(dir / "straight", "train")), 0.0);

    r = run_command("./train_mlm --resume " + dir / "one");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("batch 8 x 1 accumulation"), std::string::npos) << "one process takes the global batch of 8\n" << r.output;
    const double train = max_difference(records(dir / "one", "train"), records(dir / "straight", "train"));
    std::printf("resumed after step 5 in 1 process instead of 2 ranks: losses within %.2e of the straight run\n", train);
    EXPECT_LE(train, kTolerance);
    EXPECT_LE(max_weight_difference(dir / "one/ckpt_00000010.bin", dir / "straight/ckpt_00000010.bin"), 1e-5f);
}

// A rank killed mid-run: every rank stops within a bounded time, mpirun exits non-zero, and the
// folder's latest checkpoint and state are whole (the run resumes from them).
TEST(DataParallel, AKilledRankStopsEveryRankAndLeavesTheCheckpointsWhole) {
    SKIP_WITHOUT_MPI();
    ScratchDir dir;
    const std::string run = dir / "run";
    const pid_t pid = spawn(kMpirun + "./train_mlm" + kMlm + " --batch 4 --steps 100000 --eval-every 0 --save-every 2 --out " + run,
                            dir / "out.txt");
    ASSERT_GT(pid, 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (last_logged_step(run) < 5 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_GE(last_logged_step(run), 5) << read_file(dir / "out.txt");
    // Rank 1: the train_mlm whose environment says so.
    RunResult ranks = run_command("for p in $(pgrep -f '[t]rain_mlm.*" + run + "'); do tr '\\0' '\\n' < /proc/$p/environ 2>/dev/null | "
                                  "grep -qx OMPI_COMM_WORLD_RANK=1 && echo $p; done");
    const pid_t rank1 = (pid_t)std::atoi(ranks.output.c_str());
    ASSERT_GT(rank1, 0) << ranks.output;
    const auto killed = std::chrono::steady_clock::now();
    kill(rank1, SIGKILL);
    const int code = wait_exit(pid, 60);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
    std::printf("rank 1 killed at step %lld: mpirun exited %d after %.1f s\n", (long long)last_logged_step(run), code, seconds);
    EXPECT_NE(code, 0) << read_file(dir / "out.txt");
    EXPECT_NE(code, -1) << "mpirun did not end within 60 s";
    EXPECT_EQ(run_command("pgrep -f '[t]rain_mlm.*" + run + "'").output, "") << "no rank is left running";

    const ResumePoint latest = find_latest(run);
    const Checkpoint ck = load_checkpoint(latest.checkpoint_path);
    EXPECT_NO_THROW(load_training_state(latest, ck));
    RunResult resumed = run_command(kMpirun + "./train_mlm --resume " + run + " --steps " + std::to_string(latest.step + 2));
    EXPECT_EQ(resumed.exit_code, 0) << resumed.output;
}

// What has no data-parallel form says so, rather than running twice.
TEST(DataParallel, OneProcessCommandsRefuseSeveralRanks) {
    SKIP_WITHOUT_MPI();
    RunResult r = run_command(kMpirun + "./finetune --eval-only --init build/no-such.bin");
    EXPECT_NE(r.exit_code, 0);
    r = run_command(kMpirun + "./distill cache --teacher build/no-such.bin");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("runs in one process"), std::string::npos) << r.output;
}

// The NCCL path: 2 GPUs against one, on a machine with two (it compiles everywhere nvcc is; the
// GPU check runs the suite on a lent GPU, where this skips unless there are two).
TEST(DataParallel, TrainMlmOnTwoGpusMatchesOneGpu) {
    SKIP_WITHOUT_MPI();
    const int gpus = std::atoi(run_command("nvidia-smi -L 2>/dev/null | grep -c '^GPU'").output.c_str());
    if (gpus < 2) GTEST_SKIP() << "needs two GPUs (this machine has " << gpus << ")";
    ScratchDir dir;
    ASSERT_TRUE(run_one_and_two("./train_mlm", kMlm + " --steps 10 --eval-every 5 --device cuda --precision fp32", 4, dir));
    const double train = max_difference(records(dir / "one", "train"), records(dir / "two", "train"));
    std::printf("2 GPUs x batch 4 (NCCL) against 1 x 8: losses and norms within %.2e\n", train);
    EXPECT_LE(train, kTolerance);
}
