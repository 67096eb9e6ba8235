// tests/test_data_scripts.cpp: the data preparation scripts (dev/data/*.sh, docs/data.md) end to
// end, on a miniature fake copy of ../shared/data written here: the same folders, file names and
// formats (gzip, TSV headers, JSON lines, WikiText's ` = Title = ` / ` @-@ ` / `<unk>`, IMDB's
// `<br />`, ChemProt's `<< >>` `[[ ]]` markers), a few dozen generated lines each, no real data.
// dev/data/all.sh runs once on it (VOCAB_NAME=bert-base-uncased, so the committed fixture
// vocabulary is copied), and every output is read back with the library readers: each file
// docs/data.md lists must exist and hold exactly what the documented cleaning, splitting and label
// mapping make of the input. A second run checks the default wr30k path (the vocabulary trained
// on the fake wikipedia + gutenberg text). The scripts need bash, gzip, jq, shuf, sed, awk and
// openssl; .ci/run installs them, and the suite is skipped (saying which is missing) without them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "data/shards.h"
#include "data/tokenizer.h"
#include "test_helpers.h"

using namespace wr;
using wr::testing::RunResult;
using wr::testing::run_command;
using wr::testing::ScratchDir;
using wr::testing::write_text;

namespace {

using Ids = std::vector<int32_t>;

const char* const kTools[] = {"bash", "gzip", "zcat", "jq", "shuf", "sed", "awk", "openssl"};
const char* const kBertVocab = "tests/fixtures/tokenizer/bert_base_uncased_vocab.txt";

// ---------------------------------------------------------------------------------------------
// Generated text. Only common words (all in BERT's vocabulary), so that any [UNK] in a shard is
// one the test put there on purpose.

const std::vector<const char*> kGeneral = {
    "the", "a", "of", "and", "in", "to", "was", "is", "for", "on", "with", "as", "by", "at", "from", "his", "her",
    "their", "city", "river", "music", "band", "film", "book", "war", "army", "king", "church", "school", "team",
    "game", "season", "album", "song", "century", "north", "south", "early", "later", "first", "second", "new",
    "old", "large", "small", "public", "national", "local", "world", "history", "people", "family", "house",
    "water", "land", "island", "road", "station", "village", "town", "museum", "player", "government", "party",
    "election", "system", "company", "series", "story", "novel", "year", "time", "day", "night", "light", "long",
    "great", "little", "young", "called", "known", "built", "named", "became", "found", "made", "used", "played",
    "released", "wrote", "began", "moved", "remained", "returned", "opened", "won", "lost", "london", "paris",
    "charles", "mary", "victoria", "1887", "12", "1960"};
const std::vector<const char*> kMovie = {
    "the", "a", "this", "movie", "film", "acting", "plot", "was", "is", "great", "terrible", "boring", "funny",
    "i", "love", "hate", "actor", "scene", "ending", "director", "script", "and", "but", "not", "very", "really",
    "story", "characters", "music", "watch", "again", "never", "best", "worst", "time", "it", "of", "in", "to"};
const std::vector<const char*> kBiomed = {
    "the", "of", "and", "in", "protein", "cells", "expression", "receptor", "rats", "blood", "pressure", "dose",
    "inhibition", "activity", "increased", "decreased", "treatment", "patients", "effect", "levels", "was", "were",
    "by", "with", "acid", "enzyme", "binding", "human", "mice", "response", "induced", "gene", "10", "mg"};

class TextGen {
  public:
    explicit TextGen(uint32_t seed) : rng_(seed) {}
    int below(int n) { return (int)(rng_() % (uint32_t)n); }
    int between(int lo, int hi) { return lo + below(hi - lo + 1); }
    std::string word(const std::vector<const char*>& lexicon) { return lexicon[below((int)lexicon.size())]; }

    // "The city was ..., ... ." style: capitalized, commas, period glued (ptb: lowercase, " , ", " .").
    std::string sentence(const std::vector<const char*>& lexicon, bool ptb = false, int min_words = 4, int max_words = 12) {
        std::string s;
        const int n = between(min_words, max_words);
        for (int i = 0; i < n; i++) {
            std::string w = word(lexicon);
            if (i == 0 && !ptb) w[0] = (char)std::toupper((unsigned char)w[0]);
            s += (i ? " " : "") + w;
            if (i > 0 && i + 1 < n && below(6) == 0) s += ptb ? " ," : ",";
        }
        return s + (ptb ? " ." : ".");
    }
    std::string paragraph(const std::vector<const char*>& lexicon, int sentences) {
        std::string p;
        for (int i = 0; i < sentences; i++) p += (i ? " " : "") + sentence(lexicon);
        return p;
    }

  private:
    std::mt19937 rng_;
};

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
    std::string s;
    for (size_t i = 0; i < parts.size(); i++) s += (i ? sep : "") + parts[i];
    return s;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
    return s;
}

std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += std::string("\\") + c;
        else if (c == '\t') out += "\\t";
        else out += c;
    }
    return out + "\"";
}

// ---------------------------------------------------------------------------------------------
// The fake data folder and what the scripts must make of it.

struct Labeled {
    std::string text;   // as the shard must hold it (cleaned)
    std::string label;
};

