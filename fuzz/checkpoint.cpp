// fuzz/checkpoint.cpp: fuzz target of the checkpoint reader (load_checkpoint, model/checkpoint.cpp).
// An accepted checkpoint is used as --init uses one, short of building a model: its config and
// vocabulary fingerprint compared, its tensors looked up by name and copied out.
#include "fuzz/fuzz.h"
#include "model/checkpoint.h"

namespace {

using namespace wr;

constexpr size_t kTableAt = 128;  // header and config block (docs/checkpoints.md)

// The parameters' checksum (at 40: over the bytes after the tensor table, whose length is at 48),
// then the file checksum.
void seal(std::string& file) {
    if (file.size() >= kTableAt) {
        auto* b = reinterpret_cast<unsigned char*>(file.data());
        const uint64_t table_bytes = get<uint64_t>(b, 48);
        if (table_bytes <= file.size() - kTableAt) {
            const size_t params_at = kTableAt + (size_t)table_bytes;
            Checksum params;
            params.update(b + params_at, (file.size() - params_at) / 4 * 4);
            put<uint64_t>(b, 40, params.digest());
        }
    }
    fuzz::seal_file_checksum(file);
}

void read_checkpoint(const std::string& bytes) {
    const std::string path = fuzz::input_file("ckpt.bin", bytes);
    fuzz::accepts([&] {
        const Checkpoint ck = load_checkpoint(path);
        FUZZ_CHECK(ck.config.num_labels == ck.num_labels && !ck.tensors.empty());
        int64_t next = 0;
        for (const TensorSpec& t : ck.tensors) {
            int64_t elements = 1;
            for (int64_t d : t.shape) elements *= d;
            FUZZ_CHECK(t.offset == next && t.numel >= 1 && elements == t.numel && ck.find(t.name) == &t);
            next += t.numel;
        }
        FUZZ_CHECK(next == (int64_t)ck.params.size());
        FUZZ_CHECK(params_checksum(ck.params.data(), next) == ck.params_checksum);
        FUZZ_CHECK(fuzz::accepts([&] { check_same_config(ck, ck.config); }));
        FUZZ_CHECK(fuzz::accepts([&] { check_vocab_fingerprint(ck, ck.vocab_fingerprint); }));
        std::vector<float> copy(ck.params.size());
        FUZZ_CHECK(copy_matching_tensors(ck, ck.tensors, copy.data()).size() == ck.tensors.size());
        FUZZ_CHECK(std::memcmp(copy.data(), ck.params.data(), copy.size() * sizeof(float)) == 0);
    });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::with_sealed({reinterpret_cast<const char*>(data), size}, seal, read_checkpoint);
    return 0;
}
