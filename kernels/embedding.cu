// kernels/embedding.cu: the three-table embedding lookup on the GPU and its deterministic
// backward (declarations in embedding.cuh, math in embedding.h).
//
// Backward without atomics:
//   dwpe[t]    one thread per (t, c) sums dout[b, t, c] over b in order.
//   dwte[id]   the rows are sorted by id (CUB's stable radix sort: rows of one id stay in row
//              order), and each id's run of sorted rows is summed in order by one block, the
//              one whose chunk of kChunk sorted positions the run starts in. A run that goes on
//              past its chunk (a frequent id: [PAD], [MASK], "the") would leave that block
//              working alone for thousands of rows, so the parts of it in later chunks, their
//              "heads", are summed first, in parallel, one per chunk, and the run's block then
//              adds those sums in chunk order.
//   dwtt[type] the same with the rows sorted by token type.
// Every sum has a fixed order, so two runs give the same bits.
#include <cub/cub.cuh>

#include <algorithm>
#include <cstdint>

#include "kernels/embedding.cuh"

namespace wr::cuda {

namespace {

constexpr int kForwardWarps = 8;      // rows per block in the forward pass
constexpr int kChunk = 32;            // sorted positions per block in the segment sums
constexpr int kChannelThreads = 128;  // channels per block in the segment sums (one per thread)

// out[n, :] = wte[ids[n], :] + wpe[n % T, :] + wtt[types[n], :], one warp per row n of [B T, C].
// Added in that order in float, as the CPU does.
template <typename T>
__global__ void embedding_forward_kernel(T* out, const int* ids, const int* types, const T* wte, const T* wpe,
                                         const T* wtt, int N, int T_, int C) {
    const int n = blockIdx.x * kForwardWarps + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (n >= N) return;
    const T* word = wte + (int64_t)ids[n] * C;
    const T* pos = wpe + (int64_t)(n % T_) * C;
    const T* type = wtt + (int64_t)(types ? types[n] : 0) * C;
    T* o = out + (int64_t)n * C;
    for (int c = lane; c < C; c += 32) o[c] = from_float<T>(to_float(word[c]) + to_float(pos[c]) + to_float(type[c]));
}

// dwpe[t, c] += sum_b dout[b, t, c], b in order; one thread per element i = t C + c of [T, C].
template <typename T>
__global__ void position_backward_kernel(float* dwpe, const T* dout, int B, int T_, int C) {
    const int64_t TC = (int64_t)T_ * C;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < TC; i += (int64_t)gridDim.x * blockDim.x) {
        float acc = dwpe[i];
        for (int b = 0; b < B; b++) acc += to_float(dout[b * TC + i]);
        dwpe[i] = acc;
    }
}

__global__ void iota_kernel(int* out, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) out[i] = i;
}

// ---- Sums over runs of sorted keys ----
// keys[N] ascending, rows[N] the source row of each sorted position. For every key,
//   dst[key, :] += sum of src[rows[j], :] over the positions j of its run, in j order.
// Chunk q is the positions [q kChunk, min(N, (q + 1) kChunk)). The head of chunk q: the positions
// at its start that continue a run begun in an earlier chunk (none if position q kChunk starts
// a run). Both kernels: grid (chunks, channel blocks), one thread per channel c.

// The end of the run that contains position s, looking no further than `end`.
__device__ __forceinline__ int run_end(const int* keys, int s, int end) {
    const int key = keys[s];
    while (s < end && keys[s] == key) s++;
    return s;
}

// acc + src[rows[s], c] + ... + src[rows[e - 1], c], added in that order.
template <typename T>
__device__ __forceinline__ float sum_rows(float acc, const T* src, const int* rows, int s, int e, int C, int c) {
#pragma unroll 4
    for (int j = s; j < e; j++) acc += to_float(src[(int64_t)rows[j] * C + c]);
    return acc;
}

// heads[q, c] = the sum of chunk q's head rows (left unwritten where chunk q has no head).
template <typename T>
__global__ void run_heads_kernel(float* heads, const T* src, const int* keys, const int* rows, int N, int C) {
    const int q = blockIdx.x, c = blockIdx.y * blockDim.x + threadIdx.x;
    const int begin = q * kChunk, end = min(N, begin + kChunk);
    if (c >= C || begin == 0 || keys[begin] != keys[begin - 1]) return;
    heads[(int64_t)q * C + c] = sum_rows(0.0f, src, rows, begin, run_end(keys, begin, end), C, c);
}

