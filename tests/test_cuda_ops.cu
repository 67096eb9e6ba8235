// tests/test_cuda_ops.cu: the CUDA ops of kernels/*.cu against their CPU ops (kernels/*.h), in
// fp32 and bf16, on fresh random inputs: element-wise ops (GELU, tanh, add), row gather,
// dropout, LayerNorm and the fused residual LayerNorm, embedding, cross-entropy, squared error,
// soft-target cross-entropy (distillation).
//
// Conventions of every test here:
//   - Outputs the op writes start as NaN (poisoned), so an element it fails to write shows.
//   - Gradients the op accumulates into start from random values, and the CPU reference
//     accumulates into the same values: a backward that overwrites instead of adding fails.
//   - In bf16 the CPU reference gets the bf16-rounded inputs (round_through<T>), so the only
//     differences are the GPU's float arithmetic order and its bf16 outputs.
//   - Relative error (||got - want|| / ||want||) at most op_tolerance<T>(): 1e-5 fp32, 1e-2 bf16;
//     every comparison prints its error, and each test its worst, for the GPU log.
//   - Sizes include odd ones (C = 37, 100, 1000; n not a multiple of any block or pack size) and
//     misaligned pointers, which take the kernels' one-element paths.
// Where no GPU is present every test skips itself (WR_REQUIRE_GPU).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "cuda_test_util.cuh"
#include "kernels/activations.cuh"
#include "kernels/activations.h"
#include "kernels/cross_entropy.cuh"
#include "kernels/cross_entropy.h"
#include "kernels/dropout.cuh"
#include "kernels/dropout.h"
#include "kernels/embedding.cuh"
#include "kernels/embedding.h"
#include "kernels/layernorm.cuh"
#include "kernels/layernorm.h"

using wr::testing::op_tolerance;
using wr::testing::poisoned;
using wr::testing::precision_name;
using wr::testing::random_vector;
using wr::testing::relative_error;
using wr::testing::round_through;
using wr::testing::to_device;
using wr::testing::to_device_int;
using wr::testing::to_host;

namespace {

using Vec = std::vector<float>;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kEps = 1e-12f;  // BERT's LayerNorm eps

// printf-style std::string, for the labels of the comparisons.
std::string label(const char* format, ...) {
    char buf[256];
    va_list args;
    va_start(args, format);
    std::vsnprintf(buf, sizeof buf, format, args);
    va_end(args);
    return buf;
}

// Random normal values (scale, plus offset) as T holds them: the inputs of both paths.
template <typename T> Vec random_t(size_t n, uint32_t seed, float scale = 1.0f, float offset = 0.0f) {
    Vec v = random_vector(n, seed, scale);
    for (float& x : v) x += offset;
    return round_through<T>(v);
}

// Random values at least 0.5 away from zero, so that a kept element is never 0 (or absorbed
// into what it is added to) and "dropped" can be read off the output exactly.
template <typename T> Vec random_nonzero_t(size_t n, uint32_t seed) {
    Vec v = random_vector(n, seed);
    for (float& x : v) x += std::copysign(0.5f, x);
    return round_through<T>(v);
}

Vec tail(const Vec& v, size_t from) { return Vec(v.begin() + (std::ptrdiff_t)from, v.end()); }

std::vector<int> download_ints(const wr::cuda::DeviceArray<int>& d) {
    std::vector<int> out((size_t)d.size());
    d.download(out.data(), d.size());
    return out;
}

struct PrecisionNames {
    template <typename T> static std::string GetName(int) { return precision_name<T>(); }
};

template <typename T>
class CudaOps : public ::testing::Test {
  public:
    // A GPU result against its CPU reference: relative error at most op_tolerance<T>(), printed.
    void check(const std::string& what, const Vec& got, const Vec& want) {
        ASSERT_EQ(got.size(), want.size()) << what;
        const double err = relative_error(got, want);
        std::printf("    [%s] %-58s rel err %.3g\n", precision_name<T>(), what.c_str(), err);
        EXPECT_LE(err, op_tolerance<T>()) << what;
        if (worst_what_.empty() || !(err <= worst_)) worst_ = err, worst_what_ = what;
    }
    // Counts that must be equal (mask mismatches, wrong `correct` flags), printed too.
    void check_count(const std::string& what, long got, long want) {
        std::printf("    [%s] %-58s %ld (want %ld)\n", precision_name<T>(), what.c_str(), got, want);
        EXPECT_EQ(got, want) << what;
    }
  protected:
    void TearDown() override {
        if (!worst_what_.empty())
            std::printf("    [%s] worst rel err %.3g (tolerance %.0e): %s\n", precision_name<T>(), worst_,
                        op_tolerance<T>(), worst_what_.c_str());
    }

