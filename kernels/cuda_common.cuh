// kernels/cuda_common.cuh: what every CUDA op in kernels/*.cu shares: error checks that throw
// wr::Error, the stream, cuBLASLt handle and reusable scratch buffer of each device, setup done
// once per device, the float <-> bf16 conversions, warp and block reductions, a small owning
// device array and a page-locked host array.
//
// Conventions of the CUDA ops (in addition to kernels/common.h, which all of them follow):
//   - Each CUDA op sits beside its CPU op, in namespace wr::cuda, with the same name and the same
//     argument order; pointers are device pointers. Activations and their gradients have the
//     element type T, float (--precision fp32) or bf16 (mixed precision); arithmetic is float.
//     Parameter GRADIENTS are always float (fp32 accumulation of every contribution); parameters
//     are read as T (the model keeps fp32 master weights and a T copy refreshed once per step).
//   - Every op runs on wr::cuda::stream() and returns without synchronizing.
//   - Deterministic: no floating-point atomics; reductions over rows go through per-block
//     partial sums reduced in a fixed order, so two runs give identical bits.
//   - backward ACCUMULATES (+=) into every gradient it is given (null: not needed), as on the CPU.
#pragma once
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <string>
#include <utility>

namespace wr::cuda {

using bf16 = __nv_bfloat16;

// ---- Errors: a failed call becomes wr::Error naming the call, the file and the line. ----
void check(cudaError_t status, const char* call, const char* file, int line);
void check(cublasStatus_t status, const char* call, const char* file, int line);
#define WR_CUDA_CHECK(call) ::wr::cuda::check((call), #call, __FILE__, __LINE__)
// After a kernel launch: reports a bad launch configuration at once.
#define WR_CUDA_CHECK_LAUNCH() ::wr::cuda::check(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)

// ---- The device. ----
// "" when a CUDA device can be used; otherwise why not, in words ("no CUDA driver is loaded",
// "no CUDA device is present", ...). Asks the runtime once and remembers the answer.
std::string device_unavailable_reason();
inline bool device_available() { return device_unavailable_reason().empty(); }
std::string device_name();  // "NVIDIA H100 80GB HBM3", for logs and benchmark tables

// Per-device state. A process may drive several GPUs (one thread or one model per device, as
// data-parallel training will): everything below belongs to the CURRENT device (cudaSetDevice),
// created the first time an op runs there, never torn down (the process exit releases it).
constexpr int kMaxDevices = 64;
int current_device();         // cudaGetDevice, checked to be below kMaxDevices
int multiprocessor_count();   // the current device's SM count (asked once per device)

// The stream every op of the current device runs on, its cuBLASLt handle and workspace.
cudaStream_t stream();
cublasLtHandle_t cublaslt();
void* cublaslt_workspace();
constexpr size_t kCublasLtWorkspaceBytes = 32u << 20;

// Scratch device memory for the inside of one op call (partial sums and the like): valid until
// the next scratch() call. Grows when asked for more; never shrinks. Ops run one after another
// on the device's one stream, so one buffer per device serves them all.
void* scratch(size_t bytes);

// Setup that must happen once on every device (a kernel's shared-memory opt-in, which belongs to
// the device's context): a static OncePerDevice runs it the first time it is called on each device.
//   static OncePerDevice ready;
//   ready([&] { WR_CUDA_CHECK(cudaFuncSetAttribute(kernel, ...)); });
class OncePerDevice {
  public:
    template <typename F>
    void operator()(F&& setup) {
        std::call_once(done_[current_device()], std::forward<F>(setup));
    }

  private:
    std::once_flag done_[kMaxDevices];
};

// Makes `device` current for its lifetime and restores the previous device after (the GPU model
// holds one so that its calls run on its own device whatever the thread's current one is).
class DeviceGuard {
  public:
    explicit DeviceGuard(int device);
    ~DeviceGuard();
    DeviceGuard(const DeviceGuard&) = delete;
    DeviceGuard& operator=(const DeviceGuard&) = delete;

  private:
    int previous_ = 0;
    bool changed_ = false;
};

void synchronize();  // waits for the stream; reports an asynchronous kernel error

// ---- Element conversions. ----
__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(bf16 x) { return __bfloat162float(x); }
template <typename T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ bf16 from_float<bf16>(float x) { return __float2bfloat16_rn(x); }

// Host side: element-type conversion of device arrays (n elements; in and out may not alias;
// float -> float is a copy).
void convert(bf16* out, const float* in, int64_t n);
void convert(float* out, const bf16* in, int64_t n);
void convert(float* out, const float* in, int64_t n);

// ---- Reductions (fixed order: the same bits on every run). ----
__device__ __forceinline__ float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}
// Sum over the whole block (blockDim.x a multiple of 32, at most 1024); every thread gets the
// result. `shared` holds 32 floats. Call from every thread of the block.
__device__ __forceinline__ float block_sum(float v, float* shared) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    v = warp_sum(v);
    __syncthreads();  // `shared` may still be read by an earlier call
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < warps ? shared[lane] : 0.0f;
    return warp_sum(v);
}