struct Expected {
    std::vector<std::string> wiki_train, wiki_valid, gut_train, gut_valid;  // documents (lines joined by '\n')
    std::vector<std::string> wt2_valid, wt2_test;                           // cleaned documents
    int wt2_valid_unks = 0, wt2_test_unks = 0;                              // <unk> marks written
    std::vector<Labeled> imdb_train, imdb_test;                             // cleaned, in file (sorted) order
    std::vector<std::string> imdb_unsup;                                    // cleaned
    std::string imdb_long_review;                                           // one train review past 512 tokens
    std::vector<Labeled> sst2_train, sst2_dev;
    std::vector<std::string> biomed;                                        // documents
    std::vector<Labeled> chem_train, chem_dev, chem_test;                   // texts with their markers
    std::vector<std::string> chem_sentences;                                // markers removed, distinct, in order
};

void gzip(const std::string& path) { ASSERT_EQ(run_command("gzip -n -f '" + path + "'").exit_code, 0) << path; }

// Wikipedia / Gutenberg layout: one paragraph per line, a blank line after every article or book.
void write_documents(const std::string& path, const std::vector<std::vector<std::string>>& docs, std::vector<std::string>& expected) {
    std::string text;
    for (const auto& lines : docs) {
        text += join(lines, "\n") + "\n\n";
        expected.push_back(join(lines, "\n"));
    }
    write_text(path, text);
    gzip(path);
}

void make_wikipedia(const std::string& dir, TextGen& g, Expected& e) {
    auto article = [&g](int i) {
        std::vector<std::string> lines = {g.paragraph(kGeneral, g.between(2, 4)), g.paragraph(kGeneral, g.between(1, 3))};
        lines.push_back("Early life and career.");  // a section heading, kept as a short line
        lines.push_back(g.paragraph(kGeneral, 2) + " The caf\u00e9 was \u201cna\u00efve\u201d \u2014 art " + std::to_string(i) + ".");
        return lines;
    };
    std::vector<std::vector<std::string>> train, valid;
    for (int i = 0; i < 5; i++) train.push_back(article(i));
    for (int i = 0; i < 2; i++) valid.push_back(article(10 + i));
    write_documents(dir + "/enwiki_train.txt", train, e.wiki_train);
    write_documents(dir + "/enwiki_valid.txt", valid, e.wiki_valid);
}

void make_gutenberg(const std::string& dir, TextGen& g, Expected& e) {
    auto book = [&g](int i) {
        std::vector<std::string> lines = {"THE STORY OF THE OLD HOUSE " + std::to_string(i), "By Mary Charles", "* * *", "CHAPTER I."};
        for (int p = 0; p < 6; p++) lines.push_back(g.paragraph(kGeneral, g.between(1, 5)));
        lines.push_back("\u2018It was late,\u2019 she said. \u201cVery late.\u201d");
        return lines;
    };
    std::vector<std::vector<std::string>> train, valid;
    for (int i = 0; i < 3; i++) train.push_back(book(i));
    for (int i = 0; i < 2; i++) valid.push_back(book(10 + i));
    write_documents(dir + "/train.txt", train, e.gut_train);
    write_documents(dir + "/valid.txt", valid, e.gut_valid);
}

// WikiText-2's tokenized release: lines start and end with a space, ` = Title = ` starts an
// article, ` = = Section = = ` a section, blank lines (" ") around headings, ` @-@ ` ` @,@ ` ` @.@ `
// inside hyphenated words and numbers, `<unk>` for rare words. The cleaned text is built alongside.
void make_wikitext2_split(const std::string& path, TextGen& g, int articles, std::vector<std::string>& expected, int& unks) {
    std::string raw;
    auto paragraph = [&](std::string& clean) {
        std::string r;
        clean.clear();
        const int n = g.between(12, 30);
        for (int i = 0; i < n; i++) {
            switch (g.below(9)) {
                case 0: r += " well @-@ known"; clean += " well-known"; break;
                case 1: r += " 3 @.@ 5"; clean += " 3.5"; break;
                case 2: r += " 1 @,@ 000"; clean += " 1,000"; break;
                case 3: r += " <unk>"; clean += " [UNK]"; unks++; break;
                case 4: r += " ,"; clean += " ,"; break;
                default: { const std::string w = g.word(kGeneral); r += " " + w; clean += " " + w; }
            }
        }
        r += " . \n";
        clean += " . ";
        return r;
    };
    for (int a = 0; a < articles; a++) {
        std::vector<std::string> doc;
        std::string clean;
        raw += " \n = " + std::string(a % 2 ? "The Old River" : "Mary of London") + " " + std::to_string(a) + " = \n \n";
        raw += paragraph(clean);
        doc.push_back(clean);
        raw += paragraph(clean);
        doc.push_back(clean);
        raw += " = 1 <unk> and <unk> C = \n";  // a formula line: looks like a title, but no blank lines around it
        doc.push_back(" = 1 [UNK] and [UNK] C = ");
        unks += 2;
        raw += " \n = = Early life = = \n \n";
        doc.push_back("Early life.");
        raw += paragraph(clean);
        doc.push_back(clean);
        raw += " \n = = = Later years and death = = = \n \n";
        doc.push_back("Later years and death.");
        raw += paragraph(clean);
        doc.push_back(clean);
        expected.push_back(join(doc, "\n"));
    }
    write_text(path, raw + " \n");
}

