// data/logit_cache.h: the teacher-logit caches of `distill cache` ("Well-Read Students Learn
// Better": a teacher labels a transfer set once, and students then train on the cached soft
// targets as often as wanted). Every byte is described in docs/formats.md ("Teacher-logit cache").
//
//   File      (cache.bin): a 72-byte header (magic WRLOGITS, version, kind, value type, K, N,
//             chunk size, the teacher's and the transfer set's fingerprints, the checksum of the
//             data, the checksum of the header), then fixed-size rows. Two kinds:
//             1 Class:   N x K class logits, example-major, fp32 or fp16 (`distill cache`).
//             2 MlmTopK: a 72-byte block saying how token shards were cut into sequences and
//                        masked (MlmTopKSetup), then one row per masked position: the sequence,
//                        the position, the input id the model saw, the original token, and the
//                        teacher's top K token ids and logits (`distill cache --mlm`).
//   Writer    streams the rows into PATH.partial chunk by chunk (each complete chunk flushed
//             and fsynced, then its checksum added to the chunk table after the rows), so a
//             killed `distill cache` resumes from its last complete chunk, every kept chunk
//             checked first; finish() seals the header, cuts the table off and renames
//             PATH.partial onto PATH.
//   Reader    reads and validates the whole file; check_logit_cache_matches() and
//             check_mlm_topk_cache_matches() then check that it belongs to the teacher, data and
//             student at hand.
// Errors throw wr::Error naming the file and the field ("cache.bin: field 'num_labels': ...").
// Not here: running the teacher, the distillation losses.
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

// What a row holds: Class, K logits per example of a transfer set; MlmTopK, the MLM head's top K
// predictions at one masked position of a token corpus.
enum class LogitCacheKind : uint32_t { Class = 1, MlmTopK = 2 };

// How each value is stored: IEEE float32, or IEEE binary16 (half the size; about 3 significant
// decimal digits, |x| <= 65504).
enum class LogitValueType : uint32_t { F32 = 0, F16 = 1 };

inline int logit_value_bytes(LogitValueType t) { return t == LogitValueType::F16 ? 2 : 4; }

// The header fields a writer is opened with and a reader returns (everything but the checksums).
// For kind MlmTopK the same fields count rows (masked positions) instead of examples.
struct LogitCacheHeader {
    LogitCacheKind kind = LogitCacheKind::Class;
    LogitValueType value_type = LogitValueType::F32;
    int32_t num_labels = 0;             // K: logits per example, >= 1 (MlmTopK: k, the top-k size, 1..V)
    int64_t example_count = 0;          // N: examples of the transfer set, >= 0 (MlmTopK: rows)
    int64_t chunk_size = 4096;          // examples (rows) per chunk (the resume granularity), >= 1
    uint64_t teacher_fingerprint = 0;   // the teacher checkpoint's params_checksum
    uint64_t transfer_fingerprint = 0;  // examples_fingerprint() of the transfer shard (MlmTopK: token_shards_fingerprint())
};

// Kind MlmTopK: the block at bytes 72 .. 143 of the file (rows start at 144). It says how the
// token shards were cut into sequences and which masks the rows use, so that a student replays
// every row exactly: sequence i is MlmBatcher::sequence(i) at seq_len T, and the row itself holds
// its position, the id the teacher saw there and the original token.
constexpr int kMlmTopKBlockBytes = 72;
constexpr int kMlmTopKDataStart = kLogitCacheHeaderBytes + kMlmTopKBlockBytes;  // 144
constexpr int kMlmTopKFixedRowBytes = 16;  // sequence, position, input id, target: int32 each
struct MlmTopKSetup {
    int32_t vocab_size = 0;        // V: every id is in 0 .. V-1
    int32_t seq_len = 128;         // T: sequences are [CLS] window [SEP] of at most T tokens
    bool whole_word = false;       // the masking options the masks were drawn with (recorded so
    uint64_t mask_seed = 0;        // that a resumed or repeated cache uses the same masks: they are
    double mask_fraction = 0.15;   // MlmBatcher's fixed validation masks with validation_seed =
    double mask_token_fraction = 0.8;    // mask_seed)
    double random_token_fraction = 0.1;
    int64_t sequence_count = 0;    // S: sequences the shards make at T; rows name 0 .. S-1
    uint64_t vocab_fingerprint = 0;
};
// Bytes per stored top-k id: 2 when V <= 65536, else 4 (as token shards store tokens).
inline int mlm_topk_id_width(int vocab_size) { return vocab_size <= 65536 ? 2 : 4; }
// Bytes per row: 16 + k x (id width + value width); 144 for k = 32, V <= 65536, fp16.
int64_t mlm_topk_row_bytes(const LogitCacheHeader& header, const MlmTopKSetup& setup);

