// data/tokenizer.h: BERT WordPiece tokenizer, identical in output to Hugging Face's uncased
// BertWordPieceTokenizer / BertTokenizerFast (tokenizers' BertNormalizer + BertPreTokenizer +
// WordPiece). Unicode properties and normalization come from utf8proc.
//
// Pipeline for one text:
//   1. normalize: drop U+0000, U+FFFD and control characters (Unicode C* except \t \n \r), map
//      whitespace to ' ', surround CJK ideographs with spaces, NFD + drop nonspacing marks (Mn)
//      ("strip accents"), lowercase.
//   2. pre-tokenize: split at whitespace, then isolate every punctuation character (ASCII
//      punctuation and Unicode P*) as a word of its own.
//   3. WordPiece: each word greedily split into the longest vocabulary pieces from the left,
//      continuations prefixed with "##"; a word over 100 characters, or one that cannot be
//      covered, becomes [UNK].
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace wr {

// Steps 1 and 2 on their own (used by the vocabulary trainer too). Words are UTF-8 strings.
std::string bert_normalize(std::string_view text);
void bert_pre_tokenize(std::string_view normalized, std::vector<std::string>& words);
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
    explicit Tokenizer(std::vector<std::string> tokens, std::string source = "<memory>");
    static Tokenizer load(const std::string& vocab_path);  // vocab.txt: one token a line; errors name the file

    int vocab_size() const { return (int)tokens_.size(); }
    uint64_t fingerprint() const { return fingerprint_; }  // vocab_fingerprint(tokens)
    const std::vector<std::string>& tokens() const { return tokens_; }
    const std::string& token(int id) const { return tokens_.at(id); }
    int id_of(std::string_view token) const;  // -1 when absent
    const std::string& source() const { return source_; }  // path it was loaded from

    int pad_id = -1, unk_id = -1, cls_id = -1, sep_id = -1, mask_id = -1;

    // Word pieces of a text, no special tokens, no truncation. Appends to `out`.
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
    void wordpiece(std::string_view word, std::vector<int32_t>& out) const;
    std::vector<std::string> tokens_;
    std::unordered_map<std::string, int32_t> index_;
    uint64_t fingerprint_ = 0;
    std::string source_;
};

}  // namespace wr