  private:
    double worst_ = 0.0;
    std::string worst_what_;
};
TYPED_TEST_SUITE(CudaOps, wr::testing::Precisions, PrecisionNames);

// ---- Element-wise ops ----

// One element-wise op over sizes and alignments. gpu(out, a, b, n) and cpu(out, a, b, n) run it
// on device and host pointers; `accumulate`: out starts random (a backward), else poisoned.
// Offset 1 shifts every pointer by one element: not 16-byte aligned, the kernels' scalar path.
template <typename T, typename Fixture, typename Gpu, typename Cpu>
void check_elementwise(Fixture& f, const char* name, bool accumulate, Gpu gpu, Cpu cpu) {
    uint32_t seed = 100;
    for (int64_t n : {1, 7, 4099, 100003}) {
        for (int offset : {0, 1}) {
            const size_t total = (size_t)(n + offset);
            Vec a = random_t<T>(total, seed++, 2.0f), b = random_t<T>(total, seed++);
            const Vec start = accumulate ? random_t<T>(total, seed++) : Vec(total, kNaN);
            auto d_a = to_device<T>(a), d_b = to_device<T>(b), d_out = to_device<T>(start);
            gpu(d_out.data() + offset, d_a.data() + offset, d_b.data() + offset, n);
            Vec want = start;
            cpu(want.data() + offset, a.data() + offset, b.data() + offset, n);
            f.check(label("%s n=%lld offset=%d", name, (long long)n, offset), tail(to_host(d_out), offset), tail(want, offset));
        }
    }
}

TYPED_TEST(CudaOps, Gelu) {
    WR_REQUIRE_GPU();
    using T = TypeParam;
    check_elementwise<T>(*this, "gelu_forward", false, [](T* out, T* a, T*, int64_t n) { wr::cuda::gelu_forward(out, a, n); },
                         [](float* out, float* a, float*, int64_t n) { wr::gelu_forward(out, a, n); });
    check_elementwise<T>(*this, "gelu_backward", true,
                         [](T* d, T* x, T* g, int64_t n) { wr::cuda::gelu_backward(d, x, g, n); },
                         [](float* d, float* x, float* g, int64_t n) { wr::gelu_backward(d, x, g, n); });
}

TYPED_TEST(CudaOps, Tanh) {
    WR_REQUIRE_GPU();
    using T = TypeParam;
    check_elementwise<T>(*this, "tanh_forward", false, [](T* out, T* a, T*, int64_t n) { wr::cuda::tanh_forward(out, a, n); },
                         [](float* out, float* a, float*, int64_t n) { wr::tanh_forward(out, a, n); });
    // (the backward's y is the forward's output; the formula dout (1 - y^2) holds for any y)
    check_elementwise<T>(*this, "tanh_backward", true,
                         [](T* d, T* y, T* g, int64_t n) { wr::cuda::tanh_backward(d, y, g, n); },
                         [](float* d, float* y, float* g, int64_t n) { wr::tanh_backward(d, y, g, n); });
}

TYPED_TEST(CudaOps, Add) {
    WR_REQUIRE_GPU();
    using T = TypeParam;
    check_elementwise<T>(*this, "add_forward", false, [](T* out, T* a, T* b, int64_t n) { wr::cuda::add_forward(out, a, b, n); },
                         [](float* out, float* a, float* b, int64_t n) { wr::add_forward(out, a, b, n); });
    // add_backward(da, db, dout): da, db start random; also with db null (only da).
    for (bool both : {true, false}) {
        const int64_t n = 100003;
        const Vec dout = random_t<T>(n, 1), da0 = random_t<T>(n, 2), db0 = random_t<T>(n, 3);
        auto d_dout = to_device<T>(dout), d_da = to_device<T>(da0), d_db = to_device<T>(db0);
        wr::cuda::add_backward(d_da.data(), both ? d_db.data() : nullptr, d_dout.data(), n);
        Vec da = da0, db = db0;
        wr::add_backward(da.data(), both ? db.data() : nullptr, dout.data(), n);
        this->check(label("add_backward da (db %s)", both ? "given" : "null"), to_host(d_da), da);
        this->check(label("add_backward db (%s)", both ? "given" : "null: unchanged"), to_host(d_db), db);
    }
}

// out[m, :] = x[rows[m], :];  dx[rows[m], :] += dout[m, :]   (rows distinct)
TYPED_TEST(CudaOps, GatherRows) {
    WR_REQUIRE_GPU();
    using T = TypeParam;
    struct Case {
        int N, M, C;
    };
    uint32_t seed = 200;
    for (const Case& s : {Case{50, 13, 96}, Case{301, 77, 37}, Case{20, 20, 768}, Case{129, 1, 1000}}) {
        std::vector<int> rows(s.N);
        std::iota(rows.begin(), rows.end(), 0);
        std::shuffle(rows.begin(), rows.end(), std::mt19937(seed++));
        rows.resize(s.M);
        const Vec x = random_t<T>((size_t)s.N * s.C, seed++), dout = random_t<T>((size_t)s.M * s.C, seed++);
        const Vec dx0 = random_t<T>((size_t)s.N * s.C, seed++);
        auto d_x = to_device<T>(x), d_dout = to_device<T>(dout), d_dx = to_device<T>(dx0), d_out = poisoned<T>((size_t)s.M * s.C);
        auto d_rows = to_device_int(rows);
        wr::cuda::gather_rows(d_out.data(), d_x.data(), d_rows.data(), s.M, s.C);
        wr::cuda::gather_rows_backward(d_dx.data(), d_dout.data(), d_rows.data(), s.M, s.C);
        Vec out((size_t)s.M * s.C), dx = dx0;
        for (int m = 0; m < s.M; m++)
            for (int c = 0; c < s.C; c++) {
                out[(size_t)m * s.C + c] = x[(size_t)rows[m] * s.C + c];
                dx[(size_t)rows[m] * s.C + c] += dout[(size_t)m * s.C + c];
            }
        this->check(label("gather_rows N=%d M=%d C=%d", s.N, s.M, s.C), to_host(d_out), out);
        this->check(label("gather_rows_backward N=%d M=%d C=%d", s.N, s.M, s.C), to_host(d_dx), dx);
    }
}

// ---- Dropout ----

// The GPU must drop exactly the elements the CPU drops (same seed): checked on the zeros of the
// forward output and on the elements the backward leaves unchanged, inputs kept away from 0.
TYPED_TEST(CudaOps, Dropout) {
    WR_REQUIRE_GPU();
    using T = TypeParam;
    uint32_t seed = 300;
    for (int64_t n : {4099, 100003}) {
        for (float p : {0.0f, 0.1f}) {
            const uint64_t dseed = 0x5eed0000u + seed;
            const Vec x = random_nonzero_t<T>(n, seed++), dout = random_nonzero_t<T>(n, seed++);
            const Vec start = random_t<T>(n, seed++);
            auto d_x = to_device<T>(x), d_out = poisoned<T>(n);
            wr::cuda::dropout_forward(d_out.data(), d_x.data(), n, p, dseed);
            Vec want(n);
            wr::dropout_forward(want.data(), x.data(), n, p, dseed);
            const Vec got = to_host(d_out);
            this->check(label("dropout_forward n=%lld p=%.1f", (long long)n, p), got, want);
            long mismatched = 0, dropped = 0;
            for (int64_t i = 0; i < n; i++) {
                mismatched += (got[i] == 0.0f) != (want[i] == 0.0f);
                dropped += want[i] == 0.0f;
            }
            this->check_count(label("dropout_forward n=%lld p=%.1f: zeros not where the CPU's are", (long long)n, p),
                              mismatched, 0);
            if (p > 0 && n > 10000) {  // and the rate is about p
                EXPECT_GT(dropped, (long)(0.08 * n));
                EXPECT_LT(dropped, (long)(0.12 * n));
            }

            // in place (out == inp) gives the same bits
            wr::cuda::dropout_forward(d_x.data(), d_x.data(), n, p, dseed);
            const Vec in_place = to_host(d_x);
            this->check_count(label("dropout_forward n=%lld p=%.1f: in place differs", (long long)n, p),
                              (long)!std::equal(in_place.begin(), in_place.end(), got.begin()), 0);

            auto d_dout = to_device<T>(dout), d_dinp = to_device<T>(start);
            wr::cuda::dropout_backward(d_dinp.data(), d_dout.data(), n, p, dseed);
            Vec dinp = start;
            wr::dropout_backward(dinp.data(), dout.data(), n, p, dseed);
            const Vec got_d = to_host(d_dinp);
            this->check(label("dropout_backward n=%lld p=%.1f", (long long)n, p), got_d, dinp);
            mismatched = 0;
            for (int64_t i = 0; i < n; i++) mismatched += (got_d[i] == start[i]) != (dinp[i] == start[i]);
            this->check_count(label("dropout_backward n=%lld p=%.1f: unchanged not where the CPU's are", (long long)n, p),
                              mismatched, 0);
        }
    }
}

// ---- LayerNorm ----

struct RowsCase {
    int N, C;
};
// Odd C (37; 100 is not a multiple of bf16's 8-element pack), BERT's 768, N not a multiple of the
// warps per block.
const RowsCase kLayerNormCases[] = {{67, 96}, {33, 768}, {21, 1000}, {19, 37}, {203, 100}};

// Inputs of a LayerNorm row set: x with a non-zero mean, weight near 1, bias near 0.
template <typename T> struct LayerNormInputs {
    Vec x, weight, bias;
    LayerNormInputs(int N, int C, uint32_t seed)
        : x(random_t<T>((size_t)N * C, seed, 2.0f, 0.5f)),
          weight(random_t<T>(C, seed + 1, 0.1f, 1.0f)),
          bias(random_t<T>(C, seed + 2, 0.1f)) {}
};

TYPED_TEST(CudaOps, LayerNormForward) {
    WR_REQUIRE_GPU();
    using T = TypeParam;
    uint32_t seed = 400;
    for (const RowsCase& s : kLayerNormCases) {
        const LayerNormInputs<T> in(s.N, s.C, seed += 3);
        auto d_x = to_device<T>(in.x), d_w = to_device<T>(in.weight), d_b = to_device<T>(in.bias);
        auto d_out = poisoned<T>((size_t)s.N * s.C);
        auto d_mean = poisoned<float>(s.N), d_rstd = poisoned<float>(s.N);
        wr::cuda::layernorm_forward(d_out.data(), d_mean.data(), d_rstd.data(), d_x.data(), d_w.data(), d_b.data(), s.N, s.C,
                                    kEps);
        Vec out((size_t)s.N * s.C), mean(s.N), rstd(s.N);
        wr::layernorm_forward(out.data(), mean.data(), rstd.data(), in.x.data(), in.weight.data(), in.bias.data(), s.N, s.C,
                              kEps);
        this->check(label("layernorm_forward out N=%d C=%d", s.N, s.C), to_host(d_out), out);
        this->check(label("layernorm_forward mean N=%d C=%d", s.N, s.C), to_host(d_mean), mean);
        this->check(label("layernorm_forward rstd N=%d C=%d", s.N, s.C), to_host(d_rstd), rstd);
    }
}

TYPED_TEST(CudaOps, LayerNormBackward) {
    WR_REQUIRE_GPU();
    using T = TypeParam;
    uint32_t seed = 500;
    std::vector<RowsCase> cases(std::begin(kLayerNormCases), std::end(kLayerNormCases));
    cases.push_back({20011, 96});  // many rows per warp in the parameter-gradient pass
    for (const RowsCase& s : cases) {
        const size_t n = (size_t)s.N * s.C;
        const LayerNormInputs<T> in(s.N, s.C, seed += 7);
        const Vec dout = random_t<T>(n, seed + 3), dinp0 = random_t<T>(n, seed + 4);
        const Vec dweight0 = random_vector(s.C, seed + 5), dbias0 = random_vector(s.C, seed + 6);
        Vec out(n), mean(s.N), rstd(s.N);  // the saved statistics: the CPU's, given to both
        wr::layernorm_forward(out.data(), mean.data(), rstd.data(), in.x.data(), in.weight.data(), in.bias.data(), s.N, s.C,
                              kEps);
        auto d_x = to_device<T>(in.x), d_w = to_device<T>(in.weight), d_dout = to_device<T>(dout);
        auto d_mean = to_device<float>(mean), d_rstd = to_device<float>(rstd);
        // every gradient; then dinp and dbias only; then dweight only (no dinp pass)
        for (int variant = 0; variant < 3; variant++) {
            const bool want_dinp = variant != 2, want_dweight = variant != 1, want_dbias = variant != 2;
            auto d_dinp = to_device<T>(dinp0);
            auto d_dweight = to_device<float>(dweight0), d_dbias = to_device<float>(dbias0);
            wr::cuda::layernorm_backward(want_dinp ? d_dinp.data() : nullptr, want_dweight ? d_dweight.data() : nullptr,
                                         want_dbias ? d_dbias.data() : nullptr, d_dout.data(), d_x.data(), d_w.data(),
                                         d_mean.data(), d_rstd.data(), s.N, s.C);
            Vec dinp = dinp0, dweight = dweight0, dbias = dbias0;
            wr::layernorm_backward(want_dinp ? dinp.data() : nullptr, want_dweight ? dweight.data() : nullptr,
                                   want_dbias ? dbias.data() : nullptr, dout.data(), in.x.data(), in.weight.data(),
                                   mean.data(), rstd.data(), s.N, s.C);
            const char* which = variant == 0 ? "all" : variant == 1 ? "dinp+dbias" : "dweight";
            this->check(label("layernorm_backward dinp N=%d C=%d (%s)", s.N, s.C, which), to_host(d_dinp), dinp);
            // dweight, dbias are float in both precisions: compared at T's tolerance all the same,
            // since their inputs are T
            this->check(label("layernorm_backward dweight N=%d C=%d (%s)", s.N, s.C, which), to_host(d_dweight), dweight);
            this->check(label("layernorm_backward dbias N=%d C=%d (%s)", s.N, s.C, which), to_host(d_dbias), dbias);
        }
    }
}

// res = a + dropout(b); out = LayerNorm(res): against the CPU's dropout, add and LayerNorm.
TYPED_TEST(CudaOps, ResidualLayerNormForward) {
    WR_REQUIRE_GPU();
    using T = TypeParam;
    uint32_t seed = 600;
    for (const RowsCase& s : kLayerNormCases) {
        for (float p : {0.0f, 0.1f}) {
            const size_t n = (size_t)s.N * s.C;
            const uint64_t dseed = 77 + seed;
            const LayerNormInputs<T> in(s.N, s.C, seed += 4);
            const Vec& a = in.x;
            const Vec b = random_nonzero_t<T>(n, seed + 3);
            auto d_a = to_device<T>(a), d_b = to_device<T>(b), d_w = to_device<T>(in.weight), d_bias = to_device<T>(in.bias);
            auto d_res = poisoned<T>(n), d_out = poisoned<T>(n);
            auto d_mean = poisoned<float>(s.N), d_rstd = poisoned<float>(s.N);
            wr::cuda::residual_layernorm_forward(d_res.data(), d_out.data(), d_mean.data(), d_rstd.data(), d_a.data(), d_b.data(),
                                                 d_w.data(), d_bias.data(), s.N, s.C, kEps, p, dseed);
            Vec dropped_b(n), res(n), out(n), mean(s.N), rstd(s.N);
            wr::dropout_forward(dropped_b.data(), b.data(), (int64_t)n, p, dseed);
            wr::add_forward(res.data(), a.data(), dropped_b.data(), (int64_t)n);
            wr::layernorm_forward(out.data(), mean.data(), rstd.data(), res.data(), in.weight.data(), in.bias.data(), s.N, s.C,
                                  kEps);
            const Vec got_res = to_host(d_res);
            this->check(label("residual_layernorm_forward res N=%d C=%d p=%.1f", s.N, s.C, p), got_res, res);
            this->check(label("residual_layernorm_forward out N=%d C=%d p=%.1f", s.N, s.C, p), to_host(d_out), out);
            this->check(label("residual_layernorm_forward mean N=%d C=%d p=%.1f", s.N, s.C, p), to_host(d_mean), mean);
            this->check(label("residual_layernorm_forward rstd N=%d C=%d p=%.1f", s.N, s.C, p), to_host(d_rstd), rstd);
            // dropped exactly where the CPU drops: there res == a bit for bit (b is never near 0)
            long mismatched = 0;
            for (size_t i = 0; i < n; i++) mismatched += (got_res[i] == a[i]) != (dropped_b[i] == 0.0f);
            this->check_count(label("residual_layernorm_forward N=%d C=%d p=%.1f: drop mismatches", s.N, s.C, p), mismatched,
                              0);
        }
    }
}

// From dout: d_res = LayerNorm backward; da += d_res; db += dropout'(d_res); dweight, dbias +=.
TYPED_TEST(CudaOps, ResidualLayerNormBackward) {
    WR_REQUIRE_GPU();
    using T = TypeParam;
    uint32_t seed = 700;
    for (const RowsCase& s : kLayerNormCases) {
        for (float p : {0.0f, 0.1f}) {
            const size_t n = (size_t)s.N * s.C;
            const uint64_t dseed = 99 + seed;
            const LayerNormInputs<T> in(s.N, s.C, seed += 8);
            const Vec& res = in.x;
            const Vec dout = random_t<T>(n, seed + 3), da0 = random_t<T>(n, seed + 4), db0 = random_t<T>(n, seed + 5);
            const Vec dweight0 = random_vector(s.C, seed + 6), dbias0 = random_vector(s.C, seed + 7);
            Vec out(n), mean(s.N), rstd(s.N);
            wr::layernorm_forward(out.data(), mean.data(), rstd.data(), res.data(), in.weight.data(), in.bias.data(), s.N, s.C,
                                  kEps);
            auto d_res = to_device<T>(res), d_w = to_device<T>(in.weight), d_dout = to_device<T>(dout);
            auto d_mean = to_device<float>(mean), d_rstd = to_device<float>(rstd);
            auto d_da = to_device<T>(da0), d_db = to_device<T>(db0);
            auto d_dweight = to_device<float>(dweight0), d_dbias = to_device<float>(dbias0);
            wr::cuda::residual_layernorm_backward(d_da.data(), d_db.data(), d_dweight.data(), d_dbias.data(), d_dout.data(),
                                                  d_res.data(), d_w.data(), d_mean.data(), d_rstd.data(), s.N, s.C, p, dseed);
            Vec d_res_cpu(n, 0.0f), da = da0, db = db0, dweight = dweight0, dbias = dbias0;
            wr::layernorm_backward(d_res_cpu.data(), dweight.data(), dbias.data(), dout.data(), res.data(), in.weight.data(),
                                   mean.data(), rstd.data(), s.N, s.C);
            wr::add_backward(da.data(), nullptr, d_res_cpu.data(), (int64_t)n);
            wr::dropout_backward(db.data(), d_res_cpu.data(), (int64_t)n, p, dseed);
            const Vec got_db = to_host(d_db);
            this->check(label("residual_layernorm_backward da N=%d C=%d p=%.1f", s.N, s.C, p), to_host(d_da), da);
            this->check(label("residual_layernorm_backward db N=%d C=%d p=%.1f", s.N, s.C, p), got_db, db);
            this->check(label("residual_layernorm_backward dweight N=%d C=%d p=%.1f", s.N, s.C, p), to_host(d_dweight), dweight);
            this->check(label("residual_layernorm_backward dbias N=%d C=%d p=%.1f", s.N, s.C, p), to_host(d_dbias), dbias);
            // where the mask drops, db must be exactly its starting value
            const uint64_t key = wr::dropout_key(dseed);
            long changed = 0;
            for (size_t i = 0; i < n; i++) changed += p > 0 && !wr::dropout_keep(key, i, p) && got_db[i] != db0[i];
            this->check_count(label("residual_layernorm_backward N=%d C=%d p=%.1f: dropped but changed", s.N, s.C, p), changed,
                              0);
        }
    }
}

// ---- Embedding ----

struct EmbeddingCase {
    int B, T, C, V;
    bool types;  // token_types given (0/1), or null (all type 0)
};
const EmbeddingCase kEmbeddingCases[] = {
    {3, 37, 96, 50, true}, {2, 41, 37, 1000, false}, {4, 77, 768, 50, true}, {16, 128, 100, 30522, true}};
constexpr int kTypes = 2;

// Token ids shaped like an MLM batch: a frequent id (7, about 40%: a run across many sorted
// chunks), [PAD] = 0 at the end of every sequence, the rest uniform; types 0/1 by halves.
void embedding_inputs(const EmbeddingCase& s, uint32_t seed, std::vector<int>& ids, std::vector<int>& types) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> any(0, s.V - 1), percent(0, 99);
    ids.resize((size_t)s.B * s.T);
    types.resize(ids.size());
    for (int b = 0; b < s.B; b++) {
        const int length = s.T - b % 4 * (s.T / 5);  // some rows padded
        for (int t = 0; t < s.T; t++) {
            const size_t n = (size_t)b * s.T + t;
            ids[n] = t >= length ? 0 : percent(rng) < 40 ? 7 : any(rng);
            types[n] = t < s.T / 2 ? 0 : 1;
        }
    }
}

