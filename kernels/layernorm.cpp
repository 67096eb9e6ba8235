// kernels/layernorm.cpp: LayerNorm forward and backward (math in the header). Rows are
// independent in the forward pass and for dinp; dweight and dbias are column sums, computed one
// block of channels per task so that each channel is summed by one thread, in row order.
#include "kernels/layernorm.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace wr {

namespace {
// Channels per task in the column sums: a fixed number (not derived from the thread count), so
// the work split, and therefore every rounding, is the same for any number of threads.
constexpr int kChannelBlock = 16;
}  // namespace

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int N, int C, float eps) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float* x = inp + (size_t)n * C;
        float* y = out + (size_t)n * C;
        float sum = 0.0f;
        for (int c = 0; c < C; c++) sum += x[c];
        const float m = sum / C;
        float sq = 0.0f;  // two passes: the variance of centered values does not cancel
        for (int c = 0; c < C; c++) sq += (x[c] - m) * (x[c] - m);
        const float s = 1.0f / std::sqrt(sq / C + eps);
        for (int c = 0; c < C; c++) y[c] = (x[c] - m) * s * weight[c] + bias[c];
        mean[n] = m;
        rstd[n] = s;
    }
}

void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int N, int C) {
    if (dinp) {
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++) {
            const float* x = inp + (size_t)n * C;
            const float* dy = dout + (size_t)n * C;
            float* dx = dinp + (size_t)n * C;
            const float m = mean[n], s = rstd[n];
            float g_mean = 0.0f, g_xhat_mean = 0.0f;  // mean_c(g), mean_c(g * xhat)
            for (int c = 0; c < C; c++) {
                const float g = dy[c] * weight[c];
                g_mean += g;
                g_xhat_mean += g * (x[c] - m) * s;
            }
            g_mean /= C;
            g_xhat_mean /= C;
            for (int c = 0; c < C; c++) {
                const float xhat = (x[c] - m) * s;
                dx[c] += s * (dy[c] * weight[c] - g_mean - xhat * g_xhat_mean);
            }
        }
    }
    if (dweight || dbias) {
        const int blocks = (C + kChannelBlock - 1) / kChannelBlock;
#pragma omp parallel for schedule(static)
        for (int blk = 0; blk < blocks; blk++) {
            const int c0 = blk * kChannelBlock, width = std::min(kChannelBlock, C - c0);
            float dw[kChannelBlock] = {}, db[kChannelBlock] = {};
            for (int n = 0; n < N; n++) {
                const float* x = inp + (size_t)n * C + c0;
                const float* dy = dout + (size_t)n * C + c0;
                const float m = mean[n], s = rstd[n];
                for (int c = 0; c < width; c++) {
                    dw[c] += dy[c] * (x[c] - m) * s;
                    db[c] += dy[c];
                }
            }
            for (int c = 0; c < width; c++) {
                if (dweight) dweight[c0 + c] += dw[c];
                if (dbias) dbias[c0 + c] += db[c];
            }
        }
    }
}

}  // namespace wr