// IMDB TSV (`label rating id text`), sorted negative then positive; `<br />` breaks in the text.
std::vector<Labeled> make_imdb_split(const std::string& path, TextGen& g, int per_label, std::string* long_review) {
    std::vector<Labeled> rows;
    std::string tsv = "label\trating\tid\ttext\n";
    int id = 0;
    for (int label = 0; label < 2; label++)
        for (int i = 0; i < per_label; i++) {
            std::string raw;
            const int sentences = long_review && label == 1 && i == 0 ? 90 : g.between(2, 6);
            for (int s = 0; s < sentences; s++) {
                if (s) raw += s % 3 == 1 ? "<br /><br />" : s % 3 == 2 ? " " : "<br />";
                raw += g.sentence(kMovie, false, 6, 14);
            }
            if (i == 1) raw += " I saw <i>The Movie</i> twice.";  // other HTML stays as it is
            const std::string clean = replace_all(raw, "<br />", " ");
            if (long_review && label == 1 && i == 0) *long_review = clean;
            rows.push_back({clean, std::to_string(label)});
            const int rating = label ? g.between(7, 10) : g.between(1, 4);
            tsv += std::to_string(label) + "\t" + std::to_string(rating) + "\t" + std::to_string(id++) + "\t" + raw + "\n";
        }
    write_text(path, tsv);
    gzip(path);
    return rows;
}

void make_imdb(const std::string& dir, TextGen& g, Expected& e) {
    e.imdb_train = make_imdb_split(dir + "/train.tsv", g, 6, &e.imdb_long_review);
    e.imdb_test = make_imdb_split(dir + "/test.tsv", g, 5, nullptr);
    std::string unsup;
    for (int i = 0; i < 24; i++) {  // prepare's 2% hash split (seed 1) holds out document 10: 24 gives a val shard
        const std::string raw = g.sentence(kMovie, false, 5, 12) + "<br /><br />" + g.sentence(kMovie, false, 5, 12);
        unsup += raw + "\n";
        e.imdb_unsup.push_back(replace_all(raw, "<br />", " "));
    }
    write_text(dir + "/unsup.txt", unsup);
    gzip(dir + "/unsup.txt");
}

std::vector<Labeled> make_sst2_split(const std::string& path, TextGen& g, int n) {
    std::vector<Labeled> rows;
    std::string tsv = "sentence\tlabel\n";
    for (int i = 0; i < n; i++) {
        const std::string s = g.sentence(kMovie, /*ptb=*/true, 2, 10) + " ";  // the release's space before the tab
        const std::string label = std::to_string((i * 7 + 3) % 5 < 3);
        rows.push_back({s, label});
        tsv += s + "\t" + label + "\n";
    }
    write_text(path, tsv);
    return rows;
}

void make_biomed(const std::string& path, TextGen& g, Expected& e) {
    std::string text;
    for (int d = 0; d < 24; d++) {  // prepare's 5% hash split (seed 1) holds out documents 10 and 11
        std::vector<std::string> lines;
        for (int s = g.between(2, 5); s > 0; s--) lines.push_back(g.sentence(kBiomed, false, 6, 16));
        text += join(lines, "\n") + "\n\n";
        e.biomed.push_back(join(lines, "\n"));
    }
    write_text(path, text);
}

// ChemProt JSON lines: each sentence once per marked chemical-protein pair, so the same sentence
// comes several times with different markers.
const std::vector<std::string> kChemLabels = {"INHIBITOR", "ACTIVATOR", "UPREGULATOR", "SUBSTRATE_PRODUCT-OF", "AGONIST-INHIBITOR"};

std::vector<Labeled> make_chemprot_split(const std::string& path, TextGen& g, int sentences, const std::vector<std::string>& labels,
                                         std::vector<std::string>* distinct) {
    std::vector<Labeled> rows;
    std::string jsonl;
    int k = 0;
    for (int s = 0; s < sentences; s++) {
        std::vector<std::string> words;
        for (int n = g.between(8, 16); n > 0; n--) words.push_back(g.word(kBiomed));
        words[0][0] = (char)std::toupper((unsigned char)words[0][0]);
        if (s == 0) words.push_back("(IMC-225, \"Erbitux\")");  // an escaped quote in the JSON
        if (s == 1) words[2] += "\tand";                        // a tab escape: jq turns it into a space
        words.push_back(".");
        for (int pair = 0, pairs = g.between(1, 3); pair < pairs; pair++) {
            std::vector<std::string> marked = words;  // two distinct words marked, never the final "."
            const int a = g.below((int)words.size() - 1), b = (a + 1 + g.below(4)) % ((int)words.size() - 1);
            marked[a] = "<< " + marked[a] + " >>";
            marked[b] = "[[ " + marked[b] + " ]]";
            const std::string text = join(marked, " ");
            rows.push_back({text, labels[k++ % labels.size()]});
            jsonl += "{\"text\": " + json_string(text) + ", \"label\": " + json_string(rows.back().label) + ", \"metadata\": []}\n";
        }
        if (distinct) distinct->push_back(replace_all(join(words, " "), "\t", " "));
    }
    write_text(path, jsonl);
    return rows;
}

void make_chemprot(const std::string& dir, TextGen& g, Expected& e) {
    e.chem_train = make_chemprot_split(dir + "/train.jsonl", g, 18, kChemLabels, &e.chem_sentences);
    // dev lacks AGONIST-INHIBITOR, test lacks SUBSTRATE_PRODUCT-OF (as in the real files): their
    // label ids must still be the train shard's.
    e.chem_dev = make_chemprot_split(dir + "/dev.jsonl", g, 4, {"UPREGULATOR", "INHIBITOR", "SUBSTRATE_PRODUCT-OF"}, nullptr);
    e.chem_test = make_chemprot_split(dir + "/test.jsonl", g, 5, {"AGONIST-INHIBITOR", "UPREGULATOR", "ACTIVATOR"}, nullptr);
}

