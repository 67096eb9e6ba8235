// tests/test_common.cpp: the shared flag parser, the table reader (TSV, CSV, JSON lines), the
// line reader (plain and gzip text, invalid UTF-8), the least-recently-used cache, the
// prerequisites script and the named-tensor file reader.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "common/flags.h"
#include "common/lru_cache.h"
#include "common/profile.h"
#include "common/tensor_file.h"
#include "common/util.h"
#include "data/table_reader.h"
#include "data/text_reader.h"
#include "test_helpers.h"

using namespace wr;
using wr::testing::RunResult;
using wr::testing::ScratchDir;

namespace {

void parse(Flags& flags, std::vector<std::string> args) {
    std::vector<char*> argv{const_cast<char*>("prog")};
    for (std::string& a : args) argv.push_back(a.data());
    flags.parse((int)argv.size(), argv.data());
}

}  // namespace

TEST(Flags, ParsesEveryTypeAndBothSpellings) {
    std::string name = "x";
    int steps = 10;
    int64_t big = 0;
    double lr = 1e-3;
    bool verbose = false, shuffle = true;
    std::vector<std::string> inputs = {"default.txt"};
    Flags flags("prog", "test");
    flags.add("name", &name, "a string");
    flags.add("steps", &steps, "an int");
    flags.add("big", &big, "an int64");
    flags.add("lr", &lr, "a double");
    flags.add("verbose", &verbose, "a bool");
    flags.add("shuffle", &shuffle, "a bool");
    flags.add("input", &inputs, "a list");
    flags.allow_positional("FILE");
    parse(flags, {"--name", "abc", "--steps=25", "--big", "5000000000", "--lr", "3e-4", "--verbose", "--no-shuffle",
                  "--input", "a,b", "--input=c", "positional"});
    EXPECT_EQ(name, "abc");
    EXPECT_EQ(steps, 25);
    EXPECT_EQ(big, 5000000000LL);
    EXPECT_DOUBLE_EQ(lr, 3e-4);
    EXPECT_TRUE(verbose);
    EXPECT_FALSE(shuffle);
    EXPECT_EQ(inputs, (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_EQ(flags.positional(), std::vector<std::string>{"positional"});
    EXPECT_TRUE(flags.was_set("steps"));
    EXPECT_NE(flags.help().find("--steps INT"), std::string::npos);
    EXPECT_NE(flags.help().find("[10]"), std::string::npos);  // help shows the default
}

TEST(Flags, BadInputNamesTheFlag) {
    int steps = 1;
    double lr = 0;
    Flags flags("prog", "test");
    flags.add("steps", &steps, "an int");
    flags.add("lr", &lr, "a double");
    EXPECT_ERROR_MENTIONS(parse(flags, {"--steps", "ten"}), "--steps", "ten", "integer");
    EXPECT_ERROR_MENTIONS(parse(flags, {"--lr=fast"}), "--lr", "number");
    EXPECT_ERROR_MENTIONS(parse(flags, {"--stepz", "3"}), "unknown flag --stepz", "prog -h");
    EXPECT_ERROR_MENTIONS(parse(flags, {"--steps"}), "--steps", "needs a value");
    EXPECT_ERROR_MENTIONS(parse(flags, {"--steps", "99999999999"}), "--steps", "32-bit");
    EXPECT_ERROR_MENTIONS(parse(flags, {"--steps", "3", "b.txt"}), "unexpected argument 'b.txt'");
}

TEST(TableReader, TsvCsvJsonl) {
    ScratchDir dir;
    wr::testing::write_text(dir / "a.tsv", "sentence\tlabel\nit is good \t1\n\nbad , really\t0\n");
    auto rows = read_table(dir / "a.tsv", TableFormat::Auto, {"label", "sentence"});
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].values, (std::vector<std::string>{"1", "it is good "}));
    EXPECT_EQ(rows[1].line, 4);
    EXPECT_EQ(rows[1].values[1], "bad , really");

    wr::testing::write_text(dir / "b.csv", "text,label\n\"a, quoted \"\"field\"\"\nover two lines\",pos\nplain,neg\n");
    rows = read_table(dir / "b.csv", TableFormat::Auto, {"text", "label"});
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].values[0], "a, quoted \"field\"\nover two lines");
    EXPECT_EQ(rows[0].values[1], "pos");
    EXPECT_EQ(rows[1].line, 4);  // the first record spans lines 2 and 3

    wr::testing::write_text(dir / "c.jsonl", "{\"text\": \"caf\\u00e9 \\\"ok\\\"\", \"label\": \"A\", \"n\": 3}\n{\"text\": \"x\", \"label\": 2}\n");
    rows = read_table(dir / "c.jsonl", TableFormat::Auto, {"text", "label"});
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].values[0], "caf\xc3\xa9 \"ok\"");
    EXPECT_EQ(rows[1].values[1], "2");

    wr::testing::write_text(dir / "d.tsv", "x\t1\ny\t0\n");
    rows = read_table(dir / "d.tsv", TableFormat::Tsv, {"0", "1"}, /*has_header=*/false);
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[1].values, (std::vector<std::string>{"y", "0"}));
}

