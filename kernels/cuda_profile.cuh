// kernels/cuda_profile.cuh: the GPU backend of common/profile.h: NVTX ranges, and the capture
// window through cudaProfilerStart/Stop. A program that runs on the GPU installs it once.
#pragma once

namespace wr::cuda {
void install_cuda_profiler();
}