// For each run that starts in chunk q: dst[key, c] += its rows in chunk q, then, if it reaches
// the chunk's end, the heads of the chunks q + 1, q + 2, ... that begin with the same key. One
// block per chunk owns the runs starting there, so every dst row has one writer.
template <typename T>
__global__ void run_sums_kernel(float* dst, const float* heads, const T* src, const int* keys, const int* rows, int N,
                                int C) {
    const int q = blockIdx.x, c = blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= C) return;
    const int chunks = (N + kChunk - 1) / kChunk, begin = q * kChunk, end = min(N, begin + kChunk);
    int s = begin;
    if (s > 0 && keys[s] == keys[s - 1]) s = run_end(keys, s, end);  // skip the head: not ours
    while (s < end) {
        const int key = keys[s], e = run_end(keys, s, end);
        float* d = dst + (int64_t)key * C + c;
        float acc = sum_rows(*d, src, rows, s, e, C, c);
        if (e == end)
            for (int next = q + 1; next < chunks && keys[next * kChunk] == key; next++) acc += heads[(int64_t)next * C + c];
        *d = acc;
        s = e;
    }
}

template <typename T>
void sum_runs(float* dst, float* heads, const T* src, const int* keys, const int* rows, int N, int C) {
    const dim3 grid(ceil_div(N, kChunk), ceil_div(C, kChannelThreads));
    run_heads_kernel<<<grid, kChannelThreads, 0, stream()>>>(heads, src, keys, rows, N, C);
    WR_CUDA_CHECK_LAUNCH();
    run_sums_kernel<<<grid, kChannelThreads, 0, stream()>>>(dst, heads, src, keys, rows, N, C);
    WR_CUDA_CHECK_LAUNCH();
}

size_t align256(size_t bytes) { return (bytes + 255) / 256 * 256; }

}  // namespace

template <typename T>
void embedding_forward(T* out, const int* ids, const int* token_types, const T* wte, const T* wpe, const T* wtt, int B,
                       int T_, int C) {
    const int N = B * T_;
    if (N <= 0 || C <= 0) return;
    embedding_forward_kernel<<<ceil_div(N, kForwardWarps), kForwardWarps * 32, 0, stream()>>>(out, ids, token_types, wte,
                                                                                              wpe, wtt, N, T_, C);
    WR_CUDA_CHECK_LAUNCH();
}

template <typename T>
void embedding_backward(float* dwte, float* dwpe, float* dwtt, const T* dout, const int* ids, const int* token_types, int B,
                        int T_, int C) {
    const int N = B * T_;
    if (N <= 0 || C <= 0) return;
    if (dwpe) {
        const unsigned blocks = std::min(ceil_div((int64_t)T_ * C, 256), 4096u);
        position_backward_kernel<<<blocks, 256, 0, stream()>>>(dwpe, dout, B, T_, C);
        WR_CUDA_CHECK_LAUNCH();
    }
    if (!dwte && !dwtt) return;

    // Scratch: row numbers 0..N-1, the sorted keys and their rows, the chunk heads, CUB's space.
    size_t sort_bytes = 0;
    WR_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, (const int*)nullptr, (int*)nullptr,
                                                  (const int*)nullptr, (int*)nullptr, N, 0, 32, stream()));
    const size_t index_bytes = align256(sizeof(int) * (size_t)N);
    const size_t heads_bytes = align256(sizeof(float) * (size_t)ceil_div(N, kChunk) * C);
    char* base = (char*)scratch(3 * index_bytes + heads_bytes + sort_bytes);
    int* row_numbers = (int*)base;
    int* sorted_keys = (int*)(base + index_bytes);
    int* sorted_rows = (int*)(base + 2 * index_bytes);
    float* heads = (float*)(base + 3 * index_bytes);
    void* sort_space = base + 3 * index_bytes + heads_bytes;

    iota_kernel<<<ceil_div(N, 256), 256, 0, stream()>>>(row_numbers, N);
    WR_CUDA_CHECK_LAUNCH();
    // Stable: the rows of one key keep their order.
    const auto sort_rows_by = [&](const int* keys) {
        size_t bytes = sort_bytes;
        WR_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(sort_space, bytes, keys, sorted_keys, row_numbers, sorted_rows, N, 0,
                                                      32, stream()));
    };
    if (dwte) {
        sort_rows_by(ids);
        sum_runs(dwte, heads, dout, sorted_keys, sorted_rows, N, C);
    }
    if (dwtt) {
        if (token_types) {
            sort_rows_by(token_types);
            sum_runs(dwtt, heads, dout, sorted_keys, sorted_rows, N, C);
        } else {  // every token is type 0: already sorted, one run in row order
            WR_CUDA_CHECK(cudaMemsetAsync(sorted_keys, 0, sizeof(int) * (size_t)N, stream()));
            sum_runs(dwtt, heads, dout, sorted_keys, row_numbers, N, C);
        }
    }
}

#define WR_INSTANTIATE(T)                                                                                       \
    template void embedding_forward<T>(T*, const int*, const int*, const T*, const T*, const T*, int, int, int); \
    template void embedding_backward<T>(float*, float*, float*, const T*, const int*, const int*, int, int, int);
WR_INSTANTIATE(float)
WR_INSTANTIATE(bf16)
#undef WR_INSTANTIATE

}  // namespace wr::cuda
