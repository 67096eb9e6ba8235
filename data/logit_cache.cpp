// data/logit_cache.cpp: the teacher-logit caches (class logits, MLM top-k): the resumable writer,
// the validating readers, the transfer-set and token-shard fingerprints and the float <-> binary16
// conversion. The byte layout is in docs/formats.md ("Teacher-logit cache"); what each function
// checks is in logit_cache.h.
#include "data/logit_cache.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "common/binary_io.h"
#include "common/util.h"

namespace wr {

// ---------------------------------------------------------------------------------------------
// binary16: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits. Normal numbers are
// 1.m x 2^(e-15) for e in [1, 30]; e = 0 holds the subnormals m x 2^-24; e = 31 is inf (m = 0)
// or NaN.

uint16_t float_to_half(float value) {
    uint32_t x;
    std::memcpy(&x, &value, 4);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    const uint32_t exponent = (x >> 23) & 0xff;  // float bias 127
    const uint32_t mantissa = x & 0x7fffff;      // 23 bits
    if (exponent == 0xff)                         // inf, or NaN kept quiet with its top payload bits
        return sign | (mantissa ? (uint16_t)(0x7e00 | (mantissa >> 13)) : (uint16_t)0x7c00);
    const int e = (int)exponent - 127 + 15;  // the exponent field the half would have
    if (e >= 31) return sign | 0x7c00;       // too large even before rounding: inf
    if (e <= 0) {
        // Subnormal half (or zero): m = (1.mantissa) x 2^(exponent-127) / 2^-24 = full >> (14 - e),
        // with full = 2^23 + mantissa. From a shift of 25 on, full < 2^24 is below half a unit.
        const int shift = 14 - e;
        if (shift >= 25) return sign;
        const uint32_t full = mantissa | 0x800000;
        uint32_t m = full >> shift;
        const uint32_t rest = full & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        if (rest > halfway || (rest == halfway && (m & 1))) m++;  // m = 1024 is the smallest normal: right bits
        return sign | (uint16_t)m;
    }
    uint32_t h = ((uint32_t)e << 10) | (mantissa >> 13);
    const uint32_t rest = mantissa & 0x1fff;  // the 13 dropped bits; halfway is 0x1000
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;  // a carry moves into the exponent (up to inf): right
    return sign | (uint16_t)h;
}

float half_to_float(uint16_t bits) {
    const uint32_t sign = (uint32_t)(bits & 0x8000) << 16;
    const uint32_t exponent = (bits >> 10) & 0x1f, mantissa = bits & 0x3ff;
    uint32_t x;
    if (exponent == 0x1f) {
        x = sign | 0x7f800000 | (mantissa << 13);
    } else if (exponent == 0) {  // zero or subnormal: m x 2^-24, exact in float
        const float magnitude = std::ldexp((float)mantissa, -24);
        return sign ? -magnitude : magnitude;
    } else {
        x = sign | ((exponent - 15 + 127) << 23) | (mantissa << 13);
    }
    float f;
    std::memcpy(&f, &x, 4);
    return f;
}

// ---------------------------------------------------------------------------------------------
// Fingerprint of the transfer set

uint64_t examples_fingerprint(const ExampleSet& set) {
    Checksum c;
    const int64_t count = (int64_t)set.examples.size();
    c.update(&count, 8);
    for (const Example& e : set.examples) {
        const int64_t n = (int64_t)e.ids.size();
        c.update(&n, 8);
        c.update(e.ids.data(), e.ids.size() * sizeof(int32_t));
        c.update(&e.second_start, 4);
    }
    return c.digest();
}

// ---------------------------------------------------------------------------------------------
// The header (docs/formats.md):
//    0  magic[8]  "WRLOGITS"          32  chunk_size i64
//    8  version u32 = 1                40  teacher_fingerprint u64
//   12  kind u32 (1 class, 2 MLM)      48  transfer_fingerprint u64
//   16  value_type u32 (0 f32, 1 f16)  56  data_checksum u64: Checksum of bytes 72..end
//   20  num_labels i32                 64  header_checksum u64: Checksum of bytes 0..63
//   24  example_count i64              72  values, example-major (kind 2: the MLM block, rows at 144)
// The MLM block (kind 2):
//   72  vocab_size i32                 96  mask_seed u64
//   76  id_width u32 (2 or 4)         104  mask_fraction f64
//   80  seq_len i32                   112  mask_token_fraction f64
//   84  whole_word u32 (0 or 1)       120  random_token_fraction f64
//   88  sequence_count i64            128  vocab_fingerprint u64
//                                     136  block_checksum u64: Checksum of bytes 72..135
// A kind-2 row: sequence, position, input_id, target (int32 each), k ids (uint16 or int32), k values.
// PATH.partial only: after the last row's place, the chunk table, one u64 per complete chunk (the
// Checksum of its bytes), cut off by finish().

namespace {

constexpr size_t kHeaderChecksumAt = 64;
constexpr size_t kBlockChecksumAt = 64;  // within the block (file offset 136)

std::string hex(uint64_t v) { return "0x" + hex64(v); }

const char* value_type_name(LogitValueType t) { return t == LogitValueType::F16 ? "fp16" : "fp32"; }

void encode_header(unsigned char* b, const LogitCacheHeader& h, uint64_t data_checksum) {
    std::memset(b, 0, kLogitCacheHeaderBytes);
    std::memcpy(b, kLogitCacheMagic, 8);
    put<uint32_t>(b, 8, kLogitCacheVersion);
    put<uint32_t>(b, 12, (uint32_t)h.kind);
    put<uint32_t>(b, 16, (uint32_t)h.value_type);
    put<int32_t>(b, 20, h.num_labels);
    put<int64_t>(b, 24, h.example_count);
    put<int64_t>(b, 32, h.chunk_size);
    put<uint64_t>(b, 40, h.teacher_fingerprint);
    put<uint64_t>(b, 48, h.transfer_fingerprint);
    put<uint64_t>(b, 56, data_checksum);
    Checksum c;
    c.update(b, kHeaderChecksumAt);
    put<uint64_t>(b, kHeaderChecksumAt, c.digest());
}


// The MLM block: `b` points at file offset 72.
void encode_block(unsigned char* b, const MlmTopKSetup& s) {
    std::memset(b, 0, kMlmTopKBlockBytes);
    put<int32_t>(b, 0, s.vocab_size);
    put<uint32_t>(b, 4, (uint32_t)mlm_topk_id_width(s.vocab_size));
    put<int32_t>(b, 8, s.seq_len);
    put<uint32_t>(b, 12, s.whole_word ? 1u : 0u);
    put<int64_t>(b, 16, s.sequence_count);
    put<uint64_t>(b, 24, s.mask_seed);
    put<double>(b, 32, s.mask_fraction);
    put<double>(b, 40, s.mask_token_fraction);
    put<double>(b, 48, s.random_token_fraction);
    put<uint64_t>(b, 56, s.vocab_fingerprint);
    Checksum c;
    c.update(b, kBlockChecksumAt);
    put<uint64_t>(b, kBlockChecksumAt, c.digest());
}


// Length, magic, version, then the header checksum (before the fields, so a flipped bit in a
// field is reported as corruption rather than as a strange value). `b` holds at least the header.
void check_header_bytes(const std::string& path, const unsigned char* b, size_t file_bytes) {
    if (file_bytes < (size_t)kLogitCacheHeaderBytes)
        fail(path, "header", "file is " + std::to_string(file_bytes) + " bytes, shorter than the " +
                                 std::to_string(kLogitCacheHeaderBytes) + "-byte header (truncated)");
    check_common_header(path, b, file_bytes, kLogitCacheMagic, kLogitCacheVersion, "teacher-logit cache");
    Checksum c;
    c.update(b, kHeaderChecksumAt);
    if (c.digest() != get<uint64_t>(b, kHeaderChecksumAt))
        fail(path, "header_checksum", "does not match the header: the file is corrupted");
}

// The fields' ranges, for a header read from a file and for the one a writer is given. `want` is
// the kind the caller reads or writes.
void check_fields(const std::string& path, const LogitCacheHeader& h, LogitCacheKind want) {
    const uint32_t kind = (uint32_t)h.kind;
    if (h.kind != LogitCacheKind::Class && h.kind != LogitCacheKind::MlmTopK)
        fail(path, "kind", "is " + std::to_string(kind) + ", unknown: this build reads and writes kind 1 (class logits) and 2 (MLM top-k)");
    if (h.kind != want)
        fail(path, "kind", h.kind == LogitCacheKind::MlmTopK
                               ? "is 2, an MLM top-k cache (distill cache --mlm), not class logits: use it with distill train --mlm"
                               : "is 1, a class-logit cache (distill cache), not an MLM top-k cache: use it with distill train without --mlm");
    const uint32_t type = (uint32_t)h.value_type;
    if (h.value_type != LogitValueType::F32 && h.value_type != LogitValueType::F16)
        fail(path, "value_type", "is " + std::to_string(type) + ", must be 0 (fp32) or 1 (fp16)");
    if (h.num_labels < 1) fail(path, "num_labels", "is " + std::to_string(h.num_labels) + ", must be at least 1");
    if (h.example_count < 0) fail(path, "example_count", "is " + std::to_string(h.example_count) + ", must not be negative");
    if (h.chunk_size < 1) fail(path, "chunk_size", "is " + std::to_string(h.chunk_size) + ", must be at least 1");
}

// The MLM block's fields, for a block read from a file and for the setup a writer is given.
void check_block(const std::string& path, const LogitCacheHeader& h, const MlmTopKSetup& s) {
    if (s.vocab_size < 1) fail(path, "vocab_size", "is " + std::to_string(s.vocab_size) + ", must be at least 1");
    if (h.num_labels > s.vocab_size)
        fail(path, "num_labels",
             "k = " + std::to_string(h.num_labels) + " is more than the vocabulary's " + std::to_string(s.vocab_size) + " tokens");
    if (s.seq_len < 3) fail(path, "seq_len", "is " + std::to_string(s.seq_len) + ", an MLM sequence has at least 3 tokens");
    if (s.sequence_count < 0) fail(path, "sequence_count", "is " + std::to_string(s.sequence_count) + ", must not be negative");
    if (!(s.mask_fraction > 0 && s.mask_fraction <= 1 && s.mask_token_fraction >= 0 && s.random_token_fraction >= 0 &&
          s.mask_token_fraction + s.random_token_fraction <= 1))
        fail(path, "mask_fraction", "the masking fractions (" + std::to_string(s.mask_fraction) + ", " + std::to_string(s.mask_token_fraction) +
                                        ", " + std::to_string(s.random_token_fraction) + ") are out of range");
}

// The block of a file (at offset 72; the file holds at least 144 bytes): checksum, id width, fields.
MlmTopKSetup read_block(const std::string& path, const unsigned char* block, const LogitCacheHeader& h) {
    Checksum c;
    c.update(block, kBlockChecksumAt);
    if (c.digest() != get<uint64_t>(block, kBlockChecksumAt))
        fail(path, "block_checksum", "does not match the MLM block (bytes 72..135): the file is corrupted");
    const MlmTopKSetup s = decode_mlm_topk_setup(block);
    check_block(path, h, s);
    const uint32_t width = get<uint32_t>(block, 4);
    if (s.vocab_size >= 1 && width != (uint32_t)mlm_topk_id_width(s.vocab_size))
        fail(path, "id_width", "is " + std::to_string(width) + ", but a vocabulary of " + std::to_string(s.vocab_size) +
                                   " tokens stores ids in " + std::to_string(mlm_topk_id_width(s.vocab_size)) + " bytes");
    if (get<uint32_t>(block, 12) > 1) fail(path, "whole_word", "is " + std::to_string(get<uint32_t>(block, 12)) + ", must be 0 or 1");
    return s;
}

// Bytes of n rows of `row_bytes`; 128 bits, so absurd header counts cannot wrap around.
unsigned __int128 rows_bytes(int64_t n, int64_t row_bytes) { return (unsigned __int128)n * (unsigned __int128)row_bytes; }

int64_t class_row_bytes(const LogitCacheHeader& h) { return (int64_t)h.num_labels * logit_value_bytes(h.value_type); }

// Reports a value the file cannot hold: non-finite, or beyond fp16's range when stored as fp16.
// `field` and `unit`: "logits" / "example" for class caches, "values" / "row" for MLM ones.
void check_value(const std::string& path, const LogitCacheHeader& h, const char* field, const char* unit, int64_t index, float v) {
    if (!std::isfinite(v))
        fail(path, field, std::string(unit) + " " + std::to_string(index) + " has a non-finite logit (" + std::to_string(v) + ")");
    if (h.value_type == LogitValueType::F16 && (float_to_half(v) & 0x7fff) == 0x7c00)
        fail(path, field, std::string(unit) + " " + std::to_string(index) + " has logit " + std::to_string(v) +
                              ", beyond the fp16 range (+-65504): write the cache in fp32");
}

void put_value(unsigned char* b, size_t offset, LogitValueType type, float v) {
    if (type == LogitValueType::F16) put<uint16_t>(b, offset, float_to_half(v));
    else put<float>(b, offset, v);
}

float get_value(const unsigned char* b, size_t offset, LogitValueType type) {
    return type == LogitValueType::F16 ? half_to_float(get<uint16_t>(b, offset)) : get<float>(b, offset);
}

}  // namespace

LogitCacheHeader decode_logit_cache_header(const unsigned char* b) {
    LogitCacheHeader h;
    h.kind = (LogitCacheKind)get<uint32_t>(b, 12);
    h.value_type = (LogitValueType)get<uint32_t>(b, 16);
    h.num_labels = get<int32_t>(b, 20);
    h.example_count = get<int64_t>(b, 24);
    h.chunk_size = get<int64_t>(b, 32);
    h.teacher_fingerprint = get<uint64_t>(b, 40);
    h.transfer_fingerprint = get<uint64_t>(b, 48);
    return h;
}

MlmTopKSetup decode_mlm_topk_setup(const unsigned char* b) {
    MlmTopKSetup s;
    s.vocab_size = get<int32_t>(b, 0);
    s.seq_len = get<int32_t>(b, 8);
    s.whole_word = get<uint32_t>(b, 12) != 0;
    s.sequence_count = get<int64_t>(b, 16);
    s.mask_seed = get<uint64_t>(b, 24);
    s.mask_fraction = get<double>(b, 32);
    s.mask_token_fraction = get<double>(b, 40);
    s.random_token_fraction = get<double>(b, 48);
    s.vocab_fingerprint = get<uint64_t>(b, 56);
    return s;
}

int64_t mlm_topk_row_bytes(const LogitCacheHeader& h, const MlmTopKSetup& s) {
    return kMlmTopKFixedRowBytes + (int64_t)h.num_labels * (mlm_topk_id_width(s.vocab_size) + logit_value_bytes(h.value_type));
}

void MlmTopKRows::clear() {
    sequence.clear(), position.clear(), input_id.clear(), target.clear(), ids.clear(), values.clear();
}

uint64_t token_shards_fingerprint(const std::vector<TokenShard>& shards) {
    Checksum c;
    const int64_t count = (int64_t)shards.size();
    c.update(&count, 8);
    std::vector<int32_t> block(1 << 16);
    for (const TokenShard& s : shards) {
        const int64_t n = s.token_count(), d = s.doc_count();
        c.update(&n, 8);
        c.update(&d, 8);
        for (int64_t i = 0; i <= d; i++) {
            const int64_t offset = i < d ? s.doc_begin(i) : s.doc_end(d - 1);
            c.update(&offset, 8);
        }
        for (int64_t start = 0; start < n; start += (int64_t)block.size()) {
            const int64_t m = std::min<int64_t>((int64_t)block.size(), n - start);
            s.read(start, m, block.data());
            c.update(block.data(), (size_t)m * 4);
        }
    }
    return c.digest();
}

// ---------------------------------------------------------------------------------------------
// Writer

LogitCacheWriter::LogitCacheWriter(const std::string& path, const LogitCacheHeader& header)
    : path_(path), partial_path_(path + ".partial"), header_(header) {
    if (header_.kind == LogitCacheKind::MlmTopK)
        fail(path_, "kind", "is 2 (MLM top-k): open the writer with the MLM block (LogitCacheWriter(path, header, setup))");
    check_fields(path_, header_, LogitCacheKind::Class);
    prologue_.resize(kLogitCacheHeaderBytes);
    encode_header((unsigned char*)prologue_.data(), header_, 0);
    row_bytes_ = class_row_bytes(header_);
    try {
        open_partial();
    } catch (...) {
        if (file_) std::fclose(file_);
        file_ = nullptr;
        throw;
    }
}

LogitCacheWriter::LogitCacheWriter(const std::string& path, const LogitCacheHeader& header, const MlmTopKSetup& setup)
    : path_(path), partial_path_(path + ".partial"), header_(header), setup_(setup) {
    check_fields(path_, header_, LogitCacheKind::MlmTopK);
    check_block(path_, header_, setup_);
    prologue_.resize(kMlmTopKDataStart);
    encode_header((unsigned char*)prologue_.data(), header_, 0);
    encode_block((unsigned char*)prologue_.data() + kLogitCacheHeaderBytes, setup_);
    row_bytes_ = mlm_topk_row_bytes(header_, setup_);
    try {
        open_partial();
    } catch (...) {
        if (file_) std::fclose(file_);
        file_ = nullptr;
        throw;
    }
}

LogitCacheWriter::~LogitCacheWriter() {
    if (file_) std::fclose(file_);  // PATH.partial stays: the resume point
}

namespace {

void sync_or_throw(FILE* f, const std::string& path) {
    if (std::fflush(f) != 0 || std::ferror(f) || fsync(fileno(f)) != 0)
        throw Error(path + ": write failed: " + std::strerror(errno));
}

}  // namespace

void LogitCacheWriter::open_partial() {
    const auto* fresh = reinterpret_cast<const unsigned char*>(prologue_.data());
    const size_t data_start = prologue_.size();  // 72, or 144 with the MLM block
    auto start_over = [&] {
        if (ftruncate(fileno(file_), 0) != 0 || std::fseek(file_, 0, SEEK_SET) != 0 ||
            std::fwrite(fresh, 1, data_start, file_) != data_start)
            throw Error(partial_path_ + ": write failed: " + std::strerror(errno));
        sync_or_throw(file_, partial_path_);
        checksum_ = Checksum();
        checksum_.update(fresh + kLogitCacheHeaderBytes, data_start - kLogitCacheHeaderBytes);  // the MLM block, if any
    };

    const unsigned __int128 end = (unsigned __int128)data_start + rows_bytes(header_.example_count, row_bytes_);
    if (end > (unsigned __int128)(INT64_MAX / 2))
        fail(path_, "example_count", std::to_string(header_.example_count) + " rows of " + std::to_string(row_bytes_) +
                                         " bytes make a file too large to write");
    data_end_ = (int64_t)end;

    make_parent_dirs(partial_path_);
    file_ = std::fopen(partial_path_.c_str(), "r+b");
    if (!file_) {
        if (errno != ENOENT) throw Error(partial_path_ + ": cannot open: " + std::strerror(errno));
        file_ = std::fopen(partial_path_.c_str(), "w+b");
        if (!file_) throw Error(partial_path_ + ": cannot create: " + std::strerror(errno));
        start_over();
        return;
    }

    // An unfinished cache from an earlier run: same fields, or an error; never overwritten.
    struct stat st {};
    if (fstat(fileno(file_), &st) != 0) throw Error(partial_path_ + ": cannot stat: " + std::strerror(errno));
    const size_t file_bytes = (size_t)st.st_size;
    std::vector<unsigned char> old(data_start, 0);
    const size_t got = std::fread(old.data(), 1, std::min(file_bytes, data_start), file_);
    if (file_bytes < data_start) {
        // Killed while the header (and block) were being written: a prefix of what this run would
        // write holds nothing to keep. Anything else is not ours to overwrite.
        if (got == file_bytes && std::memcmp(old.data(), fresh, file_bytes) == 0) {
            start_over();
            return;
        }
        if (file_bytes >= (size_t)kLogitCacheHeaderBytes) check_header_bytes(partial_path_, old.data(), file_bytes);
        fail(partial_path_, "header", "file is " + std::to_string(file_bytes) + " bytes, shorter than the " + std::to_string(data_start) +
                                          "-byte header and not the start of this cache's header: delete it to start over");
    }
    if (got != data_start) throw Error(partial_path_ + ": cannot read: " + std::strerror(errno));
    check_header_bytes(partial_path_, old.data(), file_bytes);
    const LogitCacheHeader had = decode_logit_cache_header(old.data());
    auto differ = [&](const char* field, const std::string& in_file, const std::string& wanted) {
        fail(partial_path_, field, "is " + in_file + " in this unfinished cache, but this run writes " + wanted + ": delete " +
                                       partial_path_ + " to start over, or pass the same teacher, transfer set and options to resume it");
    };
    if (had.kind != header_.kind) differ("kind", std::to_string((uint32_t)had.kind), std::to_string((uint32_t)header_.kind));
    if (had.value_type != header_.value_type)
        differ("value_type", std::to_string((uint32_t)had.value_type), value_type_name(header_.value_type));
    if (had.num_labels != header_.num_labels)
        differ("num_labels", std::to_string(had.num_labels), std::to_string(header_.num_labels));
    if (had.example_count != header_.example_count)
        differ("example_count", std::to_string(had.example_count), std::to_string(header_.example_count));
    if (had.chunk_size != header_.chunk_size) differ("chunk_size", std::to_string(had.chunk_size), std::to_string(header_.chunk_size));
    if (had.teacher_fingerprint != header_.teacher_fingerprint)
        differ("teacher_fingerprint", hex(had.teacher_fingerprint), hex(header_.teacher_fingerprint));
    if (had.transfer_fingerprint != header_.transfer_fingerprint)
        differ("transfer_fingerprint", hex(had.transfer_fingerprint), hex(header_.transfer_fingerprint));
    if (header_.kind == LogitCacheKind::MlmTopK) {  // the block too, field by field
        const unsigned char* block = old.data() + kLogitCacheHeaderBytes;
        Checksum c;
        c.update(block, kBlockChecksumAt);
        if (c.digest() != get<uint64_t>(block, kBlockChecksumAt))
            fail(partial_path_, "block_checksum",
                 "does not match the MLM block (bytes 72..135): the file is corrupted; delete it to start over");
        const MlmTopKSetup s = decode_mlm_topk_setup(block);
        const auto num = [](auto v) { return std::to_string(v); };
        if (s.vocab_size != setup_.vocab_size) differ("vocab_size", num(s.vocab_size), num(setup_.vocab_size));
        if (s.seq_len != setup_.seq_len) differ("seq_len", num(s.seq_len), num(setup_.seq_len));
        if (s.whole_word != setup_.whole_word) differ("whole_word", num((int)s.whole_word), num((int)setup_.whole_word));
        if (s.sequence_count != setup_.sequence_count) differ("sequence_count", num(s.sequence_count), num(setup_.sequence_count));
        if (s.mask_seed != setup_.mask_seed) differ("mask_seed", num(s.mask_seed), num(setup_.mask_seed));
        if (s.mask_fraction != setup_.mask_fraction || s.mask_token_fraction != setup_.mask_token_fraction ||
            s.random_token_fraction != setup_.random_token_fraction)
            differ("mask_fraction", num(s.mask_fraction) + "/" + num(s.mask_token_fraction) + "/" + num(s.random_token_fraction),
                   num(setup_.mask_fraction) + "/" + num(setup_.mask_token_fraction) + "/" + num(setup_.random_token_fraction));
        if (s.vocab_fingerprint != setup_.vocab_fingerprint)
            differ("vocab_fingerprint", hex(s.vocab_fingerprint), hex(setup_.vocab_fingerprint));
        if (std::memcmp(block, fresh + kLogitCacheHeaderBytes, kMlmTopKBlockBytes) != 0)
            differ("block", "another MLM block", "this one");  // a field not compared above (id width): cannot happen with a valid block
    }

    // Keep the complete chunks: those the chunk table lists, each checked against its checksum,
    // or all N rows under a sealed header (a kill inside finish(), after the table was cut off),
    // checked against data_checksum. Cut off whatever else there is (a torn chunk or table entry).
    const size_t row_bytes = (size_t)row_bytes_, data_end = (size_t)data_end_;
    const int64_t chunk = header_.chunk_size, count = header_.example_count;
    const int64_t chunks = count / chunk + (count % chunk != 0);
    const uint64_t sealed_checksum = get<uint64_t>(old.data(), 56);
    const bool sealed = sealed_checksum != 0 && file_bytes == data_end;
    const int64_t listed = file_bytes > data_end ? std::min<int64_t>(chunks, (int64_t)((file_bytes - data_end) / 8)) : 0;
    const int64_t kept = sealed ? chunks : listed;
    std::vector<unsigned char> table((size_t)listed * 8);
    if (listed > 0 && (std::fseek(file_, (long)data_end, SEEK_SET) != 0 || std::fread(table.data(), 1, table.size(), file_) != table.size()))
        throw Error(partial_path_ + ": cannot read the chunk table: " + std::strerror(errno));

    // The data checksum continues over the bytes already there from 72 on (the block, if any, and
    // the kept chunks), read once for both checks.
    const char* unit = header_.kind == LogitCacheKind::Class ? "examples " : "rows ";
    std::vector<unsigned char> bytes;
    if (std::fseek(file_, kLogitCacheHeaderBytes, SEEK_SET) != 0) throw Error(partial_path_ + ": cannot seek: " + std::strerror(errno));
    for (int64_t j = -1; j < kept; j++) {  // -1: the block (empty for a class cache)
        const int64_t first = j * chunk, rows = j < 0 ? 0 : std::min(chunk, count - first);
        bytes.resize(j < 0 ? data_start - kLogitCacheHeaderBytes : (size_t)rows * row_bytes);
        if (std::fread(bytes.data(), 1, bytes.size(), file_) != bytes.size())
            throw Error(partial_path_ + ": cannot read: " + std::strerror(errno));
        checksum_.update(bytes.data(), bytes.size());
        if (j < 0 || sealed) continue;
        Checksum c;
        c.update(bytes.data(), bytes.size());
        const uint64_t stored = get<uint64_t>(table.data(), (size_t)j * 8);
        if (c.digest() != stored)
            fail(partial_path_, "chunk_checksum",
                 "chunk " + std::to_string(j) + " (" + unit + std::to_string(first) + ".." + std::to_string(first + rows - 1) +
                     ") hashes to " + hex(c.digest()) + " but its checksum in the chunk table is " + hex(stored) +
                     ": the unfinished cache was changed or corrupted; delete " + partial_path_ + " to start over");
    }
    if (sealed && checksum_.digest() != sealed_checksum)
        fail(partial_path_, "data_checksum", "is " + hex(sealed_checksum) + " but the values hash to " + hex(checksum_.digest()) +
                                                 ": the unfinished cache was changed or corrupted; delete " + partial_path_ +
                                                 " to start over");
    chunks_written_ = kept;
    resumed_ = std::min(count, kept * chunk);
    const size_t keep = kept == 0 ? data_start : sealed ? data_end : data_end + (size_t)kept * 8;
    if (keep != file_bytes && ftruncate(fileno(file_), (off_t)keep) != 0)
        throw Error(partial_path_ + ": cannot truncate the torn chunk: " + std::strerror(errno));
}

// Chunk j goes to its place among the values, then its checksum to entry j of the chunk table
// after them; the chunk is fsynced before its entry is written, so a listed chunk is complete.
void LogitCacheWriter::write_rows(const unsigned char* bytes, int64_t rows) {
    const size_t n = (size_t)rows * (size_t)row_bytes_;
    const long at = (long)prologue_.size() + (long)(chunks_written_ * header_.chunk_size * row_bytes_);
    if (std::fseek(file_, at, SEEK_SET) != 0 || std::fwrite(bytes, 1, n, file_) != n)
        throw Error(partial_path_ + ": write failed: " + std::strerror(errno));
    sync_or_throw(file_, partial_path_);
    Checksum c;
    c.update(bytes, n);
    unsigned char entry[8];
    put<uint64_t>(entry, 0, c.digest());
    if (std::fseek(file_, (long)(data_end_ + chunks_written_ * 8), SEEK_SET) != 0 || std::fwrite(entry, 1, 8, file_) != 8)
        throw Error(partial_path_ + ": write failed: " + std::strerror(errno));
    sync_or_throw(file_, partial_path_);
    checksum_.update(bytes, n);
    chunks_written_++;
}

// Rows in file form: every complete chunk is written as soon as it is there.
void LogitCacheWriter::append_encoded(const unsigned char* bytes, int64_t rows) {
    const int64_t chunk = header_.chunk_size, rb = row_bytes_;
    for (int64_t i = 0; i < rows;) {
        const int64_t buffered = (int64_t)pending_.size() / std::max<int64_t>(rb, 1);
        if (buffered == 0 && rows - i >= chunk) {  // a whole chunk straight from the caller's rows
            write_rows(bytes + i * rb, chunk);
            i += chunk;
            continue;
        }
        const int64_t take = std::min(chunk - buffered, rows - i);
        pending_.insert(pending_.end(), bytes + i * rb, bytes + (i + take) * rb);
        i += take;
        if (buffered + take == chunk) {
            write_rows(pending_.data(), chunk);
            pending_.clear();
        }
    }
    appended_ += rows;
}

void LogitCacheWriter::append(const float* logits, int64_t rows) {
    if (!file_) throw Error(path_ + ": append() after finish()");
    if (header_.kind != LogitCacheKind::Class) throw Error(path_ + ": append() of class logits to an MLM top-k cache");
    const int64_t K = header_.num_labels;
    if (rows < 0 || rows > header_.example_count - examples_done())
        fail(partial_path_, "example_count", "appending " + std::to_string(rows) + " examples after " +
                                                 std::to_string(examples_done()) + " would pass the " +
                                                 std::to_string(header_.example_count) + " the header declares");
    for (int64_t i = 0; i < rows * K; i++) check_value(partial_path_, header_, "logits", "example", examples_done() + i / K, logits[i]);
    const size_t count = (size_t)rows * (size_t)K;
    staging_.resize(count * logit_value_bytes(header_.value_type));
    for (size_t i = 0; i < count; i++) put_value(staging_.data(), i * logit_value_bytes(header_.value_type), header_.value_type, logits[i]);
    append_encoded(staging_.data(), rows);
}

void LogitCacheWriter::append_topk(const MlmTopKRows& r, int64_t begin, int64_t end) {
    if (!file_) throw Error(path_ + ": append_topk() after finish()");
    if (header_.kind != LogitCacheKind::MlmTopK) throw Error(path_ + ": append_topk() to a class-logit cache");
    const int64_t k = header_.num_labels, rows = end - begin;
    if (begin < 0 || end > r.size() || rows < 0 || (int64_t)r.position.size() != r.size() || (int64_t)r.input_id.size() != r.size() ||
        (int64_t)r.target.size() != r.size() || (int64_t)r.ids.size() != r.size() * k || (int64_t)r.values.size() != r.size() * k)
        throw Error(partial_path_ + ": append_topk(): rows [" + std::to_string(begin) + ", " + std::to_string(end) +
                    ") of arrays of inconsistent sizes (k = " + std::to_string(k) + ")");
    if (rows > header_.example_count - examples_done())
        fail(partial_path_, "example_count", "appending " + std::to_string(rows) + " rows after " + std::to_string(examples_done()) +
                                                 " would pass the " + std::to_string(header_.example_count) + " the header declares");
    const MlmTopKSetup& s = setup_;
    const int id_width = mlm_topk_id_width(s.vocab_size), value_width = logit_value_bytes(header_.value_type);
    staging_.resize((size_t)rows * (size_t)row_bytes_);
    int64_t last_sequence = last_sequence_, last_position = last_position_;
    for (int64_t i = begin; i < end; i++) {
        const int64_t row = examples_done() + (i - begin);
        auto bad = [&](const std::string& what) { fail(partial_path_, "rows", "row " + std::to_string(row) + ": " + what); };
        if (r.sequence[i] < 0 || r.sequence[i] >= s.sequence_count)
            bad("sequence " + std::to_string(r.sequence[i]) + " outside 0.." + std::to_string(s.sequence_count - 1));
        if (r.position[i] < 1 || r.position[i] > s.seq_len - 2)
            bad("position " + std::to_string(r.position[i]) + " outside 1.." + std::to_string(s.seq_len - 2));
        if (r.sequence[i] < last_sequence || (r.sequence[i] == last_sequence && r.position[i] <= last_position))
            bad("(sequence " + std::to_string(r.sequence[i]) + ", position " + std::to_string(r.position[i]) +
                ") does not come after the previous row's");
        last_sequence = r.sequence[i], last_position = r.position[i];
        if (r.input_id[i] < 0 || r.input_id[i] >= s.vocab_size || r.target[i] < 0 || r.target[i] >= s.vocab_size)
            bad("input id " + std::to_string(r.input_id[i]) + " or target " + std::to_string(r.target[i]) + " outside the vocabulary");
        unsigned char* b = staging_.data() + (size_t)(i - begin) * (size_t)row_bytes_;
        put<int32_t>(b, 0, r.sequence[i]);
        put<int32_t>(b, 4, r.position[i]);
        put<int32_t>(b, 8, r.input_id[i]);
        put<int32_t>(b, 12, r.target[i]);
        for (int64_t j = 0; j < k; j++) {
            const int32_t id = r.ids[i * k + j];
            const float v = r.values[i * k + j];
            if (id < 0 || id >= s.vocab_size) bad("top-k id " + std::to_string(id) + " outside the vocabulary");
            check_value(partial_path_, header_, "values", "row", row, v);
            if (id_width == 2) put<uint16_t>(b, kMlmTopKFixedRowBytes + j * 2, (uint16_t)id);
            else put<int32_t>(b, kMlmTopKFixedRowBytes + j * 4, id);
            put_value(b, kMlmTopKFixedRowBytes + k * id_width + j * value_width, header_.value_type, v);
        }
    }
    last_sequence_ = last_sequence, last_position_ = last_position;
    append_encoded(staging_.data(), rows);
}

void LogitCacheWriter::finish() {
    if (!file_) throw Error(path_ + ": finish() called twice");
    const char* unit = header_.kind == LogitCacheKind::Class ? " examples" : " rows";
    if (examples_done() != header_.example_count)
        fail(partial_path_, "example_count", "finish() after " + std::to_string(examples_done()) + " of the " +
                                                 std::to_string(header_.example_count) + unit + " the header declares");
    if (!pending_.empty()) write_rows(pending_.data(), (int64_t)pending_.size() / row_bytes_);  // the short last chunk
    pending_.clear();
    unsigned char header[kLogitCacheHeaderBytes];
    encode_header(header, header_, checksum_.digest());
    if (std::fseek(file_, 0, SEEK_SET) != 0 || std::fwrite(header, 1, sizeof header, file_) != sizeof header)
        throw Error(partial_path_ + ": write failed: " + std::strerror(errno));
    sync_or_throw(file_, partial_path_);
    if (ftruncate(fileno(file_), (off_t)data_end_) != 0 || fsync(fileno(file_)) != 0)  // the chunk table goes
        throw Error(partial_path_ + ": cannot cut off the chunk table: " + std::strerror(errno));
    std::fclose(file_);
    file_ = nullptr;
    if (std::rename(partial_path_.c_str(), path_.c_str()) != 0)
        throw Error(path_ + ": cannot rename " + partial_path_ + " into place: " + std::strerror(errno));
}

// ---------------------------------------------------------------------------------------------
// Readers

namespace {

// The header of a file read whole: checked bytes, then fields for the kind the caller reads.
LogitCacheHeader read_header(const std::string& path, const std::string& file, LogitCacheKind want) {
    const auto* b = reinterpret_cast<const unsigned char*>(file.data());
    check_header_bytes(path, b, file.size());
    const LogitCacheHeader h = decode_logit_cache_header(b);
    check_fields(path, h, want);
    return h;
}

uint64_t check_data_checksum(const std::string& path, const std::string& file) {
    const uint64_t stored = get<uint64_t>(reinterpret_cast<const unsigned char*>(file.data()), 56);
    Checksum c;
    c.update(file.data() + kLogitCacheHeaderBytes, file.size() - kLogitCacheHeaderBytes);
    if (c.digest() != stored)
        fail(path, "data_checksum", "is " + hex(stored) + " but the values hash to " + hex(c.digest()) +
                                        ": the file is corrupted (or was not finished)");
    return stored;
}

}  // namespace

LogitCache read_logit_cache(const std::string& path) {
    const std::string file = read_file(path);
    const auto* b = reinterpret_cast<const unsigned char*>(file.data());
    LogitCache cache;
    cache.path = path;
    cache.header = read_header(path, file, LogitCacheKind::Class);
    const LogitCacheHeader& h = cache.header;
    check_size(path, file.size(), (unsigned __int128)kLogitCacheHeaderBytes + rows_bytes(h.example_count, class_row_bytes(h)));
    cache.data_checksum = check_data_checksum(path, file);

    const size_t count = (size_t)h.example_count * (size_t)h.num_labels;
    cache.logits.resize(count);
    if (h.value_type == LogitValueType::F16)
        for (size_t i = 0; i < count; i++) cache.logits[i] = half_to_float(get<uint16_t>(b, kLogitCacheHeaderBytes + i * 2));
    else if (count > 0)  // an empty vector's data() may be null, which memcpy must not get even for 0 bytes
        std::memcpy(cache.logits.data(), b + kLogitCacheHeaderBytes, count * 4);
    for (size_t i = 0; i < count; i++) check_value(path, h, "logits", "example", (int64_t)(i / h.num_labels), cache.logits[i]);
    return cache;
}

void check_logit_cache_matches(const LogitCache& cache, const std::string& transfer_path, uint64_t teacher_fingerprint,
                               uint64_t transfer_fingerprint, int64_t example_count, int num_labels) {
    const LogitCacheHeader& h = cache.header;
    if (h.kind != LogitCacheKind::Class)
        fail(cache.path, "kind", "is " + std::to_string((uint32_t)h.kind) + ", not 1 (class logits)");
    if (teacher_fingerprint != 0 && h.teacher_fingerprint != teacher_fingerprint)
        fail(cache.path, "teacher_fingerprint", "the cache was made by another teacher (" + hex(h.teacher_fingerprint) +
                                                    ") than this run's (" + hex(teacher_fingerprint) +
                                                    "): run distill cache with this teacher");
    if (h.transfer_fingerprint != transfer_fingerprint)
        fail(cache.path, "transfer_fingerprint", "the cache was made from other examples (" + hex(h.transfer_fingerprint) +
                                                     ") than " + transfer_path + " (" + hex(transfer_fingerprint) +
                                                     "): run distill cache for this transfer set");
    if (h.example_count != example_count)
        fail(cache.path, "example_count", "the cache holds " + std::to_string(h.example_count) + " examples, " + transfer_path +
                                              " has " + std::to_string(example_count) + ": run distill cache for this transfer set");
    if (h.num_labels != num_labels)
        fail(cache.path, "num_labels", "the cache holds " + std::to_string(h.num_labels) + " logits per example, the student has " +
                                           std::to_string(num_labels) + (num_labels == 1 ? " label" : " labels"));
}

bool logit_cache_up_to_date(const std::string& path, const LogitCacheHeader& header, const MlmTopKSetup* setup) {
    const bool mlm = header.kind == LogitCacheKind::MlmTopK;
    if (mlm && setup == nullptr) throw Error("logit_cache_up_to_date: an MLM top-k header needs its setup block");
    MlmTopKSetup had_setup;
    LogitCacheHeader had;
    if (mlm) {
        const MlmTopKCache cache = read_mlm_topk_cache(path);
        had = cache.header, had_setup = cache.setup;
    } else {
        had = read_logit_cache(path).header;
    }
    if (had.kind != header.kind || had.value_type != header.value_type || had.num_labels != header.num_labels ||
        had.example_count != header.example_count || had.teacher_fingerprint != header.teacher_fingerprint ||
        had.transfer_fingerprint != header.transfer_fingerprint)
        return false;
    if (!mlm) return true;
    const MlmTopKSetup& s = *setup;
    return had_setup.vocab_size == s.vocab_size && had_setup.seq_len == s.seq_len && had_setup.whole_word == s.whole_word &&
           had_setup.mask_seed == s.mask_seed && had_setup.mask_fraction == s.mask_fraction &&
           had_setup.mask_token_fraction == s.mask_token_fraction && had_setup.random_token_fraction == s.random_token_fraction &&
           had_setup.sequence_count == s.sequence_count && had_setup.vocab_fingerprint == s.vocab_fingerprint;
}

int32_t MlmTopKCache::field(int64_t row, int i) const {
    return get<int32_t>(reinterpret_cast<const unsigned char*>(bytes.data()), (size_t)kMlmTopKDataStart + (size_t)row * row_bytes + 4 * i);
}

void MlmTopKCache::topk(int64_t row, int32_t* ids, float* values) const {
    const auto* b = reinterpret_cast<const unsigned char*>(bytes.data()) + (size_t)kMlmTopKDataStart + (size_t)row * row_bytes;
    const int kk = k(), id_width = mlm_topk_id_width(setup.vocab_size), value_width = logit_value_bytes(header.value_type);
    for (int j = 0; j < kk; j++) {
        ids[j] = id_width == 2 ? (int32_t)get<uint16_t>(b, kMlmTopKFixedRowBytes + j * 2) : get<int32_t>(b, kMlmTopKFixedRowBytes + j * 4);
        values[j] = get_value(b, kMlmTopKFixedRowBytes + (size_t)kk * id_width + (size_t)j * value_width, header.value_type);
    }
}

MlmTopKCache read_mlm_topk_cache(const std::string& path) {
    MlmTopKCache cache;
    cache.path = path;
    cache.bytes = read_file(path);
    const std::string& file = cache.bytes;
    cache.header = read_header(path, file, LogitCacheKind::MlmTopK);
    const LogitCacheHeader& h = cache.header;
    if (file.size() < (size_t)kMlmTopKDataStart)
        fail(path, "block", "file is " + std::to_string(file.size()) + " bytes, shorter than the " + std::to_string(kMlmTopKDataStart) +
                                "-byte header and MLM block (truncated)");
    cache.setup = read_block(path, reinterpret_cast<const unsigned char*>(file.data()) + kLogitCacheHeaderBytes, h);
    const MlmTopKSetup& s = cache.setup;
    cache.row_bytes = mlm_topk_row_bytes(h, s);
    check_size(path, file.size(), (unsigned __int128)kMlmTopKDataStart + rows_bytes(h.example_count, cache.row_bytes));
    cache.data_checksum = check_data_checksum(path, file);

    const int k = h.num_labels;
    std::vector<int32_t> ids(k);
    std::vector<float> values(k);
    int64_t last_sequence = -1, last_position = -1;
    for (int64_t r = 0; r < h.example_count; r++) {
        auto bad = [&](const std::string& what) { fail(path, "rows", "row " + std::to_string(r) + ": " + what); };
        const int64_t sequence = cache.sequence(r), position = cache.position(r);
        if (sequence < 0 || sequence >= s.sequence_count)
            bad("sequence " + std::to_string(sequence) + " outside 0.." + std::to_string(s.sequence_count - 1));
        if (position < 1 || position > s.seq_len - 2)
            bad("position " + std::to_string(position) + " outside 1.." + std::to_string(s.seq_len - 2));
        if (sequence < last_sequence || (sequence == last_sequence && position <= last_position))
            bad("(sequence " + std::to_string(sequence) + ", position " + std::to_string(position) + ") does not come after the previous row's");
        if (cache.input_id(r) < 0 || cache.input_id(r) >= s.vocab_size || cache.target(r) < 0 || cache.target(r) >= s.vocab_size)
            bad("input id " + std::to_string(cache.input_id(r)) + " or target " + std::to_string(cache.target(r)) + " outside the vocabulary");
        cache.topk(r, ids.data(), values.data());
        for (int j = 0; j < k; j++) {
            if (ids[j] < 0 || ids[j] >= s.vocab_size) bad("top-k id " + std::to_string(ids[j]) + " outside the vocabulary");
            check_value(path, h, "values", "row", r, values[j]);
            if (j > 0 && values[j] > values[j - 1]) bad("top-k values are not in descending order (value " + std::to_string(j) + ")");
        }
        if (sequence != last_sequence) {
            cache.group_sequence.push_back(sequence);
            cache.group_begin.push_back(r);
        }
        last_sequence = sequence, last_position = position;
    }
    cache.group_begin.push_back(h.example_count);
    return cache;
}

void check_mlm_topk_cache_matches(const MlmTopKCache& cache, const std::string& shards, uint64_t teacher_fingerprint,
                                  uint64_t shards_fingerprint, uint64_t vocab_fingerprint, int64_t sequence_count) {
    const LogitCacheHeader& h = cache.header;
    if (teacher_fingerprint != 0 && h.teacher_fingerprint != teacher_fingerprint)
        fail(cache.path, "teacher_fingerprint", "the cache was made by another teacher (" + hex(h.teacher_fingerprint) +
                                                    ") than this run's (" + hex(teacher_fingerprint) +
                                                    "): run distill cache --mlm with this teacher");
    if (cache.setup.vocab_fingerprint != vocab_fingerprint)
        fail(cache.path, "vocab_fingerprint", "the cache was made with another vocabulary (" + hex(cache.setup.vocab_fingerprint) +
                                                  ") than this run's (" + hex(vocab_fingerprint) + ")");
    if (h.transfer_fingerprint != shards_fingerprint)
        fail(cache.path, "transfer_fingerprint", "the cache was made from other text (" + hex(h.transfer_fingerprint) + ") than " + shards +
                                                     " (" + hex(shards_fingerprint) + "): run distill cache --mlm over these token shards");
    if (cache.setup.sequence_count != sequence_count)
        fail(cache.path, "sequence_count", "the cache's " + std::to_string(cache.setup.sequence_count) + " sequences of " +
                                               std::to_string(cache.setup.seq_len) + " tokens are " + std::to_string(sequence_count) +
                                               " in " + shards);
}

}  // namespace wr
