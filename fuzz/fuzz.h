// fuzz/fuzz.h: what the libFuzzer targets in fuzz/ share (one target per reader, docs/fuzzing.md).
//
//   The input as a file   most readers take a path: the input is written to a file in a folder
//                         of this process (under $TMPDIR, else /dev/shm, else /tmp), reused for
//                         every input and removed at exit.
//   What is a finding     a reader may reject an input only by throwing wr::Error (accepts()
//                         returns false). Any other exception (std::bad_alloc, std::length_error,
//                         ...) is reported and aborts, as do a crash, a sanitizer report, a hang
//                         (libFuzzer's -timeout) and a broken invariant of an accepted input (FUZZ_CHECK).
//   Checksums             every binary format carries checksums, which random mutations almost
//                         never keep right. with_sealed() runs a target on the input as it is and
//                         again with its checksums recomputed, so mutations also reach the checks
//                         behind the checksum.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "common/binary_io.h"
#include "common/util.h"
#include "data/logit_cache.h"
#include "data/shards.h"
#include "data/tokenizer.h"

namespace wr::fuzz {

// This process's folder for input files, created on first use, removed at a normal exit (a crash
// leaves it behind, next to the finding).
inline const std::string& scratch_dir() {
    static const std::string dir = [] {
        std::string base = "/tmp";
        if (const char* t = std::getenv("TMPDIR"); t && *t) base = t;
        else if (access("/dev/shm", W_OK) == 0) base = "/dev/shm";
        std::string path = base + "/wellread_fuzz_XXXXXX";
        if (!mkdtemp(path.data())) {
            std::perror(("fuzz: cannot create a folder in " + base).c_str());
            std::abort();
        }
        static const std::string remove_at_exit = path;
        std::atexit([] {
            std::error_code ec;
            std::filesystem::remove_all(remove_at_exit, ec);
        });
        return path;
    }();
    return dir;
}

inline std::string scratch_path(const std::string& name) { return scratch_dir() + "/" + name; }

// Writes `bytes` to PATH (replacing it) without the library's helpers, which are under test.
inline void write_bytes(const std::string& path, std::string_view bytes) {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size() || std::fclose(f) != 0) {
        std::perror(("fuzz: cannot write " + path).c_str());
        std::abort();
    }
}

// The input as the file scratch_path(name); returns its path.
inline std::string input_file(const std::string& name, std::string_view bytes) {
    const std::string path = scratch_path(name);
    write_bytes(path, bytes);
    return path;
}

[[noreturn]] inline void finding(const std::string& what) {
    std::fprintf(stderr, "\nfuzz finding: %s\n", what.c_str());
    std::fflush(stderr);
    std::abort();
}

// An invariant of an input the reader accepted.
#define FUZZ_CHECK(condition)                                                                                                         \
    do {                                                                                                                              \
        if (!(condition))                                                                                                             \
            ::wr::fuzz::finding(std::string(__FILE__) + ":" + std::to_string(__LINE__) + ": accepted input breaks '" #condition "'"); \
    } while (0)

// Runs `read` on the current input: true when it returned, false when it threw wr::Error (a clear
// rejection). Any other exception is a finding.
template <typename Read>
bool accepts(Read&& read) {
    try {
        read();
        return true;
    } catch (const Error&) {
        return false;
    } catch (const std::exception& e) {
        finding(std::string("exception other than wr::Error: ") + typeid(e).name() + ": " + e.what());
    } catch (...) {
        finding("exception other than wr::Error (not a std::exception)");
    }
}

// Calls each(bytes), then each(sealed) where sealed is bytes after seal() recomputed its checksums,
// when that changed anything.
template <typename Each>
void with_sealed(std::string_view bytes, void (*seal)(std::string&), Each&& each) {
    const std::string original(bytes);
    each(original);
    std::string sealed = original;
    seal(sealed);
    if (sealed != original) each(sealed);
}

// Files with the 64-byte header of common/binary_io.h (shards, checkpoints, training states):
// the file checksum at bytes 56..63.
inline void seal_file_checksum(std::string& file) {
    if (file.size() >= (size_t)kHeaderBytes) seal_checksum(file);
}

// Teacher-logit caches (data/logit_cache.h): the MLM block's checksum (kind 2), the data
// checksum, then the header checksum, which covers the data checksum.
inline void seal_logit_cache(std::string& file) {
    if (file.size() < (size_t)kLogitCacheHeaderBytes) return;
    auto* b = reinterpret_cast<unsigned char*>(file.data());
    if (get<uint32_t>(b, 12) == (uint32_t)LogitCacheKind::MlmTopK && file.size() >= (size_t)kMlmTopKDataStart) {
        Checksum block;
        block.update(b + kLogitCacheHeaderBytes, kMlmTopKBlockBytes - 8);
        put<uint64_t>(b, kMlmTopKDataStart - 8, block.digest());
    }
    Checksum data;
    data.update(b + kLogitCacheHeaderBytes, file.size() - kLogitCacheHeaderBytes);
    put<uint64_t>(b, 56, data.digest());
    Checksum header;
    header.update(b, 64);
    put<uint64_t>(b, 64, header.digest());
}

// A vocabulary of n tokens (kMinFuzzVocab <= n): the five special tokens at ids 0..4 as `prepare vocab` puts
// them, then "w5", "w6", ... The last one built is kept (targets ask for the same size repeatedly).
inline const Tokenizer& vocab_of_size(int n) {
    static std::unique_ptr<Tokenizer> last;
    if (!last || last->vocab_size() != n) {
        std::vector<std::string> tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
        for (int i = 5; i < n; i++) tokens.push_back("w" + std::to_string(i));
        last = std::make_unique<Tokenizer>(std::move(tokens), "<fuzz vocabulary>");
    }
    return *last;
}

// The vocabulary sizes vocab_of_size() is asked for: from the five special tokens (a real
// vocabulary has them) to more than 65536, so that both token widths are covered.
constexpr int kMinFuzzVocab = 5, kMaxFuzzVocab = 1 << 17;

}  // namespace wr::fuzz
