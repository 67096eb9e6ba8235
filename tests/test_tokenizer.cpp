// tests/test_tokenizer.cpp: the WordPiece tokenizer against Hugging Face `tokenizers`.
//
// The expected ids come from dev/tokenizer_fixtures.py (HF BertWordPieceTokenizer,
// lowercase=True) and sit in tests/fixtures/tokenizer/ for two vocabularies: the real
// bert-base-uncased one and an 8000-token one trained by HF. The fixtures name texts only by
// source and line: the texts themselves are read here from ../shared/data (kSources below, the
// same table as SOURCES in the script) and from hard_cases.txt (ours). Every line must give
// exactly HF's ids; the first mismatch is reported with its source, line, position and both id
// runs. Without ../shared/data only the hard cases are checked and the data tests are skipped.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <sstream>

#include "common/util.h"
#include "data/text_reader.h"
#include "data/tokenizer.h"
#include "test_helpers.h"

using namespace wr;
using wr::testing::ScratchDir;

namespace {

const std::string kFixtures = "tests/fixtures/tokenizer/";
const std::string kData = "../shared/data/";

// How a line of a data file becomes a text (as SOURCES in dev/tokenizer_fixtures.py).
enum class Field { Line, Tsv0, Tsv3, JsonText };
struct Source {
    const char* name;
    const char* path;  // under ../shared/data
    Field field;
};
const Source kSources[] = {
    {"wikipedia", "wikipedia/enwiki_valid.txt.gz", Field::Line},
    {"gutenberg", "gutenberg/valid.txt.gz", Field::Line},
    {"imdb", "imdb/test.tsv.gz", Field::Tsv3},             // label rating id TEXT
    {"sst2", "sst2/dev.tsv", Field::Tsv0},                 // SENTENCE label
    {"biomed", "biomed_text/biomed_sentences.txt", Field::Line},
    {"chemprot", "chemprot/dev.jsonl", Field::JsonText},   // {"text": ...}
    {"wikitext2", "wikitext2/wiki.valid.tokens", Field::Line},
};

std::string field_text(const std::string& line, Field field) {
    switch (field) {
        case Field::Line: return line;
        case Field::Tsv0: return line.substr(0, line.find('\t'));
        case Field::Tsv3: {
            size_t pos = 0;
            for (int k = 0; k < 3; k++) pos = line.find('\t', pos) + 1;
            return line.substr(pos);
        }
        case Field::JsonText: return nlohmann::json::parse(line).at("text").get<std::string>();
    }
    return {};
}

// Lines of a file split at '\n' only (a '\r' stays: hard_cases.txt tests it); no final empty line.
std::vector<std::string> split_lines(const std::string& bytes) {
    std::vector<std::string> lines;
    for (size_t pos = 0; pos < bytes.size();) {
        size_t nl = bytes.find('\n', pos);
        if (nl == std::string::npos) nl = bytes.size();
        lines.push_back(bytes.substr(pos, nl - pos));
        pos = nl + 1;
    }
    return lines;
}

std::vector<std::string> split_tabs(const std::string& line) {
    std::vector<std::string> cols;
    size_t pos = 0;
    for (size_t tab; (tab = line.find('\t', pos)) != std::string::npos; pos = tab + 1) cols.push_back(line.substr(pos, tab - pos));
    cols.push_back(line.substr(pos));
    return cols;
}

std::vector<int32_t> parse_ids(const std::string& s) {
    std::vector<int32_t> ids;
    std::istringstream in(s);
    for (int32_t id; in >> id;) ids.push_back(id);
    return ids;
}

// The rows of a fixture file, comment lines skipped.
std::vector<std::vector<std::string>> read_fixture(const std::string& name) {
    std::vector<std::vector<std::string>> rows;
    for (const std::string& line : split_lines(read_file(kFixtures + name)))
        if (!line.empty() && line[0] != '#') rows.push_back(split_tabs(line));
    return rows;
}

using TextKey = std::pair<std::string, int64_t>;  // (source, 1-based line)

bool have_data() {
    struct stat st {};
    return stat(kData.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
const char* const kNoData = "../shared/data is missing: only the hard cases were checked, not the real-text lines";

// Every text any fixture names, read once: the hard cases and, when ../shared/data is there, the
// needed lines of each source.
const std::map<TextKey, std::string>& fixture_texts() {
    static const std::map<TextKey, std::string> texts = [] {
        std::map<TextKey, std::string> out;
        const std::vector<std::string> hard = split_lines(read_file(kFixtures + "hard_cases.txt"));
        for (size_t i = 0; i < hard.size(); i++) out[{"hard", (int64_t)i + 1}] = hard[i];
        std::map<std::string, std::set<int64_t>> wanted;
        for (const auto& row : read_fixture("ids_bert_base_uncased.tsv")) wanted[row.at(0)].insert(std::stoll(row.at(1)));
        for (const auto& row : read_fixture("ids_hf_vocab_8k.tsv")) wanted[row.at(0)].insert(std::stoll(row.at(1)));
        for (const Source& src : kSources) {
            if (!have_data()) break;
            const std::set<int64_t>& lines = wanted[src.name];
            if (lines.empty()) continue;
            LineReader reader(kData + src.path);
            std::string line;
            while (reader.line_number() < *lines.rbegin() && reader.next(line))
                if (lines.count(reader.line_number())) out[{src.name, reader.line_number()}] = field_text(line, src.field);
        }
        return out;
    }();
    return texts;
}

// The text a fixture row names; nullptr for a data-set line when ../shared/data is missing.
const std::string* text_of(const std::string& source, const std::string& line) {
    const auto& texts = fixture_texts();
    const auto it = texts.find({source, std::stoll(line)});
    if (it != texts.end()) return &it->second;
    if (source == "hard" || have_data()) throw Error("fixture names " + source + " line " + line + ", which does not exist");
    return nullptr;
}

std::string ids_around(const std::vector<int32_t>& ids, size_t pos) {
    std::string s;
    const size_t from = pos >= 4 ? pos - 4 : 0;
    for (size_t i = from; i < std::min(ids.size(), pos + 8); i++) s += (i == pos ? " >" : " ") + std::to_string(ids[i]);
    if (pos >= ids.size()) s += " >(end)";
    return "[" + std::to_string(from) + "]" + s;
}

// Encodes every text of ids_<vocab>.tsv and compares with HF; reports the first mismatch.
void expect_ids_match_hf(const std::string& vocab_file, const std::string& ids_file) {
    const Tokenizer tok = Tokenizer::load(kFixtures + vocab_file);
    int checked = 0, mismatches = 0;
    std::string first;
    for (const auto& row : read_fixture(ids_file)) {
        const std::string* text = text_of(row.at(0), row.at(1));
        if (!text) continue;
        const std::vector<int32_t> expected = parse_ids(row.at(2));
        const std::vector<int32_t> got = tok.encode_words(*text);
        checked++;
        if (got == expected) continue;
        if (mismatches++ == 0) {
            const size_t pos = std::mismatch(got.begin(), got.end(), expected.begin(), expected.end()).first - got.begin();
            first = row[0] + " line " + row[1] + ": first difference at id " + std::to_string(pos) +
                    "\n  ours: " + ids_around(got, pos) + "\n  HF:   " + ids_around(expected, pos);
        }
    }
    EXPECT_EQ(mismatches, 0) << mismatches << " of " << checked << " texts differ from HF; first: " << first;
    if (!have_data()) GTEST_SKIP() << kNoData;
    EXPECT_GT(checked, 2500);
}

uint64_t fnv1a(const std::string& s) { return fnv1a64(s.data(), s.size()); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Against HF on real text and the hard cases

TEST(TokenizerHF, BertBaseUncasedIdsMatch) { expect_ids_match_hf("bert_base_uncased_vocab.txt", "ids_bert_base_uncased.tsv"); }

TEST(TokenizerHF, Vocab8kIdsMatch) { expect_ids_match_hf("hf_vocab_8k.txt", "ids_hf_vocab_8k.tsv"); }

TEST(TokenizerHF, PairsAndTruncationMatch) {
    const Tokenizer tok = Tokenizer::load(kFixtures + "bert_base_uncased_vocab.txt");
    int checked = 0;
    for (const auto& row : read_fixture("pairs_bert_base_uncased.tsv")) {
        const bool single = row.at(2) == "-";
        const std::string* a = text_of(row.at(0), row.at(1));
        const std::string* b = single ? a : text_of(row.at(2), row.at(3));
        if (!a || !b) continue;
        const int max_len = std::stoi(row.at(4));
        const Encoding e = single ? tok.encode(*a, max_len) : tok.encode_pair(*a, *b, max_len);
        const std::string what = row[0] + ":" + row[1] + " + " + row[2] + ":" + row[3] + " max_len " + row[4];
        ASSERT_EQ(e.ids, parse_ids(row.at(6))) << what;
        ASSERT_EQ(e.second_start, std::stoi(row.at(5))) << what;
        checked++;
    }
    if (!have_data()) GTEST_SKIP() << kNoData;
    EXPECT_GE(checked, 200);
}

TEST(TokenizerHF, DecodeMatches) {
    const Tokenizer tok = Tokenizer::load(kFixtures + "bert_base_uncased_vocab.txt");
    std::map<TextKey, std::vector<int32_t>> ids;
    for (const auto& row : read_fixture("ids_bert_base_uncased.tsv")) ids[{row.at(0), std::stoll(row.at(1))}] = parse_ids(row.at(2));
    int checked = 0;
    for (const auto& row : read_fixture("decode_bert_base_uncased.tsv")) {
        const std::string text = tok.decode(ids.at({row.at(0), std::stoll(row.at(1))}));
        if (row.at(0) == "hard") {
            ASSERT_EQ(text, row.at(3)) << "hard case line " << row[1];
        }
        char hash[17];
        std::snprintf(hash, sizeof hash, "%016llx", (unsigned long long)fnv1a(text));
        ASSERT_EQ(hash, row.at(2)) << row[0] << " line " << row[1] << " decodes to: " << text;
        checked++;
    }
    EXPECT_GT(checked, 2500);
}

TEST(TokenizerHF, BatchWithTwoThreadsEqualsSequential) {
    const Tokenizer tok = Tokenizer::load(kFixtures + "bert_base_uncased_vocab.txt");
    std::vector<std::string> texts;
    for (const auto& [key, text] : fixture_texts()) texts.push_back(text);
    const auto batch = tok.encode_batch(texts, 2);
    ASSERT_EQ(batch.size(), texts.size());
    for (size_t i = 0; i < texts.size(); i++) ASSERT_EQ(batch[i], tok.encode_words(texts[i])) << "text " << i;
}

// bert_basic_tokenize (used by the vocabulary trainer) is normalize then pre-tokenize.
TEST(TokenizerHF, BasicTokenizeIsNormalizeThenPreTokenize) {
    std::vector<std::string> words;
    for (const auto& [key, text] : fixture_texts()) {
        bert_pre_tokenize(bert_normalize(text), words);
        ASSERT_EQ(bert_basic_tokenize(text), words) << key.first << " line " << key.second;
    }
}

// ---------------------------------------------------------------------------------------------
// Vocabulary loading

TEST(TokenizerVocab, SpecialIdsAndFingerprint) {
    const Tokenizer bert = Tokenizer::load(kFixtures + "bert_base_uncased_vocab.txt");
    EXPECT_EQ(bert.vocab_size(), 30522);
    EXPECT_EQ(bert.pad_id, 0);
    EXPECT_EQ(bert.unk_id, 100);
    EXPECT_EQ(bert.cls_id, 101);
    EXPECT_EQ(bert.sep_id, 102);
    EXPECT_EQ(bert.mask_id, 103);
    EXPECT_EQ(bert.fingerprint(), vocab_fingerprint(bert.tokens()));
    EXPECT_EQ(bert.source(), kFixtures + "bert_base_uncased_vocab.txt");
    EXPECT_EQ(bert.id_of("the"), 1996);
    EXPECT_EQ(bert.id_of("##s"), 2015);
    EXPECT_EQ(bert.id_of("not-a-token"), -1);
    for (int id : {0, 1, 999, 1996, 2015, 30521}) EXPECT_EQ(bert.id_of(bert.token(id)), id);

    const Tokenizer small = Tokenizer::load(kFixtures + "hf_vocab_8k.txt");
    EXPECT_EQ(small.vocab_size(), 8000);
    EXPECT_EQ(std::vector<int>({small.pad_id, small.unk_id, small.cls_id, small.sep_id, small.mask_id}),
              std::vector<int>({0, 1, 2, 3, 4}));
    EXPECT_EQ(small.fingerprint(), vocab_fingerprint(small.tokens()));
    EXPECT_NE(small.fingerprint(), bert.fingerprint());
}

TEST(TokenizerVocab, LoadErrorsNameTheFileAndProblem) {
    ScratchDir dir;
    EXPECT_ERROR_MENTIONS(Tokenizer::load(dir / "missing.txt"), "missing.txt", "cannot open");

    write_file_atomic(dir / "empty.txt", "");
    EXPECT_ERROR_MENTIONS(Tokenizer::load(dir / "empty.txt"), "empty.txt", "empty");

    write_file_atomic(dir / "dup.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\nhello\n");
    EXPECT_ERROR_MENTIONS(Tokenizer::load(dir / "dup.txt"), "dup.txt", "line 8", "duplicate", "hello", "line 6");

    write_file_atomic(dir / "nounk.txt", "[PAD]\n[CLS]\n[SEP]\n[MASK]\nhello\n");
    EXPECT_ERROR_MENTIONS(Tokenizer::load(dir / "nounk.txt"), "nounk.txt", "[UNK]", "missing");

    write_file_atomic(dir / "blank.txt", "[PAD]\n[UNK]\n\n[CLS]\n[SEP]\n[MASK]\n");
    EXPECT_ERROR_MENTIONS(Tokenizer::load(dir / "blank.txt"), "blank.txt", "line 3", "empty token");

    write_file_atomic(dir / "crlf.txt", "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\n[MASK]\r\nhi\r\n");
    const Tokenizer crlf = Tokenizer::load(dir / "crlf.txt");
    EXPECT_EQ(crlf.vocab_size(), 6);
    EXPECT_EQ(crlf.id_of("hi"), 5);
}

// ---------------------------------------------------------------------------------------------
// Behaviour HF cannot be asked about, and small hand-checked cases

namespace {

Tokenizer tiny() {
    return Tokenizer({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "a", "b", "##b", ",", "."});
}

}  // namespace

TEST(TokenizerBasics, GreedyLongestMatchAndUnknownWords) {
    const Tokenizer tok = tiny();
    EXPECT_EQ(tok.encode_words("UnAffable, a."), std::vector<int32_t>({5, 6, 7, 11, 8, 12}));
    EXPECT_EQ(tok.encode_words("unaffablex b"), std::vector<int32_t>({1, 9}));  // any gap: the whole word is [UNK]
    EXPECT_EQ(tok.encode_words("bbb"), std::vector<int32_t>({9, 10, 10}));
    EXPECT_EQ(tok.encode_words(std::string(100, 'b')).size(), 100u);
    EXPECT_EQ(tok.encode_words(std::string(101, 'b')), std::vector<int32_t>({1}));  // over 100 characters
    EXPECT_EQ(tok.decode(tok.encode_words("UnAffable, a.")), "unaffable, a.");
    EXPECT_EQ(tok.decode({2, 5, 6, 3, 1}, false), "[CLS] unaff [SEP] [UNK]");
}

// Invalid UTF-8 is read as U+FFFD, which normalization drops; so are NUL bytes.
TEST(TokenizerBasics, InvalidUtf8AndNulAreDropped) {
    const Tokenizer tok = Tokenizer::load(kFixtures + "bert_base_uncased_vocab.txt");
    const std::vector<int32_t> clean = tok.encode_words("hello world");
    for (const std::string& bad : {std::string("hel\xFFlo world"), std::string("hello\xC3 world"), std::string("he\xE2\x82llo world"),
                                  std::string("hello wor\xC0\xAFld"), std::string("hello \xED\xA0\x80world"),
                                  std::string("hello world\xF4\x90\x80\x80"), std::string("hel\0lo world", 12)})
        EXPECT_EQ(tok.encode_words(bad), clean) << bad;
}

TEST(TokenizerBasics, EncodeAddsSpecialTokensAndTruncates) {
    const Tokenizer tok = tiny();
    Encoding e = tok.encode("a b a b", 4);
    EXPECT_EQ(e.ids, std::vector<int32_t>({2, 8, 9, 3}));
    EXPECT_EQ(e.second_start, 0);
    // 6 + 2 words in room 5: the shorter keeps its 2, the longer gets 3.
    e = tok.encode_pair("a a a a a a", "b b", 8);
    EXPECT_EQ(e.ids, std::vector<int32_t>({2, 8, 8, 8, 3, 9, 9, 3}));
    EXPECT_EQ(e.second_start, 5);
    // 4 + 4 in room 5: both halve, the odd token to the second on a tie.
    e = tok.encode_pair("a a a a", "b b b b", 8);
    EXPECT_EQ(e.ids, std::vector<int32_t>({2, 8, 8, 3, 9, 9, 9, 3}));
    EXPECT_ERROR_MENTIONS(tok.encode_pair("a", "b", 2), "max_len");
}
