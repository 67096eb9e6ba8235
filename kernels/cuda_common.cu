// kernels/cuda_common.cu: the CUDA state behind kernels/cuda_common.cuh: error reporting, device
// detection (once per process), and per device the stream, the cuBLASLt handle and workspace, the
// scratch buffer and the SM count. Created lazily on first use on each device, never torn down
// (the process exit releases them).
#include "kernels/cuda_common.cuh"

#include <algorithm>
#include <mutex>

#include "common/util.h"

namespace wr::cuda {

void check(cudaError_t status, const char* call, const char* file, int line) {
    if (status == cudaSuccess) return;
    throw Error(std::string("CUDA error ") + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ") in " + call + " at " +
                file + ":" + std::to_string(line));
}

void check(cublasStatus_t status, const char* call, const char* file, int line) {
    if (status == CUBLAS_STATUS_SUCCESS) return;
    throw Error(std::string("cuBLAS error ") + std::to_string((int)status) + " in " + call + " at " + file + ":" + std::to_string(line));
}

std::string device_unavailable_reason() {
    static std::once_flag once;
    static std::string reason;
    std::call_once(once, [] {
        int count = 0;
        const cudaError_t status = cudaGetDeviceCount(&count);
        if (status == cudaErrorNoDevice || (status == cudaSuccess && count == 0)) reason = "no CUDA device is present";
        else if (status == cudaErrorInsufficientDriver) reason = "the CUDA driver is missing or older than this build's runtime";
        else if (status != cudaSuccess) reason = std::string("the CUDA runtime reports ") + cudaGetErrorString(status);
        if (!reason.empty()) cudaGetLastError();  // clear the sticky-free error so later calls start clean
    });
    return reason;
}

std::string device_name() {
    if (!device_available()) return "none (" + device_unavailable_reason() + ")";
    int device = 0;
    cudaDeviceProp prop{};
    WR_CUDA_CHECK(cudaGetDevice(&device));
    WR_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    return prop.name;
}

int current_device() {
    if (!device_available()) throw Error("CUDA requested but unusable: " + device_unavailable_reason());
    int device = 0;
    WR_CUDA_CHECK(cudaGetDevice(&device));
    if (device < 0 || device >= kMaxDevices)
        throw Error("CUDA device " + std::to_string(device) + ": this build keeps state for devices 0.." + std::to_string(kMaxDevices - 1));
    return device;
}

namespace {
// The state of one device, made the first time an op runs on it.
struct Context {
    cudaStream_t stream = nullptr;
    cublasLtHandle_t lt = nullptr;
    void* workspace = nullptr;
    void* scratch = nullptr;
    size_t scratch_bytes = 0;
    int multiprocessors = 0;
};
Context& context() {
    static Context contexts[kMaxDevices];
    static std::once_flag once[kMaxDevices];
    const int device = current_device();
    Context& c = contexts[device];
    std::call_once(once[device], [&] {  // a failure leaves the flag unset: the next call tries again
        WR_CUDA_CHECK(cudaDeviceGetAttribute(&c.multiprocessors, cudaDevAttrMultiProcessorCount, device));
        WR_CUDA_CHECK(cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking));
        WR_CUDA_CHECK(cublasLtCreate(&c.lt));
        WR_CUDA_CHECK(cudaMalloc(&c.workspace, kCublasLtWorkspaceBytes));
    });
    return c;
}
}  // namespace

int multiprocessor_count() { return context().multiprocessors; }
cudaStream_t stream() { return context().stream; }
cublasLtHandle_t cublaslt() { return context().lt; }
void* cublaslt_workspace() { return context().workspace; }

void* scratch(size_t bytes) {
    Context& c = context();
    if (bytes > c.scratch_bytes) {
        if (c.scratch) {
            WR_CUDA_CHECK(cudaStreamSynchronize(c.stream));  // an earlier op may still read it
            WR_CUDA_CHECK(cudaFree(c.scratch));
        }
        c.scratch_bytes = std::max(bytes, (size_t)1 << 20);
        WR_CUDA_CHECK(cudaMalloc(&c.scratch, c.scratch_bytes));
    }
    return c.scratch;
}

DeviceGuard::DeviceGuard(int device) {
    WR_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) {
        WR_CUDA_CHECK(cudaSetDevice(device));
        changed_ = true;
    }
}
DeviceGuard::~DeviceGuard() {
    if (changed_) cudaSetDevice(previous_);  // no throw from a destructor; a failure shows at the next call
}

void synchronize() { WR_CUDA_CHECK(cudaStreamSynchronize(stream())); }

// ---- float <-> T conversion ----
namespace {
template <typename Out, typename In>
__global__ void convert_kernel(Out* out, const In* in, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        out[i] = from_float<Out>(to_float(in[i]));
}
template <typename Out, typename In>
void launch_convert(Out* out, const In* in, int64_t n) {
    if (n <= 0) return;
    const unsigned blocks = std::min<unsigned>(ceil_div(n, 256), 65535u * 8u);
    convert_kernel<<<blocks, 256, 0, stream()>>>(out, in, n);
    WR_CUDA_CHECK_LAUNCH();
}
}  // namespace

void convert(bf16* out, const float* in, int64_t n) { launch_convert(out, in, n); }
void convert(float* out, const bf16* in, int64_t n) { launch_convert(out, in, n); }
void convert(float* out, const float* in, int64_t n) { launch_convert(out, in, n); }

}  // namespace wr::cuda