Expected make_fake_data(const std::string& data) {
    Expected e;
    TextGen g(20240611);
    for (const char* d : {"wikipedia", "gutenberg", "wikitext2", "imdb", "sst2", "biomed_text", "chemprot"}) make_dirs(data + "/" + d);
    make_wikipedia(data + "/wikipedia", g, e);
    make_gutenberg(data + "/gutenberg", g, e);
    make_wikitext2_split(data + "/wikitext2/wiki.valid.tokens", g, 3, e.wt2_valid, e.wt2_valid_unks);
    make_wikitext2_split(data + "/wikitext2/wiki.test.tokens", g, 2, e.wt2_test, e.wt2_test_unks);
    make_imdb(data + "/imdb", g, e);
    e.sst2_train = make_sst2_split(data + "/sst2/train.tsv", g, 10);
    e.sst2_dev = make_sst2_split(data + "/sst2/dev.tsv", g, 4);
    make_biomed(data + "/biomed_text/biomed_sentences.txt", g, e);
    make_chemprot(data + "/chemprot", g, e);
    return e;
}

// ---------------------------------------------------------------------------------------------
// Reading the outputs back.

bool exists(const std::string& path) { return std::system(("test -e '" + path + "'").c_str()) == 0; }

std::vector<Ids> read_documents(const std::string& path, const Tokenizer& vocab) {
    std::vector<Ids> docs;
    const TokenShard shard(path, &vocab);
    for (int64_t d = 0; d < shard.doc_count(); d++) {
        Ids ids(shard.doc_end(d) - shard.doc_begin(d));
        shard.read(shard.doc_begin(d), (int64_t)ids.size(), ids.data());
        docs.push_back(ids);
    }
    return docs;
}

std::string show(const Tokenizer& vocab, const Ids& ids) {
    std::string s = vocab.decode(ids, false);
    return s.size() > 300 ? s.substr(0, 300) + " ..." : s;
}

// got[i] == encode_words(want[i]) for every i.
::testing::AssertionResult same_documents(const std::vector<Ids>& got, const std::vector<std::string>& want, const Tokenizer& vocab) {
    if (got.size() != want.size())
        return ::testing::AssertionFailure() << got.size() << " documents, expected " << want.size();
    for (size_t i = 0; i < got.size(); i++)
        if (got[i] != vocab.encode_words(want[i]))
            return ::testing::AssertionFailure() << "document " << i << " is\n  " << show(vocab, got[i]) << "\nexpected\n  " << want[i];
    return ::testing::AssertionSuccess();
}

// The train and val shards of a hash split hold every expected document once, each split in input
// order, and val is not empty (docs/data.md lists val_000.bin).
::testing::AssertionResult split_documents(const std::string& dir, const std::vector<std::string>& want, const Tokenizer& vocab) {
    for (const char* f : {"/train_000.bin", "/val_000.bin"})
        if (!exists(dir + f)) return ::testing::AssertionFailure() << dir + f << " is missing";
    const std::vector<Ids> train = read_documents(dir + "/train_000.bin", vocab), val = read_documents(dir + "/val_000.bin", vocab);
    size_t t = 0, v = 0;
    for (const std::string& doc : want) {
        const Ids ids = vocab.encode_words(doc);
        if (t < train.size() && train[t] == ids) t++;
        else if (v < val.size() && val[v] == ids) v++;
        else return ::testing::AssertionFailure() << dir << ": document '" << doc << "' not found (in order) in train or val";
    }
    if (t != train.size() || v != val.size())
        return ::testing::AssertionFailure() << dir << ": " << train.size() - t << " train and " << val.size() - v << " val documents too many";
    return ::testing::AssertionSuccess() << train.size() << " train, " << val.size() << " val";
}

// Example i is [CLS] want[i].text [SEP] (max_len) with the label id of want[i].label in `names`.
::testing::AssertionResult same_examples(const ExampleSet& set, const std::vector<Labeled>& want, const std::vector<std::string>& names,
                                         int max_len, const Tokenizer& vocab) {
    if (set.examples.size() != want.size())
        return ::testing::AssertionFailure() << set.examples.size() << " examples, expected " << want.size();
    if (set.max_len != max_len) return ::testing::AssertionFailure() << "max_len " << set.max_len << ", expected " << max_len;
    for (size_t i = 0; i < want.size(); i++) {
        const Example& ex = set.examples[i];
        if (ex.ids != vocab.encode(want[i].text, max_len).ids)
            return ::testing::AssertionFailure() << "example " << i << " is\n  " << show(vocab, ex.ids) << "\nexpected\n  " << want[i].text;
        const int label = names.empty() ? -1 : (int)(std::find(names.begin(), names.end(), want[i].label) - names.begin());
        if (ex.label != label)
            return ::testing::AssertionFailure() << "example " << i << " has label id " << ex.label << ", expected " << label << " ('"
                                                 << want[i].label << "')";
    }
    return ::testing::AssertionSuccess();
}

int count(const Ids& ids, int id) { return (int)std::count(ids.begin(), ids.end(), id); }

