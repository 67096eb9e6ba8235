// dev/bench_matmul.cpp: a C entry point to the CPU linear layer, so that dev/bench_matmul.py can
// time it with ctypes in the same process as PyTorch, alternating the two run by run (other load
// on the machine then hits both alike). Not part of the library; the script builds it as
//   g++ -O3 -march=native -std=c++17 -fopenmp -fPIC -shared -I. dev/bench_matmul.cpp
//       kernels/matmul.cpp -o build/bench_matmul.so
// (torch is imported first, so both use one OpenMP runtime: torch's libgomp.so.1).
#include <omp.h>

#include "kernels/matmul.h"

extern "C" {

void bench_set_threads(int threads) { omp_set_num_threads(threads); }

void bench_forward(float* out, const float* inp, const float* weight, const float* bias, int N, int IC, int OC) {
    wr::matmul_forward(out, inp, weight, bias, N, IC, OC);
}

void bench_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                    const float* weight, int N, int IC, int OC) {
    wr::matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, IC, OC);
}

}  // extern "C"
