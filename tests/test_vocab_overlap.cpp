// tests/test_vocab_overlap.cpp: vocabulary overlap between corpora (`prepare overlap`,
// data/vocab_overlap.h): which pieces count as words, the stop words, the top-K order with its
// tie-breaking, the overlap of hand-made corpora whose answers are worked out by hand below, the
// input kinds (.gz text, TSV, CSV, JSON-lines columns), the bounds, the output files, and the
// errors for bad input.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "data/vocab_overlap.h"
#include "test_helpers.h"

using namespace wr;
using wr::testing::run_command;
using wr::testing::ScratchDir;
using wr::testing::write_text;

namespace {

std::vector<std::string> words_of(const std::vector<WordCount>& top) {
    std::vector<std::string> w;
    for (const WordCount& c : top) w.push_back(c.word);
    return w;
}

// Four small corpora, one of each input kind, with their top 3 worked out by hand (K = 3):
//   a (text, .gz)   apple 5 (five spellings of its case), banana 4, cherry 3, date 2, elder 1;
//                   "the", "and", "of" 6 each (stop words), "2020" 7 (a number), "x" 7 (one
//                   letter): none of these counts.          top: apple, banana, cherry
//   b (TSV column)  banana 5, cherry 4, fig 3, apple 1; the other column (kiwi 12) is not read.
//                                                            top: banana, cherry, fig
//   c (JSON lines)  grape 3, fig 2, kiwi 1                   top: grape, fig, kiwi
//   d (CSV column)  cherry 1, fig 1: fewer than K words      top: cherry, fig (ties by bytes)
// Shared words and percentages (shared / the smaller list's size):
//   a-b banana, cherry: 2/3 = 66.67    a-c none: 0          a-d cherry: 1/2 = 50
//   b-c fig: 1/3 = 33.33               b-d cherry, fig: 2/2 = 100       c-d fig: 1/2 = 50
void write_four_corpora(const ScratchDir& dir) {
    write_text(dir / "a.txt",
               "Apple APPLE aPPle apple Apple banana banana banana banana\n"
               "\n"
               "cherry cherry cherry, date date. elder\n"
               "the and of THE AND OF the and of the and of the and of the and of\n"
               "2020 2020 2020 2020 2020 2020 2020 x x x x x x x\n");
    ASSERT_EQ(run_command("gzip " + dir / "a.txt").exit_code, 0);
    write_text(dir / "b.tsv",
               "label\ttext\n"
               "kiwi kiwi kiwi kiwi kiwi kiwi\tbanana banana banana banana banana\n"
               "kiwi kiwi kiwi kiwi kiwi kiwi\tcherry cherry cherry cherry fig fig fig apple\n");
    ASSERT_EQ(run_command("gzip " + dir / "b.tsv").exit_code, 0);
    write_text(dir / "c.jsonl", "{\"text\": \"grape grape fig\", \"label\": 1}\n{\"text\": \"grape fig kiwi\", \"label\": 0}\n");
    write_text(dir / "d.csv", "id,review\n1,\"Cherry; fig\"\n");
}

std::string four_corpora_flags(const ScratchDir& dir) {
    return " --corpus a=" + dir / "a.txt.gz" + " --corpus b=" + dir / "b.tsv.gz:text" + " --corpus c=" + dir / "c.jsonl:text" +
           " --corpus d=" + dir / "d.csv:review";
}

}  // namespace

TEST(VocabOverlap, WhichPiecesAreWords) {
    const std::unordered_set<std::string> none, stop = load_stop_words("builtin");
    EXPECT_TRUE(is_overlap_word("film", none));
    EXPECT_TRUE(is_overlap_word("don", none)) << "what is left of don't";
    EXPECT_TRUE(is_overlap_word("1990s", none)) << "a letter is enough";
    EXPECT_TRUE(is_overlap_word("covid19", none));
    EXPECT_TRUE(is_overlap_word("αβ", none)) << "letters of any script";
    EXPECT_FALSE(is_overlap_word("t", none)) << "one character";
    EXPECT_FALSE(is_overlap_word("ω", none)) << "one character, two bytes";
    EXPECT_FALSE(is_overlap_word("2015", none)) << "no letter";
    EXPECT_FALSE(is_overlap_word("½½", none));
    EXPECT_FALSE(is_overlap_word("the", stop));
    EXPECT_TRUE(is_overlap_word("the", none));
    EXPECT_FALSE(is_overlap_word("system", stop)) << "scikit-learn's list has it";
    EXPECT_TRUE(is_overlap_word("didn", stop)) << "scikit-learn's list has no contraction fragments";
}

