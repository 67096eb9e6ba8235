// data/vocab_overlap.h: vocabulary overlap between corpora, as in "Don't Stop Pretraining"
// (Gururangan et al. 2020, figure 2): for every pair of corpora, the share of their top-K most
// frequent words that they have in common. `prepare overlap` is the command; the rules (what a
// word is, the stop words, ties, small corpora) are specified here and in docs/data.md.
//
// Words. A text is normalized and split exactly as BERT's BasicTokenizer (uncased) does it
// (data/tokenizer.h: control characters dropped, accents stripped, lowercased, split at
// whitespace and around every punctuation character). A piece counts as a word when it has at
// least two characters (code points) and at least one letter (Unicode L*), and is not a stop
// word: so numbers ("2015", "3" and "5" of "3.5") and single letters ("t" of "don't") never
// count, while "don", "covid19" and "1990s" do.
//
// Top K. Words are ranked by count (descending), ties by the word's UTF-8 bytes (ascending,
// memcmp order), so the list is the same on every run and machine. A corpus with fewer than K
// distinct words keeps them all.
//
// Overlap. shared(A, B) = |top(A) ∩ top(B)|; percent(A, B) = 100 * shared / min(|top(A)|,
// |top(B)|), which is the paper's shared / K when both corpora have K words or more, and the
// share of the smaller list found in the larger one otherwise (100 on the diagonal).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace wr {

// The built-in stop words (data/stop_words.cpp): scikit-learn's English list, 318 words, the one
// the paper's own overlap script used.
const std::vector<std::string>& builtin_stop_words();

// Stop words from a file: one word a line; blank lines and lines starting with '#' are skipped;
// each word is normalized like text (lowercased, accents stripped) and must stay one word (a
// line such as "couldn't", which the tokenizer splits, could never match and is an error naming
// the file and line). `spec` "builtin" is the built-in list, "none" the empty list, anything
// else a file.
std::unordered_set<std::string> load_stop_words(const std::string& spec);

// Whether a normalized, pre-tokenized piece counts as a word (the rules above).
bool is_overlap_word(std::string_view word, const std::unordered_set<std::string>& stop_words);

struct WordCount {
    std::string word;
    uint64_t count;
};

// The min(k, counts.size()) most frequent words, by count descending then bytes ascending.
std::vector<WordCount> top_words(const std::unordered_map<std::string, uint64_t>& counts, int64_t k);

// One --corpus: NAME=FILE (text: every non-blank line is a text; plain or gzip) or
// NAME=TABLE:COLUMN (a TSV, CSV or JSON-lines file, by its extension with .gz looked through:
// the COLUMN of every row is a text). FILE and TABLE may be glob patterns (quoted), whose files
// are read in sorted order. NAME: letters, digits and . _ + - (at most 40 characters).
struct CorpusSpec {
    std::string name, path, column;  // column empty: a text file
};
CorpusSpec parse_corpus_spec(const std::string& spec);  // throws wr::Error: "<command line>: flag --corpus: ..."

// Bounds on what is read of one corpus (0: none). Texts are taken in file order until their
// bytes (each text's UTF-8 bytes plus one for its line end) reach max_bytes or their number
// reaches max_texts; the text that reaches a bound is taken whole. Blank texts are skipped and
// not counted.
struct CorpusLimits {
    int64_t max_bytes = 0, max_texts = 0;
};

struct CorpusWords {
    std::unordered_map<std::string, uint64_t> counts;  // words only (the rules above)
    std::vector<std::string> files;                    // the files read (a glob's matches)
    int64_t texts = 0, bytes = 0;                      // texts read and their bytes (as CorpusLimits counts them)
    uint64_t pieces = 0, words = 0;                    // pre-tokenized pieces, and those that count as words
    bool bounded = false;                              // a bound stopped the reading before the end of the input
    double seconds = 0;
};

// Reads and counts one corpus; `threads` OpenMP threads (0: all). Errors name the file.
CorpusWords count_corpus_words(const CorpusSpec& spec, const CorpusLimits& limits, const std::unordered_set<std::string>& stop_words,
                               int threads = 0);

// shared[i][j] and percent[i][j] for the top lists of several corpora (rules above).
struct OverlapMatrix {
    std::vector<std::vector<int64_t>> shared;
    std::vector<std::vector<double>> percent;
};
OverlapMatrix vocab_overlap(const std::vector<std::vector<WordCount>>& tops);

}  // namespace wr
