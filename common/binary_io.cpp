// common/binary_io.cpp: the checksum, and the header, size and checksum checks declared in binary_io.h.
#include "common/binary_io.h"

#include <cinttypes>
#include <cstdio>

#include "common/util.h"

namespace wr {

// ---------------------------------------------------------------------------------------------
// Checksum

void Checksum::mix(uint64_t word) {
    uint64_t h = state_ ^ word;
    h = (h << 31) | (h >> 33);
    state_ = h * 0x9e3779b97f4a7c15ULL;
}

void Checksum::update(const void* data, size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    length_ += n;
    while (n > 0 && pending_bytes_ > 0) {  // complete a word started by the previous call
        pending_[pending_bytes_++] = *p++;
        n--;
        if (pending_bytes_ == 8) {
            uint64_t w;
            std::memcpy(&w, pending_, 8);
            mix(w);
            pending_bytes_ = 0;
        }
    }
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        std::memcpy(&w, p, 8);
        mix(w);
    }
    if (n > 0) std::memcpy(pending_ + pending_bytes_, p, n);  // fewer than 8 bytes left; pending_bytes_ is 0 here
    pending_bytes_ += (int)n;  // (an empty update may come with a null pointer: an empty vector's data())
}

uint64_t Checksum::digest() const {
    Checksum c = *this;
    if (c.pending_bytes_ > 0) {
        uint64_t w = 0;
        std::memcpy(&w, c.pending_, c.pending_bytes_);
        c.mix(w);
    }
    c.mix(length_);
    return c.state_;
}

uint64_t file_checksum(const unsigned char* header, uint64_t payload_digest) {
    Checksum c(payload_digest);
    c.update(header, 56);
    return c.digest();
}

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
