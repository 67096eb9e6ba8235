// kernels/nccl.cuh: the gradient all-reduce between GPUs of a data-parallel run (NCCL), the GPU's
// counterpart of common/distributed.h's all_reduce_sum. One communicator over the MPI world, one
// GPU per rank: rank 0 makes the NCCL id, MPI broadcasts it (as llm.c does), every rank joins.
// Made on first use. In a world of one nothing is made and the call returns at once.
//
// A build without NCCL (the Makefile defines WR_NCCL where nccl.h sits beside nvcc) compiles this
// too: there, a data-parallel GPU run is an error that says so.
#pragma once
#include <cstdint>

namespace wr::cuda {

bool nccl_built();
// In-place sum over every rank of `n` floats on the current device, on wr::cuda::stream().
void all_reduce_sum_device(float* data, int64_t n);
// The device a rank uses: its rank among the ranks of its machine, modulo the devices there.
int device_for_local_rank();

}  // namespace wr::cuda