TEST(TableReader, ErrorsNameFileLineAndColumn) {
    ScratchDir dir;
    wr::testing::write_text(dir / "a.tsv", "sentence\tlabel\nok\t1\ntoo\tmany\tcolumns\n");
    EXPECT_ERROR_MENTIONS(read_table(dir / "a.tsv", TableFormat::Auto, {"text"}), "a.tsv", "text", "no such column", "sentence, label");
    EXPECT_ERROR_MENTIONS(read_table(dir / "a.tsv", TableFormat::Auto, {"sentence"}), "a.tsv", "line 3", "3 columns");
    wr::testing::write_text(dir / "b.jsonl", "{\"text\": \"a\"}\n{\"text\": \n");
    EXPECT_ERROR_MENTIONS(read_table(dir / "b.jsonl", TableFormat::Auto, {"text"}), "b.jsonl", "line 2", "JSON");
    EXPECT_ERROR_MENTIONS(read_table(dir / "b.jsonl", TableFormat::Auto, {"label"}), "b.jsonl", "line 1", "label");
    wr::testing::write_text(dir / "c.csv", "text,label\n\"never closed,1\nmore\ntext\n");
    EXPECT_ERROR_MENTIONS(read_table(dir / "c.csv", TableFormat::Auto, {"text"}), "c.csv", "line 2", "never closed");
    EXPECT_ERROR_MENTIONS(read_table(dir / "x.txt", TableFormat::Auto, {"text"}), "x.txt", "--format");
}

TEST(LineReader, PlainGzipCrlfNulAndLongLines) {
    ScratchDir dir;
    std::string text = "first\r\nsec";
    text += '\0';
    text += "ond\n\n";
    const std::string long_line(3 << 20, 'x');  // longer than one read block
    text += long_line + "\nlast without newline";
    write_file_atomic(dir / "a.txt", text);
    ASSERT_EQ(wr::testing::run_command("gzip -k " + dir / "a.txt").exit_code, 0);
    for (const char* name : {"a.txt", "a.txt.gz"}) {
        LineReader in(dir / name);
        std::vector<std::string> lines;
        std::string line;
        while (in.next(line)) lines.push_back(line);
        ASSERT_EQ(lines.size(), 5u) << name;
        EXPECT_EQ(lines[0], "first");
        EXPECT_EQ(lines[1], std::string("sec\0ond", 7));
        EXPECT_EQ(lines[2], "");
        EXPECT_EQ(lines[3], long_line);
        EXPECT_EQ(lines[4], "last without newline");
        EXPECT_EQ(in.line_number(), 5);
    }
    EXPECT_ERROR_MENTIONS(LineReader(dir / "absent.txt"), "absent.txt", "cannot open");

    // A cut-off .gz is an error, not a short file.
    ASSERT_EQ(wr::testing::run_command("head -c 2000 " + dir / "a.txt.gz > " + dir / "cut.txt.gz").exit_code, 0);
    LineReader cut(dir / "cut.txt.gz");
    std::string line;
    EXPECT_ERROR_MENTIONS(while (cut.next(line)) {}, "cut.txt.gz", "truncated or corrupt gzip");
}

namespace {

std::vector<std::string> read_lines(const std::string& path) {
    LineReader in(path);
    std::vector<std::string> lines;
    std::string line;
    while (in.next(line)) lines.push_back(line);
    return lines;
}

size_t count_of(const std::string& text, const std::string& piece) {
    size_t n = 0;
    for (size_t at = text.find(piece); at != std::string::npos; at = text.find(piece, at + 1)) n++;
    return n;
}

}  // namespace