TEST(VocabOverlap, StopWordLists) {
    const auto builtin = load_stop_words("builtin");
    EXPECT_EQ(builtin.size(), 318u);
    for (const char* w : {"a", "the", "yourselves", "couldnt", "hasnt", "noone", "amoungst", "fifty"}) EXPECT_TRUE(builtin.count(w)) << w;
    EXPECT_FALSE(builtin.count("couldn't"));
    EXPECT_TRUE(load_stop_words("none").empty());
    // Every built-in word is one lowercase piece, so each can match.
    for (const std::string& w : builtin_stop_words()) {
        EXPECT_EQ(w.find_first_not_of("abcdefghijklmnopqrstuvwxyz"), std::string::npos) << w;
    }

    ScratchDir dir;
    write_text(dir / "stop.txt", "# my list\nThe\n\n  Naïve  \nfilm\n");
    EXPECT_EQ(load_stop_words(dir / "stop.txt"), (std::unordered_set<std::string>{"the", "naive", "film"}));
    write_text(dir / "bad.txt", "the\ncouldn't\n");
    const std::string bad = dir / "bad.txt", missing = dir / "missing.txt";
    EXPECT_ERROR_MENTIONS(load_stop_words(bad), bad.c_str(), "line 2", "couldn't", "3 pieces");
    EXPECT_ERROR_MENTIONS(load_stop_words(missing), missing.c_str());
}

TEST(VocabOverlap, TopWordsBreakTiesByBytes) {
    const std::unordered_map<std::string, uint64_t> counts = {{"zz", 2}, {"ωω", 2}, {"aa", 2}, {"bb", 3}, {"Zz", 2}, {"ab", 1}};
    // Count descending, then bytes ascending: "Zz" (5A) < "aa" (61) < "zz" (7A) < "ωω" (CF 89).
    EXPECT_EQ(words_of(top_words(counts, 1)), (std::vector<std::string>{"bb"}));
    EXPECT_EQ(words_of(top_words(counts, 3)), (std::vector<std::string>{"bb", "Zz", "aa"}));
    EXPECT_EQ(words_of(top_words(counts, 4)), (std::vector<std::string>{"bb", "Zz", "aa", "zz"}));
    EXPECT_EQ(words_of(top_words(counts, 5)), (std::vector<std::string>{"bb", "Zz", "aa", "zz", "ωω"}));
    EXPECT_EQ(words_of(top_words(counts, 100)), (std::vector<std::string>{"bb", "Zz", "aa", "zz", "ωω", "ab"})) << "fewer than K: all";
    EXPECT_EQ(top_words(counts, 3)[0].count, 3u);
    EXPECT_TRUE(top_words({}, 5).empty());
}

TEST(VocabOverlap, MatrixOverTheSmallerList) {
    auto list = [](std::vector<std::string> words) {
        std::vector<WordCount> l;
        for (std::string& w : words) l.push_back({std::move(w), 1});
        return l;
    };
    const OverlapMatrix m = vocab_overlap({list({"aa", "bb", "cc", "dd"}), list({"bb", "dd", "ee", "ff"}), list({"dd", "gg"})});
    // shared: 0-1 {bb, dd} = 2 of 4; 0-2 {dd} = 1 of min(4, 2) = 2; 1-2 {dd} = 1 of 2.
    EXPECT_EQ(m.shared, (std::vector<std::vector<int64_t>>{{4, 2, 1}, {2, 4, 1}, {1, 1, 2}}));
    EXPECT_DOUBLE_EQ(m.percent[0][1], 50.0);
    EXPECT_DOUBLE_EQ(m.percent[1][0], 50.0);
    EXPECT_DOUBLE_EQ(m.percent[0][2], 50.0);
    EXPECT_DOUBLE_EQ(m.percent[2][1], 50.0);
    EXPECT_DOUBLE_EQ(m.percent[2][2], 100.0);
}

