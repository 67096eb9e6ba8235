// common/random.h: SplitMix64, the one integer hash and generator the project uses for
// everything that must be reproducible on every platform (data order, masks, dropout, weight
// initialization, the generated corpus). No std:: distributions: their output differs between
// standard libraries. Usable from CUDA code too.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define WR_HOST_DEVICE __host__ __device__
#else
#define WR_HOST_DEVICE
#endif

namespace wr {

constexpr uint64_t kGoldenGamma = 0x9E3779B97F4A7C15ULL;  // SplitMix64's state increment

// The SplitMix64 output function (finalizer): a bijection on 64-bit integers with full avalanche.
WR_HOST_DEVICE inline uint64_t splitmix64_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

// One SplitMix64 draw: advance the state by the golden gamma, return its mix.
WR_HOST_DEVICE inline uint64_t splitmix64_next(uint64_t& state) { return splitmix64_mix(state += kGoldenGamma); }

}  // namespace wr