// A file named .gz must be gzip data: a 1-byte file, or plain text, named so is refused (before,
// zlib read it as plain text).
TEST(LineReader, FileNamedGzThatIsNotGzipIsRefused) {
    ScratchDir dir;
    write_file_atomic(dir / "one.txt.gz", "x");
    EXPECT_ERROR_MENTIONS(LineReader(dir / "one.txt.gz"), "one.txt.gz", "not gzip data", "1 byte");
    write_file_atomic(dir / "plain.txt.gz", "hello\nworld\n");
    EXPECT_ERROR_MENTIONS(LineReader(dir / "plain.txt.gz"), "plain.txt.gz", "not gzip data", "1f 8b");
    write_file_atomic(dir / "empty.txt.gz", "");
    EXPECT_ERROR_MENTIONS(LineReader(dir / "empty.txt.gz"), "empty.txt.gz", "not gzip data", "0 bytes");
    // The same bytes under a name without .gz are plain text.
    write_file_atomic(dir / "one.txt", "x");
    EXPECT_EQ(read_lines(dir / "one.txt"), std::vector<std::string>{"x"});
}

// Bytes after the gzip data that are not another member are an error naming the file; members
// concatenated as gzip -c a >> f; gzip -c b >> f are all read, as gzip -d reads them.
TEST(LineReader, GzipTrailingGarbageIsAnErrorAndMembersAreAllRead) {
    ScratchDir dir;
    write_file_atomic(dir / "a.txt", "alpha\nbeta\n");
    write_file_atomic(dir / "b.txt", "gamma\n");
    ASSERT_EQ(wr::testing::run_command("gzip -c " + dir / "a.txt > " + dir / "two.txt.gz && gzip -c " + dir / "b.txt >> " + dir / "two.txt.gz")
                  .exit_code,
              0);
    EXPECT_EQ(read_lines(dir / "two.txt.gz"), (std::vector<std::string>{"alpha", "beta", "gamma"}));

    ASSERT_EQ(wr::testing::run_command("gzip -c " + dir / "a.txt > " + dir / "a.txt.gz").exit_code, 0);
    const std::string gz = read_file(dir / "a.txt.gz");
    for (const std::string& garbage : {std::string("garbage\n"), std::string(1, '\x1f'), std::string(16, '\0')}) {
        SCOPED_TRACE(garbage.size());
        write_file_atomic(dir / "trailing.txt.gz", gz + garbage);
        const std::string at = "ends at byte " + std::to_string(gz.size());
        EXPECT_ERROR_MENTIONS(read_lines(dir / "trailing.txt.gz"), "trailing.txt.gz", at.c_str(), "trailing garbage");
    }
}