// Rows of all.sh's summary table: first cell -> second cell ("wikipedia train" -> "5 documents").
std::map<std::string, std::string> summary_rows(const std::string& path) {
    std::map<std::string, std::string> rows;
    std::istringstream in(exists(path) ? read_file(path) : "");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("| ", 0) != 0) continue;
        const size_t a = line.find(" | ", 2);
        if (a == std::string::npos) continue;
        const size_t b = line.find(" |", a + 3);
        rows[line.substr(2, a - 2)] = line.substr(a + 3, b - a - 3);
    }
    return rows;
}

// ---------------------------------------------------------------------------------------------

class DataScripts : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        for (const char* tool : kTools)
            if (std::system(("command -v " + std::string(tool) + " >/dev/null 2>&1").c_str()) != 0) missing_ += std::string(" ") + tool;
        if (!missing_.empty()) return;
        dir_ = new ScratchDir;
        expected_ = new Expected(make_fake_data(*dir_ / "data"));
        const double t0 = now_seconds();
        run_ = new RunResult(run_command(env("bert-base-uncased", "out") + " dev/data/all.sh"));
        seconds_ = now_seconds() - t0;
        vdir_ = *dir_ / "out/bert-base-uncased";
    }
    static void TearDownTestSuite() {
        delete run_;
        delete expected_;
        delete dir_;  // removes the scratch folder
        run_ = nullptr;
        expected_ = nullptr;
        dir_ = nullptr;
    }
    void SetUp() override {
        if (!missing_.empty())
            GTEST_SKIP() << "the dev/data scripts need these command-line tools, missing here:" << missing_
                         << " (Debian/Ubuntu: apt-get install bash gzip jq coreutils sed gawk openssl; .ci/run installs them)";
        ASSERT_TRUE(exists("prepare")) << "./prepare is missing: run make prepare (the scripts use it)";
        vocab_ = std::make_unique<Tokenizer>(Tokenizer::load(kBertVocab));
    }

    // The environment of a script run: fake data, scratch output, 2 threads.
    static std::string env(const std::string& vocab_name, const std::string& out) {
        return "WELLREAD_DATA='" + *dir_ / "data" + "' WELLREAD_OUT='" + *dir_ / out + "' VOCAB_NAME=" + vocab_name + " PREPARE_THREADS=2";
    }
    static std::string tail(const std::string& s) { return s.size() > 6000 ? "...\n" + s.substr(s.size() - 6000) : s; }

    std::string out(const std::string& rel) const { return vdir_ + "/" + rel; }
    std::string clean(const std::string& rel) const { return *dir_ / ("out/clean/" + rel); }
    // A file docs/data.md lists: a test failure (not a crash) when it is missing.
    ::testing::AssertionResult present(const std::string& path) const {
        if (exists(path)) return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure() << path << " is missing (dev/data/all.sh exit code " << run_->exit_code
                                             << ": see DataScripts.AllShSucceedsAndWritesEveryDocumentedFile)";
    }
    ExampleSet examples(const std::string& rel) const { return read_example_shard(out(rel), vocab_.get()); }

    static std::string missing_;
    static ScratchDir* dir_;
    static Expected* expected_;
    static RunResult* run_;
    static double seconds_;
    static std::string vdir_;
    std::unique_ptr<Tokenizer> vocab_;
};

std::string DataScripts::missing_;
ScratchDir* DataScripts::dir_ = nullptr;
Expected* DataScripts::expected_ = nullptr;
RunResult* DataScripts::run_ = nullptr;
double DataScripts::seconds_ = 0;
std::string DataScripts::vdir_;

// Every output docs/data.md lists, relative to $OUT/$VOCAB_NAME (clean/ ones to $OUT).
const char* const kDocumentedOutputs[] = {
    "vocab.txt",
    "wikipedia/train_000.bin", "wikipedia/val_000.bin",
    "gutenberg/train_000.bin", "gutenberg/val_000.bin",
    "wikitext2/val_000.bin", "wikitext2/test_000.bin",
    "imdb/train.bin", "imdb/test.bin", "imdb/unsup.bin", "imdb/mlm/train_000.bin", "imdb/mlm/val_000.bin",
    "sst2/train.bin", "sst2/dev.bin", "sst2/transfer.bin",
    "biomed/train_000.bin", "biomed/val_000.bin",
    "chemprot/train.bin", "chemprot/dev.bin", "chemprot/test.bin", "chemprot/mlm/train_000.bin", "chemprot/mlm/val_000.bin",
    "summary.md"};
const char* const kDocumentedClean[] = {"wikitext2/valid.txt", "wikitext2/test.txt", "imdb/train.tsv", "imdb/test.tsv", "imdb/unsup.txt",
                                        "chemprot/train_sentences.txt"};
const char* const kScripts[] = {"vocab", "wikipedia", "gutenberg", "wikitext2", "imdb", "sst2", "biomed", "chemprot"};

}  // namespace

