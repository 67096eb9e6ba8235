// kernels/embedding.cpp: the three-table embedding lookup and its scatter-add backward (math in
// the header).
#include "kernels/embedding.h"

#include <algorithm>
#include <cstddef>

namespace wr {

namespace {
// Channels per task in the backward pass: fixed, so the split does not depend on the thread
// count. 64 floats = 4 cache lines, a whole number of lines per row touched.
constexpr int kChannelBlock = 64;
}  // namespace

void embedding_forward(float* out, const int* ids, const int* token_types, const float* wte, const float* wpe,
                       const float* wtt, int B, int T, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < B * T; n++) {
        const float* word = wte + (size_t)ids[n] * C;
        const float* pos = wpe + (size_t)(n % T) * C;
        const float* type = wtt + (size_t)(token_types ? token_types[n] : 0) * C;
        float* o = out + (size_t)n * C;
        for (int c = 0; c < C; c++) o[c] = word[c] + pos[c] + type[c];
    }
}

void embedding_backward(float* dwte, float* dwpe, float* dwtt, const float* dout, const int* ids,
                        const int* token_types, int B, int T, int C) {
    const int blocks = (C + kChannelBlock - 1) / kChannelBlock;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < blocks; blk++) {
        const int c0 = blk * kChannelBlock, c1 = std::min(C, c0 + kChannelBlock);
        for (int n = 0; n < B * T; n++) {  // tokens in order: the sums have a fixed order
            const float* d = dout + (size_t)n * C;
            float* word = dwte ? dwte + (size_t)ids[n] * C : nullptr;
            float* pos = dwpe ? dwpe + (size_t)(n % T) * C : nullptr;
            float* type = dwtt ? dwtt + (size_t)(token_types ? token_types[n] : 0) * C : nullptr;
            for (int c = c0; c < c1; c++) {
                if (word) word[c] += d[c];
                if (pos) pos[c] += d[c];
                if (type) type[c] += d[c];
            }
        }
    }
}

}  // namespace wr