// Invalid UTF-8 (here Latin-1 bytes) is read as it is, but counted and reported once per file on
// stderr: the file, the count and the first line holding any. Valid UTF-8 gives no warning.
TEST(LineReader, InvalidUtf8IsReportedOncePerFile) {
    ScratchDir dir;
    const std::string latin1 = "one\ntwo\ncaf\xe9 na\xefve\nfour\n\xff\nsix\n";  // 2 bad bytes on line 3, 1 on line 5
    write_file_atomic(dir / "latin1.txt", latin1);
    ::testing::internal::CaptureStderr();
    const std::vector<std::string> lines = read_lines(dir / "latin1.txt");
    const std::string warned = ::testing::internal::GetCapturedStderr();
    ASSERT_EQ(lines.size(), 6u);
    EXPECT_EQ(lines[2], "caf\xe9 na\xefve");  // the bytes are kept
    EXPECT_EQ(count_of(warned, "warning"), 1u) << warned;
    for (const std::string& piece : {dir / "latin1.txt", std::string("3 bytes of invalid UTF-8"), std::string("2 lines"),
                                     std::string("first on line 3")})
        EXPECT_NE(warned.find(piece), std::string::npos) << "'" << warned << "' should mention '" << piece << "'";
    {
        ::testing::internal::CaptureStderr();
        LineReader in(dir / "latin1.txt");
        std::string line;
        while (in.next(line)) {
        }
        EXPECT_EQ(::testing::internal::GetCapturedStderr(), warned);  // each reader warns about its file
        EXPECT_EQ(in.invalid_utf8_bytes(), 3);
        EXPECT_EQ(in.invalid_utf8_lines(), 2);
        EXPECT_EQ(in.first_invalid_utf8_line(), 3);
    }

    // A table (read through the same reader): the header is line 1, so the bad row is line 3.
    write_file_atomic(dir / "t.tsv", "text\tlabel\ngood\t1\nna\xefve\t0\n");
    ::testing::internal::CaptureStderr();
    EXPECT_EQ(read_table(dir / "t.tsv", TableFormat::Auto, {"text"}).size(), 2u);
    const std::string table_warned = ::testing::internal::GetCapturedStderr();
    for (const std::string& piece : {dir / "t.tsv", std::string("1 byte of invalid UTF-8 on 1 line,"), std::string("first on line 3")})
        EXPECT_NE(table_warned.find(piece), std::string::npos) << "'" << table_warned << "' should mention '" << piece << "'";

    // Valid UTF-8, multi-byte characters included: no warning.
    write_file_atomic(dir / "utf8.txt", "caf\xc3\xa9 na\xc3\xafve\n\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\n");
    ::testing::internal::CaptureStderr();
    EXPECT_EQ(read_lines(dir / "utf8.txt").size(), 2u);
    EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

// dev/prerequisites.sh (run by make before the first compile, and by .ci/run): a package that is
// missing and cannot be installed here is named with the one command that installs it; packages
// that are installed are not named; with everything installed it is silent and succeeds.
TEST(Prerequisites, NamesTheCommandForWhatIsMissing) {
    if (std::system("command -v dpkg >/dev/null 2>&1") != 0) GTEST_SKIP() << "not a Debian-like system";
    const std::string no_install = "WR_PREREQ_NO_INSTALL=1 ";
    auto r = wr::testing::run_command(no_install + "WR_PREREQ_PACKAGES='zlib1g-dev wellread-no-such-package' bash dev/prerequisites.sh");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("apt-get install -y wellread-no-such-package"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("zlib1g-dev"), std::string::npos) << r.output;
    r = wr::testing::run_command(no_install + "WR_PREREQ_PACKAGES='zlib1g-dev libutf8proc-dev' bash dev/prerequisites.sh");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output, "");
    // The default list is the one .ci/run installs: it holds what the build includes and links.
    r = wr::testing::run_command(no_install + "bash dev/prerequisites.sh");
    EXPECT_EQ(r.exit_code, 0) << "this machine built the tests, so nothing the list names can be missing: " << r.output;
}

// With WR_PREREQ_BUNDLE (dev/gpu_check.sh on a bare GPU machine) the packages are not consulted:
// the bundle's headers are, and one it lacks is named.
TEST(Prerequisites, ABundleStandsInForThePackages) {
    ScratchDir dir;
    for (const char* f : {"include/gtest/gtest.h", "include/nlohmann/json.hpp", "include/utf8proc.h", "include/zlib.h"}) {
        std::filesystem::create_directories(std::filesystem::path(dir / f).parent_path());
        write_file_atomic(dir / f, "// stand-in\n");
    }
    const std::string env = "WR_PREREQ_NO_INSTALL=1 WR_PREREQ_PACKAGES=wellread-no-such-package WR_PREREQ_BUNDLE='" + dir.path + "' ";
    auto r = wr::testing::run_command(env + "bash dev/prerequisites.sh");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output, "");
    std::filesystem::remove(dir / "include/zlib.h");
    r = wr::testing::run_command(env + "bash dev/prerequisites.sh");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("the bundle " + dir.path + " lacks include/zlib.h"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("wellread-no-such-package"), std::string::npos) << r.output;
}

