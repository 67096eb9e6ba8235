// kernels/cuda_profile.cu: install_cuda_profiler (cuda_profile.cuh).
#include <cuda_profiler_api.h>
#include <nvtx3/nvToolsExt.h>

#include "common/profile.h"
#include "kernels/cuda_profile.cuh"

namespace wr::cuda {

void install_cuda_profiler() {
    profile::Backend b;
    b.push = [](const char* name) { nvtxRangePushA(name); };
    b.pop = [] { nvtxRangePop(); };
    b.start = [] { cudaProfilerStart(); };
    b.stop = [] { cudaProfilerStop(); };
    profile::set_backend(b);
}

}  // namespace wr::cuda