TEST(VocabOverlap, CorpusSpecSyntax) {
    CorpusSpec c = parse_corpus_spec("wiki=../shared/data/wikipedia/enwiki_train.txt.gz");
    EXPECT_EQ(c.name, "wiki");
    EXPECT_EQ(c.path, "../shared/data/wikipedia/enwiki_train.txt.gz");
    EXPECT_EQ(c.column, "");
    c = parse_corpus_spec("SST-2=data/train.tsv:sentence");
    EXPECT_EQ(c.name, "SST-2");
    EXPECT_EQ(c.path, "data/train.tsv");
    EXPECT_EQ(c.column, "sentence");
    c = parse_corpus_spec("chem=x/*.jsonl.gz:text");
    EXPECT_EQ(c.path, "x/*.jsonl.gz");
    EXPECT_EQ(c.column, "text");
    c = parse_corpus_spec("notes=a:b.txt");  // a colon in a text file's name
    EXPECT_EQ(c.path, "a:b.txt");
    EXPECT_EQ(c.column, "");
    c = parse_corpus_spec("t=a:x.csv:text");  // the last colon separates the column
    EXPECT_EQ(c.path, "a:x.csv");
    EXPECT_EQ(c.column, "text");

    EXPECT_ERROR_MENTIONS(parse_corpus_spec("wiki"), "--corpus", "'wiki'", "NAME=FILE");
    EXPECT_ERROR_MENTIONS(parse_corpus_spec("=x.txt"), "--corpus", "name before '=' is empty");
    EXPECT_ERROR_MENTIONS(parse_corpus_spec("my wiki=x.txt"), "--corpus", "only letters, digits");
    EXPECT_ERROR_MENTIONS(parse_corpus_spec("w="), "--corpus", "no file after '='");
    EXPECT_ERROR_MENTIONS(parse_corpus_spec("t=x.tsv"), "--corpus", "needs the column", "t=x.tsv:COLUMN");
    EXPECT_ERROR_MENTIONS(parse_corpus_spec("t=x.tsv.gz:"), "--corpus", "no column after ':'");
}

// The hand-made example above, through the program: percentages, shared counts, list sizes.
TEST(VocabOverlap, HandMadeCorporaGiveTheWorkedOutOverlaps) {
    ScratchDir dir;
    write_four_corpora(dir);
    const auto r = run_command("./prepare overlap --top 3" + four_corpora_flags(dir) + " --out " + dir / "o.json --threads 2");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto j = nlohmann::json::parse(read_file(dir / "o.json"));
    EXPECT_EQ(j["top"], 3);
    const std::vector<std::vector<double>> percent = j["percent"];
    const std::vector<std::vector<double>> expected = {
        {100, 66.67, 0, 50}, {66.67, 100, 33.33, 100}, {0, 33.33, 100, 50}, {50, 100, 50, 100}};
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) EXPECT_NEAR(percent[a][b], expected[a][b], 1e-9) << a << "," << b;
    const std::vector<std::vector<int64_t>> shared = j["shared"];
    EXPECT_EQ(shared, (std::vector<std::vector<int64_t>>{{3, 2, 0, 1}, {2, 3, 1, 2}, {0, 1, 3, 1}, {1, 2, 1, 2}}));
    const auto& corpora = j["corpora"];
    ASSERT_EQ(corpora.size(), 4u);
    EXPECT_EQ(corpora[0]["name"], "a");
    EXPECT_EQ(corpora[0]["most_frequent"], (std::vector<std::string>{"apple", "banana", "cherry"}));
    EXPECT_EQ(corpora[0]["words"], 15) << "5 + 4 + 3 + 2 + 1: stop words, numbers and letters not counted";
    EXPECT_EQ(corpora[0]["texts"], 4) << "the blank line is not a text";
    EXPECT_EQ(corpora[1]["most_frequent"], (std::vector<std::string>{"banana", "cherry", "fig"}));
    EXPECT_EQ(corpora[2]["most_frequent"], (std::vector<std::string>{"grape", "fig", "kiwi"}));
    EXPECT_EQ(corpora[3]["most_frequent"], (std::vector<std::string>{"cherry", "fig"})) << "lowercased";
    EXPECT_EQ(corpora[3]["top"], 2);
    EXPECT_EQ(corpora[0]["top"], 3);
    // The table on stdout, and the note on the small corpus.
    EXPECT_NE(r.output.find("d has only 2 distinct words"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("   66.7"), std::string::npos) << r.output;

    // The TSV form: percentages with two decimals.
    const auto t = run_command("./prepare overlap --top 3" + four_corpora_flags(dir) + " --out " + dir / "o.tsv");
    ASSERT_EQ(t.exit_code, 0) << t.output;
    EXPECT_EQ(read_file(dir / "o.tsv"),
              "corpus\ta\tb\tc\td\n"
              "a\t100.00\t66.67\t0.00\t50.00\n"
              "b\t66.67\t100.00\t33.33\t100.00\n"
              "c\t0.00\t33.33\t100.00\t50.00\n"
              "d\t50.00\t100.00\t50.00\t100.00\n");
}