TYPED_TEST(CudaOps, EmbeddingForward) {
    WR_REQUIRE_GPU();
    using T = TypeParam;
    uint32_t seed = 800;
    for (const EmbeddingCase& s : kEmbeddingCases) {
        const int N = s.B * s.T, max_T = s.T + 3;
        std::vector<int> ids, types;
        embedding_inputs(s, seed++, ids, types);
        const Vec wte = random_t<T>((size_t)s.V * s.C, seed++), wpe = random_t<T>((size_t)max_T * s.C, seed++);
        const Vec wtt = random_t<T>((size_t)kTypes * s.C, seed++);
        auto d_ids = to_device_int(ids), d_types = to_device_int(types);
        auto d_wte = to_device<T>(wte), d_wpe = to_device<T>(wpe), d_wtt = to_device<T>(wtt);
        auto d_out = poisoned<T>((size_t)N * s.C);
        wr::cuda::embedding_forward(d_out.data(), d_ids.data(), s.types ? d_types.data() : nullptr, d_wte.data(), d_wpe.data(),
                                    d_wtt.data(), s.B, s.T, s.C);
        Vec out((size_t)N * s.C);
        wr::embedding_forward(out.data(), ids.data(), s.types ? types.data() : nullptr, wte.data(), wpe.data(), wtt.data(), s.B,
                              s.T, s.C);
        this->check(label("embedding_forward B=%d T=%d C=%d V=%d types=%s", s.B, s.T, s.C, s.V, s.types ? "0/1" : "null"),
                    to_host(d_out), out);
    }
}

