// common/binary_io.h: the pieces every reader and writer of the project's binary formats shares
// (token and example shards, checkpoints, training states; docs/formats.md, docs/checkpoints.md).
// Each such file starts with a 64-byte header: an 8-byte magic at 0, a uint32 version at 8, the
// file checksum at 56; all integers little-endian.
//
// The check_* helpers throw wr::Error through fail(), so every message names the file and the
// field: "ckpt_00000100.bin: field 'version': is 7, this build reads version 1".
// Not here: anything about one format's fields; each reader checks its own.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace wr {

constexpr int kHeaderBytes = 64;  // every format starts with a 64-byte header

// The checksum stored in every format (documented in docs/formats.md): a 64-bit multiply-rotate
// hash over little-endian 8-byte words, the last partial word zero-padded, the length mixed in.
// It can be fed in pieces of any size.
class Checksum {
  public:
    explicit Checksum(uint64_t seed = 0x9e3779b97f4a7c15ULL) : state_(seed) {}
    void update(const void* data, size_t n);
    uint64_t digest() const;  // does not change the state

  private:
    void mix(uint64_t word);
    uint64_t state_;
    uint64_t length_ = 0;
    unsigned char pending_[8] = {};
    int pending_bytes_ = 0;
};

// File checksum = Checksum(seed = checksum of the payload) over header bytes [0, 56).
uint64_t file_checksum(const unsigned char* header, uint64_t payload_digest);

// Fixed-size fields at a byte offset, little-endian (x86 and ARM are; the formats are defined so).
template <typename T>
void put(unsigned char* bytes, size_t offset, T value) {
    std::memcpy(bytes + offset, &value, sizeof(T));
}

template <typename T>
T get(const unsigned char* bytes, size_t offset) {
    T value;
    std::memcpy(&value, bytes + offset, sizeof(T));
    return value;
}

inline size_t align8(size_t n) { return (n + 7) & ~size_t(7); }

// "0123456789abcdef": a 64-bit fingerprint or checksum as the messages print it.
std::string hex64(uint64_t value);

// Header length, magic and version, in that order. `kind` names the format in the message
// ("not a checkpoint (expected magic 'WRCHKPNT')").
void check_common_header(const std::string& path, const unsigned char* bytes, size_t file_bytes,
                         const char (&magic)[8], uint32_t version, const char* kind);

// The file's exact length against the length its header describes. `expected` is computed by the
// caller in 128 bits from the header's counts, so absurd counts cannot overflow into a plausible
// size: they simply describe a file far longer than the real one.
void check_size(const std::string& path, size_t file_bytes, unsigned __int128 expected);

// The checksum a complete file should carry at bytes 56..63 (file_checksum over its header and
// payload), and the check that it does. The file must be at least 64 bytes long.
uint64_t compute_file_checksum(const unsigned char* bytes, size_t file_bytes);
void check_checksum(const std::string& path, const unsigned char* bytes, size_t file_bytes);

// Writers: fill bytes 56..63 of a complete file image with its checksum.
void seal_checksum(std::string& file);

}  // namespace wr
