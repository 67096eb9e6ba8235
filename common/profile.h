// common/profile.h: named ranges around the phases of a training run (the step, its batch, its
// forward and backward passes, the optimizer update, evaluations, checkpoints) and a window of
// steps to capture, for Nsight Systems (`nsys --capture-range=cudaProfilerApi`) and Nsight Compute
// (`ncu --nvtx`). The ranges go to a backend: a program that runs on the GPU installs NVTX and
// cudaProfilerStart/Stop (install_cuda_profiler, kernels/cuda_common.cuh); without one (the CPU)
// a range costs a branch. The commands: README.md, "Profiling on the GPU".
//
//   profile::Range r("step");              // pushed here, popped at the end of the scope
//   profile::set_step_window(10, 12);      // --profile-steps 10:12
//   profile::step_begins(step); ...; profile::step_ends(step);   // steps counted from 1
#pragma once
#include <cstdint>
#include <string>

namespace wr::profile {

struct Backend {
    void (*push)(const char* name) = nullptr;
    void (*pop)() = nullptr;
    void (*start)() = nullptr;  // begin capturing (cudaProfilerStart)
    void (*stop)() = nullptr;   // end capturing (cudaProfilerStop)
};
void set_backend(const Backend& backend);
bool has_backend();

struct Range {
    explicit Range(const char* name);
    ~Range();
    Range(const Range&) = delete;
    Range& operator=(const Range&) = delete;
};

// --profile-steps A:B: "" for none, else steps A..B (1 <= A <= B); anything else is an error
// naming the flag. Returns {A, B} ({0, 0} for none).
std::pair<int64_t, int64_t> parse_step_window(const std::string& text);
void set_step_window(int64_t first, int64_t last);  // 0, 0: capture everything (no window)
// Around each optimizer step (1-based): capturing starts before step A and stops after step B.
void step_begins(int64_t step);
void step_ends(int64_t step);

}  // namespace wr::profile
