// fuzz/example_shard.cpp: fuzz target of the example-shard reader (read_example_shard,
// read_example_shard_header, data/shards.cpp). The input is read as a shard; an accepted shard is
// checked against what trainers rely on, fingerprinted as distill does, and read again against a
// vocabulary of its size (which adds the [CLS]/[SEP] checks).
#include <cmath>

#include "fuzz/fuzz.h"

namespace {

using namespace wr;

// What the reader promises of a set it accepted (docs/formats.md, "Example shard").
void check_set(const ExampleSet& set, const Tokenizer* vocab) {
    FUZZ_CHECK(set.max_len >= 2 && set.max_len <= kMaxExampleLength);
    const int K = set.num_labels();
    FUZZ_CHECK(set.label_kind == LabelKind::None ? K == 0 : set.label_kind == LabelKind::Regression ? K == 1 : K >= 1);
    for (const Example& e : set.examples) {
        const int n = (int)e.ids.size();
        FUZZ_CHECK(n >= 2 && n <= set.max_len);
        FUZZ_CHECK(e.second_start == 0 || (e.second_start >= 2 && e.second_start <= n - 1));
        for (int32_t id : e.ids) FUZZ_CHECK(id >= 0 && id < set.vocab_size);
        if (vocab) FUZZ_CHECK(e.ids[0] == vocab->cls_id && e.ids[n - 1] == vocab->sep_id);
        if (set.label_kind == LabelKind::Class) FUZZ_CHECK(e.label >= 0 && e.label < K);
        if (set.label_kind == LabelKind::None) FUZZ_CHECK(e.label == -1);
        if (set.label_kind == LabelKind::Regression) FUZZ_CHECK(std::isfinite(e.value));
    }
}

void read_shard(const std::string& bytes) {
    const std::string path = fuzz::input_file("examples.bin", bytes);
    int vocab_size = 0;
    const bool accepted = fuzz::accepts([&] {
        const ExampleSet set = read_example_shard(path);
        check_set(set, nullptr);
        examples_fingerprint(set);
        const ExampleSet header = read_example_shard_header(path);
        FUZZ_CHECK(header.examples.empty() && header.label_names == set.label_names);
        vocab_size = set.vocab_size;
    });
    if (!accepted || vocab_size < fuzz::kMinFuzzVocab || vocab_size > fuzz::kMaxFuzzVocab) return;

    // The same shard made with a vocabulary of its size: its fingerprint put in, checksum resealed.
    const Tokenizer& vocab = fuzz::vocab_of_size(vocab_size);
    std::string matching = bytes;
    put<uint64_t>(reinterpret_cast<unsigned char*>(matching.data()), 24, vocab.fingerprint());
    seal_checksum(matching);
    const std::string again = fuzz::input_file("examples.bin", matching);
    fuzz::accepts([&] { check_set(read_example_shard(again, &vocab), &vocab); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::with_sealed({reinterpret_cast<const char*>(data), size}, fuzz::seal_file_checksum, read_shard);
    return 0;
}