// Scatter-adds into tables that start random; run twice from the same start: the same bits.
TYPED_TEST(CudaOps, EmbeddingBackward) {
    WR_REQUIRE_GPU();
    using T = TypeParam;
    uint32_t seed = 900;
    for (const EmbeddingCase& s : kEmbeddingCases) {
        const int N = s.B * s.T, max_T = s.T + 3;
        std::vector<int> ids, types;
        embedding_inputs(s, seed++, ids, types);
        const Vec dout = random_t<T>((size_t)N * s.C, seed++);
        const Vec dwte0 = random_vector((size_t)s.V * s.C, seed++), dwpe0 = random_vector((size_t)max_T * s.C, seed++);
        const Vec dwtt0 = random_vector((size_t)kTypes * s.C, seed++);
        auto d_ids = to_device_int(ids), d_types = to_device_int(types);
        auto d_dout = to_device<T>(dout);
        const int* d_types_or_null = s.types ? d_types.data() : nullptr;
        Vec got[2][3];
        for (int run = 0; run < 2; run++) {
            auto d_dwte = to_device<float>(dwte0), d_dwpe = to_device<float>(dwpe0), d_dwtt = to_device<float>(dwtt0);
            wr::cuda::embedding_backward(d_dwte.data(), d_dwpe.data(), d_dwtt.data(), d_dout.data(), d_ids.data(),
                                         d_types_or_null, s.B, s.T, s.C);
            got[run][0] = to_host(d_dwte), got[run][1] = to_host(d_dwpe), got[run][2] = to_host(d_dwtt);
        }
        Vec dwte = dwte0, dwpe = dwpe0, dwtt = dwtt0;
        wr::embedding_backward(dwte.data(), dwpe.data(), dwtt.data(), dout.data(), ids.data(), s.types ? types.data() : nullptr,
                               s.B, s.T, s.C);
        const std::string what = label("B=%d T=%d C=%d V=%d types=%s", s.B, s.T, s.C, s.V, s.types ? "0/1" : "null");
        this->check("embedding_backward dwte " + what, got[0][0], dwte);
        this->check("embedding_backward dwpe " + what, got[0][1], dwpe);
        this->check("embedding_backward dwtt " + what, got[0][2], dwtt);
        long differing = 0;
        for (int t = 0; t < 3; t++) differing += got[0][t] != got[1][t];
        this->check_count("embedding_backward " + what + ": tables differing between runs", differing, 0);
    }
    // Null gradients are skipped: only dwtt asked for (the others' buffers are not touched).
    const EmbeddingCase& s = kEmbeddingCases[0];
    std::vector<int> ids, types;
    embedding_inputs(s, seed, ids, types);
    const Vec dout = random_t<T>((size_t)s.B * s.T * s.C, seed + 1), dwtt0 = random_vector((size_t)kTypes * s.C, seed + 2);
    auto d_ids = to_device_int(ids), d_types = to_device_int(types);
    auto d_dout = to_device<T>(dout);
    auto d_dwtt = to_device<float>(dwtt0);
    wr::cuda::embedding_backward((float*)nullptr, nullptr, d_dwtt.data(), d_dout.data(), d_ids.data(), d_types.data(), s.B, s.T,
                                 s.C);
    Vec dwtt = dwtt0;
    wr::embedding_backward(nullptr, nullptr, dwtt.data(), dout.data(), ids.data(), types.data(), s.B, s.T, s.C);
    this->check("embedding_backward dwtt only", to_host(d_dwtt), dwtt);
}