// Rows of an MLM top-k cache as the writer takes them (structure of arrays, n rows, k per row).
// Rows come in ascending (sequence, position) order.
struct MlmTopKRows {
    std::vector<int32_t> sequence;  // [n] global sequence index, 0 .. S-1
    std::vector<int32_t> position;  // [n] position in the sequence, 1 .. T-2 ([CLS] and the final [SEP] are never masked)
    std::vector<int32_t> input_id;  // [n] the id the teacher saw there: [MASK], a random token, or the original
    std::vector<int32_t> target;    // [n] the original token
    std::vector<int32_t> ids;       // [n, k] the teacher's top-k token ids, by descending logit (ties: lower id first)
    std::vector<float> values;      // [n, k] their logits

    int64_t size() const { return (int64_t)sequence.size(); }
    void clear();
};

// Fingerprint of token shards' text (kind MlmTopK's transfer_fingerprint): wr::Checksum over the
// shard count (int64), then for each shard in order its token count and document count (int64),
// its document offsets (int64 each, D + 1 of them) and its tokens (int32 each). Paths, the
// vocabulary fields and T are not included (the vocabulary and T are in the MlmTopK block).
uint64_t token_shards_fingerprint(const std::vector<TokenShard>& shards);

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
// complete chunks it holds are kept once each matches its checksum in the chunk table (a chunk
// that does not is an error naming PATH.partial and the chunk), anything after them (a chunk torn
// by a kill) is cut away, and examples_done() says where the caller continues. A PATH.partial with
// other fields is an error naming it and the first field that differs; it is never overwritten.
// Whether PATH itself exists is the caller's business.
//
// append() takes any number of rows (K floats each) and writes every chunk of chunk_size examples
// as soon as it is complete, at its place in the values, then its checksum in the chunk table
// after the values (each fwrite, fflush, fsync). finish(), after all N examples, writes the last
// short chunk, fills in data_checksum, cuts off the chunk table, fsyncs and renames PATH.partial
// onto PATH.
// Destroying the writer without finish() (Ctrl-C, an exception) closes PATH.partial and leaves it
// in place as the resume point; rows not yet making up a complete chunk are not written.
//
// Kind MlmTopK: the writer is opened with the setup block too (a PATH.partial must have the same
// block, else the error names the first differing field), and append_topk() takes the rows.
class LogitCacheWriter {
  public:
    LogitCacheWriter(const std::string& path, const LogitCacheHeader& header);                              // kind Class
    LogitCacheWriter(const std::string& path, const LogitCacheHeader& header, const MlmTopKSetup& setup);  // kind MlmTopK
    ~LogitCacheWriter();
    LogitCacheWriter(const LogitCacheWriter&) = delete;
    LogitCacheWriter& operator=(const LogitCacheWriter&) = delete;

    // rows x K logits, example-major. Every value must be finite (and, for fp16, within its range).
    void append(const float* logits, int64_t rows);
    // Rows [begin, end) of `rows` (kind MlmTopK). Ids, positions and sequences must be in range,
    // values finite (within fp16's range for fp16) and rows in ascending (sequence, position).
    void append_topk(const MlmTopKRows& rows, int64_t begin, int64_t end);
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
    void append_encoded(const unsigned char* bytes, int64_t rows);  // rows already in file form
    void write_rows(const unsigned char* bytes, int64_t rows);      // one chunk and its table entry: writes, checksums, fsyncs

    std::string path_, partial_path_;
    LogitCacheHeader header_;
    MlmTopKSetup setup_;           // kind MlmTopK only
    std::string prologue_;         // the header (data_checksum 0) and, for MlmTopK, the block: what a new file starts with
    int64_t row_bytes_ = 0;
    int64_t data_end_ = 0;         // where the values end: the finished file's length, and where PATH.partial's chunk table starts
    int64_t chunks_written_ = 0;   // complete chunks in PATH.partial, each with its entry in the chunk table
    FILE* file_ = nullptr;
    Checksum checksum_;            // of the bytes from 72 on written so far (block and rows)
    int64_t resumed_ = 0;          // examples found complete in PATH.partial
    int64_t appended_ = 0;         // examples given to append() since
    std::vector<unsigned char> pending_;  // rows of the current, incomplete chunk, encoded
    std::vector<unsigned char> staging_;
    int64_t last_sequence_ = -1, last_position_ = -1;  // MlmTopK: the last row appended, for the order check
};

