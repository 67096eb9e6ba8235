// tests/cuda_test_util.cuh: what the GPU test suites (tests/*.cu) share: skipping where no GPU
// is present, moving test arrays between host and device in either precision, NaN poisoning of
// outputs, and the relative error every comparison with the CPU reference reports.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cuda_common.cuh"

namespace wr::testing {

// First line of every GPU test: skips it, saying why, where no CUDA device can be used.
#define WR_REQUIRE_GPU()                                                                           \
    do {                                                                                           \
        if (!::wr::cuda::device_available())                                                      \
            GTEST_SKIP() << "no GPU: " << ::wr::cuda::device_unavailable_reason()                  \
                         << " (the GPU tests run on a GPU machine through dev/gpu_check.sh)";      \
    } while (0)

// The tolerance of a CUDA op against its CPU op: relative error (norm of difference over norm of
// reference) at most 1e-5 in fp32, 1e-2 in bf16.
template <typename T> constexpr double op_tolerance();
template <> constexpr double op_tolerance<float>() { return 1e-5; }
template <> constexpr double op_tolerance<cuda::bf16>() { return 1e-2; }
template <typename T> const char* precision_name();
template <> inline const char* precision_name<float>() { return "fp32"; }
template <> inline const char* precision_name<cuda::bf16>() { return "bf16"; }

// ||got - want|| / ||want|| (0 when both are all zero; infinite if any got is NaN).
inline double relative_error(const std::vector<float>& got, const std::vector<float>& want) {
    double diff = 0, ref = 0;
    for (size_t i = 0; i < want.size(); i++) {
        if (std::isnan(got[i]) != std::isnan(want[i])) return std::numeric_limits<double>::infinity();
        diff += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
        ref += (double)want[i] * want[i];
    }
    if (ref == 0) return diff == 0 ? 0 : std::numeric_limits<double>::infinity();
    return std::sqrt(diff / ref);
}

inline std::vector<float> random_vector(size_t n, uint32_t seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = normal(rng);
    return v;
}

// Values rounded through T (so the CPU reference sees exactly what the GPU op reads).
template <typename T> std::vector<float> round_through(std::vector<float> v) {
    if constexpr (!std::is_same_v<T, float>)
        for (float& x : v) x = __bfloat162float(__float2bfloat16_rn(x));
    return v;
}

// A device array of T holding host floats (converted on the host, rounded to nearest).
template <typename T> cuda::DeviceArray<T> to_device(const std::vector<float>& host) {
    std::vector<T> converted(host.size());
    for (size_t i = 0; i < host.size(); i++) {
        if constexpr (std::is_same_v<T, float>) converted[i] = host[i];
        else converted[i] = __float2bfloat16_rn(host[i]);
    }
    cuda::DeviceArray<T> d;
    d.upload(converted.data(), (int64_t)converted.size());
    return d;
}
inline cuda::DeviceArray<int> to_device_int(const std::vector<int>& host) {
    cuda::DeviceArray<int> d;
    d.upload(host.data(), (int64_t)host.size());
    return d;
}

template <typename T> std::vector<float> to_host(const cuda::DeviceArray<T>& d) {
    std::vector<T> raw((size_t)d.size());
    d.download(raw.data(), d.size());
    std::vector<float> out(raw.size());
    for (size_t i = 0; i < raw.size(); i++) {
        if constexpr (std::is_same_v<T, float>) out[i] = raw[i];
        else out[i] = __bfloat162float(raw[i]);
    }
    return out;
}

// A device output filled with NaN, so an element the op fails to write shows in the comparison.
template <typename T> cuda::DeviceArray<T> poisoned(size_t n) {
    return to_device<T>(std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()));
}

using Precisions = ::testing::Types<float, cuda::bf16>;

}  // namespace wr::testing
