// fuzz/mlm_topk_cache.cpp: fuzz target of the MLM top-k cache reader (read_mlm_topk_cache,
// data/logit_cache.cpp). Every row of an accepted cache is decoded as distill train --mlm decodes
// it, and checked against what the reader promises.
#include <cmath>

#include "fuzz/fuzz.h"

namespace {

using namespace wr;

void read_cache(const std::string& bytes) {
    const std::string path = fuzz::input_file("topk.bin", bytes);
    fuzz::accepts([&] {
        const MlmTopKCache cache = read_mlm_topk_cache(path);
        const MlmTopKSetup& s = cache.setup;
        const int k = cache.k();
        FUZZ_CHECK(k >= 1 && k <= s.vocab_size && s.seq_len >= 3 && cache.rows() >= 0);
        FUZZ_CHECK((int64_t)cache.group_begin.size() == cache.groups() + 1 && cache.group_begin.back() == cache.rows());
        std::vector<int32_t> ids(k);
        std::vector<float> values(k);
        for (int64_t g = 0; g < cache.groups(); g++) {
            FUZZ_CHECK(cache.group_begin[g] < cache.group_begin[g + 1]);
            for (int64_t r = cache.group_begin[g]; r < cache.group_begin[g + 1]; r++) {
                FUZZ_CHECK(cache.sequence(r) == cache.group_sequence[g] && cache.sequence(r) < s.sequence_count);
                FUZZ_CHECK(cache.position(r) >= 1 && cache.position(r) <= s.seq_len - 2);
                FUZZ_CHECK(cache.input_id(r) >= 0 && cache.input_id(r) < s.vocab_size);
                FUZZ_CHECK(cache.target(r) >= 0 && cache.target(r) < s.vocab_size);
                cache.topk(r, ids.data(), values.data());
                for (int j = 0; j < k; j++) {
                    FUZZ_CHECK(ids[j] >= 0 && ids[j] < s.vocab_size && std::isfinite(values[j]));
                    FUZZ_CHECK(j == 0 || values[j] <= values[j - 1]);
                }
            }
        }
        FUZZ_CHECK(fuzz::accepts([&] {
            check_mlm_topk_cache_matches(cache, "shards", cache.header.teacher_fingerprint, cache.header.transfer_fingerprint,
                                         s.vocab_fingerprint, s.sequence_count);
        }));
    });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::with_sealed({reinterpret_cast<const char*>(data), size}, fuzz::seal_logit_cache, read_cache);
    return 0;
}
