// data/logit_cache.h: the teacher-logit cache of `distill cache` ("Well-Read Students Learn
// Better": a fine-tuned teacher labels an unlabeled transfer set once, and students then train on
// the cached soft targets). Every byte is described in docs/formats.md ("Teacher-logit cache").
//
//   File      (cache.bin): a 72-byte header (magic WRLOGITS, version, kind, value type, K, N,
//             chunk size, the teacher's and the transfer set's fingerprints, the checksum of the
//             values, the checksum of the header), then N x K logits, example-major, fp32 or fp16.
//   Writer    streams the logits into PATH.partial chunk by chunk (each complete chunk flushed
//             and fsynced), so a killed `distill cache` resumes from its last complete chunk;
//             finish() seals the header and renames PATH.partial onto PATH.
//   Reader    reads and validates the whole file; check_logit_cache_matches() then checks that it
//             belongs to the teacher, transfer set and student at hand.
// Errors throw wr::Error naming the file and the field ("cache.bin: field 'num_labels': ...").
// Not here: running the teacher, the distillation loss.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "data/shards.h"

namespace wr {

constexpr char kLogitCacheMagic[8] = {'W', 'R', 'L', 'O', 'G', 'I', 'T', 'S'};
constexpr uint32_t kLogitCacheVersion = 1;
constexpr int kLogitCacheHeaderBytes = 72;  // values start here (8-byte aligned)

// What a row holds. Only Class is written and read by this build; MlmTopK is reserved for a later
// cache of the MLM head's top-k predictions per masked position and is refused by the reader.
enum class LogitCacheKind : uint32_t { Class = 1, MlmTopK = 2 };

// How each value is stored: IEEE float32, or IEEE binary16 (half the size; about 3 significant
// decimal digits, |x| <= 65504).
enum class LogitValueType : uint32_t { F32 = 0, F16 = 1 };

inline int logit_value_bytes(LogitValueType t) { return t == LogitValueType::F16 ? 2 : 4; }

// The header fields a writer is opened with and a reader returns (everything but the checksums).
struct LogitCacheHeader {
    LogitCacheKind kind = LogitCacheKind::Class;
    LogitValueType value_type = LogitValueType::F32;
    int32_t num_labels = 0;             // K: logits per example, >= 1
    int64_t example_count = 0;          // N: examples of the transfer set, >= 0
    int64_t chunk_size = 4096;          // examples per chunk (the resume granularity), >= 1
    uint64_t teacher_fingerprint = 0;   // the teacher checkpoint's params_checksum
    uint64_t transfer_fingerprint = 0;  // examples_fingerprint() of the transfer shard
};

// Fingerprint of a set of examples as the teacher sees them: wr::Checksum over the example count
// (int64), then for each example in order its token count (int64), its token ids (int32 each) and
// its second_start (int32). Labels, label names and the vocabulary fields are not included: the
// logits depend only on the tokens.
uint64_t examples_fingerprint(const ExampleSet& set);

// IEEE float <-> binary16, round to nearest even. Overflow gives +-inf, values below half the
// smallest subnormal (2^-25) give +-0, NaN stays NaN (quiet), subnormals both ways.
uint16_t float_to_half(float value);
float half_to_float(uint16_t bits);

// Writes a logit cache, resumably. The constructor creates PATH.partial with the header (its
// data_checksum 0) or, when PATH.partial exists with the same header fields, reopens it: the
// complete chunks it holds are kept, anything after them (a chunk torn by a kill) is truncated
// away, and examples_done() says where the caller continues. A PATH.partial with other fields is
// an error naming it and the first field that differs; it is never overwritten. Whether PATH
// itself exists is the caller's business.
//
// append() takes any number of rows (K floats each) and writes every chunk of chunk_size examples
// as soon as it is complete (fwrite, fflush, fsync). finish(), after all N examples, writes the
// last short chunk, fills in data_checksum, fsyncs and renames PATH.partial onto PATH.
// Destroying the writer without finish() (Ctrl-C, an exception) closes PATH.partial and leaves it
// in place as the resume point; rows not yet making up a complete chunk are not written.
class LogitCacheWriter {
  public:
    LogitCacheWriter(const std::string& path, const LogitCacheHeader& header);
    ~LogitCacheWriter();
    LogitCacheWriter(const LogitCacheWriter&) = delete;
    LogitCacheWriter& operator=(const LogitCacheWriter&) = delete;

    // rows x K logits, example-major. Every value must be finite (and, for fp16, within its range).
    void append(const float* logits, int64_t rows);
    void finish();

    // Examples accepted so far: those found in PATH.partial when it was opened, plus those
    // appended since. Right after construction this is the example to continue from.
    int64_t examples_done() const { return resumed_ + appended_; }
    int64_t examples_resumed() const { return resumed_; }  // found in PATH.partial (0 for a new file)
    const std::string& path() const { return path_; }
    const std::string& partial_path() const { return partial_path_; }
    const LogitCacheHeader& header() const { return header_; }

  private:
    void open_partial();
    void write_rows(const float* logits, int64_t rows);  // converts, writes, checksums, fsyncs

    std::string path_, partial_path_;
    LogitCacheHeader header_;
    FILE* file_ = nullptr;
    Checksum checksum_;            // of the value bytes written so far
    int64_t resumed_ = 0;          // examples found complete in PATH.partial
    int64_t appended_ = 0;         // examples given to append() since
    std::vector<float> pending_;   // rows of the current, incomplete chunk
    std::vector<unsigned char> staging_;
};

// A whole, validated cache in memory.
struct LogitCache {
    std::string path;
    LogitCacheHeader header;
    uint64_t data_checksum = 0;
    std::vector<float> logits;  // [example_count x num_labels], fp16 values converted to float

    const float* row(int64_t example) const { return logits.data() + example * header.num_labels; }
};

// Reads and validates everything: header length, magic, version, header checksum, kind, value
// type, K >= 1, N >= 0, chunk size >= 1, the exact file length (header + N x K x value bytes), the
// data checksum, finite values.
LogitCache read_logit_cache(const std::string& path);

// The cache must belong to this run: the teacher (skipped when teacher_fingerprint is 0), the
// transfer set at transfer_path (its examples_fingerprint and example count) and the student's
// number of labels. The first mismatch throws, naming the cache file, the field, both values and
// what to do ("run distill cache for this transfer set").
void check_logit_cache_matches(const LogitCache& cache, const std::string& transfer_path, uint64_t teacher_fingerprint,
                               uint64_t transfer_fingerprint, int64_t example_count, int num_labels);

}  // namespace wr