// ---- Cross-entropy ----

struct CrossEntropyCase {
    int M, V;
};

TYPED_TEST(CudaOps, CrossEntropy) {
    WR_REQUIRE_GPU();
    using T = TypeParam;
    uint32_t seed = 1000;
    for (const CrossEntropyCase& s : {CrossEntropyCase{37, 1000}, CrossEntropyCase{9, 30522}, CrossEntropyCase{64, 3},
                                      CrossEntropyCase{5, 33}}) {
        const size_t n = (size_t)s.M * s.V;
        Vec logits = random_t<T>(n, seed++, 3.0f);
        std::vector<int> targets(s.M);
        std::mt19937 rng(seed++);
        std::uniform_int_distribution<int> any(0, s.V - 1);
        const auto argmax = [&](int m) {  // the first maximum, as std::max_element
            const float* row = logits.data() + (size_t)m * s.V;
            return (int)(std::max_element(row, row + s.V) - row);
        };
        for (int m = 0; m < s.M; m++)
            targets[m] = m % 5 == 2 ? wr::kIgnoreIndex : m % 3 == 0 ? argmax(m) : any(rng);
        // Ties for the maximum (20 is exact in bf16, above any sample): row 0's target is the
        // second of two equal maxima (not correct), row 1's the first (correct).
        const int first = s.V / 4, second = s.V / 2;
        for (int m : {0, 1}) logits[(size_t)m * s.V + first] = logits[(size_t)m * s.V + second] = 20.0f;
        targets[0] = second, targets[1] = first;

        const int count = wr::cross_entropy_count(targets.data(), s.M);
        const float dloss_scale = 1.0f / (float)count;
        Vec losses(s.M), dlogits(n, 0.0f);
        wr::cross_entropy_forward(losses.data(), logits.data(), targets.data(), s.M, s.V);
        wr::cross_entropy_backward(dlogits.data(), logits.data(), targets.data(), s.M, s.V, dloss_scale);
        std::vector<int> correct(s.M);
        for (int m = 0; m < s.M; m++) correct[m] = targets[m] != wr::kIgnoreIndex && argmax(m) == targets[m];

        auto d_targets = to_device_int(targets);
        // Rows packed (ld = V), and rows padded to a multiple of 64 plus 64 (the GPU decoder's
        // layout) whose padding holds large values that would win the softmax if it were read.
        for (int ld : {s.V, (s.V + 63) / 64 * 64 + 64})
            for (bool backward : {false, true}) {
                Vec rows((size_t)s.M * ld, 8192.0f);  // exact in bf16
                for (int m = 0; m < s.M; m++)
                    std::copy(logits.begin() + (size_t)m * s.V, logits.begin() + (size_t)(m + 1) * s.V, rows.begin() + (size_t)m * ld);
                auto d_logits = to_device<T>(rows);
                auto d_losses = poisoned<float>(s.M);
                auto d_correct = to_device_int(std::vector<int>(s.M, -1));
                wr::cuda::cross_entropy_forward_backward(d_logits.data(), d_losses.data(), d_correct.data(), d_targets.data(),
                                                         s.M, s.V, dloss_scale, backward, ld);
                const char* mode = backward ? "forward+backward" : "forward";
                this->check(label("cross_entropy losses M=%d V=%d ld=%d (%s)", s.M, s.V, ld, mode), to_host(d_losses), losses);
                const std::vector<int> got_correct = download_ints(d_correct);
                long wrong = 0;
                for (int m = 0; m < s.M; m++) wrong += got_correct[m] != correct[m];
                this->check_count(label("cross_entropy M=%d V=%d ld=%d (%s): wrong `correct` flags", s.M, s.V, ld, mode), wrong, 0);
                const Vec after = to_host(d_logits);
                if (backward) {
                    Vec got(n);
                    long nonzero_padding = 0;
                    for (int m = 0; m < s.M; m++) {
                        std::copy(after.begin() + (size_t)m * ld, after.begin() + (size_t)m * ld + s.V, got.begin() + (size_t)m * s.V);
                        for (int v = s.V; v < ld; v++) nonzero_padding += after[(size_t)m * ld + v] != 0.0f;
                    }
                    this->check(label("cross_entropy dlogits M=%d V=%d ld=%d", s.M, s.V, ld), got, dlogits);
                    this->check_count(label("cross_entropy M=%d V=%d ld=%d: padding gradients not 0", s.M, s.V, ld), nonzero_padding, 0);
                } else {
                    this->check_count(label("cross_entropy M=%d V=%d ld=%d (forward): logits changed", s.M, s.V, ld),
                                      (long)!std::equal(after.begin(), after.end(), rows.begin()), 0);
                }
            }
    }
    // `correct` may be null.
    const std::vector<int> targets = {3, wr::kIgnoreIndex};
    const Vec logits = random_t<T>(2 * 100, seed);
    Vec losses(2);
    wr::cross_entropy_forward(losses.data(), logits.data(), targets.data(), 2, 100);
    auto d_logits = to_device<T>(logits);
    auto d_losses = poisoned<float>(2);
    auto d_targets = to_device_int(targets);
    wr::cuda::cross_entropy_forward_backward(d_logits.data(), d_losses.data(), nullptr, d_targets.data(), 2, 100, 1.0f, true);
    this->check("cross_entropy losses, correct null", to_host(d_losses), losses);
}

