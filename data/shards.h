// data/shards.h: the project's two binary data formats (every byte is described in
// docs/formats.md).
//
//   Token shard   (train_000.bin ...): the tokens of whole documents for MLM pretraining, no
//                  special tokens, uint16 when the vocabulary fits else uint32, with the document
//                  boundaries as offsets.
//   Example shard (sst2_train.bin ...): sequences ready for the classifier, [CLS] A [SEP] (B [SEP]),
//                  each with where B starts and its label (a class, a regression value, or none
//                  for an unlabeled transfer set), plus the label names.
//
// Readers map the file and validate everything before use: magic, version, every size against the
// file length, the checksum of the payload, token ids against the vocabulary size, and (when a
// vocabulary is given) the vocabulary fingerprint. A problem throws wr::Error naming the file and
// the field. Writers write PATH.tmp.PID and rename it onto PATH when complete.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "common/binary_io.h"  // kHeaderBytes, Checksum, file_checksum

namespace wr {

class Tokenizer;

// ---------------------------------------------------------------------------------------------
// Token shards

constexpr char kTokenShardMagic[8] = {'W', 'R', 'T', 'O', 'K', 'E', 'N', 'S'};
constexpr uint32_t kTokenShardVersion = 1;
// Token width for a vocabulary: 2 bytes when every id fits in uint16, else 4.
inline uint32_t token_width_for(int vocab_size) { return vocab_size <= 65536 ? 2 : 4; }

// Streams documents into one token shard. Tokens go straight to the temporary file; the document
// offsets follow them and the header is filled in by finish(), which renames the file into place.
// Destroying an unfinished writer deletes the temporary file.
class TokenShardWriter {
  public:
    TokenShardWriter(const std::string& path, int vocab_size, uint64_t vocab_fingerprint);
    ~TokenShardWriter();
    TokenShardWriter(const TokenShardWriter&) = delete;
    TokenShardWriter& operator=(const TokenShardWriter&) = delete;

    void add_document(const int32_t* ids, int64_t n);  // empty documents are skipped
    void finish();
    int64_t token_count() const { return token_count_; }
    int64_t doc_count() const { return (int64_t)doc_offsets_.size() - 1; }

  private:
    std::string path_, tmp_path_;
    FILE* file_ = nullptr;
    uint32_t width_;
    int vocab_size_;
    uint64_t fingerprint_;
    Checksum checksum_;
    int64_t token_count_ = 0;
    std::vector<uint64_t> doc_offsets_{0};
    std::vector<char> staging_;
};

// A validated, memory-mapped token shard.
class TokenShard {
  public:
    // vocab: when non-null, the shard's vocabulary size and fingerprint must equal the vocabulary's.
    explicit TokenShard(const std::string& path, const Tokenizer* vocab = nullptr);
    ~TokenShard();
    TokenShard(TokenShard&& other) noexcept;
    TokenShard(const TokenShard&) = delete;
    TokenShard& operator=(const TokenShard&) = delete;

    const std::string& path() const { return path_; }
    int vocab_size() const { return vocab_size_; }
    uint64_t vocab_fingerprint() const { return fingerprint_; }
    uint32_t token_width() const { return width_; }
    int64_t token_count() const { return token_count_; }
    int64_t doc_count() const { return doc_count_; }
    int64_t doc_begin(int64_t d) const { return (int64_t)offsets_[d]; }  // token index range of document d
    int64_t doc_end(int64_t d) const { return (int64_t)offsets_[d + 1]; }
    int32_t token(int64_t i) const {
        return width_ == 2 ? ((const uint16_t*)tokens_)[i] : (int32_t)((const uint32_t*)tokens_)[i];
    }
    void read(int64_t start, int64_t n, int32_t* out) const;  // tokens [start, start + n)

  private:
    std::string path_;
    void* map_ = nullptr;
    size_t map_bytes_ = 0;
    uint32_t width_ = 0;
    int vocab_size_ = 0;
    uint64_t fingerprint_ = 0;
    int64_t token_count_ = 0, doc_count_ = 0;
    const void* tokens_ = nullptr;
    const uint64_t* offsets_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// Example shards

constexpr char kExampleShardMagic[8] = {'W', 'R', 'E', 'X', 'A', 'M', 'P', 'L'};
constexpr uint32_t kExampleShardVersion = 1;

enum class LabelKind : uint32_t { None = 0, Class = 1, Regression = 2 };

constexpr int32_t kMaxExampleLength = 1 << 20;  // sanity bound on max_len; BERT's is 512

struct Example {
    std::vector<int32_t> ids;   // [CLS] A [SEP] or [CLS] A [SEP] B [SEP]
    int32_t second_start = 0;   // index of B's first token, 0 for a single segment
    int32_t label = -1;         // class index (LabelKind::Class), -1 when unlabeled
    float value = 0.0f;         // regression target (LabelKind::Regression)
};

struct ExampleSet {
    LabelKind label_kind = LabelKind::None;
    std::vector<std::string> label_names;  // class names in id order; one target name for regression
    int vocab_size = 0;
    uint64_t vocab_fingerprint = 0;
    int32_t max_len = 0;                   // truncation length used when the examples were made
    std::vector<Example> examples;

    int num_labels() const { return (int)label_names.size(); }
    int64_t token_count() const;
};

void write_example_shard(const std::string& path, const ExampleSet& set);  // atomic

// Reads and validates a whole example shard (they are small: kept in memory, not mapped).
ExampleSet read_example_shard(const std::string& path, const Tokenizer* vocab = nullptr);

// The header and label names of a fully validated shard, without the examples (--labels-from).
ExampleSet read_example_shard_header(const std::string& path);

}  // namespace wr
