// tests/test_cuda_device.cu: the per-device state of kernels/cuda_common.cuh. Every device has its
// own stream, cuBLASLt handle, scratch buffer and SM count, and setup that belongs to a device's
// context (the attention kernels' shared-memory opt-in) happens once on each device: the
// attention forward and a bias matmul run on every device present and give the same bits as on
// device 0 (within bf16 tolerance on a different model of GPU). DeviceGuard switches the current device and restores it. With one GPU only device 0
// is checked (the test says so). Skips where no GPU is present.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "kernels/attention.cuh"
#include "kernels/matmul.cuh"
#include "tests/cuda_test_util.cuh"

namespace {

using wr::cuda::bf16;
using wr::testing::random_vector;
using wr::testing::to_device;
using wr::testing::to_host;

// An attention forward (HS 64, bf16: its kernel needs the shared-memory opt-in) and a matmul with
// bias on the current device; the two outputs, as floats.
std::vector<float> run_ops() {
    const int B = 2, T = 64, C = 128, NH = 2;
    auto qkv = to_device<bf16>(random_vector((size_t)B * T * 3 * C, 1));
    auto out = to_device<bf16>(std::vector<float>((size_t)B * T * C, 0.0f));
    auto lse = to_device<float>(std::vector<float>((size_t)B * NH * T, 0.0f));
    wr::cuda::attention_forward<bf16>(out.data(), lse.data(), qkv.data(), nullptr, B, T, C, NH, 0.0f, 0);
    auto weight = to_device<bf16>(random_vector((size_t)C * C, 2, 0.1f)), bias = to_device<bf16>(random_vector(C, 3));
    auto y = to_device<bf16>(std::vector<float>((size_t)B * T * C, 0.0f));
    wr::cuda::matmul_forward<bf16>(y.data(), out.data(), weight.data(), bias.data(), B * T, C, C);
    std::vector<float> result = to_host(out);
    const std::vector<float> y_host = to_host(y);
    result.insert(result.end(), y_host.begin(), y_host.end());
    return result;
}

}  // namespace

TEST(CudaDevice, EveryDeviceHasItsOwnStateAndRunsTheOps) {
    WR_REQUIRE_GPU();
    int count = 0;
    WR_CUDA_CHECK(cudaGetDeviceCount(&count));
    std::vector<float> first;
    std::string first_name;
    std::vector<cudaStream_t> streams;
    for (int d = 0; d < count && d < wr::cuda::kMaxDevices; d++) {
        const wr::cuda::DeviceGuard guard(d);
        EXPECT_EQ(wr::cuda::current_device(), d);
        int sms = 0;
        WR_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, d));
        EXPECT_EQ(wr::cuda::multiprocessor_count(), sms) << "device " << d;
        ASSERT_NE(wr::cuda::stream(), nullptr) << "device " << d;
        for (cudaStream_t s : streams) EXPECT_NE(s, wr::cuda::stream()) << "device " << d << " shares a stream";
        streams.push_back(wr::cuda::stream());
        EXPECT_EQ(wr::cuda::stream(), streams.back()) << "device " << d << ": the stream is made once";
        const std::vector<float> got = run_ops();
        if (d == 0) {
            first = got;
        } else if (wr::cuda::device_name() == first_name) {  // the same model of GPU: the same kernels, the same bits
            EXPECT_EQ(got, first) << "device " << d << " computes other bits than device 0";
        } else {
            EXPECT_LE(wr::testing::relative_error(got, first), wr::testing::op_tolerance<bf16>()) << "device " << d;
        }
        if (d == 0) first_name = wr::cuda::device_name();
    }
    std::printf("[ devices  ] %d device(s) checked%s\n", count,
                count == 1 ? " (one GPU: the state of a second device is not exercised)" : "");
}

TEST(CudaDevice, DeviceGuardRestoresTheCurrentDevice) {
    WR_REQUIRE_GPU();
    int count = 0, before = 0, after = -1;
    WR_CUDA_CHECK(cudaGetDeviceCount(&count));
    WR_CUDA_CHECK(cudaGetDevice(&before));
    {
        const wr::cuda::DeviceGuard guard(count - 1);
        EXPECT_EQ(wr::cuda::current_device(), count - 1);
    }
    WR_CUDA_CHECK(cudaGetDevice(&after));
    EXPECT_EQ(after, before);
}