// Without stop-word removal, "the", "and", "of" (6 each) are a's top 3 and a shares nothing with b.
TEST(VocabOverlap, StopWordsOption) {
    ScratchDir dir;
    write_four_corpora(dir);
    auto r = run_command("./prepare overlap --top 3 --stop-words none" + four_corpora_flags(dir) + " --out " + dir / "none.json");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto j = nlohmann::json::parse(read_file(dir / "none.json"));
    EXPECT_EQ(j["corpora"][0]["most_frequent"][0], "and");
    EXPECT_EQ(j["percent"][0][1], 0.0);
    // A list of our own replaces the built-in one: with "banana" and "cherry" as stop words (and
    // the three of a), b keeps fig and apple, d fig alone.
    write_text(dir / "stop.txt", "# fruit we ignore, and a's stop words\nBanana\ncherry\nthe\nand\nOF\n");
    r = run_command("./prepare overlap --top 3 --stop-words " + dir / "stop.txt" + four_corpora_flags(dir) + " --out " + dir / "own.tsv");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    // a: apple, date, elder; b: fig, apple; c: grape, fig, kiwi; d: fig.
    EXPECT_EQ(read_file(dir / "own.tsv"),
              "corpus\ta\tb\tc\td\n"
              "a\t100.00\t50.00\t0.00\t0.00\n"
              "b\t50.00\t100.00\t50.00\t100.00\n"
              "c\t0.00\t50.00\t100.00\t100.00\n"
              "d\t0.00\t100.00\t100.00\t100.00\n");
}

// At the K boundary, words of equal count are taken in byte order. e has omega 3, then alpha,
// beta, zeta 2 each (zeta first in the text): its top 3 is omega, alpha, beta. f has gamma 3,
// zeta 3, beta 1: gamma, zeta, beta. Shared: beta alone, 33.33%. Taking ties in text order or
// in reverse byte order would give omega, zeta, beta and 66.67%.
TEST(VocabOverlap, TiesAtTheBoundaryAreBrokenByBytes) {
    ScratchDir dir;
    write_text(dir / "e.txt", "zeta zeta beta beta alpha alpha omega omega omega\n");
    write_text(dir / "f.txt", "zeta zeta zeta gamma gamma gamma beta\n");
    const auto r = run_command("./prepare overlap --top 3 --corpus e=" + dir / "e.txt --corpus f=" + dir / "f.txt --out " + dir / "o.json");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto j = nlohmann::json::parse(read_file(dir / "o.json"));
    EXPECT_EQ(j["corpora"][0]["most_frequent"], (std::vector<std::string>{"omega", "alpha", "beta"}));
    EXPECT_EQ(j["corpora"][1]["most_frequent"], (std::vector<std::string>{"gamma", "zeta", "beta"}));
    EXPECT_EQ(j["shared"][0][1], 1);
    EXPECT_EQ(j["percent"][0][1], 33.33);
}

// --max-lines and --max-bytes: g is "kiwi kiwi" (9 bytes + 1 for the line end = 10) then
// "lemon lemon lemon"; h is "lemon". With K = 1, g's top word is lemon when both lines are read
// (overlap 100) and kiwi when only the first is (overlap 0).
TEST(VocabOverlap, BoundsPerCorpus) {
    ScratchDir dir;
    write_text(dir / "g.txt", "kiwi kiwi\n\nlemon lemon lemon\n");
    write_text(dir / "h.txt", "lemon\n");
    const std::string base = "./prepare overlap --top 1 --corpus g=" + dir / "g.txt --corpus h=" + dir / "h.txt --out ";
    struct Case {
        std::string flags;
        double percent;
        int texts, bytes;
        bool bounded;
    };
    const Case cases[] = {{"", 100, 2, 28, false},
                          {" --max-lines 1", 0, 1, 10, true},
                          {" --max-lines 2", 100, 2, 28, false},
                          {" --max-bytes 10", 0, 1, 10, true},
                          {" --max-bytes 11", 100, 2, 28, false}};
    int n = 0;
    for (const Case& c : cases) {
        const std::string out = dir / ("o" + std::to_string(n++) + ".json");
        const auto r = run_command(base + out + c.flags);
        ASSERT_EQ(r.exit_code, 0) << c.flags << "\n" << r.output;
        const auto j = nlohmann::json::parse(read_file(out));
        EXPECT_EQ(j["percent"][0][1], c.percent) << c.flags;
        EXPECT_EQ(j["corpora"][0]["texts"], c.texts) << c.flags;
        EXPECT_EQ(j["corpora"][0]["bytes"], c.bytes) << c.flags;
        EXPECT_EQ(j["corpora"][0]["bounded"], c.bounded) << c.flags;
        EXPECT_EQ(j["corpora"][1]["bounded"], false) << c.flags;
    }
}

