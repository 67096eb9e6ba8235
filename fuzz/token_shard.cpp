// fuzz/token_shard.cpp: fuzz target of the token-shard reader (wr::TokenShard, data/shards.cpp).
// The input is read as a shard; an accepted shard is walked whole, fingerprinted as distill does,
// and read again against a vocabulary of its size, which it must pass too.
#include "fuzz/fuzz.h"

namespace {

using namespace wr;

// What the reader promises of a shard it accepted.
void check_shard(const TokenShard& s) {
    FUZZ_CHECK(s.token_count() >= 0 && s.doc_count() >= 0);
    FUZZ_CHECK(s.token_width() == token_width_for(s.vocab_size()));
    for (int64_t d = 0; d < s.doc_count(); d++)
        FUZZ_CHECK(s.doc_begin(d) <= s.doc_end(d) && (d == 0 ? s.doc_begin(d) == 0 : s.doc_begin(d) == s.doc_end(d - 1)));
    FUZZ_CHECK(s.doc_count() == 0 ? s.token_count() == 0 : s.doc_end(s.doc_count() - 1) == s.token_count());
    std::vector<int32_t> ids((size_t)s.token_count());
    s.read(0, s.token_count(), ids.data());
    for (int32_t id : ids) FUZZ_CHECK(id >= 0 && id < s.vocab_size());
}

void read_shard(const std::string& bytes) {
    const std::string path = fuzz::input_file("shard.bin", bytes);
    int vocab_size = 0;
    const bool accepted = fuzz::accepts([&] {
        TokenShard shard(path);
        check_shard(shard);
        vocab_size = shard.vocab_size();
        std::vector<TokenShard> shards;
        shards.push_back(std::move(shard));
        token_shards_fingerprint(shards);
    });
    if (!accepted || vocab_size < fuzz::kMinFuzzVocab || vocab_size > fuzz::kMaxFuzzVocab) return;

    // The same shard made with a vocabulary of its size: its fingerprint put in, checksum resealed.
    const Tokenizer& vocab = fuzz::vocab_of_size(vocab_size);
    std::string matching = bytes;
    put<uint64_t>(reinterpret_cast<unsigned char*>(matching.data()), 24, vocab.fingerprint());
    seal_checksum(matching);
    const std::string again = fuzz::input_file("shard.bin", matching);
    FUZZ_CHECK(fuzz::accepts([&] { check_shard(TokenShard(again, &vocab)); }));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::with_sealed({reinterpret_cast<const char*>(data), size}, fuzz::seal_file_checksum, read_shard);
    return 0;
}
