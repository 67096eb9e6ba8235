// data/vocab_trainer.h: trains a WordPiece vocabulary from text (the algorithm is described at
// the top of vocab_trainer.cpp). The output is a vocab.txt that both this project's Tokenizer and
// Hugging Face's BertWordPieceTokenizer load unchanged and tokenize identically.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace wr {

struct VocabTrainOptions {
    int vocab_size = 30522;       // total size including special tokens
    int min_frequency = 2;        // a merge must occur at least this often
    int limit_alphabet = 1000;    // keep at most this many initial characters (the most frequent)
    std::vector<std::string> special_tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    int threads = 0;              // 0 = all
};

// Counts words (after BERT normalization and pre-tokenization) over many texts; thread-safe
// merging of per-thread counts is done by add_batch.
class WordCounter {
  public:
    void add_text(std::string_view text);                     // single-threaded
    void add_batch(const std::vector<std::string>& texts, int threads = 0);  // OpenMP
    const std::unordered_map<std::string, uint64_t>& counts() const { return counts_; }
    uint64_t total_words() const { return total_words_; }

  private:
    std::unordered_map<std::string, uint64_t> counts_;
    uint64_t total_words_ = 0;
};

// The vocabulary in id order: special tokens first, then the alphabet, then merged pieces.
std::vector<std::string> train_wordpiece_vocab(const std::unordered_map<std::string, uint64_t>& word_counts,
                                               const VocabTrainOptions& options);

// Writes one token a line (atomically).
void write_vocab(const std::string& path, const std::vector<std::string>& tokens);

}  // namespace wr
