// fuzz/logit_cache_partial.cpp: fuzz target of the logit-cache writer's resume: the input is the
// PATH.partial a killed `distill cache` left, and LogitCacheWriter opens it (data/logit_cache.cpp:
// header check, field comparison, which chunks to keep, truncation of the rest, the data checksum
// continued over them). The writer is opened with the header (and MLM block) the input itself
// holds, where it has them, so that resuming goes past the comparison of fields. A resumed class
// cache with few examples missing is then completed (zeros), finished and read back.
#include <sys/stat.h>

#include "fuzz/fuzz.h"

namespace {

using namespace wr;

constexpr int64_t kMaxAppendedValues = 1 << 16;

// The header and block fields at the input's offsets (docs/formats.md); where the input is too
// short for them, those of a small class cache.
LogitCacheHeader header_of(const std::string& bytes, MlmTopKSetup& setup) {
    LogitCacheHeader h;
    h.num_labels = 2;
    h.example_count = 10;
    h.chunk_size = 4;
    if (bytes.size() < (size_t)kLogitCacheHeaderBytes) return h;
    const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
    h = decode_logit_cache_header(b);
    if (h.kind == LogitCacheKind::MlmTopK && bytes.size() >= (size_t)kMlmTopKDataStart)
        setup = decode_mlm_topk_setup(b + kLogitCacheHeaderBytes);
    return h;
}

void resume(const std::string& bytes) {
    const std::string path = fuzz::scratch_path("cache.bin"), partial = path + ".partial";
    std::remove(path.c_str());
    fuzz::write_bytes(partial, bytes);
    MlmTopKSetup setup;
    const LogitCacheHeader h = header_of(bytes, setup);
    const bool mlm = h.kind == LogitCacheKind::MlmTopK;
    fuzz::accepts([&] {
        auto writer = mlm ? std::make_unique<LogitCacheWriter>(path, h, setup) : std::make_unique<LogitCacheWriter>(path, h);
        const int64_t done = writer->examples_done();
        FUZZ_CHECK(done == writer->examples_resumed() && done >= 0 && done <= h.example_count);
        FUZZ_CHECK(done == h.example_count || done % h.chunk_size == 0);
        // PATH.partial now holds the header (and block) alone when nothing was kept; else the values
        // region (its kept chunks in place) and one chunk-table entry per kept chunk after it, or,
        // for a sealed file with every row, the values region alone.
        const int64_t row_bytes = mlm ? mlm_topk_row_bytes(h, setup) : (int64_t)h.num_labels * logit_value_bytes(h.value_type);
        const int64_t data_start = mlm ? kMlmTopKDataStart : kLogitCacheHeaderBytes;
        const unsigned __int128 data_end = (unsigned __int128)data_start + (unsigned __int128)h.example_count * (uint64_t)row_bytes;
        const int64_t kept_chunks = done / h.chunk_size + (done % h.chunk_size != 0);
        struct stat st {};
        FUZZ_CHECK(stat(partial.c_str(), &st) == 0);
        const unsigned __int128 size = (unsigned __int128)st.st_size;
        FUZZ_CHECK(done == 0 ? size == (unsigned __int128)data_start
                             : size == data_end + (unsigned __int128)kept_chunks * 8 || (done == h.example_count && size == data_end));

        const int64_t missing = h.example_count - done;
        if (!mlm && missing <= kMaxAppendedValues / h.num_labels) {
            const std::vector<float> zeros((size_t)(missing * h.num_labels), 0.0f);
            writer->append(zeros.data(), missing);
        } else if (missing > 0) {
            return;
        }
        writer->finish();
        writer.reset();
        // The values kept from the input may be ones the reader refuses (not finite, rows out of
        // order), but what the writer wrote around them must be right: length and checksums.
        try {
            mlm ? (void)read_mlm_topk_cache(path) : (void)read_logit_cache(path);
        } catch (const Error& e) {
            const std::string what = e.what();
            FUZZ_CHECK(what.find("checksum") == std::string::npos && what.find("file size") == std::string::npos);
        }
    });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::with_sealed({reinterpret_cast<const char*>(data), size}, fuzz::seal_logit_cache, resume);
    return 0;
}
