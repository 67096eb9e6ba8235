// dev/bench_matmul.cpp: C entry points to the CPU linear layer, so that dev/bench_matmul.py can
// time it with ctypes in the same process as PyTorch, alternating the two run by run (other load
// on the machine then hits both alike). Not part of the library: `make build/bench_matmul.so`
// links it against build/libwellread.a into a shared object (the script runs that make itself).
// The script imports torch first, so both sides use one OpenMP runtime: torch's libgomp.so.1.
#include <omp.h>

#include <cstring>
#include <exception>
#include <string>

#include "common/cpu_isa.h"
#include "kernels/matmul.h"

namespace {

// precision: 0 = fp32, 1 = bf16 (operands rounded to bf16, fp32 accumulation).
wr::MatmulPrecision precision_of(int precision) {
    return precision == 1 ? wr::MatmulPrecision::bf16 : wr::MatmulPrecision::fp32;
}

// Copies s into buf (size n, NUL-terminated, cut to fit).
void copy_out(const std::string& s, char* buf, int n) {
    if (buf == nullptr || n <= 0) return;
    std::strncpy(buf, s.c_str(), n - 1);
    buf[n - 1] = '\0';
}

}  // namespace

extern "C" {

void bench_set_threads(int threads) { omp_set_num_threads(threads); }

// Switches the kernels to the instruction-set level `name` ("auto" = the best). Returns 1 when in
// use, 0 when this machine cannot run it, -1 when the name is no level (the message in err).
int bench_set_isa(const char* name, char* err, int err_size) {
    try {
        return wr::set_cpu_isa(name) ? 1 : 0;
    } catch (const std::exception& e) {
        copy_out(e.what(), err, err_size);
        return -1;
    }
}

// The level in use, e.g. "amx".
void bench_isa_name(char* buf, int size) { copy_out(wr::cpu_isa_name(), buf, size); }

void bench_forward(float* out, const float* inp, const float* weight, const float* bias, int N, int IC, int OC,
                   int precision) {
    wr::matmul_forward(out, inp, weight, bias, N, IC, OC, precision_of(precision));
}

void bench_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                    const float* weight, int N, int IC, int OC, int precision) {
    wr::matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, IC, OC, precision_of(precision));
}

}  // extern "C"
