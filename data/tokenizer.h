// data/tokenizer.h: BERT WordPiece tokenizer, identical in output to Hugging Face's uncased
// BertWordPieceTokenizer / BertTokenizerFast (tokenizers' BertNormalizer + BertPreTokenizer +
// WordPiece). Unicode properties and normalization come from utf8proc.
//
// Pipeline for one text:
//   1. normalize: drop U+0000, U+FFFD and control characters (Unicode Cc Cf Co Cs except
//      \t \n \r), map whitespace to ' ', surround CJK ideographs with spaces, NFD + drop
//      nonspacing marks (Mn) ("strip accents"), lowercase.
//   2. pre-tokenize: split at whitespace, then isolate every punctuation character (ASCII
//      punctuation and Unicode P*) as a word of its own.
//   3. WordPiece: each word greedily split into the longest vocabulary pieces from the left,
//      continuations prefixed with "##"; a word over 100 characters, or one that cannot be
//      covered, becomes [UNK].
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wr {

// Steps 1 and 2 on their own (used by the vocabulary trainer too). Words are UTF-8 strings.
std::string bert_normalize(std::string_view text);
void bert_pre_tokenize(std::string_view normalized, std::vector<std::string>& words);  // clears `words` first
std::vector<std::string> bert_basic_tokenize(std::string_view text);  // normalize + pre-tokenize

// One encoded sequence, as the model consumes it: [CLS] A [SEP] (B [SEP]).
struct Encoding {
    std::vector<int32_t> ids;
    int32_t second_start = 0;  // index of B's first token; 0 when there is no B
    // token type of position i: 0 before second_start (or everywhere if second_start == 0), else 1
};

class Tokenizer {
  public:
    Tokenizer() = default;
    // Both throw wr::Error naming the file (`source`) and the problem: unreadable file, empty
    // vocabulary, empty, duplicate or non-UTF-8 token (with its line), or a missing [PAD] [UNK]
    // [CLS] [SEP] [MASK] (looked up by name, wherever they are).
    explicit Tokenizer(std::vector<std::string> tokens, std::string source = "<memory>");
    static Tokenizer load(const std::string& vocab_path);  // vocab.txt: one token a line

    int vocab_size() const { return (int)tokens_.size(); }
    uint64_t fingerprint() const { return fingerprint_; }  // vocab_fingerprint(tokens)
    const std::vector<std::string>& tokens() const { return tokens_; }
    const std::string& token(int id) const { return tokens_.at(id); }
    int id_of(std::string_view token) const;  // -1 when absent
    const std::string& source() const { return source_; }  // path it was loaded from

    int pad_id = -1, unk_id = -1, cls_id = -1, sep_id = -1, mask_id = -1;

    // Word pieces of a text, no special tokens added, no truncation. Appends to `out`. As in HF,
    // the special tokens' own spellings ("[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]", case
    // sensitive) are recognised in the raw text and give their ids. Invalid UTF-8 bytes are read
    // as U+FFFD, which normalization drops (HF only takes valid Unicode strings).
    void encode_words(std::string_view text, std::vector<int32_t>& out) const;
    std::vector<int32_t> encode_words(std::string_view text) const;

    // [CLS] a [SEP], truncated so the whole is at most max_len tokens (max_len >= 2).
    Encoding encode(std::string_view a, int max_len = 512) const;
    // [CLS] a [SEP] b [SEP], longest-first truncation (as HF) to at most max_len tokens (>= 3).
    Encoding encode_pair(std::string_view a, std::string_view b, int max_len = 512) const;

    // Ids back to text as HF's decode(skip_special_tokens=True): tokens joined by spaces, "##"
    // continuations glued to the previous piece, HF's clean-up of spaces before punctuation.
    std::string decode(const std::vector<int32_t>& ids, bool skip_special = true) const;

    // encode_words over many texts with `threads` OpenMP threads (0 = all); result[i] is texts[i].
    std::vector<std::vector<int32_t>> encode_batch(const std::vector<std::string>& texts, int threads = 0) const;

  private:
    // Open-addressing hash table from piece text to id, looked up by pointer and length so that
    // WordPiece never builds a string. Defined in tokenizer.cpp.
    class PieceTable {
      public:
        void build(const std::vector<std::pair<std::string_view, int32_t>>& entries);  // keys unique
        int32_t find(const char* s, size_t n) const;  // -1 when absent
        size_t max_len() const { return max_len_; }   // longest key in bytes

      private:
        struct Slot {
            uint64_t head = 0;  // the key's first 8 bytes, zero-padded (all of most keys)
            int32_t id = -1;    // -1: empty slot
            uint32_t len = 0;   // key length in bytes
        };
        std::vector<Slot> slots_;      // power-of-two size, at most 3/4 full
        std::vector<uint32_t> tails_;  // per slot: where the key's bytes after the first 8 start in bytes_
        std::string bytes_;            // those bytes of all keys, back to back
        size_t max_len_ = 0;
    };

    void encode_segment(std::string_view text, std::vector<int32_t>& out) const;  // no special tokens in text
    void wordpiece(std::string_view word, std::vector<int32_t>& out) const;
    bool is_special(int32_t id) const;
    std::vector<std::string> tokens_;
    PieceTable starts_;  // pieces that can start a word (tokens without the "##" prefix)
    PieceTable conts_;   // pieces that continue a word: token "##xy" stored as "xy"
    uint64_t fingerprint_ = 0;
    std::string source_;
};

}  // namespace wr