// The regression head's loss: per-row squared errors, and the gradient accumulated with a weight
// (1: the CPU's mse_backward; 0.5: a distillation's label_weight).
TYPED_TEST(CudaOps, MeanSquaredError) {
    WR_REQUIRE_GPU();
    using T = TypeParam;
    uint32_t seed = 2000;
    for (int B : {1, 7, 1000, 70001}) {
        const Vec pred = random_t<T>((size_t)B, seed++, 2.0f), target = random_vector((size_t)B, seed++);
        Vec losses((size_t)B);
        wr::mse_forward(losses.data(), pred.data(), target.data(), B);
        auto d_pred = to_device<T>(pred);
        auto d_target = to_device<float>(target);
        auto d_losses = poisoned<float>((size_t)B);
        wr::cuda::mse_forward(d_losses.data(), d_pred.data(), d_target.data(), B);
        this->check(label("mse losses B=%d", B), to_host(d_losses), losses);
        for (float weight : {1.0f, 0.5f}) {
            // the gradient is about 1/B: start values of that size, so that bf16 keeps what is added
            const Vec start = random_t<T>((size_t)B, seed++, 1.0f / (float)B);
            Vec d((size_t)B, 0.0f), want = start;
            wr::mse_backward(d.data(), pred.data(), target.data(), B);
            for (int b = 0; b < B; b++) want[b] += weight * d[b];
            auto d_dpred = to_device<T>(start);
            wr::cuda::mse_backward(d_dpred.data(), d_pred.data(), d_target.data(), B, weight);
            this->check(label("mse dpred B=%d weight %.1f", B, weight), to_host(d_dpred), want);
        }
    }
}