TEST_F(DataScripts, AllShSucceedsAndWritesEveryDocumentedFile) {
    ASSERT_EQ(run_->exit_code, 0) << "dev/data/all.sh on the fake data failed:\n" << tail(run_->output);
    std::printf("[ dev/data/all.sh on the fake data: %.1f s ]\n", seconds_);
    for (const char* f : kDocumentedOutputs) EXPECT_TRUE(present(out(f)));
    for (const char* f : kDocumentedClean) EXPECT_TRUE(present(clean(f)));
    for (const char* s : kScripts) EXPECT_TRUE(present(out(std::string("logs/") + s + ".seconds")));
    // Nothing else: no scratch folder or intermediate file left behind.
    const RunResult listing = run_command("cd '" + *dir_ / "out" + "' && find . -type f ! -path './bert-base-uncased/logs/*' | sort");
    std::vector<std::string> want;
    for (const char* f : kDocumentedOutputs) want.push_back("./bert-base-uncased/" + std::string(f));
    for (const char* f : kDocumentedClean) want.push_back("./clean/" + std::string(f));
    std::sort(want.begin(), want.end());
    EXPECT_EQ(listing.output, join(want, "\n") + "\n");
}

TEST_F(DataScripts, BertVocabularyIsTheCommittedFixture) {
    ASSERT_TRUE(present(out("vocab.txt")));
    EXPECT_EQ(read_file(out("vocab.txt")), read_file(kBertVocab));
    EXPECT_NE(run_->output.find("md5 64800d5d8528ce344256daf115d4965e"), std::string::npos) << "the md5 docs/data.md gives";
}

TEST_F(DataScripts, WikipediaAndGutenbergKeepTheGivenSplitOneDocumentPerArticle) {
    const Expected& e = *expected_;
    for (const auto& [name, train, valid] : {std::tuple("wikipedia", &e.wiki_train, &e.wiki_valid), std::tuple("gutenberg", &e.gut_train, &e.gut_valid)}) {
        SCOPED_TRACE(name);
        const std::string d = out(name);
        ASSERT_TRUE(present(d + "/train_000.bin"));
        ASSERT_TRUE(present(d + "/val_000.bin"));
        EXPECT_TRUE(same_documents(read_documents(d + "/train_000.bin", *vocab_), *train, *vocab_));
        EXPECT_TRUE(same_documents(read_documents(d + "/val_000.bin", *vocab_), *valid, *vocab_));
    }
}

TEST_F(DataScripts, Wikitext2IsCleanedIntoArticles) {
    const Expected& e = *expected_;
    ASSERT_TRUE(present(out("wikitext2/val_000.bin")));
    ASSERT_TRUE(present(out("wikitext2/test_000.bin")));
    EXPECT_FALSE(exists(out("wikitext2/train_000.bin"))) << "each split goes whole to val_*";
    const int at = vocab_->id_of("@"), lt = vocab_->id_of("<");
    for (const auto& [file, want, unks] : {std::tuple("val_000.bin", &e.wt2_valid, e.wt2_valid_unks), std::tuple("test_000.bin", &e.wt2_test, e.wt2_test_unks)}) {
        SCOPED_TRACE(file);
        const std::vector<Ids> docs = read_documents(out("wikitext2/") + file, *vocab_);
        EXPECT_TRUE(same_documents(docs, *want, *vocab_));  // one per ` = Title = `, titles dropped, headings `Section.`
        int unk = 0, ats = 0, lts = 0;
        for (const Ids& d : docs) {
            unk += count(d, vocab_->unk_id);
            ats += count(d, at);
            lts += count(d, lt);
        }
        EXPECT_GT(unks, 0);
        EXPECT_EQ(unk, unks) << "every <unk> is one [UNK] token";
        EXPECT_EQ(ats, 0) << "` @-@ ` and the like are rejoined";
        EXPECT_EQ(lts, 0) << "no `<unk>` spelled out";
    }
    ASSERT_TRUE(present(clean("wikitext2/valid.txt")));
    const std::string text = read_file(clean("wikitext2/valid.txt"));
    EXPECT_EQ(text.find(" @"), std::string::npos);
    EXPECT_NE(text.find("well-known"), std::string::npos);
    EXPECT_NE(text.find("Early life."), std::string::npos);
    EXPECT_EQ(text.find("Mary of London"), std::string::npos) << "titles are dropped";
}

