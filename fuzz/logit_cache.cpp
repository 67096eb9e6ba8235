// fuzz/logit_cache.cpp: fuzz target of the class-logit cache reader (read_logit_cache,
// data/logit_cache.cpp). An accepted cache is checked as distill train checks one against its
// run, with the run's values taken from the cache itself (so it must pass).
#include <cmath>

#include "fuzz/fuzz.h"

namespace {

using namespace wr;

void read_cache(const std::string& bytes) {
    const std::string path = fuzz::input_file("cache.bin", bytes);
    fuzz::accepts([&] {
        const LogitCache cache = read_logit_cache(path);
        const LogitCacheHeader& h = cache.header;
        FUZZ_CHECK(h.kind == LogitCacheKind::Class && h.num_labels >= 1 && h.example_count >= 0 && h.chunk_size >= 1);
        FUZZ_CHECK((int64_t)cache.logits.size() == h.example_count * h.num_labels);
        for (float v : cache.logits) FUZZ_CHECK(std::isfinite(v));
        FUZZ_CHECK(fuzz::accepts([&] {
            check_logit_cache_matches(cache, "transfer.bin", h.teacher_fingerprint, h.transfer_fingerprint, h.example_count,
                                      h.num_labels);
        }));
    });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::with_sealed({reinterpret_cast<const char*>(data), size}, fuzz::seal_logit_cache, read_cache);
    return 0;
}
