// common/distributed.cpp: the MPI calls behind common/distributed.h (a world of one without MPI).
#include "common/distributed.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "common/random.h"
#include "common/util.h"

#ifdef WR_MPI
#define OMPI_SKIP_MPICXX 1  // the C API only
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace wr {

namespace {
World g_world;
bool g_mpi_running = false;

// The launchers' environment: Open MPI's mpirun, and PMI / PMIx (MPICH, Slurm's srun).
bool started_by_mpi_launcher() {
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
        if (std::getenv(name)) return true;
    return false;
}

#ifdef WR_MPI
void check(int rc, const char* call) {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(rc, text, &length);
    throw Error(std::string(call) + " failed on rank " + std::to_string(g_world.rank) + ": " + std::string(text, (size_t)length));
}

// MPI counts are ints: large buffers go in pieces.
template <typename T>
void all_reduce(T* data, int64_t n, MPI_Datatype type, const char* call) {
    if (!g_mpi_running || g_world.size == 1) return;
    const int64_t piece = 1 << 30;
    for (int64_t at = 0; at < n; at += piece)
        check(MPI_Allreduce(MPI_IN_PLACE, data + at, (int)std::min(piece, n - at), type, MPI_SUM, MPI_COMM_WORLD), call);
}
#endif
}  // namespace

bool mpi_built() {
#ifdef WR_MPI
    return true;
#else
    return false;
#endif
}

void init_world() {
    if (g_mpi_running || !started_by_mpi_launcher()) return;
#ifdef WR_MPI
    int provided = 0;
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        throw Error("MPI_Init failed: the program was started by mpirun but cannot join the other ranks");
    g_mpi_running = true;
    // Errors come back as return codes and become wr::Error (then abort_world), with a message.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_world.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_world.size);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_world.rank, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &g_world.local_size);
    MPI_Comm_rank(local, &g_world.local_rank);
    MPI_Comm_free(&local);
#else
    const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");
    if (!size) size = std::getenv("PMI_SIZE");
    if (!size) size = std::getenv("SLURM_NTASKS");
    if (size && std::atoi(size) > 1)
        throw Error("started by mpirun with " + std::string(size) + " ranks, but this build has no MPI (install libopenmpi-dev "
                    "and rebuild: make clean && make)");
#endif
}

const World& world() { return g_world; }

void all_reduce_sum(float* data, int64_t n) {
#ifdef WR_MPI
    all_reduce(data, n, MPI_FLOAT, "MPI_Allreduce (float)");
#endif
}
void all_reduce_sum(double* data, int64_t n) {
#ifdef WR_MPI
    all_reduce(data, n, MPI_DOUBLE, "MPI_Allreduce (double)");
#endif
}
void all_reduce_sum(int64_t* data, int64_t n) {
#ifdef WR_MPI
    all_reduce(data, n, MPI_INT64_T, "MPI_Allreduce (int64)");
#endif
}

bool any_rank(bool flag) {
    int64_t count = flag ? 1 : 0;
    all_reduce_sum(&count, 1);
    return count > 0;
}

void broadcast_bytes(void* data, int64_t bytes, int root) {
#ifdef WR_MPI
    if (g_mpi_running && g_world.size > 1) check(MPI_Bcast(data, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
#endif
}

void barrier() {
#ifdef WR_MPI
    if (g_mpi_running && g_world.size > 1) check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
#endif
}

void abort_world(int code) {
#ifdef WR_MPI
    if (g_mpi_running && g_world.size > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
}

void finalize_world() {
#ifdef WR_MPI
    if (g_mpi_running) MPI_Finalize();
    g_mpi_running = false;
#endif
}

void require_one_process(const std::string& what) {
    if (g_world.size > 1)
        throw Error("<command line>: " + what + " runs in one process, not under mpirun with " + std::to_string(g_world.size) +
                    " ranks (data-parallel: train_mlm, finetune's training, distill train)");
}

RankRows rank_rows(int rows, const World& w) {
    const int block = (rows + w.size - 1) / w.size;
    RankRows mine;
    mine.first = std::min(rows, w.rank * block);
    mine.count = std::min(rows, mine.first + block) - mine.first;
    return mine;
}

uint64_t rank_seed(uint64_t seed, int rank) {
    return rank == 0 ? seed : splitmix64_mix(seed ^ (kGoldenGamma * (uint64_t)rank));
}

}  // namespace wr
