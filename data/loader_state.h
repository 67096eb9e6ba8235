// data/loader_state.h: where a data loader stands in its stream (seed, epoch, position, and a
// fingerprint of the data and options it belongs to), as the 56 bytes a training state stores.
// The MLM batcher and the example batcher share the layout, each with its own magic:
//   0  magic (8)   8 version uint32 (1)   12 reserved (4)   16 seed uint64   24 epoch int64
//   32 position int64   40 setup uint64   48 checksum: fnv1a64 of bytes 0..47
#pragma once
#include <cstdint>
#include <string>

namespace wr {

struct LoaderState {
    uint64_t seed = 0;
    int64_t epoch = 0;     // epochs completed
    int64_t position = 0;  // where the current epoch stands (the loader says in what unit)
    uint64_t setup = 0;    // fingerprint of the data and options the state belongs to
};

constexpr size_t kLoaderStateBytes = 56;

std::string encode_loader_state(const LoaderState& state, const char (&magic)[8]);
// Throws wr::Error naming `source` and `field` (e.g. "mlm_batcher_state") on a wrong size,
// magic, version or checksum.
LoaderState decode_loader_state(const std::string& bytes, const char (&magic)[8], const std::string& field,
                                const std::string& source);

}  // namespace wr