// A whole, validated cache in memory.
struct LogitCache {
    std::string path;
    LogitCacheHeader header;
    uint64_t data_checksum = 0;
    std::vector<float> logits;  // [example_count x num_labels], fp16 values converted to float

    const float* row(int64_t example) const { return logits.data() + example * header.num_labels; }
};

// Reads and validates everything: header length, magic, version, header checksum, kind (1: an
// MLM top-k cache is an error saying so), value type, K >= 1, N >= 0, chunk size >= 1, the exact
// file length (header + N x K x value bytes), the data checksum, finite values.
LogitCache read_logit_cache(const std::string& path);

// The cache must belong to this run: the teacher (skipped when teacher_fingerprint is 0), the
// transfer set at transfer_path (its examples_fingerprint and example count) and the student's
// number of labels. The first mismatch throws, naming the cache file, the field, both values and
// what to do ("run distill cache for this transfer set").
void check_logit_cache_matches(const LogitCache& cache, const std::string& transfer_path, uint64_t teacher_fingerprint,
                               uint64_t transfer_fingerprint, int64_t example_count, int num_labels);

// A whole, validated MLM top-k cache in memory: the file's bytes, decoded row by row on demand
// (at k = 32 a decoded row would take 272 bytes, the stored one 144 to 272).
struct MlmTopKCache {
    std::string path;
    LogitCacheHeader header;  // num_labels: k; example_count: rows
    MlmTopKSetup setup;
    uint64_t data_checksum = 0;
    // The sequences that have rows, ascending: group g is sequence group_sequence[g], its rows are
    // group_begin[g] .. group_begin[g + 1] - 1 (group_begin has one entry more).
    std::vector<int64_t> group_sequence, group_begin;

    int k() const { return header.num_labels; }
    int64_t rows() const { return header.example_count; }
    int64_t groups() const { return (int64_t)group_sequence.size(); }
    int32_t sequence(int64_t row) const { return field(row, 0); }
    int32_t position(int64_t row) const { return field(row, 1); }
    int32_t input_id(int64_t row) const { return field(row, 2); }
    int32_t target(int64_t row) const { return field(row, 3); }
    // The row's k ids and values into ids[k], values[k].
    void topk(int64_t row, int32_t* ids, float* values) const;

    std::string bytes;  // the whole file
    int64_t row_bytes = 0;

  private:
    int32_t field(int64_t row, int i) const;
};

// Reads and validates everything: header length, magic, version, header checksum, kind (2), value
// type, k >= 1, rows >= 0, chunk size >= 1; the block's length, checksum and fields (V >= 1,
// k <= V, id width, T >= 3, the masking options, S >= 0); the exact file length (144 + rows x row
// bytes), the data checksum; then every row: sequence in 0 .. S-1, position in 1 .. T-2, ids in
// 0 .. V-1, rows in strictly ascending (sequence, position), values finite and non-increasing.
MlmTopKCache read_mlm_topk_cache(const std::string& path);

// The MLM cache must belong to this run: the teacher (skipped when teacher_fingerprint is 0), the
// token shards (their token_shards_fingerprint, described as `shards` in the message), the
// vocabulary, and the sequence count the shards make at the cache's T. The first mismatch throws,
// naming the cache file, the field, both values and what to do.
void check_mlm_topk_cache_matches(const MlmTopKCache& cache, const std::string& shards, uint64_t teacher_fingerprint,
                                  uint64_t shards_fingerprint, uint64_t vocab_fingerprint, int64_t sequence_count);

// Whether the finished cache at PATH, read and validated whole, holds what a writer opened with
// HEADER (and SETUP, for kind MlmTopK) would write: the same kind, value type, K, N, teacher and
// transfer fingerprints and, for MlmTopK, every field of the block; the chunk size may differ.
// `distill cache` uses it to leave a cache that is up to date alone. A file that is not a valid
// cache of HEADER's kind throws, as its reader does.
bool logit_cache_up_to_date(const std::string& path, const LogitCacheHeader& header, const MlmTopKSetup* setup = nullptr);

// The fields of a header (file offset 0) and of an MLM block (offset 72) as they stand, unchecked
// (the readers check them): for tools that look inside a file, such as the fuzz targets.
LogitCacheHeader decode_logit_cache_header(const unsigned char* header);
MlmTopKSetup decode_mlm_topk_setup(const unsigned char* block);

}  // namespace wr