struct SoftCase {
    int M, K;
    float tau;
};

// Distillation's soft cross-entropy against the CPU op (which works in double): losses, the
// agreement flags (ties included: the first maximum counts), and the accumulated gradient.
TYPED_TEST(CudaOps, SoftCrossEntropy) {
    WR_REQUIRE_GPU();
    using T = TypeParam;
    uint32_t seed = 3000;
    for (const SoftCase& s : {SoftCase{64, 2, 1.0f}, SoftCase{37, 3, 2.0f}, SoftCase{9, 100, 0.5f}, SoftCase{5, 1000, 4.0f},
                              SoftCase{300, 5, 2.0f}, SoftCase{3, 1, 2.0f}}) {
        const size_t n = (size_t)s.M * s.K;
        Vec logits = random_t<T>(n, seed++, 3.0f), teacher = random_vector(n, seed++, 3.0f);
        if (s.K >= 2) {
            // Ties (20 is exact in bf16, above any sample): the student's row 0 and row 1 have two
            // equal maxima; the teacher's maximum is the second of them in row 0 (no agreement),
            // the first in row 1 (agreement).
            const int first = s.K / 4, second = s.K / 2 > first ? s.K / 2 : first + 1;
            for (int m : {0, 1}) logits[(size_t)m * s.K + first] = logits[(size_t)m * s.K + second] = 20.0f;
            teacher[(size_t)0 * s.K + second] = 30.0f;
            teacher[(size_t)1 * s.K + first] = 30.0f;
        }
        Vec losses((size_t)s.M);
        wr::soft_cross_entropy_forward(losses.data(), logits.data(), teacher.data(), s.M, s.K, s.tau);
        const std::vector<int> student_top = wr::argmax_rows(logits.data(), s.M, s.K), teacher_top = wr::argmax_rows(teacher.data(), s.M, s.K);

        auto d_logits = to_device<T>(logits);
        auto d_teacher = to_device<float>(teacher);
        auto d_losses = poisoned<float>((size_t)s.M);
        auto d_agree = to_device_int(std::vector<int>((size_t)s.M, -1));
        wr::cuda::soft_cross_entropy_forward(d_losses.data(), d_logits.data(), d_teacher.data(), s.M, s.K, s.tau, d_agree.data());
        this->check(label("soft_cross_entropy losses M=%d K=%d tau=%g", s.M, s.K, s.tau), to_host(d_losses), losses);
        const std::vector<int> agree = download_ints(d_agree);
        long wrong = 0;
        for (int m = 0; m < s.M; m++) wrong += agree[m] != (student_top[m] == teacher_top[m] ? 1 : 0);
        this->check_count(label("soft_cross_entropy M=%d K=%d: wrong `agree` flags", s.M, s.K), wrong, 0);
        if (s.K >= 2) this->check_count("  of which the tie rows 0 and 1 agree", agree[0] + 2 * agree[1], 2);

        const float dloss_scale = 1.0f / (float)s.M;
        const Vec start = random_t<T>(n, seed++, 0.1f / (float)s.M);
        Vec want = start;
        wr::soft_cross_entropy_backward(want.data(), logits.data(), teacher.data(), s.M, s.K, s.tau, dloss_scale);
        auto d_dlogits = to_device<T>(start);
        wr::cuda::soft_cross_entropy_backward(d_dlogits.data(), d_logits.data(), d_teacher.data(), s.M, s.K, s.tau, dloss_scale);
        this->check(label("soft_cross_entropy dlogits M=%d K=%d tau=%g", s.M, s.K, s.tau), to_host(d_dlogits), want);
        this->check_count(label("soft_cross_entropy M=%d K=%d: logits changed", s.M, s.K),
                          (long)(to_host(d_logits) != logits), 0);
    }
    // `agree` may be null.
    const Vec logits = random_t<T>(4 * 3, seed), teacher = random_vector(4 * 3, seed + 1);
    Vec losses(4);
    wr::soft_cross_entropy_forward(losses.data(), logits.data(), teacher.data(), 4, 3, 2.0f);
    auto d_logits = to_device<T>(logits);
    auto d_teacher = to_device<float>(teacher);
    auto d_losses = poisoned<float>(4);
    wr::cuda::soft_cross_entropy_forward(d_losses.data(), d_logits.data(), d_teacher.data(), 4, 3, 2.0f);
    this->check("soft_cross_entropy losses, agree null", to_host(d_losses), losses);
}

}  // namespace
