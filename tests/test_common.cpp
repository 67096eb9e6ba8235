// tests/test_common.cpp: the shared flag parser, the table reader (TSV, CSV, JSON lines), the
// prerequisites script and the named-tensor file reader.
#include <gtest/gtest.h>

#include "common/flags.h"
#include "common/tensor_file.h"
#include "data/table_reader.h"
#include "data/text_reader.h"
#include "test_helpers.h"

using namespace wr;
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