// The programs' OpenMP threads wait passively unless the environment chose a policy: the program
// sets OMP_WAIT_POLICY and executes itself again, so a running program's environment shows it.
TEST(RunProgram, OpenMpThreadsWaitPassivelyUnlessTheEnvironmentChose) {
    ScratchDir dir;
    int runs = 0;
    auto policy_of_running = [&](const std::string& env) {
        const std::string run = dir / ("run" + std::to_string(++runs));
        const pid_t pid = wr::testing::spawn("env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT " + env +
                                                 " ./train_mlm --threads 2 --device cpu --layers 1 --hidden 64 --batch 2 --seq-len 16 "
                                                 "--steps 100000 --val '' --out " + run,
                                             dir / "out.txt");
        std::string policy = "(never started)";
        for (int i = 0; i < 3000 && wr::testing::last_logged_step(run) < 1; i++)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        if (wr::testing::last_logged_step(run) >= 1) {
            policy = "(unset)";
            for (const std::string& var : split(read_file("/proc/" + std::to_string(pid) + "/environ"), '\0'))
                if (var.rfind("OMP_WAIT_POLICY=", 0) == 0) policy = var.substr(16);
        }
        kill(pid, SIGKILL);
        wr::testing::wait_exit(pid, 30);
        return policy;
    };
    EXPECT_EQ(policy_of_running(""), "passive") << read_file(dir / "out.txt");
    EXPECT_EQ(policy_of_running("OMP_WAIT_POLICY=active"), "active") << read_file(dir / "out.txt");
    EXPECT_EQ(policy_of_running("GOMP_SPINCOUNT=1000"), "(unset)") << read_file(dir / "out.txt");
}

TEST(RunProgram, BusyMachineNoteOnlyWhenTheLoadReachesTheCores) {
    EXPECT_EQ(busy_machine_note(0.3, 2), "");
    EXPECT_EQ(busy_machine_note(1.99, 2), "");
    const std::string note = busy_machine_note(6.25, 2);
    EXPECT_NE(note.find("busy"), std::string::npos) << note;
    EXPECT_NE(note.find("6.2"), std::string::npos) << note;
    EXPECT_NE(note.find("2 cores"), std::string::npos) << note;
}

// The profiling ranges and the --profile-steps window, through a backend that records calls.
namespace {
std::vector<std::string> g_profile_calls;
}
TEST(Profile, RangesNestAndTheWindowCapturesStepsFirstToLast) {
    profile::Backend recorder;
    recorder.push = [](const char* name) { g_profile_calls.push_back(std::string("push ") + name); };
    recorder.pop = [] { g_profile_calls.push_back("pop"); };
    recorder.start = [] { g_profile_calls.push_back("start"); };
    recorder.stop = [] { g_profile_calls.push_back("stop"); };
    profile::set_backend(recorder);
    g_profile_calls.clear();
    profile::set_step_window(2, 3);
    for (int64_t step = 1; step <= 4; step++) {
        profile::step_begins(step);
        {
            profile::Range outer("step");
            profile::Range inner("batch");
        }
        profile::step_ends(step);
    }
    const std::vector<std::string> one_step = {"push step", "push batch", "pop", "pop"};
    std::vector<std::string> expected;
    for (int64_t step = 1; step <= 4; step++) {
        if (step == 2) expected.push_back("start");
        expected.insert(expected.end(), one_step.begin(), one_step.end());
        if (step == 3) expected.push_back("stop");
    }
    EXPECT_EQ(g_profile_calls, expected);

    // No window: nothing starts or stops capturing; no backend: ranges do nothing.
    g_profile_calls.clear();
    profile::set_step_window(0, 0);
    profile::step_begins(1);
    profile::step_ends(1);
    EXPECT_TRUE(g_profile_calls.empty());
    profile::set_backend(profile::Backend{});
    { profile::Range r("nothing"); }
    EXPECT_TRUE(g_profile_calls.empty());
    EXPECT_FALSE(profile::has_backend());
}

TEST(Profile, StepWindowFlag) {
    EXPECT_EQ(profile::parse_step_window(""), (std::pair<int64_t, int64_t>{0, 0}));
    EXPECT_EQ(profile::parse_step_window("10:12"), (std::pair<int64_t, int64_t>{10, 12}));
    EXPECT_EQ(profile::parse_step_window("5:5"), (std::pair<int64_t, int64_t>{5, 5}));
    for (const char* bad : {"12", "3:2", "0:4", "a:b", "1:", ":3", "-1:2", "1:2:3"})
        EXPECT_ERROR_MENTIONS(profile::parse_step_window(bad), "--profile-steps", bad);
    const RunResult r = wr::testing::run_command("./train_mlm --profile-steps 4:2 --threads 1");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("--profile-steps"), std::string::npos) << r.output;
}

