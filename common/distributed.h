// common/distributed.h: data-parallel processes. `mpirun -np R ./train_mlm ...` starts R copies of
// a program, the ranks 0 .. R-1; each trains on its own rows of every global batch, and after the
// backward pass the ranks add up their gradients (all-reduce), so every rank makes the same update
// and the weights stay the same everywhere. Rank 0 alone writes: logs, checkpoints, training state.
//
// Started without mpirun, or built without MPI (the Makefile adds it where `mpicxx` is found), a
// program is one process: rank 0 of a world of 1, and every call here returns at once. Only
// common/distributed.cpp includes <mpi.h>. On the GPU the gradients go over NCCL instead
// (kernels/nccl.cuh), which gets its id through broadcast_bytes below.
//
// Collective calls (every rank must make them, in the same order): the all_reduce_*, any_rank,
// broadcast_bytes, barrier.
#pragma once
#include <cstdint>
#include <string>

namespace wr {

struct World {
    int rank = 0;        // this process, 0 .. size-1
    int size = 1;        // R, the processes of the run
    int local_size = 1;  // the processes on this machine (for the default thread count)
    int local_rank = 0;  // this process among them (a GPU rank's device)
    bool root() const { return rank == 0; }
};

// Joins the MPI world when the program was started by an MPI launcher (its environment says so),
// else the world of one. Called once, by run_program (common/util.h), before the program's run().
void init_world();
const World& world();
bool mpi_built();  // this build has MPI

void all_reduce_sum(float* data, int64_t n);
void all_reduce_sum(double* data, int64_t n);
void all_reduce_sum(int64_t* data, int64_t n);
// True on every rank when `flag` is true on any (a Ctrl-C that reached one rank stops them all).
bool any_rank(bool flag);
void broadcast_bytes(void* data, int64_t bytes, int root);
void barrier();

// What has no data-parallel form (making a logit cache, evaluating, predicting, MLM distillation):
// under mpirun with more than one rank, an error naming `what`.
void require_one_process(const std::string& what);

// After an error on this rank: ends every rank (MPI_Abort) with exit status `code`, so that none
// waits forever for a rank that is gone. In a world of one it returns and the caller exits.
void abort_world(int code);
// At the normal end of the program (MPI_Finalize).
void finalize_world();

// A rank's rows of a global batch of `rows`: the blocks of ceil(rows / R) rows in rank order (the
// last ranks may get fewer, or none, in a short last batch of an epoch).
struct RankRows {
    int first = 0, count = 0;
};
RankRows rank_rows(int rows, const World& w);

// Each rank's dropout stream: rank 0 keeps `seed` (so a world of one is the program as it always
// was), rank r > 0 draws from splitmix64(seed ^ golden-ratio x r).
uint64_t rank_seed(uint64_t seed, int rank);

}  // namespace wr
