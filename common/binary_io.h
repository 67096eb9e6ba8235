// common/binary_io.h: the pieces every reader and writer of the project's binary formats shares
// (token and example shards, checkpoints, training states; docs/formats.md, docs/checkpoints.md).
// Each such file starts with a 64-byte header: an 8-byte magic at 0, a uint32 version at 8, the
// file checksum at 56; all integers little-endian. The checksum itself (wr::Checksum and
// file_checksum) is declared in data/shards.h, where the first formats defined it.
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