TEST_F(DataScripts, ImdbIsCleanedShuffledAndLabeled) {
    const Expected& e = *expected_;
    const std::vector<std::string> labels = {"0", "1"};
    const int lt = vocab_->id_of("<"), br = vocab_->id_of("br");
    ASSERT_GE(br, 0);
    for (const auto& [split, want] : {std::pair("train", &e.imdb_train), std::pair("test", &e.imdb_test)}) {
        SCOPED_TRACE(split);
        ASSERT_TRUE(present(out(std::string("imdb/") + split + ".bin")));
        const ExampleSet set = examples(std::string("imdb/") + split + ".bin");
        EXPECT_EQ(set.label_kind, LabelKind::Class);
        EXPECT_EQ(set.label_names, labels);
        EXPECT_EQ(set.max_len, 512);
        // The same examples as the file (cleaned), in another order: compare sorted (label, ids) pairs.
        std::vector<std::pair<int, Ids>> got, expect;
        for (const Example& ex : set.examples) got.emplace_back(ex.label, ex.ids);
        for (const Labeled& l : *want) expect.emplace_back(std::stoi(l.label), vocab_->encode(l.text, 512).ids);
        std::vector<int> order;
        for (const auto& g : got) order.push_back(g.first);
        EXPECT_FALSE(std::is_sorted(order.begin(), order.end())) << "the rows come sorted by label: they must be shuffled";
        std::sort(got.begin(), got.end());
        std::sort(expect.begin(), expect.end());
        EXPECT_EQ(got.size(), want->size());
        EXPECT_TRUE(got == expect) << "the shard's examples are not the cleaned reviews with their labels";
        for (const Example& ex : set.examples)
            for (size_t i = 0; i + 1 < ex.ids.size(); i++)
                ASSERT_FALSE(ex.ids[i] == lt && ex.ids[i + 1] == br) << "a <br /> is left in: " << show(*vocab_, ex.ids);
    }
    // The long review keeps its head: 512 tokens, [SEP] last.
    const Ids long_ids = vocab_->encode(e.imdb_long_review, 512).ids;
    ASSERT_EQ(long_ids.size(), 512u);
    ASSERT_GT(vocab_->encode_words(e.imdb_long_review).size(), 600u);
    const ExampleSet train = examples("imdb/train.bin");
    EXPECT_EQ(std::count_if(train.examples.begin(), train.examples.end(), [&](const Example& ex) { return ex.ids == long_ids; }), 1);
    // The cleaned copy: header first, no <br.
    ASSERT_TRUE(present(clean("imdb/train.tsv")));
    const std::string tsv = read_file(clean("imdb/train.tsv"));
    EXPECT_EQ(tsv.rfind("label\trating\tid\ttext\n", 0), 0u);
    EXPECT_EQ(tsv.find("<br"), std::string::npos);
    EXPECT_NE(tsv.find("<i>The Movie</i>"), std::string::npos) << "other HTML is left as it is";

    // Unlabeled: the transfer set in file order, and MLM shards one review per document.
    ASSERT_TRUE(present(out("imdb/unsup.bin")));
    const ExampleSet unsup = examples("imdb/unsup.bin");
    EXPECT_EQ(unsup.label_kind, LabelKind::None);
    std::vector<Labeled> want_unsup;
    for (const std::string& t : e.imdb_unsup) want_unsup.push_back({t, ""});
    EXPECT_TRUE(same_examples(unsup, want_unsup, {}, 512, *vocab_));
    EXPECT_TRUE(split_documents(out("imdb/mlm"), e.imdb_unsup, *vocab_));
}

TEST_F(DataScripts, Sst2LabeledAndTransferSets) {
    const Expected& e = *expected_;
    const std::vector<std::string> labels = {"0", "1"};
    for (const char* f : {"sst2/train.bin", "sst2/dev.bin", "sst2/transfer.bin"}) ASSERT_TRUE(present(out(f)));
    const ExampleSet train = examples("sst2/train.bin"), dev = examples("sst2/dev.bin"), transfer = examples("sst2/transfer.bin");
    EXPECT_EQ(train.label_names, labels);
    EXPECT_EQ(dev.label_names, labels);
    EXPECT_TRUE(same_examples(train, e.sst2_train, labels, 128, *vocab_));
    EXPECT_TRUE(same_examples(dev, e.sst2_dev, labels, 128, *vocab_));
    EXPECT_EQ(transfer.label_kind, LabelKind::None);
    std::vector<Labeled> unlabeled = e.sst2_train;
    for (Labeled& l : unlabeled) l.label.clear();
    EXPECT_TRUE(same_examples(transfer, unlabeled, {}, 128, *vocab_));
}

TEST_F(DataScripts, BiomedOneDocumentPerAbstract) {
    EXPECT_TRUE(split_documents(out("biomed"), expected_->biomed, *vocab_));
}

TEST_F(DataScripts, ChemprotKeepsMarkersAndTrainLabelIds) {
    const Expected& e = *expected_;
    for (const char* f : {"chemprot/train.bin", "chemprot/dev.bin", "chemprot/test.bin"}) ASSERT_TRUE(present(out(f)));
    std::vector<std::string> names = kChemLabels;
    std::sort(names.begin(), names.end());  // ACTIVATOR AGONIST-INHIBITOR INHIBITOR SUBSTRATE_PRODUCT-OF UPREGULATOR
    const int lt = vocab_->id_of("<"), gt = vocab_->id_of(">"), lb = vocab_->id_of("["), rb = vocab_->id_of("]");
    for (const auto& [file, want] : {std::pair("chemprot/train.bin", &e.chem_train), std::pair("chemprot/dev.bin", &e.chem_dev),
                                     std::pair("chemprot/test.bin", &e.chem_test)}) {
        SCOPED_TRACE(file);
        const ExampleSet set = examples(file);
        EXPECT_EQ(set.label_names, names) << "the train labels sorted by name, for dev and test too (--labels-from)";
        EXPECT_TRUE(same_examples(set, *want, names, 512, *vocab_));
        for (const Example& ex : set.examples) {
            EXPECT_EQ(count(ex.ids, lt), 2) << show(*vocab_, ex.ids);
            EXPECT_EQ(count(ex.ids, gt), 2) << show(*vocab_, ex.ids);
            EXPECT_EQ(count(ex.ids, lb), 2) << show(*vocab_, ex.ids);
            EXPECT_EQ(count(ex.ids, rb), 2) << show(*vocab_, ex.ids);
        }
    }
    // MLM text: the train sentences without markers, each once.
    ASSERT_GT(e.chem_train.size(), e.chem_sentences.size()) << "the fake data repeats sentences with other markers";
    ASSERT_TRUE(present(clean("chemprot/train_sentences.txt")));
    EXPECT_EQ(read_file(clean("chemprot/train_sentences.txt")), join(e.chem_sentences, "\n") + "\n");
    EXPECT_TRUE(split_documents(out("chemprot/mlm"), e.chem_sentences, *vocab_));
}

