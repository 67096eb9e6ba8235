// data/vocab_trainer.cpp: WordPiece vocabulary training, in the manner of Hugging Face's
// WordPieceTrainer (which is BPE training with "##" continuation prefixes).
//
// What the trainer produces
// -------------------------
// A list of tokens: the special tokens, then an alphabet of single characters, then "merged"
// pieces, each the concatenation of two earlier tokens. Nothing else is stored: no merge table,
// no scores. That is all a WordPiece tokenizer needs, because at encode time WordPiece does not
// replay merges; it splits each word greedily, taking the longest vocabulary token that matches
// at the start, then the longest "##" token that matches what follows, and so on (a word that
// cannot be covered becomes [UNK]). So any vocab.txt in this layout is loaded unchanged by this
// project's Tokenizer and by Hugging Face's BertWordPieceTokenizer, and both tokenize it the same
// way. Greedy longest-match does not always reproduce the segmentation the merges would give,
// but it is what BERT does, and the merges are only a good way to choose which pieces to keep.
//
// The algorithm
// -------------
//   1. Words. WordCounter runs BERT's basic tokenization (bert_normalize + bert_pre_tokenize:
//      lowercase, strip accents, split at whitespace and punctuation) over the text and counts
//      each distinct word. add_batch does this with OpenMP: each thread counts into its own
//      hash map, and the maps are merged at the end (the result is the same map whatever the
//      thread count or scheduling, since counting is a sum).
//   2. Alphabet. Every character (Unicode code point) of every word is counted, weighted by the
//      word's count. Only the `limit_alphabet` most frequent characters are kept; ties are broken
//      by the character's UTF-8 bytes (= code point order), so the cut is deterministic. Words
//      of every count take part here, also those rarer than min_frequency (as in HF): a rare
//      word's letters are still letters of the text.
//   3. Initial split. Each word becomes its characters, the first as-is and the rest with the
//      continuation prefix: "word" -> w ##o ##r ##d. Two kinds of words are left out of the
//      merge counting, because WordPiece can never encode them anyway (both become [UNK] whole):
//      words holding a character outside the alphabet, and words over 100 characters (the
//      encoder's max_input_chars_per_word). Words of one character have no pairs and are skipped.
//      The vocabulary so far: special tokens; every alphabet character c (in code point order);
//      then "##c" for every alphabet character that occurs inside a word (not first) in the
//      kept words, also in code point order. Punctuation and CJK ideographs are always words of
//      their own, so their "##" forms never occur and are not added.
//   4. Pair counts. For every adjacent pair of symbols (a, b) in every kept word, count(a, b) is
//      the sum of the counts of the words where it occurs (once per occurrence). An index
//      where[(a, b)] lists the words that contain the pair.
//   5. Merging. Repeatedly take the most frequent pair, ties broken by the smaller
//      (token a, token b) in byte order, and stop when its count is below min_frequency or the
//      vocabulary has vocab_size tokens. The pair (a, b) becomes the new token a + b with b's
//      "##" dropped ("##o" + "##r" -> "##or", "w" + "##or" -> "wor"). Should that string
//      already be a token (two different pairs spelling the same string; HF allows for it too,
//      though we have not seen it happen) the existing id is reused and the vocabulary does not
//      grow. Every occurrence of (a, b) in the words listed in where[(a, b)]
//      is replaced by the new token, left to right, and only the counts of the pairs around each
//      occurrence change: with x a b y becoming x ab y, the pairs (x, a), (a, b), (b, y) lose
//      the word's count and (x, ab), (ab, y) gain it (the word is added to their where lists).
//      This incremental update is what makes training fast: a step costs time proportional to
//      the occurrences it merges, not to the size of the corpus.
//   6. Finding the most frequent pair uses a max-heap of (count, pair) entries with lazy
//      deletion: counts change all the time and the heap is not updated in place. Instead a
//      pair whose count grew in a step gets a new entry with its new count, and entries whose
//      count went down are left where they are. So every pair always has an entry whose count is
//      at least its true count. When the top entry's count differs from the pair's true count,
//      it is stale: it is re-pushed with the true count (or dropped if that is zero) and the next
//      top is looked at. When they agree, no other pair can beat it (all their entries are at
//      most the top, and true counts are at most the entries), so it is the true best pair.
//
// The output order is: special tokens, alphabet (c forms, then ##c forms), merged tokens in the
// order they were made. Every step is deterministic: the words are processed in sorted order,
// and every choice (alphabet cut, best pair) has an explicit tie-break, so the same word counts
// give the same vocabulary on any machine and any thread count.
#include "data/vocab_trainer.h"

#include <omp.h>

#include <algorithm>
#include <queue>
#include <unordered_set>
#include <utility>

#include "common/util.h"
#include "data/tokenizer.h"

