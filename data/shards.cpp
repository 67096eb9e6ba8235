// data/shards.cpp: writers and validating readers of token shards and example shards. The byte
// layouts are in docs/formats.md; the header comment of shards.h says what each reader checks.
#include "data/shards.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "common/binary_io.h"
#include "common/util.h"
#include "data/tokenizer.h"

namespace wr {

// ---------------------------------------------------------------------------------------------
// Checks of both readers beyond the shared ones in common/binary_io.h (header, size, checksum).

namespace {

// The vocabulary against `vocab`.
void check_vocab(const std::string& path, int vocab_size, uint64_t fingerprint, const Tokenizer* vocab) {
    if (!vocab) return;
    char buf[200];
    if (fingerprint != vocab->fingerprint()) {
        std::snprintf(buf, sizeof buf, "is %016llx but the vocabulary %s has %016llx (%d tokens): the shard was made with another vocabulary",
                      (unsigned long long)fingerprint, vocab->source().c_str(), (unsigned long long)vocab->fingerprint(),
                      vocab->vocab_size());
        fail(path, "vocab_fingerprint", buf);
    }
    if (vocab_size != vocab->vocab_size())
        fail(path, "vocab_size", "is " + std::to_string(vocab_size) + " but the vocabulary " + vocab->source() + " has " +
                                     std::to_string(vocab->vocab_size()) + " tokens");
}

// Token ids must be below the vocabulary size; reports the first bad one.
void check_token_ids(const std::string& path, const void* tokens, uint32_t width, int64_t n, int vocab_size) {
    int64_t bad = -1;
    if (width == 2) {
        const auto* t = static_cast<const uint16_t*>(tokens);
        for (int64_t i = 0; i < n && bad < 0; i++)
            if (t[i] >= vocab_size) bad = i;
    } else {
        const auto* t = static_cast<const uint32_t*>(tokens);
        for (int64_t i = 0; i < n && bad < 0; i++)
            if (t[i] >= (uint32_t)vocab_size) bad = i;
    }
    if (bad >= 0) {
        const int64_t id = width == 2 ? static_cast<const uint16_t*>(tokens)[bad] : static_cast<const uint32_t*>(tokens)[bad];
        fail(path, "tokens", "token " + std::to_string(bad) + " has id " + std::to_string(id) +
                                 ", not below the vocabulary size " + std::to_string(vocab_size));
    }
}

// Offsets must start at 0, end at `total` and never decrease.
void check_offsets(const std::string& path, const char* field, const uint64_t* offsets, int64_t count, uint64_t total) {
    if (offsets[0] != 0) fail(path, field, "first offset is " + std::to_string(offsets[0]) + ", not 0");
    for (int64_t i = 0; i < count; i++)
        if (offsets[i + 1] < offsets[i])
            fail(path, field, "offset " + std::to_string(i + 1) + " is smaller than the one before it");
    if (offsets[count] != total)
        fail(path, field, "last offset is " + std::to_string(offsets[count]) + ", not the token count " + std::to_string(total));
}

// The width is a function of the vocabulary size (token_width_for), so both are checked together.
void check_width(const std::string& path, uint32_t width, int vocab_size) {
    if (vocab_size <= 0) fail(path, "vocab_size", "is " + std::to_string(vocab_size) + ", must be positive");
    if (width != token_width_for(vocab_size))
        fail(path, "token_width", "is " + std::to_string(width) + ", but a vocabulary of " + std::to_string(vocab_size) +
                                      " tokens is stored with width " + std::to_string(token_width_for(vocab_size)));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Token shard writer: header placeholder, tokens as they come, padding to 8, offsets, header.

TokenShardWriter::TokenShardWriter(const std::string& path, int vocab_size, uint64_t vocab_fingerprint)
    : path_(path), tmp_path_(path + ".tmp." + std::to_string(getpid())), width_(token_width_for(vocab_size)),
      vocab_size_(vocab_size), fingerprint_(vocab_fingerprint) {
    make_parent_dirs(path);
    file_ = std::fopen(tmp_path_.c_str(), "wb");
    if (!file_) throw Error(path + ": cannot create " + tmp_path_ + ": " + std::strerror(errno));
    const unsigned char zeros[kHeaderBytes] = {};
    std::fwrite(zeros, 1, kHeaderBytes, file_);  // placeholder; a failed write shows in ferror() at finish()
}

TokenShardWriter::~TokenShardWriter() {
    if (file_) {
        std::fclose(file_);
        std::remove(tmp_path_.c_str());
    }
}

void TokenShardWriter::add_document(const int32_t* ids, int64_t n) {
    if (n <= 0) return;
    staging_.resize((size_t)n * width_);
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= vocab_size_)
            throw Error(path_ + ": token id " + std::to_string(ids[i]) + " outside the vocabulary of " + std::to_string(vocab_size_));
        if (width_ == 2) {
            const uint16_t v = (uint16_t)ids[i];
            std::memcpy(&staging_[i * 2], &v, 2);
        } else {
            const uint32_t v = (uint32_t)ids[i];
            std::memcpy(&staging_[i * 4], &v, 4);
        }
    }
    if (std::fwrite(staging_.data(), 1, staging_.size(), file_) != staging_.size())
        throw Error(path_ + ": write failed: " + std::strerror(errno));
    checksum_.update(staging_.data(), staging_.size());
    token_count_ += n;
    doc_offsets_.push_back((uint64_t)token_count_);
}

void TokenShardWriter::finish() {
    if (!file_) throw Error(path_ + ": internal: finish() called twice");
    const size_t token_bytes = (size_t)token_count_ * width_;
    const unsigned char pad[8] = {};
    const size_t pad_bytes = align8(token_bytes) - token_bytes;
    std::fwrite(pad, 1, pad_bytes, file_);
    checksum_.update(pad, pad_bytes);
    const size_t offset_bytes = doc_offsets_.size() * sizeof(uint64_t);
    std::fwrite(doc_offsets_.data(), 1, offset_bytes, file_);
    checksum_.update(doc_offsets_.data(), offset_bytes);

    unsigned char header[kHeaderBytes] = {};
    std::memcpy(header, kTokenShardMagic, 8);
    put<uint32_t>(header, 8, kTokenShardVersion);
    put<uint32_t>(header, 12, width_);
    put<uint32_t>(header, 16, (uint32_t)vocab_size_);
    put<uint64_t>(header, 24, fingerprint_);
    put<uint64_t>(header, 32, (uint64_t)token_count_);
    put<uint64_t>(header, 40, (uint64_t)doc_count());
    put<uint64_t>(header, 56, file_checksum(header, checksum_.digest()));
    const bool ok = std::fseek(file_, 0, SEEK_SET) == 0 && std::fwrite(header, 1, kHeaderBytes, file_) == (size_t)kHeaderBytes &&
                    std::fflush(file_) == 0 && !std::ferror(file_) && fsync(fileno(file_)) == 0;
    const int err = errno;
    std::fclose(file_);
    file_ = nullptr;
    if (!ok || std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
        std::remove(tmp_path_.c_str());
        throw Error(path_ + ": could not write the shard: " + std::strerror(ok ? errno : err));
    }
}

// ---------------------------------------------------------------------------------------------
// Token shard reader

TokenShard::TokenShard(const std::string& path, const Tokenizer* vocab) : path_(path) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    if (fstat(fd, &st) != 0) {
        ::close(fd);
        throw Error(path + ": cannot stat: " + std::strerror(errno));
    }
    map_bytes_ = (size_t)st.st_size;
    if (map_bytes_ > 0) map_ = mmap(nullptr, map_bytes_, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (map_ == MAP_FAILED) {
        map_ = nullptr;
        throw Error(path + ": cannot map: " + std::strerror(errno));
    }
    try {
        const auto* bytes = static_cast<const unsigned char*>(map_);
        check_common_header(path, bytes, map_bytes_, kTokenShardMagic, kTokenShardVersion, "token shard");
        width_ = get<uint32_t>(bytes, 12);
        vocab_size_ = (int)get<uint32_t>(bytes, 16);
        fingerprint_ = get<uint64_t>(bytes, 24);
        token_count_ = (int64_t)get<uint64_t>(bytes, 32);
        doc_count_ = (int64_t)get<uint64_t>(bytes, 40);
        check_width(path, width_, vocab_size_);
        using u128 = unsigned __int128;
        const uint64_t n = get<uint64_t>(bytes, 32), d = get<uint64_t>(bytes, 40);
        check_size(path, map_bytes_, (u128)kHeaderBytes + ((u128)n * width_ + 7) / 8 * 8 + ((u128)d + 1) * 8);
        const size_t token_bytes = (size_t)token_count_ * width_;
        check_checksum(path, bytes, map_bytes_);
        check_vocab(path, vocab_size_, fingerprint_, vocab);
        tokens_ = bytes + kHeaderBytes;
        offsets_ = reinterpret_cast<const uint64_t*>(bytes + kHeaderBytes + align8(token_bytes));
        check_offsets(path, "doc_offsets", offsets_, doc_count_, (uint64_t)token_count_);
        check_token_ids(path, tokens_, width_, token_count_, vocab_size_);
    } catch (...) {
        munmap(map_, map_bytes_);
        map_ = nullptr;
        throw;
    }
}

TokenShard::~TokenShard() {
    if (map_) munmap(map_, map_bytes_);
}

TokenShard::TokenShard(TokenShard&& o) noexcept
    : path_(std::move(o.path_)), map_(o.map_), map_bytes_(o.map_bytes_), width_(o.width_), vocab_size_(o.vocab_size_),
      fingerprint_(o.fingerprint_), token_count_(o.token_count_), doc_count_(o.doc_count_), tokens_(o.tokens_), offsets_(o.offsets_) {
    o.map_ = nullptr;
}

void TokenShard::read(int64_t start, int64_t n, int32_t* out) const {
    for (int64_t i = 0; i < n; i++) out[i] = token(start + i);
}

// ---------------------------------------------------------------------------------------------
// Example shards: built in memory (they are small) and written atomically.

int64_t ExampleSet::token_count() const {
    int64_t n = 0;
    for (const Example& e : examples) n += (int64_t)e.ids.size();
    return n;
}

void write_example_shard(const std::string& path, const ExampleSet& set) {
    const uint32_t width = token_width_for(set.vocab_size);
    const int64_t count = (int64_t)set.examples.size();
    std::string payload;
    auto append = [&payload](const void* p, size_t n) { payload.append(static_cast<const char*>(p), n); };
    for (const std::string& name : set.label_names) {
        const uint32_t len = (uint32_t)name.size();
        append(&len, 4);
        append(name.data(), name.size());
    }
    payload.resize(align8(payload.size() + kHeaderBytes) - kHeaderBytes, '\0');
    uint64_t offset = 0;
    append(&offset, 8);
    for (const Example& e : set.examples) {
        offset += e.ids.size();
        append(&offset, 8);
    }
    for (const Example& e : set.examples) append(&e.second_start, 4);
    for (const Example& e : set.examples) {
        if (set.label_kind == LabelKind::Regression) append(&e.value, 4);
        else append(&e.label, 4);
    }
    for (const Example& e : set.examples)
        for (int32_t id : e.ids) {
            if (id < 0 || id >= set.vocab_size)
                throw Error(path + ": token id " + std::to_string(id) + " outside the vocabulary of " + std::to_string(set.vocab_size));
            if (width == 2) {
                const uint16_t v = (uint16_t)id;
                append(&v, 2);
            } else {
                append(&id, 4);
            }
        }

    unsigned char header[kHeaderBytes] = {};
    std::memcpy(header, kExampleShardMagic, 8);
    put<uint32_t>(header, 8, kExampleShardVersion);
    put<uint32_t>(header, 12, (uint32_t)set.label_kind);
    put<uint32_t>(header, 16, (uint32_t)set.label_names.size());
    put<uint32_t>(header, 20, (uint32_t)set.vocab_size);
    put<uint64_t>(header, 24, set.vocab_fingerprint);
    put<uint64_t>(header, 32, (uint64_t)count);
    put<uint64_t>(header, 40, (uint64_t)offset);
    put<uint32_t>(header, 48, (uint32_t)set.max_len);
    put<uint32_t>(header, 52, width);
    Checksum c;
    c.update(payload.data(), payload.size());
    put<uint64_t>(header, 56, file_checksum(header, c.digest()));
    write_file_atomic(path, std::string(reinterpret_cast<const char*>(header), kHeaderBytes) + payload);
}

namespace {

// Parses header and label names; returns the byte offset where the example table begins.
size_t parse_example_header(const std::string& path, const std::string& file, ExampleSet& set, int64_t& count,
                            int64_t& tokens, uint32_t& width) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(file.data());
    check_common_header(path, bytes, file.size(), kExampleShardMagic, kExampleShardVersion, "example shard");
    const uint32_t kind = get<uint32_t>(bytes, 12);
    if (kind > 2) fail(path, "label_kind", "is " + std::to_string(kind) + ", must be 0 (none), 1 (class) or 2 (regression)");
    set.label_kind = (LabelKind)kind;
    const uint32_t num_labels = get<uint32_t>(bytes, 16);
    set.vocab_size = (int)get<uint32_t>(bytes, 20);
    set.vocab_fingerprint = get<uint64_t>(bytes, 24);
    count = (int64_t)get<uint64_t>(bytes, 32);
    tokens = (int64_t)get<uint64_t>(bytes, 40);
    set.max_len = (int32_t)get<uint32_t>(bytes, 48);
    width = get<uint32_t>(bytes, 52);
    check_width(path, width, set.vocab_size);
    if ((set.label_kind == LabelKind::None) != (num_labels == 0) || (set.label_kind == LabelKind::Regression && num_labels != 1))
        fail(path, "num_labels", "is " + std::to_string(num_labels) + ", inconsistent with label_kind " + std::to_string(kind));
    if (set.max_len < 2 || set.max_len > kMaxExampleLength)
        fail(path, "max_len", "is " + std::to_string(set.max_len) + ", must be in [2, " + std::to_string(kMaxExampleLength) + "]");
    size_t pos = kHeaderBytes;
    for (uint32_t i = 0; i < num_labels; i++) {
        if (pos + 4 > file.size()) fail(path, "label_names", "label " + std::to_string(i) + " runs past the end of the file (truncated)");
        const uint32_t len = get<uint32_t>(bytes, pos);
        if (len > file.size() - pos - 4) fail(path, "label_names", "label " + std::to_string(i) + " runs past the end of the file (truncated)");
        set.label_names.emplace_back(file.data() + pos + 4, len);
        for (uint32_t j = 0; j < i; j++)
            if (set.label_names[j] == set.label_names[i]) fail(path, "label_names", "label '" + set.label_names[i] + "' appears twice");
        pos += 4 + len;
    }
    return align8(pos);
}

}  // namespace