TEST_F(DataScripts, SummaryTableHasARowPerOutput) {
    ASSERT_TRUE(present(out("summary.md")));
    const auto rows = summary_rows(out("summary.md"));
    const Expected& e = *expected_;
    auto n = [](size_t k, const char* unit) { return std::to_string(k) + " " + unit; };
    auto docs_in = [&](const std::string& rel) { return exists(out(rel)) ? (size_t)TokenShard(out(rel)).doc_count() : 0; };
    const std::map<std::string, std::string> want = {
        {"wikipedia train", n(e.wiki_train.size(), "documents")},
        {"wikipedia val", n(e.wiki_valid.size(), "documents")},
        {"gutenberg train", n(e.gut_train.size(), "documents")},
        {"gutenberg val", n(e.gut_valid.size(), "documents")},
        {"wikitext2 val", n(e.wt2_valid.size(), "documents")},
        {"wikitext2 test", n(e.wt2_test.size(), "documents")},
        {"imdb train", n(e.imdb_train.size(), "examples")},
        {"imdb test", n(e.imdb_test.size(), "examples")},
        {"imdb unsup", n(e.imdb_unsup.size(), "examples")},
        {"imdb mlm train", n(docs_in("imdb/mlm/train_000.bin"), "documents")},
        {"imdb mlm val", n(docs_in("imdb/mlm/val_000.bin"), "documents")},
        {"sst2 train", n(e.sst2_train.size(), "examples")},
        {"sst2 dev", n(e.sst2_dev.size(), "examples")},
        {"sst2 transfer", n(e.sst2_train.size(), "examples")},
        {"biomed train", n(docs_in("biomed/train_000.bin"), "documents")},
        {"biomed val", n(docs_in("biomed/val_000.bin"), "documents")},
        {"chemprot train", n(e.chem_train.size(), "examples")},
        {"chemprot dev", n(e.chem_dev.size(), "examples")},
        {"chemprot test", n(e.chem_test.size(), "examples")},
        {"chemprot mlm train", n(docs_in("chemprot/mlm/train_000.bin"), "documents")},
        {"chemprot mlm val", n(docs_in("chemprot/mlm/val_000.bin"), "documents")},
    };
    for (const auto& [label, cell] : want) {
        const auto it = rows.find(label);
        if (it == rows.end()) ADD_FAILURE() << "no row '" << label << "' in " << out("summary.md");
        else EXPECT_EQ(it->second, cell) << label;
    }
    for (const char* s : kScripts) EXPECT_EQ(rows.count(std::string("dev/data/") + s + ".sh"), 1u) << s;
}

TEST_F(DataScripts, RerunGivesTheSameBytes) {
    ASSERT_EQ(run_->exit_code, 0) << "dev/data/all.sh failed: see DataScripts.AllShSucceedsAndWritesEveryDocumentedFile";
    const std::string first = read_file(out("imdb/train.bin")), first_mlm = read_file(out("imdb/mlm/val_000.bin"));
    const RunResult r = run_command(env("bert-base-uncased", "out") + " dev/data/all.sh imdb");
    ASSERT_EQ(r.exit_code, 0) << tail(r.output);
    EXPECT_EQ(read_file(out("imdb/train.bin")), first) << "the shuffle is seeded: the same order every run";
    EXPECT_EQ(read_file(out("imdb/mlm/val_000.bin")), first_mlm);
}

// The default vocabulary: trained by vocab.sh on the fake wikipedia + gutenberg train text (a
// small vocabulary: training stops when merges run out), then every script runs with it.
TEST_F(DataScripts, Wr30kVocabularyIsTrainedOnTheFakeText) {
    const double t0 = now_seconds();
    const RunResult r = run_command(env("wr30k", "out_wr30k") + " dev/data/all.sh");
    std::printf("[ dev/data/all.sh with VOCAB_NAME=wr30k: %.1f s ]\n", now_seconds() - t0);
    ASSERT_EQ(r.exit_code, 0) << tail(r.output);
    const std::string vdir = *dir_ / "out_wr30k/wr30k";
    for (const char* f : kDocumentedOutputs) EXPECT_TRUE(exists(vdir + "/" + f)) << vdir + "/" + f << " is missing";
    const Tokenizer vocab = Tokenizer::load(vdir + "/vocab.txt");
    EXPECT_LT(vocab.vocab_size(), 30522);
    EXPECT_EQ(vocab.token(0), "[PAD]");
    for (const char* w : {"the", "river", "house", "london", "chapter"}) EXPECT_GE(vocab.id_of(w), 0) << w;
    const std::string log = exists(vdir + "/logs/vocab.log") ? read_file(vdir + "/logs/vocab.log") : "";
    EXPECT_NE(log.find("held-out text: " + std::to_string(expected_->wiki_valid.size()) + " documents"), std::string::npos) << log;
    EXPECT_EQ(summary_rows(vdir + "/summary.md").count("vocab held-out wikipedia valid"), 1u);
    // The shards carry the trained vocabulary (TokenShard checks the fingerprint) and its tokens.
    EXPECT_TRUE(same_documents(read_documents(vdir + "/wikipedia/train_000.bin", vocab), expected_->wiki_train, vocab));
    const ExampleSet sst2 = read_example_shard(vdir + "/sst2/dev.bin", &vocab);
    EXPECT_TRUE(same_examples(sst2, expected_->sst2_dev, {"0", "1"}, 128, vocab));
}