namespace wr {

namespace {

constexpr int kMaxWordChars = 100;   // longer words are [UNK] at encode time (HF's default too)
const std::string kPrefix = "##";    // continuation prefix

// The byte length of the UTF-8 character whose first byte is `b`. Words come out of
// bert_normalize as valid UTF-8; a stray continuation byte is taken as a character of its own.
size_t utf8_len(unsigned char b) {
    if (b >= 0xF0) return 4;
    if (b >= 0xE0) return 3;
    if (b >= 0xC0) return 2;
    return 1;
}

// Splits a word into its characters (views into `word`).
void split_chars(std::string_view word, std::vector<std::string_view>& chars) {
    chars.clear();
    for (size_t i = 0; i < word.size();) {
        const size_t n = std::min(utf8_len((unsigned char)word[i]), word.size() - i);
        chars.push_back(word.substr(i, n));
        i += n;
    }
}

// Merges map `from` into `into`, moving the nodes (no string copies).
void merge_counts(std::unordered_map<std::string, uint64_t>& into, std::unordered_map<std::string, uint64_t>& from) {
    if (into.empty()) {
        into.swap(from);
        return;
    }
    while (!from.empty()) {
        auto node = from.extract(from.begin());
        auto result = into.insert(std::move(node));
        if (!result.inserted) result.position->second += result.node.mapped();
    }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// WordCounter

void WordCounter::add_text(std::string_view text) {
    std::vector<std::string> words;
    bert_pre_tokenize(bert_normalize(text), words);
    for (std::string& w : words) counts_[std::move(w)]++;
    total_words_ += words.size();
}

void WordCounter::add_batch(const std::vector<std::string>& texts, int threads) {
    int nt = threads > 0 ? threads : omp_get_max_threads();
    nt = (int)std::max<size_t>(1, std::min<size_t>(nt, texts.size()));
    std::vector<std::unordered_map<std::string, uint64_t>> local(nt);  // one map per thread
    std::vector<uint64_t> local_total(nt, 0);

#pragma omp parallel num_threads(nt)
    {
        const int t = omp_get_thread_num();
        std::unordered_map<std::string, uint64_t>& counts = local[t];
        std::vector<std::string> words;  // reused across texts
#pragma omp for schedule(dynamic, 64)
        for (int64_t i = 0; i < (int64_t)texts.size(); i++) {
            bert_pre_tokenize(bert_normalize(texts[i]), words);
            for (std::string& w : words) counts[std::move(w)]++;
            local_total[t] += words.size();
        }
    }
    // Merge in thread order. Counting is a sum, so the merged map is the same whatever thread
    // counted which text.
    for (int t = 0; t < nt; t++) {
        merge_counts(counts_, local[t]);
        total_words_ += local_total[t];
    }
}

// ---------------------------------------------------------------------------------------------
// The trainer

namespace {

// A pair of token ids packed in one 64-bit key: left in the high half, right in the low half.
inline uint64_t pair_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }
inline int32_t pair_left(uint64_t key) { return (int32_t)(key >> 32); }
inline int32_t pair_right(uint64_t key) { return (int32_t)(key & 0xffffffffu); }

struct Word {
    std::vector<int32_t> symbols;  // token ids, merged in place as training goes on
    int64_t count;                 // how often the word occurs in the text
};

// A heap entry: a pair and its count when the entry was pushed (possibly stale, see step 6).
struct HeapEntry {
    int64_t count;
    uint64_t pair;
};

class Trainer {
  public:
    Trainer(const std::unordered_map<std::string, uint64_t>& word_counts, const VocabTrainOptions& options)
        : options_(options), heap_(HeapOrder{&tokens_}) {
        // Sorted words make every later step independent of the hash map's iteration order.
        sorted_words_.reserve(word_counts.size());
        for (const auto& kv : word_counts) sorted_words_.push_back(&kv);
        std::sort(sorted_words_.begin(), sorted_words_.end(),
                  [](const auto* a, const auto* b) { return a->first < b->first; });
    }

    std::vector<std::string> run() {
        for (const std::string& s : options_.special_tokens) add_token(s);
        build_alphabet_and_words();
        if (options_.vocab_size > 0 && (int64_t)tokens_.size() > options_.vocab_size)
            fail("<options>", "vocab_size",
                 "is " + std::to_string(options_.vocab_size) + ", but the special tokens and the alphabet alone are " +
                     std::to_string(tokens_.size()) + " tokens (raise vocab_size or lower limit_alphabet)");
        count_pairs();
        merge_until_done();
        return std::move(tokens_);
    }

  private:
    // Heap order: higher count first; on equal counts the pair whose (left, right) tokens come
    // first in byte order. std::priority_queue puts the "largest" on top, so "less" means worse.
    struct HeapOrder {
        const std::vector<std::string>* tokens;
        bool operator()(const HeapEntry& x, const HeapEntry& y) const {
            if (x.count != y.count) return x.count < y.count;
            const std::string& xl = (*tokens)[pair_left(x.pair)];
            const std::string& yl = (*tokens)[pair_left(y.pair)];
            if (xl != yl) return xl > yl;
            return (*tokens)[pair_right(x.pair)] > (*tokens)[pair_right(y.pair)];
        }
    };

    // Returns the id of `token`, adding it to the vocabulary if it is new.
    int32_t add_token(const std::string& token) {
        auto [it, inserted] = index_.emplace(token, (int32_t)tokens_.size());
        if (inserted) tokens_.push_back(token);
        return it->second;
    }

    // Steps 2 and 3: the alphabet, its tokens, and the words as symbol sequences.
    void build_alphabet_and_words() {
        std::vector<std::string_view> chars;

        // Character frequencies over all words, weighted by word count.
        std::unordered_map<std::string_view, uint64_t> char_count;
        for (const auto* w : sorted_words_) {
            split_chars(w->first, chars);
            for (std::string_view c : chars) char_count[c] += w->second;
        }
        std::vector<std::pair<std::string_view, uint64_t>> by_freq(char_count.begin(), char_count.end());
        std::sort(by_freq.begin(), by_freq.end(), [](const auto& a, const auto& b) {
            return a.second != b.second ? a.second > b.second : a.first < b.first;
        });
        if (options_.limit_alphabet > 0 && (int64_t)by_freq.size() > options_.limit_alphabet)
            by_freq.resize(options_.limit_alphabet);
        std::vector<std::string_view> alphabet;
        for (const auto& cf : by_freq) alphabet.push_back(cf.first);
        std::sort(alphabet.begin(), alphabet.end());  // UTF-8 byte order = code point order
        const std::unordered_set<std::string_view> in_alphabet(alphabet.begin(), alphabet.end());

        // Keep the words WordPiece could encode; note which characters occur as continuations.
        std::vector<const std::pair<const std::string, uint64_t>*> kept;
        std::unordered_set<std::string_view> continued;
        for (const auto* w : sorted_words_) {
            split_chars(w->first, chars);
            if (chars.size() > (size_t)kMaxWordChars) continue;
            bool ok = true;
            for (std::string_view c : chars) ok = ok && in_alphabet.count(c);
            if (!ok) continue;
            kept.push_back(w);
            for (size_t i = 1; i < chars.size(); i++) continued.insert(chars[i]);
        }

        // Alphabet tokens: all c forms, then the ##c forms that occur.
        for (std::string_view c : alphabet) add_token(std::string(c));
        for (std::string_view c : alphabet)
            if (continued.count(c)) add_token(kPrefix + std::string(c));

        // Words as symbol sequences (one-character words have no pairs and are left out).
        for (const auto* w : kept) {
            split_chars(w->first, chars);
            if (chars.size() < 2) continue;
            Word word{{}, (int64_t)w->second};
            word.symbols.reserve(chars.size());
            word.symbols.push_back(index_.at(std::string(chars[0])));
            for (size_t i = 1; i < chars.size(); i++) word.symbols.push_back(index_.at(kPrefix + std::string(chars[i])));
            words_.push_back(std::move(word));
        }
    }

    // Step 4: the initial pair counts, the pair -> words index and the heap.
    void count_pairs() {
        for (int32_t w = 0; w < (int32_t)words_.size(); w++) {
            const Word& word = words_[w];
            for (size_t i = 0; i + 1 < word.symbols.size(); i++) add_to_pair(pair_key(word.symbols[i], word.symbols[i + 1]), word.count, w);
        }
        // Push in sorted key order so the heap's layout does not depend on hash order (the pop
        // order would be the same anyway, since the heap order is total).
        std::vector<uint64_t> keys;
        keys.reserve(pair_count_.size());
        for (const auto& kv : pair_count_) keys.push_back(kv.first);
        std::sort(keys.begin(), keys.end());
        for (uint64_t key : keys) heap_.push({pair_count_[key], key});
        grown_.clear();  // filled by add_to_pair above; only merge steps use it
        grown_.shrink_to_fit();
    }

    // Adds `delta` (either sign) to a pair's count; a positive delta means the pair now occurs
    // in word `w`, which joins the pair's word list. A pair whose count drops to zero occurs
    // nowhere any more, so its count and word list are dropped.
    void add_to_pair(uint64_t key, int64_t delta, int32_t w) {
        int64_t& c = pair_count_[key];
        c += delta;
        if (delta > 0) {
            std::vector<int32_t>& list = where_[key];
            if (list.empty() || list.back() != w) list.push_back(w);
            grown_.push_back(key);
        } else if (c <= 0) {
            pair_count_.erase(key);
            where_.erase(key);
        }
    }

    // Replaces every occurrence of (a, b) in word `w` by `ab`, updating the neighbours' pairs.
    void merge_in_word(int32_t w, int32_t a, int32_t b, int32_t ab) {
        std::vector<int32_t>& s = words_[w].symbols;
        const int64_t c = words_[w].count;
        size_t out = 0;  // s[0, out) is the merged prefix; we read at i >= out
        for (size_t i = 0; i < s.size();) {
            if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
                add_to_pair(pair_key(a, b), -c, w);
                if (out > 0) {  // x a b -> x ab (x may itself be an `ab` just made)
                    add_to_pair(pair_key(s[out - 1], a), -c, w);
                    add_to_pair(pair_key(s[out - 1], ab), c, w);
                }
                if (i + 2 < s.size()) {  // a b y -> ab y
                    add_to_pair(pair_key(b, s[i + 2]), -c, w);
                    add_to_pair(pair_key(ab, s[i + 2]), c, w);
                }
                s[out++] = ab;
                i += 2;
            } else {
                s[out++] = s[i++];
            }
        }
        s.resize(out);
    }

    // Steps 5 and 6.
    void merge_until_done() {
        std::vector<int32_t> visited(words_.size(), -1);  // step at which a word was last merged
        for (int32_t step = 0; !heap_.empty() && (int64_t)tokens_.size() < options_.vocab_size;) {
            const HeapEntry top = heap_.top();
            heap_.pop();
            const auto it = pair_count_.find(top.pair);
            const int64_t count = it == pair_count_.end() ? 0 : it->second;
            if (count != top.count) {  // stale entry
                if (count > 0) heap_.push({count, top.pair});
                continue;
            }
            if (count < options_.min_frequency) break;  // the best pair is too rare: done

            const int32_t a = pair_left(top.pair), b = pair_right(top.pair);
            const std::string& right = tokens_[b];
            const bool continuation = right.compare(0, kPrefix.size(), kPrefix) == 0;
            const int32_t ab = add_token(tokens_[a] + (continuation ? right.substr(kPrefix.size()) : right));

            // Merge in every word that has (or had) the pair. The list is taken out of the index
            // first: it may hold words where the pair is gone (harmless, nothing to merge) and a
            // word twice (skipped by `visited`).
            std::vector<int32_t> list = std::move(where_[top.pair]);
            where_.erase(top.pair);
            grown_.clear();
            for (int32_t w : list) {
                if (visited[w] == step) continue;
                visited[w] = step;
                merge_in_word(w, a, b, ab);
            }
            // Pairs that grew get a fresh heap entry with their new count (step 6).
            std::sort(grown_.begin(), grown_.end());
            grown_.erase(std::unique(grown_.begin(), grown_.end()), grown_.end());
            for (uint64_t key : grown_) {
                const auto g = pair_count_.find(key);
                if (g != pair_count_.end() && g->second > 0) heap_.push({g->second, key});
            }
            step++;
        }
    }

    const VocabTrainOptions& options_;
    std::vector<const std::pair<const std::string, uint64_t>*> sorted_words_;
    std::vector<std::string> tokens_;                    // the vocabulary in id order
    std::unordered_map<std::string, int32_t> index_;     // token -> id
    std::vector<Word> words_;
    std::unordered_map<uint64_t, int64_t> pair_count_;   // pair -> weighted count (> 0)
    std::unordered_map<uint64_t, std::vector<int32_t>> where_;  // pair -> words that contain it
    std::vector<uint64_t> grown_;                        // pairs whose count grew in this step
    std::priority_queue<HeapEntry, std::vector<HeapEntry>, HeapOrder> heap_;
};

}  // namespace

std::vector<std::string> train_wordpiece_vocab(const std::unordered_map<std::string, uint64_t>& word_counts,
                                               const VocabTrainOptions& options) {
    return Trainer(word_counts, options).run();
}

void write_vocab(const std::string& path, const std::vector<std::string>& tokens) {
    // One token a line, so a token must be non-empty and hold no whitespace (basic tokenization
    // splits words at whitespace, so the trainer never makes one), and no token may appear twice
    // (a loader would map both lines to one id). Anything else is a bug: refuse to write it.
    std::string bytes;
    std::unordered_set<std::string_view> seen;
    for (size_t i = 0; i < tokens.size(); i++) {
        const std::string& t = tokens[i];
        const bool bad = t.empty() || t.find_first_of(" \t\n\r\v\f") != std::string::npos;
        if (bad) fail(path, "token " + std::to_string(i), "is empty or holds whitespace");
        if (!seen.insert(t).second) fail(path, "token " + std::to_string(i), "'" + t + "' appears twice");
        bytes += t;
        bytes += '\n';
    }
    write_file_atomic(path, bytes);
}

}  // namespace wr