// K consecutive elements loaded and stored as one access (16 bytes when K * sizeof(T) == 16):
// the vectorized path of the element-wise and row kernels. The pointer must be aligned to the
// pack's size (check with all_aligned16 on the host).
template <typename T, int K>
struct alignas(sizeof(T) * K) Pack {
    T v[K];
};
template <int K, typename T> __device__ __forceinline__ Pack<T, K> load_pack(const T* p) {
    return *reinterpret_cast<const Pack<T, K>*>(p);
}
template <int K, typename T> __device__ __forceinline__ void store_pack(T* p, const Pack<T, K>& v) {
    *reinterpret_cast<Pack<T, K>*>(p) = v;
}
// Whether every pointer is 16-byte aligned (null pointers count as aligned).
inline bool all_aligned16(std::initializer_list<const void*> pointers) {
    for (const void* p : pointers)
        if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
    return true;
}

inline unsigned ceil_div(int64_t a, int64_t b) { return (unsigned)((a + b - 1) / b); }

// ---- An owning device array (move-only). ----
template <typename T>
class DeviceArray {
  public:
    DeviceArray() = default;
    explicit DeviceArray(int64_t n) { resize(n); }
    ~DeviceArray() { release(); }
    DeviceArray(DeviceArray&& o) noexcept : ptr_(o.ptr_), n_(o.n_) { o.ptr_ = nullptr, o.n_ = 0; }
    DeviceArray& operator=(DeviceArray&& o) noexcept {
        if (this != &o) release(), ptr_ = o.ptr_, n_ = o.n_, o.ptr_ = nullptr, o.n_ = 0;
        return *this;
    }
    DeviceArray(const DeviceArray&) = delete;
    DeviceArray& operator=(const DeviceArray&) = delete;

    void resize(int64_t n) {  // contents are not kept
        if (n == n_) return;
        release();
        if (n > 0) WR_CUDA_CHECK(cudaMalloc((void**)&ptr_, sizeof(T) * (size_t)n));
        n_ = n;
    }
    void upload(const T* host, int64_t n) {
        resize(n);
        WR_CUDA_CHECK(cudaMemcpyAsync(ptr_, host, sizeof(T) * (size_t)n, cudaMemcpyHostToDevice, stream()));
    }
    void download(T* host, int64_t n) const {  // synchronous
        WR_CUDA_CHECK(cudaMemcpyAsync(host, ptr_, sizeof(T) * (size_t)n, cudaMemcpyDeviceToHost, stream()));
        synchronize();
    }
    void zero() {
        if (n_ > 0) WR_CUDA_CHECK(cudaMemsetAsync(ptr_, 0, sizeof(T) * (size_t)n_, stream()));
    }
    T* data() { return ptr_; }
    const T* data() const { return ptr_; }
    int64_t size() const { return n_; }

  private:
    void release() {
        if (ptr_) cudaFree(ptr_);
        ptr_ = nullptr, n_ = 0;
    }
    T* ptr_ = nullptr;
    int64_t n_ = 0;
};

// ---- Page-locked host memory (move-only). ----
// Copies between it and the device are truly asynchronous (pageable memory is staged by the
// driver first, and a device-to-host copy into it blocks). The owner must make sure no copy
// still reads or writes it before it is refilled or grown (an Event recorded after the copy).
template <typename T>
class PinnedArray {
  public:
    PinnedArray() = default;
    ~PinnedArray() { release(); }
    PinnedArray(PinnedArray&& o) noexcept : ptr_(o.ptr_), n_(o.n_) { o.ptr_ = nullptr, o.n_ = 0; }
    PinnedArray& operator=(PinnedArray&& o) noexcept {
        if (this != &o) release(), ptr_ = o.ptr_, n_ = o.n_, o.ptr_ = nullptr, o.n_ = 0;
        return *this;
    }
    PinnedArray(const PinnedArray&) = delete;
    PinnedArray& operator=(const PinnedArray&) = delete;

    // Room for at least n elements; grows (contents not kept) when n is more than it holds.
    T* reserve(int64_t n) {
        if (n > n_) {
            release();
            const int64_t grown = n < 64 ? 64 : n;
            WR_CUDA_CHECK(cudaMallocHost((void**)&ptr_, sizeof(T) * (size_t)grown));
            n_ = grown;
        }
        return ptr_;
    }
    T* data() { return ptr_; }
    int64_t capacity() const { return n_; }

  private:
    void release() {
        if (ptr_) cudaFreeHost(ptr_);
        ptr_ = nullptr, n_ = 0;
    }
    T* ptr_ = nullptr;
    int64_t n_ = 0;
};

// ---- An event on the current device's stream (no timing), move-only. ----
class Event {
  public:
    Event() { WR_CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming)); }
    ~Event() {
        if (event_) cudaEventDestroy(event_);
    }
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;
    void record() { WR_CUDA_CHECK(cudaEventRecord(event_, stream())); }
    // Waits until the work before the last record() is done (at once if never recorded).
    void wait() { WR_CUDA_CHECK(cudaEventSynchronize(event_)); }

  private:
    cudaEvent_t event_ = nullptr;
};

}  // namespace wr::cuda