TEST(VocabOverlap, OutputIsNotOverwrittenWithoutTheFlag) {
    ScratchDir dir;
    write_text(dir / "e.txt", "alpha beta\n");
    write_text(dir / "f.txt", "beta gamma\n");
    const std::string cmd = "./prepare overlap --top 2 --corpus e=" + dir / "e.txt --corpus f=" + dir / "f.txt --out " + dir / "o.tsv";
    ASSERT_EQ(run_command(cmd).exit_code, 0);
    write_text(dir / "o.tsv", "mine\n");
    auto r = run_command(cmd);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("o.tsv: exists; pass --overwrite"), std::string::npos) << r.output;
    EXPECT_EQ(read_file(dir / "o.tsv"), "mine\n");
    r = run_command(cmd + " --overwrite");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(read_file(dir / "o.tsv"), "corpus\te\tf\ne\t100.00\t50.00\nf\t50.00\t100.00\n");
    // An input is never the output.
    r = run_command("./prepare overlap --top 2 --corpus e=" + dir / "e.txt --corpus f=" + dir / "f.txt --overwrite --out " + dir / "./f.tsv");
    EXPECT_EQ(r.exit_code, 0) << "f.tsv is not an input: " << r.output;
    write_text(dir / "t.tsv", "text\nalpha beta\n");
    r = run_command("./prepare overlap --corpus e=" + dir / "e.txt --corpus t=" + dir / "t.tsv:text --overwrite --out " + dir / "t.tsv");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("names an input of this command"), std::string::npos) << r.output;
    EXPECT_EQ(read_file(dir / "t.tsv"), "text\nalpha beta\n");
}

TEST(VocabOverlap, BadInputIsAClearError) {
    ScratchDir dir;
    write_text(dir / "e.txt", "alpha beta\n");
    write_text(dir / "t.tsv", "text\nalpha beta\n");
    const std::string e = " --corpus e=" + dir / "e.txt";
    auto expect_error = [](const std::string& args, const std::vector<std::string>& pieces) {
        const auto r = run_command("./prepare overlap" + args);
        EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.output;
        for (const std::string& p : pieces) EXPECT_NE(r.output.find(p), std::string::npos) << "'" << p << "' not in:\n" << r.output;
    };
    expect_error(e + " --corpus m=" + dir / "missing.txt", {dir / "missing.txt: no such file", "corpus 'm'"});
    expect_error(e + " --corpus x=" + dir / "e.txt:text", {"e.txt:text: no such file", "a column can be named only for a table"});
    expect_error(e + " --corpus wiki", {"--corpus: 'wiki': expected NAME=FILE or NAME=TABLE:COLUMN"});
    expect_error(e + " --corpus " + dir / "t.tsv", {"expected NAME=FILE"});
    expect_error(e + " --corpus t=" + dir / "t.tsv", {"a table needs the column of its text", ":COLUMN"});
    expect_error(e + " --corpus t=" + dir / "t.tsv:review", {dir / "t.tsv", "review"});
    expect_error(e + " --corpus e=" + dir / "t.tsv:text", {"the name 'e' is given twice"});
    expect_error(e, {"needs at least two corpora", "got 1"});
    expect_error("", {"needs at least two corpora", "got 0"});
    expect_error(e + " --corpus t=" + dir / "t.tsv:text --top 0", {"--top: must be at least 1"});
    expect_error(e + " --corpus t=" + dir / "t.tsv:text --top -3", {"--top: must be at least 1"});
    expect_error(e + " --corpus t=" + dir / "t.tsv:text --max-bytes -1", {"--max-bytes: must be 0"});
    expect_error(e + " --corpus t=" + dir / "t.tsv:text --out " + dir / "o.txt", {"--out", "must end in .json or .tsv"});
    expect_error(e + " --corpus t=" + dir / "t.tsv:text --stop-words " + dir / "nostop.txt", {dir / "nostop.txt"});
    write_text(dir / "stop.txt", "the and of\n");
    expect_error(e + " --corpus t=" + dir / "t.tsv:text --stop-words " + dir / "stop.txt", {dir / "stop.txt: line 1", "3 pieces"});
    write_text(dir / "empty.txt", "the and 2020 , .\n\n");
    expect_error(e + " --corpus z=" + dir / "empty.txt", {dir / "empty.txt: no words counted for corpus 'z'"});
    EXPECT_FALSE(file_exists(dir / "o.txt"));
}
