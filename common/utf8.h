// common/utf8.h: strict UTF-8 decoding, shared by the tokenizer (which reads each invalid byte as
// U+FFFD) and the text reader (which counts the invalid bytes of a file to warn about them), so
// both agree on what is invalid.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace wr {

// Decodes the multi-byte character at p (*p >= 0x80) into c and moves p past it. An invalid,
// truncated, overlong or surrogate sequence returns false, consuming one byte.
inline bool decode_utf8(const unsigned char*& p, const unsigned char* end, uint32_t& c) {
    const unsigned char b = *p;
    size_t n;
    uint32_t min;
    if (b >= 0xC2 && b <= 0xDF) n = 2, c = b & 0x1F, min = 0x80;
    else if (b >= 0xE0 && b <= 0xEF) n = 3, c = b & 0x0F, min = 0x800;
    else if (b >= 0xF0 && b <= 0xF4) n = 4, c = b & 0x07, min = 0x10000;
    else return p++, false;
    if ((size_t)(end - p) < n) return p++, false;
    for (size_t k = 1; k < n; k++) {
        if ((p[k] & 0xC0) != 0x80) return p++, false;
        c = (c << 6) | (p[k] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return p++, false;
    p += n;
    return true;
}

// How many bytes of s are not part of a valid UTF-8 character (each one decode_utf8 consumes as
// invalid); 0 for valid UTF-8.
inline int64_t invalid_utf8_bytes(std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* end = p + s.size();
    int64_t invalid = 0;
    uint32_t c;
    while (p < end)
        if (*p < 0x80) p++;
        else invalid += !decode_utf8(p, end, c);
    return invalid;
}

}  // namespace wr
