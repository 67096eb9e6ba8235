// data/loader_state.cpp: the 56-byte loader position of data/loader_state.h.
#include "data/loader_state.h"

#include <cstring>

#include "common/util.h"

namespace wr {

namespace {
constexpr uint32_t kVersion = 1;

template <class T>
void put(std::string& bytes, size_t at, T value) {
    std::memcpy(&bytes[at], &value, sizeof value);  // little-endian hosts only, as every format here
}
template <class T>
T get(const std::string& bytes, size_t at) {
    T value;
    std::memcpy(&value, &bytes[at], sizeof value);
    return value;
}
}  // namespace

std::string encode_loader_state(const LoaderState& s, const char (&magic)[8]) {
    std::string bytes(kLoaderStateBytes, '\0');
    std::memcpy(&bytes[0], magic, 8);
    put<uint32_t>(bytes, 8, kVersion);
    put<uint64_t>(bytes, 16, s.seed);
    put<int64_t>(bytes, 24, s.epoch);
    put<int64_t>(bytes, 32, s.position);
    put<uint64_t>(bytes, 40, s.setup);
    put<uint64_t>(bytes, 48, fnv1a64(bytes.data(), 48));
    return bytes;
}

LoaderState decode_loader_state(const std::string& bytes, const char (&magic)[8], const std::string& field, const std::string& source) {
    if (bytes.size() != kLoaderStateBytes)
        fail(source, field, "is " + std::to_string(bytes.size()) + " bytes, expected " + std::to_string(kLoaderStateBytes));
    if (std::memcmp(bytes.data(), magic, 8) != 0) fail(source, field + ".magic", "is not " + std::string(magic, 8));
    if (get<uint32_t>(bytes, 8) != kVersion)
        fail(source, field + ".version", "is " + std::to_string(get<uint32_t>(bytes, 8)) + ", this build reads version " +
                                             std::to_string(kVersion));
    if (get<uint64_t>(bytes, 48) != fnv1a64(bytes.data(), 48)) fail(source, field + ".checksum", "does not match: the state is corrupted");
    LoaderState s;
    s.seed = get<uint64_t>(bytes, 16);
    s.epoch = get<int64_t>(bytes, 24);
    s.position = get<int64_t>(bytes, 32);
    s.setup = get<uint64_t>(bytes, 40);
    return s;
}

}  // namespace wr
