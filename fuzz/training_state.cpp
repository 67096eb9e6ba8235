// fuzz/training_state.cpp: fuzz target of the training-state reader (load_training_state,
// model/checkpoint.cpp) and of the data loader's position inside it (decode_loader_state,
// data/loader_state.cpp), as --resume reads them. The state is expected to belong to the
// parameter count and checksum its own header names, so that the reader goes past that check.
#include <cmath>

#include "data/loader_state.h"
#include "fuzz/fuzz.h"
#include "model/checkpoint.h"

namespace {

using namespace wr;

void read_state(const std::string& bytes) {
    const std::string path = fuzz::input_file("state.bin", bytes);
    const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
    const int64_t param_count = bytes.size() >= 32 ? get<int64_t>(b, 24) : 1;
    const uint64_t params_checksum = bytes.size() >= 40 ? get<uint64_t>(b, 32) : 0;
    fuzz::accepts([&] {
        const TrainingState s = load_training_state(path, param_count, params_checksum, "ckpt.bin");
        FUZZ_CHECK(s.progress.step >= 0 && !std::isnan(s.progress.best_val_loss));
        FUZZ_CHECK((int64_t)s.m.size() == param_count && (int64_t)s.v.size() == param_count);
        // The loader's 56 bytes, under whatever magic they carry (each loader has its own).
        const std::string& loader = s.progress.loader_state;
        char magic[8] = {'W', 'R', 'L', 'O', 'A', 'D', 'E', 'R'};
        if (loader.size() >= 8) std::memcpy(magic, loader.data(), 8);
        decode_loader_state(loader, magic, "loader_state", path);
    });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::with_sealed({reinterpret_cast<const char*>(data), size}, fuzz::seal_file_checksum, read_state);
    return 0;
}
