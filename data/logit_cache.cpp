// data/logit_cache.cpp: the teacher-logit cache: its resumable writer, its validating reader, the
// transfer-set fingerprint and the float <-> binary16 conversion. The byte layout is in
// docs/formats.md ("Teacher-logit cache"); what each function checks is in logit_cache.h.
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
//   12  kind u32 (1 class logits)      48  transfer_fingerprint u64
//   16  value_type u32 (0 f32, 1 f16)  56  data_checksum u64: Checksum of bytes 72..end
//   20  num_labels i32                 64  header_checksum u64: Checksum of bytes 0..63
//   24  example_count i64              72  values, example-major

namespace {

constexpr size_t kHeaderChecksumAt = 64;

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

LogitCacheHeader decode_header(const unsigned char* b) {
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

// The fields' ranges, for a header read from a file and for the one a writer is given.
void check_fields(const std::string& path, const LogitCacheHeader& h) {
    const uint32_t kind = (uint32_t)h.kind;
    if (h.kind == LogitCacheKind::MlmTopK)
        fail(path, "kind", "is 2 (MLM top-k cache), reserved: this build reads and writes only kind 1 (class logits)");
    if (h.kind != LogitCacheKind::Class)
        fail(path, "kind", "is " + std::to_string(kind) + ", unknown: this build reads and writes only kind 1 (class logits)");
    const uint32_t type = (uint32_t)h.value_type;
    if (h.value_type != LogitValueType::F32 && h.value_type != LogitValueType::F16)
        fail(path, "value_type", "is " + std::to_string(type) + ", must be 0 (fp32) or 1 (fp16)");
    if (h.num_labels < 1) fail(path, "num_labels", "is " + std::to_string(h.num_labels) + ", must be at least 1");
    if (h.example_count < 0) fail(path, "example_count", "is " + std::to_string(h.example_count) + ", must not be negative");
    if (h.chunk_size < 1) fail(path, "chunk_size", "is " + std::to_string(h.chunk_size) + ", must be at least 1");
}

// Bytes of the values of n examples; 128 bits, so absurd header counts cannot wrap around.
unsigned __int128 value_bytes(const LogitCacheHeader& h, int64_t n) {
    return (unsigned __int128)n * (unsigned __int128)h.num_labels * (unsigned __int128)logit_value_bytes(h.value_type);
}

// Reports a logit the file cannot hold: non-finite, or beyond fp16's range when stored as fp16.
void check_value(const std::string& path, const LogitCacheHeader& h, int64_t example, float v) {
    if (!std::isfinite(v))
        fail(path, "logits", "example " + std::to_string(example) + " has a non-finite logit (" + std::to_string(v) + ")");
    if (h.value_type == LogitValueType::F16 && (float_to_half(v) & 0x7fff) == 0x7c00)
        fail(path, "logits", "example " + std::to_string(example) + " has logit " + std::to_string(v) +
                                 ", beyond the fp16 range (+-65504): write the cache in fp32");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Writer

LogitCacheWriter::LogitCacheWriter(const std::string& path, const LogitCacheHeader& header)
    : path_(path), partial_path_(path + ".partial"), header_(header) {
    check_fields(path_, header_);
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
    unsigned char fresh[kLogitCacheHeaderBytes];
    encode_header(fresh, header_, 0);
    auto start_over = [&] {
        if (ftruncate(fileno(file_), 0) != 0 || std::fseek(file_, 0, SEEK_SET) != 0 ||
            std::fwrite(fresh, 1, sizeof fresh, file_) != sizeof fresh)
            throw Error(partial_path_ + ": write failed: " + std::strerror(errno));
        sync_or_throw(file_, partial_path_);
    };

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
    unsigned char old[kLogitCacheHeaderBytes] = {};
    const size_t got = std::fread(old, 1, std::min(file_bytes, sizeof old), file_);
    if (file_bytes < sizeof old) {
        // Killed while the header itself was being written: a prefix of the header this run would
        // write holds nothing to keep. Anything else is not ours to overwrite.
        if (got == file_bytes && std::memcmp(old, fresh, file_bytes) == 0) {
            start_over();
            return;
        }
        fail(partial_path_, "header", "file is " + std::to_string(file_bytes) + " bytes, shorter than the " +
                                          std::to_string(kLogitCacheHeaderBytes) +
                                          "-byte header and not the start of this cache's header: delete it to start over");
    }
    if (got != sizeof old) throw Error(partial_path_ + ": cannot read: " + std::strerror(errno));
    check_header_bytes(partial_path_, old, file_bytes);
    const LogitCacheHeader had = decode_header(old);
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

    // Keep the complete chunks (all N examples if the values are all there: a kill during
    // finish()); cut off whatever follows them.
    const size_t row_bytes = (size_t)value_bytes(header_, 1);
    const size_t payload = file_bytes - kLogitCacheHeaderBytes;
    if ((unsigned __int128)payload >= value_bytes(header_, header_.example_count))
        resumed_ = header_.example_count;
    else
        resumed_ = (int64_t)(payload / ((unsigned __int128)row_bytes * (uint64_t)header_.chunk_size)) * header_.chunk_size;
    const size_t keep = (size_t)resumed_ * row_bytes;
    if (keep != payload && ftruncate(fileno(file_), (off_t)(kLogitCacheHeaderBytes + keep)) != 0)
        throw Error(partial_path_ + ": cannot truncate the torn chunk: " + std::strerror(errno));

    // The data checksum continues over the values already there.
    std::vector<unsigned char> block(1 << 20);
    for (size_t done = 0; done < keep;) {
        const size_t n = std::min(block.size(), keep - done);
        if (std::fread(block.data(), 1, n, file_) != n) throw Error(partial_path_ + ": cannot read: " + std::strerror(errno));
        checksum_.update(block.data(), n);
        done += n;
    }
    if (std::fseek(file_, 0, SEEK_END) != 0) throw Error(partial_path_ + ": cannot seek: " + std::strerror(errno));
}

void LogitCacheWriter::write_rows(const float* logits, int64_t rows) {
    const size_t count = (size_t)rows * (size_t)header_.num_labels;
    if (header_.value_type == LogitValueType::F16) {
        staging_.resize(count * 2);
        for (size_t i = 0; i < count; i++) put<uint16_t>(staging_.data(), i * 2, float_to_half(logits[i]));
    } else {
        staging_.resize(count * 4);
        std::memcpy(staging_.data(), logits, count * 4);
    }
    if (std::fwrite(staging_.data(), 1, staging_.size(), file_) != staging_.size())
        throw Error(partial_path_ + ": write failed: " + std::strerror(errno));
    sync_or_throw(file_, partial_path_);
    checksum_.update(staging_.data(), staging_.size());
}

void LogitCacheWriter::append(const float* logits, int64_t rows) {
    if (!file_) throw Error(path_ + ": append() after finish()");
    const int64_t K = header_.num_labels, chunk = header_.chunk_size;
    if (rows < 0 || rows > header_.example_count - examples_done())
        fail(partial_path_, "example_count", "appending " + std::to_string(rows) + " examples after " +
                                                 std::to_string(examples_done()) + " would pass the " +
                                                 std::to_string(header_.example_count) + " the header declares");
    for (int64_t i = 0; i < rows * K; i++) check_value(partial_path_, header_, examples_done() + i / K, logits[i]);

    for (int64_t i = 0; i < rows;) {
        const int64_t buffered = (int64_t)pending_.size() / K;
        if (buffered == 0 && rows - i >= chunk) {  // a whole chunk straight from the caller's rows
            write_rows(logits + i * K, chunk);
            i += chunk;
            continue;
        }
        const int64_t take = std::min(chunk - buffered, rows - i);
        pending_.insert(pending_.end(), logits + i * K, logits + (i + take) * K);
        i += take;
        if (buffered + take == chunk) {
            write_rows(pending_.data(), chunk);
            pending_.clear();
        }
    }
    appended_ += rows;
}

void LogitCacheWriter::finish() {
    if (!file_) throw Error(path_ + ": finish() called twice");
    if (examples_done() != header_.example_count)
        fail(partial_path_, "example_count", "finish() after " + std::to_string(examples_done()) + " of the " +
                                                 std::to_string(header_.example_count) + " examples the header declares");
    if (!pending_.empty()) write_rows(pending_.data(), (int64_t)pending_.size() / header_.num_labels);  // the short last chunk
    pending_.clear();
    unsigned char header[kLogitCacheHeaderBytes];
    encode_header(header, header_, checksum_.digest());
    if (std::fseek(file_, 0, SEEK_SET) != 0 || std::fwrite(header, 1, sizeof header, file_) != sizeof header)
        throw Error(partial_path_ + ": write failed: " + std::strerror(errno));
    sync_or_throw(file_, partial_path_);
    std::fclose(file_);
    file_ = nullptr;
    if (std::rename(partial_path_.c_str(), path_.c_str()) != 0)
        throw Error(path_ + ": cannot rename " + partial_path_ + " into place: " + std::strerror(errno));
}

// ---------------------------------------------------------------------------------------------
// Reader

LogitCache read_logit_cache(const std::string& path) {
    const std::string file = read_file(path);
    const auto* b = reinterpret_cast<const unsigned char*>(file.data());
    check_header_bytes(path, b, file.size());
    LogitCache cache;
    cache.path = path;
    cache.header = decode_header(b);
    check_fields(path, cache.header);
    cache.data_checksum = get<uint64_t>(b, 56);
    const LogitCacheHeader& h = cache.header;
    check_size(path, file.size(), (unsigned __int128)kLogitCacheHeaderBytes + value_bytes(h, h.example_count));

    Checksum c;
    c.update(b + kLogitCacheHeaderBytes, file.size() - kLogitCacheHeaderBytes);
    if (c.digest() != cache.data_checksum)
        fail(path, "data_checksum", "is " + hex(cache.data_checksum) + " but the values hash to " + hex(c.digest()) +
                                        ": the file is corrupted (or was not finished)");

    const size_t count = (size_t)h.example_count * (size_t)h.num_labels;
    cache.logits.resize(count);
    if (h.value_type == LogitValueType::F16)
        for (size_t i = 0; i < count; i++) cache.logits[i] = half_to_float(get<uint16_t>(b, kLogitCacheHeaderBytes + i * 2));
    else
        std::memcpy(cache.logits.data(), b + kLogitCacheHeaderBytes, count * 4);
    for (size_t i = 0; i < count; i++) check_value(path, h, (int64_t)(i / h.num_labels), cache.logits[i]);
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

}  // namespace wr