ExampleSet read_example_shard_header(const std::string& path) {
    ExampleSet set = read_example_shard(path);  // everything validated, then the examples dropped
    set.examples.clear();
    set.examples.shrink_to_fit();
    return set;
}

ExampleSet read_example_shard(const std::string& path, const Tokenizer* vocab) {
    const std::string file = read_file(path);
    ExampleSet set;
    int64_t count, tokens;
    uint32_t width;
    const size_t table = parse_example_header(path, file, set, count, tokens, width);
    const auto* bytes = reinterpret_cast<const unsigned char*>(file.data());
    using u128 = unsigned __int128;
    const uint64_t e = get<uint64_t>(bytes, 32), n = get<uint64_t>(bytes, 40);  // unsigned: huge values stay huge
    check_size(path, file.size(), (u128)table + ((u128)e + 1) * 8 + (u128)e * 8 + (u128)n * width);
    check_checksum(path, bytes, file.size());
    check_vocab(path, set.vocab_size, set.vocab_fingerprint, vocab);

    std::vector<uint64_t> offsets(count + 1);
    std::memcpy(offsets.data(), bytes + table, offsets.size() * 8);
    check_offsets(path, "example_offsets", offsets.data(), count, (uint64_t)tokens);
    const size_t second_at = table + (size_t)(count + 1) * 8, label_at = second_at + (size_t)count * 4;
    const size_t tokens_at = label_at + (size_t)count * 4;
    check_token_ids(path, bytes + tokens_at, width, tokens, set.vocab_size);

    set.examples.resize(count);
    for (int64_t i = 0; i < count; i++) {
        Example& e = set.examples[i];
        const int64_t n = (int64_t)(offsets[i + 1] - offsets[i]);
        e.ids.resize(n);
        for (int64_t j = 0; j < n; j++) {
            const size_t at = tokens_at + (offsets[i] + j) * width;
            e.ids[j] = width == 2 ? get<uint16_t>(bytes, at) : (int32_t)get<uint32_t>(bytes, at);
        }
        if (n < 2 || n > set.max_len)
            fail(path, "example_offsets", "example " + std::to_string(i) + " has " + std::to_string(n) +
                                              " tokens, outside [2, max_len = " + std::to_string(set.max_len) + "]");
        e.second_start = get<int32_t>(bytes, second_at + i * 4);
        if (e.second_start != 0 && (e.second_start < 2 || e.second_start > n - 1))
            fail(path, "second_start", "example " + std::to_string(i) + " has second_start " + std::to_string(e.second_start) +
                                           ", must be 0 or in [2, " + std::to_string(n - 1) + "]");
        if (vocab && (e.ids[0] != vocab->cls_id || e.ids[n - 1] != vocab->sep_id ||
                      (e.second_start > 0 && e.ids[e.second_start - 1] != vocab->sep_id)))
            fail(path, "tokens", "example " + std::to_string(i) + " is not [CLS] A [SEP] (B [SEP])");
        if (set.label_kind == LabelKind::Regression) {
            e.value = get<float>(bytes, label_at + i * 4);
            if (!std::isfinite(e.value)) fail(path, "labels", "example " + std::to_string(i) + " has a non-finite target");
        } else {
            e.label = get<int32_t>(bytes, label_at + i * 4);
            const bool ok = set.label_kind == LabelKind::None ? e.label == -1 : e.label >= 0 && e.label < set.num_labels();
            if (!ok) fail(path, "labels", "example " + std::to_string(i) + " has label " + std::to_string(e.label) +
                                              " but the shard has " + std::to_string(set.num_labels()) + " labels");
        }
    }
    return set;
}

}  // namespace wr