// The cache keeps `capacity` entries, forgets the least recently used (a lookup counts as a use),
// and destroys what it forgets (the GPU's plans free their descriptors that way).
TEST(LruCache, ForgetsTheLeastRecentlyUsedAndDestroysIt) {
    auto destroyed = std::make_shared<int>(0);
    struct Counted {  // counts its destructions, moved-from shells excluded
        std::shared_ptr<int> counter;
        int value = 0;
        Counted(std::shared_ptr<int> c, int v) : counter(std::move(c)), value(v) {}
        Counted(Counted&&) = default;
        Counted& operator=(Counted&& o) {
            if (counter) ++*counter;
            counter = std::move(o.counter), value = o.value;
            return *this;
        }
        ~Counted() {
            if (counter) ++*counter;
        }
    };
    LruCache<int, Counted> cache(3);
    for (int k = 1; k <= 3; k++) cache.insert(k, Counted(destroyed, 10 * k));
    EXPECT_EQ(cache.size(), 3u);
    EXPECT_EQ(*destroyed, 0);
    ASSERT_NE(cache.find(1), nullptr);  // 1 is now the most recent: 2 is the least
    EXPECT_EQ(cache.find(1)->value, 10);
    cache.insert(4, Counted(destroyed, 40));
    EXPECT_EQ(cache.size(), 3u);
    EXPECT_EQ(cache.evicted(), 1u);
    EXPECT_EQ(*destroyed, 1);
    EXPECT_EQ(cache.find(2), nullptr);
    for (int k : {1, 3, 4}) EXPECT_NE(cache.find(k), nullptr) << k;
    // Replacing a value keeps the size and destroys the old value.
    cache.insert(3, Counted(destroyed, 33));
    EXPECT_EQ(cache.size(), 3u);
    EXPECT_EQ(*destroyed, 2);
    EXPECT_EQ(cache.find(3)->value, 33);
    // Order now (most recent first): 3, 4, 1. Two more entries forget 1 and then 4.
    cache.insert(5, Counted(destroyed, 50));
    cache.insert(6, Counted(destroyed, 60));
    EXPECT_EQ(cache.find(1), nullptr);
    EXPECT_EQ(cache.find(4), nullptr);
    for (int k : {3, 5, 6}) EXPECT_NE(cache.find(k), nullptr) << k;
    EXPECT_EQ(cache.evicted(), 3u);
    EXPECT_EQ(*destroyed, 4);
    LruCache<int, int> zero(0);  // a capacity below one keeps one entry
    zero.insert(1, 1);
    zero.insert(2, 2);
    EXPECT_EQ(zero.size(), 1u);
    EXPECT_NE(zero.find(2), nullptr);
}

// The named-tensor reader (common/tensor_file.h) on counts that describe more than the file holds:
// an error naming the tensor, raised before any memory is asked for (the fuzz target found the
// reader allocating 10^16 floats for a 101-byte file, and a string of the 4 GB a name length
// claimed); and the edge shapes: no dimensions (one value), a zero dimension (no values).
TEST(TensorFile, CountsBeyondTheFileAreErrorsNotAllocations) {
    ScratchDir dir;
    const std::string path = dir / "t.bin";
    auto u32 = [](uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); };
    auto i64 = [](int64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); };
    auto f32 = [](float v) { return std::string(reinterpret_cast<const char*>(&v), 4); };

    std::string file = "WRTENSOR" + u32(1) + "x" + u32(0) + u32(8);  // float32 "x" of 8 dimensions of 100
    for (int i = 0; i < 8; i++) file += i64(100);
    write_file_atomic(path, file + std::string(16, '\0'));
    EXPECT_ERROR_MENTIONS(TensorFile::load(path), path.c_str(), "x.data", "truncated");

    write_file_atomic(path, "WRTENSOR" + u32(0xffffffffu) + "abc");  // a name of 4 GB
    EXPECT_ERROR_MENTIONS(TensorFile::load(path), path.c_str(), "name", "truncated");

    write_file_atomic(path, "WRTENSOR" + u32(1) + "s" + u32(0) + u32(0) + f32(2.5f) +  // "s": no dimensions, one value
                                u32(1) + "e" + u32(1) + u32(2) + i64(0) + i64(5));      // "e": int32 [0, 5], no values
    const TensorFile t = TensorFile::load(path);
    EXPECT_EQ(t.f32("s"), std::vector<float>{2.5f});
    EXPECT_TRUE(t.get("s").shape.empty());
    EXPECT_TRUE(t.i32("e").empty());
    EXPECT_EQ(t.get("e").shape, (std::vector<int64_t>{0, 5}));
}
