// common/binary_io.cpp: the header, size and checksum checks declared in binary_io.h.
#include "common/binary_io.h"

#include <cinttypes>
#include <cstdio>

#include "common/util.h"
#include "data/shards.h"  // Checksum, file_checksum, kHeaderBytes

namespace wr {

std::string hex64(uint64_t value) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016" PRIx64, value);
    return buf;
}

void check_common_header(const std::string& path, const unsigned char* bytes, size_t file_bytes,
                         const char (&magic)[8], uint32_t version, const char* kind) {
    if (file_bytes < (size_t)kHeaderBytes)
        fail(path, "header", "file is " + std::to_string(file_bytes) + " bytes, shorter than the " +
                                 std::to_string(kHeaderBytes) + "-byte header (truncated?)");
    if (std::memcmp(bytes, magic, 8) != 0)
        fail(path, "magic", std::string("not a ") + kind + " (expected magic '" + std::string(magic, 8) + "')");
    const uint32_t v = get<uint32_t>(bytes, 8);
    if (v != version)
        fail(path, "version", "is " + std::to_string(v) + ", this build reads version " + std::to_string(version));
}

void check_size(const std::string& path, size_t file_bytes, unsigned __int128 expected) {
    if (file_bytes == expected) return;
    const std::string described = expected > (unsigned __int128)INT64_MAX ? "more than 2^63" : std::to_string((uint64_t)expected);
    fail(path, "file size", "is " + std::to_string(file_bytes) + " bytes but the header describes " + described +
                                (file_bytes < expected ? " (truncated)" : " (trailing bytes)"));
}

uint64_t compute_file_checksum(const unsigned char* bytes, size_t file_bytes) {
    Checksum payload;
    payload.update(bytes + kHeaderBytes, file_bytes - kHeaderBytes);
    return file_checksum(bytes, payload.digest());
}

void check_checksum(const std::string& path, const unsigned char* bytes, size_t file_bytes) {
    if (compute_file_checksum(bytes, file_bytes) != get<uint64_t>(bytes, 56))
        fail(path, "checksum", "does not match the contents: the file is corrupted");
}

void seal_checksum(std::string& file) {
    auto* bytes = reinterpret_cast<unsigned char*>(file.data());
    put<uint64_t>(bytes, 56, compute_file_checksum(bytes, file.size()));
}

}  // namespace wr
