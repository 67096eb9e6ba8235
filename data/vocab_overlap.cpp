// data/vocab_overlap.cpp: word counts, top-K lists and their pairwise overlap for `prepare
// overlap` (the rules are in vocab_overlap.h).
#include "data/vocab_overlap.h"

#include <utf8proc.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "common/util.h"
#include "data/table_reader.h"
#include "data/text_reader.h"
#include "data/tokenizer.h"
#include "data/vocab_trainer.h"

namespace wr {

namespace {

std::string trim(const std::string& s) {
    const size_t a = s.find_first_not_of(" \t\r");
    if (a == std::string::npos) return "";
    return s.substr(a, s.find_last_not_of(" \t\r") - a + 1);
}

bool ends_with(const std::string& s, const char* suffix) {
    const size_t n = std::strlen(suffix);
    return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// A table by its extension (.gz looked through), as the table reader tells formats.
bool is_table_path(std::string path) {
    if (ends_with(path, ".gz")) path.resize(path.size() - 3);
    for (const char* ext : {".tsv", ".tab", ".csv", ".jsonl", ".json", ".ndjson"})
        if (ends_with(path, ext)) return true;
    return false;
}

}  // namespace

std::unordered_set<std::string> load_stop_words(const std::string& spec) {
    std::unordered_set<std::string> words;
    if (spec == "none") return words;
    if (spec == "builtin") {
        words.insert(builtin_stop_words().begin(), builtin_stop_words().end());
        return words;
    }
    LineReader in(spec);
    std::string line;
    while (in.next(line)) {
        const std::string word = trim(line);
        if (word.empty() || word[0] == '#') continue;
        const std::vector<std::string> pieces = bert_basic_tokenize(word);
        if (pieces.size() != 1) {
            std::string shown;
            for (const std::string& p : pieces) shown += (shown.empty() ? "" : " ") + p;
            throw Error(spec + ": line " + std::to_string(in.line_number()) + ": '" + word + "' is " + std::to_string(pieces.size()) +
                        " pieces after tokenization (" + shown + "), so it could never match a word; a stop word is one word");
        }
        words.insert(pieces[0]);
    }
    return words;
}

bool is_overlap_word(std::string_view word, const std::unordered_set<std::string>& stop_words) {
    int64_t chars = 0;
    bool letter = false;
    const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(word.data());
    utf8proc_ssize_t left = (utf8proc_ssize_t)word.size();
    while (left > 0) {
        utf8proc_int32_t c;
        utf8proc_ssize_t n = utf8proc_iterate(p, left, &c);
        if (n <= 0) {  // not expected in normalized text; an invalid byte counts as one non-letter
            c = -1;
            n = 1;
        }
        chars++;
        if (c >= 0) {
            const utf8proc_category_t cat = utf8proc_category(c);
            letter = letter || (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO);
        }
        p += n;
        left -= n;
    }
    return chars >= 2 && letter && !stop_words.count(std::string(word));
}

std::vector<WordCount> top_words(const std::unordered_map<std::string, uint64_t>& counts, int64_t k) {
    std::vector<WordCount> all;
    all.reserve(counts.size());
    for (const auto& [word, count] : counts) all.push_back({word, count});
    // std::string's < is memcmp order on the bytes (char_traits<char>::compare compares as unsigned char).
    auto before = [](const WordCount& a, const WordCount& b) { return a.count != b.count ? a.count > b.count : a.word < b.word; };
    const size_t n = (size_t)std::min<int64_t>(std::max<int64_t>(k, 0), (int64_t)all.size());
    std::partial_sort(all.begin(), all.begin() + n, all.end(), before);
    all.resize(n);
    return all;
}

CorpusSpec parse_corpus_spec(const std::string& spec) {
    const std::string where = "<command line>: flag --corpus: '" + spec + "': ";
    const size_t eq = spec.find('=');
    if (eq == std::string::npos) throw Error(where + "expected NAME=FILE or NAME=TABLE:COLUMN");
    CorpusSpec c;
    c.name = spec.substr(0, eq);
    if (c.name.empty()) throw Error(where + "the name before '=' is empty");
    if (c.name.size() > 40) throw Error(where + "the name is longer than 40 characters");
    for (const char ch : c.name)
        if (!std::isalnum((unsigned char)ch) && !std::strchr("._+-", ch))
            throw Error(where + "the name may hold only letters, digits and . _ + - (it names a row and a column of the table)");
    const std::string rest = spec.substr(eq + 1);
    if (rest.empty()) throw Error(where + "no file after '='");
    const size_t colon = rest.rfind(':');
    if (colon != std::string::npos && is_table_path(rest.substr(0, colon))) {
        c.path = rest.substr(0, colon);
        c.column = rest.substr(colon + 1);
        if (c.column.empty()) throw Error(where + "no column after ':' (NAME=TABLE:COLUMN)");
    } else if (is_table_path(rest)) {
        throw Error(where + "a table needs the column of its text: " + c.name + "=" + rest + ":COLUMN");
    } else {
        c.path = rest;
    }
    return c;
}

CorpusWords count_corpus_words(const CorpusSpec& spec, const CorpusLimits& limits, const std::unordered_set<std::string>& stop_words,
                               int threads) {
    const double t0 = now_seconds();
    CorpusWords out;
    try {
        out.files = expand_globs({spec.path});
    } catch (const Error& e) {
        const size_t colon = spec.path.rfind(':');
        std::string hint;
        if (spec.column.empty() && colon != std::string::npos) {
            try {
                expand_globs({spec.path.substr(0, colon)});
                hint = " (a column can be named only for a table: .tsv, .tab, .csv, .jsonl, .json, .ndjson, or .gz of one)";
            } catch (const Error&) {
            }
        }
        throw Error(std::string(e.what()) + " (corpus '" + spec.name + "')" + hint);
    }
    WordCounter counter;
    std::vector<std::string> batch;
    size_t batch_bytes = 0;
    auto flush = [&]() {
        counter.add_batch(batch, threads);
        batch.clear();
        batch_bytes = 0;
    };
    auto full = [&]() {
        return (limits.max_bytes > 0 && out.bytes >= limits.max_bytes) || (limits.max_texts > 0 && out.texts >= limits.max_texts);
    };
    // Takes one text; false once a bound is reached (the text that reaches it is taken).
    auto take = [&](std::string&& text) {
        if (text.find_first_not_of(" \t\r") == std::string::npos) return true;
        out.texts++;
        out.bytes += (int64_t)text.size() + 1;
        batch_bytes += text.size();
        batch.push_back(std::move(text));
        if (batch_bytes >= (16u << 20)) flush();
        return !full();
    };
    bool stopped = false;
    for (size_t f = 0; f < out.files.size() && !stopped; f++) {
        const std::string& path = out.files[f];
        if (spec.column.empty()) {
            LineReader in(path);
            std::string line;
            while (!stopped && in.next(line)) stopped = !take(std::move(line));
            if (!stopped) continue;
            // Bounded when a text was left: a non-blank line, or another file.
            out.bounded = f + 1 < out.files.size();
            while (!out.bounded && in.next(line)) out.bounded = line.find_first_not_of(" \t\r") != std::string::npos;
        } else {
            std::vector<TableRow> rows = read_table(path, parse_table_format("auto", path), {spec.column});
            size_t r = 0;
            while (!stopped && r < rows.size()) stopped = !take(std::move(rows[r++].values[0]));
            if (!stopped) continue;
            out.bounded = f + 1 < out.files.size();
            for (; !out.bounded && r < rows.size(); r++) out.bounded = rows[r].values[0].find_first_not_of(" \t\r") != std::string::npos;
        }
    }
    if (!batch.empty()) flush();
    out.pieces = counter.total_words();
    for (const auto& [word, count] : counter.counts())
        if (is_overlap_word(word, stop_words)) {
            out.counts.emplace(word, count);
            out.words += count;
        }
    if (out.counts.empty())
        throw Error(spec.path + ": no words counted for corpus '" + spec.name + "' (" + std::to_string(out.texts) +
                    " texts: empty, or only stop words, numbers and punctuation)");
    out.seconds = now_seconds() - t0;
    return out;
}

OverlapMatrix vocab_overlap(const std::vector<std::vector<WordCount>>& tops) {
    const size_t n = tops.size();
    std::vector<std::unordered_set<std::string>> sets(n);
    for (size_t i = 0; i < n; i++)
        for (const WordCount& w : tops[i]) sets[i].insert(w.word);
    OverlapMatrix m;
    m.shared.assign(n, std::vector<int64_t>(n, 0));
    m.percent.assign(n, std::vector<double>(n, 0.0));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            int64_t shared = 0;
            for (const WordCount& w : tops[i]) shared += (int64_t)sets[j].count(w.word);
            m.shared[i][j] = shared;
            const size_t smaller = std::min(tops[i].size(), tops[j].size());
            m.percent[i][j] = smaller ? 100.0 * (double)shared / (double)smaller : 0.0;
        }
    return m;
}

}  // namespace wr
