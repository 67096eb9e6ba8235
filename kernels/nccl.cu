// kernels/nccl.cu: the NCCL communicator and all-reduce of kernels/nccl.cuh.
#include "kernels/nccl.cuh"

#include <cstdlib>
#include <string>

#include "common/distributed.h"
#include "common/util.h"
#include "kernels/cuda_common.cuh"

#ifdef WR_NCCL
#include <nccl.h>
#endif

namespace wr::cuda {

bool nccl_built() {
#ifdef WR_NCCL
    return true;
#else
    return false;
#endif
}

#ifdef WR_NCCL
namespace {
void check_nccl(ncclResult_t rc, const char* call) {
    if (rc != ncclSuccess) throw Error(std::string(call) + " failed on rank " + std::to_string(world().rank) + ": " + ncclGetErrorString(rc));
}

ncclComm_t communicator() {
    static ncclComm_t comm = nullptr;
    if (comm) return comm;
    ncclUniqueId id;
    if (world().root()) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    broadcast_bytes(&id, sizeof id, 0);
    check_nccl(ncclCommInitRank(&comm, world().size, id, world().rank), "ncclCommInitRank");
    return comm;
}
}  // namespace
#endif

void all_reduce_sum_device(float* data, int64_t n) {
    if (world().size == 1) return;
#ifdef WR_NCCL
    check_nccl(ncclAllReduce(data, data, (size_t)n, ncclFloat, ncclSum, communicator(), stream()), "ncclAllReduce");
#else
    throw Error("a data-parallel GPU run needs NCCL, and this build has none (nccl.h was not found beside nvcc)");
#endif
}

int device_for_local_rank() {
    int devices = 0;
    WR_CUDA_CHECK(cudaGetDeviceCount(&devices));
    return devices > 0 ? world().local_rank % devices : 0;
}

}  // namespace wr::cuda
