// tests/test_matmul.cpp: the CPU linear layer and the GEMM under it, against a naive
// double-precision reference, central finite differences, and itself at other thread counts; on
// every instruction-set level this machine runs (common/cpu_isa.h), in fp32 and in bf16.
//
// Error bound used throughout (see kernels/matmul.cpp): every output element satisfies
//   |got - exact| <= gamma(K + 2) * (|init| + |bias| + sum_k |a_ik b_kj|),  gamma(n) = n u / (1 - n u)
// with u = 2^-24, valid for fp32 accumulation in any order. A wrong index or a lost term shows
// up as an error of order sum|ab| / K, far above this bound for the sizes tested here.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <random>
#include <vector>

#include "common/cpu_isa.h"
#include "kernels/matmul.h"

using namespace wr;

namespace {

std::vector<float> randn(size_t n, std::mt19937& rng) {
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng);
    return v;
}

double gamma_bound(int K) {
    const double u = std::ldexp(1.0, -24), n = K + 2;
    return n * u / (1.0 - n * u);
}

// A reference value with its magnitude sum, for the bound above.
struct Ref {
    std::vector<double> value, mag;
};

// C[M,N] = init + bias + op(A) op(B) in double; op as in sgemm().
Ref ref_gemm(bool ta, bool tb, int M, int N, int K, const float* A, int lda, const float* B, int ldb,
             const float* init, int ldc, const float* bias) {
    Ref r{std::vector<double>((size_t)M * N), std::vector<double>((size_t)M * N)};
    for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) {
            double s = 0, m = 0;
            if (init) s += init[(size_t)i * ldc + j], m += std::fabs(init[(size_t)i * ldc + j]);
            if (bias) s += bias[j], m += std::fabs(bias[j]);
            for (int k = 0; k < K; ++k) {
                const double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                const double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += a * b, m += std::fabs(a * b);
            }
            r.value[(size_t)i * N + j] = s, r.mag[(size_t)i * N + j] = m;
        }
    return r;
}

// Checks got[M,N] (row stride ldc) against the reference within the bound; reports the worst.
void expect_close(const char* what, const float* got, int ldc, const Ref& ref, int M, int N, int K) {
    const double g = gamma_bound(K);
    double worst = 0;  // error over allowed error
    int wi = 0, wj = 0;
    for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) {
            const size_t r = (size_t)i * N + j;
            const double ratio = std::fabs(got[(size_t)i * ldc + j] - ref.value[r]) / (g * ref.mag[r] + 1e-30);
            if (!(ratio <= worst)) worst = ratio, wi = i, wj = j;  // NaN becomes the worst
        }
    EXPECT_LE(worst, 1.0) << what << " [" << M << "x" << N << ", K=" << K << "]: worst at (" << wi << "," << wj
                          << "): got " << got[(size_t)wi * ldc + wj] << ", want " << ref.value[(size_t)wi * N + wj]
                          << ", error " << worst << "x the bound";
}

// Shapes (N, IC, OC): odd sizes, 1s, non-multiples of every tile (14 x 32 with AVX-512), and
// sizes past the blocking so every edge path runs: reductions longer than one slice of 768
// (IC = 1600 in forward and dinp's K = OC = 800, dweight's K = N = 800), more than 336 rows,
// more than 1024 columns.
struct Shape {
    int N, IC, OC;
};
const std::vector<Shape> kShapes = {{1, 1, 1},    {1, 3, 17},    {3, 17, 1},    {17, 1, 3},   {17, 129, 3},
                                    {129, 3, 17}, {33, 64, 65},  {7, 300, 9},   {350, 40, 29}, {5, 9, 1100},
                                    {64, 513, 96}, {3, 1600, 20}, {800, 5, 7},  {9, 7, 800}};

// The linear layer's forward and backward at a thread count, gradients starting at 0.5:
// {out, dinp, dweight, dbias}.
std::vector<std::vector<float>> linear_at_threads(const std::vector<float>& inp, const std::vector<float>& w,
                                                  const std::vector<float>& b, const std::vector<float>& dout, int N,
                                                  int IC, int OC, int threads, MatmulPrecision precision) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    std::vector<float> out((size_t)N * OC), dinp((size_t)N * IC, 0.5f), dw((size_t)OC * IC, 0.5f), db(OC, 0.5f);
    matmul_forward(out.data(), inp.data(), w.data(), b.data(), N, IC, OC, precision);
    matmul_backward(dinp.data(), dw.data(), db.data(), dout.data(), inp.data(), w.data(), N, IC, OC, precision);
    omp_set_num_threads(saved);
    return {out, dinp, dw, db};
}

// Each test runs once per instruction-set level this machine has ("generic" everywhere, up to
// "amx"), with that level forced for its duration.
class Matmul : public ::testing::TestWithParam<CpuIsa> {
  protected:
    void SetUp() override { ASSERT_TRUE(set_cpu_isa(cpu_isa_name(GetParam()))); }
    void TearDown() override { set_cpu_isa("auto"); }
};

std::string isa_test_name(const ::testing::TestParamInfo<CpuIsa>& info) { return cpu_isa_name(info.param); }

}  // namespace

INSTANTIATE_TEST_SUITE_P(Isa, Matmul, ::testing::ValuesIn(cpu_isas_available()), isa_test_name);

TEST_P(Matmul, ForwardMatchesReference) {
    std::mt19937 rng(1);
    for (const Shape& s : kShapes)
        for (bool with_bias : {true, false}) {
            const auto inp = randn((size_t)s.N * s.IC, rng), w = randn((size_t)s.OC * s.IC, rng), b = randn(s.OC, rng);
            std::vector<float> out((size_t)s.N * s.OC, NAN);  // forward must write, not read
            matmul_forward(out.data(), inp.data(), w.data(), with_bias ? b.data() : nullptr, s.N, s.IC, s.OC);
            const Ref ref = ref_gemm(false, true, s.N, s.OC, s.IC, inp.data(), s.IC, w.data(), s.IC, nullptr, 0,
                                     with_bias ? b.data() : nullptr);
            expect_close(with_bias ? "forward" : "forward (no bias)", out.data(), s.OC, ref, s.N, s.OC, s.IC);
        }
}

TEST_P(Matmul, BackwardMatchesReferenceAndAccumulates) {
    std::mt19937 rng(2);
    for (const Shape& s : kShapes) {
        const auto inp = randn((size_t)s.N * s.IC, rng), w = randn((size_t)s.OC * s.IC, rng),
                   dout = randn((size_t)s.N * s.OC, rng);
        // Gradients start non-zero: backward must add to them.
        const auto dinp0 = randn((size_t)s.N * s.IC, rng), dw0 = randn((size_t)s.OC * s.IC, rng),
                   db0 = randn(s.OC, rng);
        auto dinp = dinp0, dw = dw0, db = db0;
        matmul_backward(dinp.data(), dw.data(), db.data(), dout.data(), inp.data(), w.data(), s.N, s.IC, s.OC);
        // dinp[N,IC] = dinp0 + dout[N,OC] @ w[OC,IC]
        expect_close("dinp", dinp.data(), s.IC,
                     ref_gemm(false, false, s.N, s.IC, s.OC, dout.data(), s.OC, w.data(), s.IC, dinp0.data(), s.IC,
                              nullptr),
                     s.N, s.IC, s.OC);
        // dweight[OC,IC] = dw0 + dout^T @ inp
        expect_close("dweight", dw.data(), s.IC,
                     ref_gemm(true, false, s.OC, s.IC, s.N, dout.data(), s.OC, inp.data(), s.IC, dw0.data(), s.IC,
                              nullptr),
                     s.OC, s.IC, s.N);
        // dbias[OC] = db0 + sum_n dout[n,:]  (a [1,N] @ [N,OC] product with a ones row)
        const std::vector<float> ones(s.N, 1.0f);
        expect_close("dbias", db.data(), s.OC,
                     ref_gemm(false, false, 1, s.OC, s.N, ones.data(), s.N, dout.data(), s.OC, db0.data(), s.OC,
                              nullptr),
                     1, s.OC, s.N);
    }
}

TEST_P(Matmul, BackwardNullGradientsAreSkipped) {
    std::mt19937 rng(3);
    const int N = 19, IC = 23, OC = 37;
    const auto inp = randn(N * IC, rng), w = randn(OC * IC, rng), dout = randn(N * OC, rng);
    std::vector<float> full_dinp(N * IC, 0.0f), full_dw(OC * IC, 0.0f), full_db(OC, 0.0f);
    matmul_backward(full_dinp.data(), full_dw.data(), full_db.data(), dout.data(), inp.data(), w.data(), N, IC, OC);
    for (int mask = 0; mask < 8; ++mask) {  // every subset of {dinp, dweight, dbias}
        std::vector<float> dinp(N * IC, 0.0f), dw(OC * IC, 0.0f), db(OC, 0.0f);
        matmul_backward(mask & 1 ? dinp.data() : nullptr, mask & 2 ? dw.data() : nullptr,
                        mask & 4 ? db.data() : nullptr, dout.data(), inp.data(), w.data(), N, IC, OC);
        // Given ones equal the full call bit for bit; the others stay untouched (zero).
        EXPECT_EQ(dinp, mask & 1 ? full_dinp : std::vector<float>(N * IC, 0.0f)) << "mask " << mask;
        EXPECT_EQ(dw, mask & 2 ? full_dw : std::vector<float>(OC * IC, 0.0f)) << "mask " << mask;
        EXPECT_EQ(db, mask & 4 ? full_db : std::vector<float>(OC, 0.0f)) << "mask " << mask;
    }
}

// The derivative of L = sum(out * R) with respect to every input, weight and bias element by
// central differences in double, against backward with dout = R. L is linear in each of them, so
// the difference quotient is exact up to the fp32 rounding of out: relative error <= 1e-3.
TEST_P(Matmul, BackwardMatchesFiniteDifferences) {
    std::mt19937 rng(4);
    const int N = 3, IC = 4, OC = 5;
    auto inp = randn(N * IC, rng), w = randn(OC * IC, rng), b = randn(OC, rng);
    const auto R = randn(N * OC, rng);
    auto loss = [&] {
        std::vector<float> out(N * OC);
        matmul_forward(out.data(), inp.data(), w.data(), b.data(), N, IC, OC);
        double L = 0;
        for (int i = 0; i < N * OC; ++i) L += (double)out[i] * R[i];
        return L;
    };
    std::vector<float> dinp(N * IC, 0.0f), dw(OC * IC, 0.0f), db(OC, 0.0f);
    matmul_backward(dinp.data(), dw.data(), db.data(), R.data(), inp.data(), w.data(), N, IC, OC);
    const float h = 1.0f / 64;  // exact in fp32, so x + h and x - h are the intended points
    auto check = [&](const char* name, std::vector<float>& x, const std::vector<float>& grad) {
        for (size_t i = 0; i < x.size(); ++i) {
            const float x0 = x[i];
            x[i] = x0 + h;
            const double Lp = loss();
            x[i] = x0 - h;
            const double Lm = loss();
            x[i] = x0;
            const double fd = (Lp - Lm) / ((double)(x0 + h) - (double)(x0 - h));
            EXPECT_NEAR(grad[i], fd, 1e-3 * std::max(1.0, std::fabs(fd))) << name << "[" << i << "]";
        }
    };
    check("dinp", inp, dinp);
    check("dweight", w, dw);
    check("dbias", b, db);
}

// sgemm itself: all four transpose cases, row strides wider than the rows, accumulate + bias.
TEST_P(Matmul, SgemmTransposesStridesAccumulate) {
    std::mt19937 rng(5);
    const int M = 37, N = 45, K = 900, pad = 3;
    for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb)
            for (int acc = 0; acc < 2; ++acc) {
                const int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
                const auto A = randn((size_t)(ta ? K : M) * lda, rng), B = randn((size_t)(tb ? N : K) * ldb, rng),
                           bias = randn(N, rng), C0 = randn((size_t)M * ldc, rng);
                auto C = C0;
                sgemm(ta, tb, M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc, acc, bias.data());
                expect_close("sgemm", C.data(), ldc,
                             ref_gemm(ta, tb, M, N, K, A.data(), lda, B.data(), ldb, acc ? C0.data() : nullptr, ldc,
                                      bias.data()),
                             M, N, K);
                for (int i = 0; i < M; ++i)  // the padding columns of C are not touched
                    for (int j = N; j < ldc; ++j) EXPECT_EQ(C[(size_t)i * ldc + j], C0[(size_t)i * ldc + j]);
            }
    // K = 0: C = init + bias.
    std::vector<float> C = {1, 2, 3, 4}, bias = {10, 20};
    sgemm(false, true, 2, 2, 0, nullptr, 1, nullptr, 1, C.data(), 2, true, bias.data());
    EXPECT_EQ(C, (std::vector<float>{11, 22, 13, 24}));
    sgemm(false, true, 2, 2, 0, nullptr, 1, nullptr, 1, C.data(), 2, false, nullptr);
    EXPECT_EQ(C, (std::vector<float>{0, 0, 0, 0}));
}

// The summation order of each element does not depend on the thread count: 1, 2, 3 and 4
// threads (uneven shares; 4 also cuts C into a 2 x 2 grid of blocks for some of the products).
TEST_P(Matmul, BitwiseEqualAcrossThreadCounts) {
    std::mt19937 rng(6);
    const int N = 350, IC = 780, OC = 1050;  // past 24 row panels, one 768 slice, 1024 columns
    const auto inp = randn((size_t)N * IC, rng), w = randn((size_t)OC * IC, rng), b = randn(OC, rng),
               dout = randn((size_t)N * OC, rng);
    auto run = [&](int threads) { return linear_at_threads(inp, w, b, dout, N, IC, OC, threads, MatmulPrecision::fp32); };
    const auto one = run(1);
    for (int threads : {2, 3, 4}) {
        const auto many = run(threads);
        const char* names[] = {"out", "dinp", "dweight", "dbias"};
        for (int t = 0; t < 4; ++t)
            EXPECT_TRUE(one[t] == many[t]) << names[t] << " differs with " << threads << " threads";
    }
}

// The AVX2 and AVX-512 kernels compute every element in the same order with the same FMAs:
// equal bit for bit (the generic kernel, without FMA, rounds differently).
TEST(MatmulIsas, Avx2AndAvx512AgreeBitwise) {
    if (cpu_isa_best() < CpuIsa::avx512) GTEST_SKIP() << "this CPU has no AVX-512";
    std::mt19937 rng(7);
    const int N = 130, IC = 800, OC = 70;
    const auto inp = randn((size_t)N * IC, rng), w = randn((size_t)OC * IC, rng), b = randn(OC, rng);
    std::vector<float> out[2];
    const char* isas[] = {"avx2", "avx512"};
    for (int i = 0; i < 2; i++) {
        ASSERT_TRUE(set_cpu_isa(isas[i]));
        out[i].resize((size_t)N * OC);
        matmul_forward(out[i].data(), inp.data(), w.data(), b.data(), N, IC, OC);
    }
    set_cpu_isa("auto");
    EXPECT_TRUE(out[0] == out[1]);
}

// ---- bf16 ---------------------------------------------------------------------------------------
// bf16 precision rounds both operands to bf16 (nearest, ties to even) and sums their products in
// fp32. The reference rounds the operands the same way, independently (below), and sums in
// double; a product of two bf16 values is exact in fp32, so the fp32 bound above holds for the
// bf16 product as well. Against the unrounded operands, each bf16 value is within a relative
// 2^-9 of its fp32 value, so each product within (1 + 2^-9)^2 - 1 < 2^-7.9: the error is then
// at most (2^-7.9 + gamma) * sum |a b|.
namespace {

float bf16_round(float x) {  // the reference rounding: exact arithmetic on the value
    if (x == 0.0f || !std::isfinite(x)) return x;
    int e;
    std::frexp(x, &e);                        // |x| in [2^(e-1), 2^e)
    const double ulp = std::ldexp(1.0, e - 8);  // bf16 keeps 8 significant bits
    const double q = (double)x / ulp, lo = std::floor(q), frac = q - lo;
    double r = frac > 0.5 ? lo + 1 : frac < 0.5 ? lo : (std::fmod(lo, 2.0) == 0 ? lo : lo + 1);
    return (float)(r * ulp);
}

std::vector<float> rounded(const std::vector<float>& v) {
    std::vector<float> r(v.size());
    for (size_t i = 0; i < v.size(); i++) r[i] = bf16_round(v[i]);
    return r;
}

}  // namespace

TEST(Bf16Round, ReferenceRounding) {  // the test's own rounding, on values with known answers
    EXPECT_EQ(bf16_round(1.0f), 1.0f);
    EXPECT_EQ(bf16_round(1.0f + std::ldexp(1.0f, -8)), 1.0f);                      // tie: to even (1.0)
    EXPECT_EQ(bf16_round(1.0f + 3 * std::ldexp(1.0f, -8)), 1.0f + std::ldexp(1.0f, -6));  // tie: to even
    EXPECT_EQ(bf16_round(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -12)), 1.0f + std::ldexp(1.0f, -7));
    EXPECT_EQ(bf16_round(-3.0f), -3.0f);
}

// All four transpose cases, odd sizes (none a multiple of the 16 x 32 tiles), unaligned leading
// dimensions, K = 1, K past one slice of 512, accumulate with bias, untouched padding of C.
TEST_P(Matmul, Bf16SgemmMatchesRoundedReference) {
    std::mt19937 rng(8);
    struct Case { int M, N, K; };
    const std::vector<Case> cases = {{1, 1, 1}, {17, 33, 1}, {37, 45, 31}, {33, 17, 65}, {70, 100, 600}, {5, 300, 1100}};
    for (const Case& s : cases)
        for (int ta = 0; ta < 2; ++ta)
            for (int tb = 0; tb < 2; ++tb) {
                const int pad = 3, M = s.M, N = s.N, K = s.K, acc = (M + N + ta + tb) % 2;
                const int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
                const auto A = randn((size_t)(ta ? K : M) * lda, rng), B = randn((size_t)(tb ? N : K) * ldb, rng),
                           bias = randn(N, rng), C0 = randn((size_t)M * ldc, rng);
                auto C = C0;
                sgemm(ta, tb, M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc, acc, bias.data(), MatmulPrecision::bf16);
                const auto Ar = rounded(A), Br = rounded(B);
                expect_close("bf16 sgemm", C.data(), ldc,
                             ref_gemm(ta, tb, M, N, K, Ar.data(), lda, Br.data(), ldb, acc ? C0.data() : nullptr, ldc,
                                      bias.data()),
                             M, N, K);
                for (int i = 0; i < M; ++i)
                    for (int j = N; j < ldc; ++j) ASSERT_EQ(C[(size_t)i * ldc + j], C0[(size_t)i * ldc + j]);
                // Against the unrounded operands: within 2^-7.9 + gamma of sum |a b|.
                const Ref exact = ref_gemm(ta, tb, M, N, K, A.data(), lda, B.data(), ldb, acc ? C0.data() : nullptr, ldc,
                                           bias.data());
                double worst = 0;
                for (int i = 0; i < M; ++i)
                    for (int j = 0; j < N; ++j) {
                        const size_t r = (size_t)i * N + j;
                        worst = std::max(worst, std::fabs(C[(size_t)i * ldc + j] - exact.value[r]) /
                                                    ((std::ldexp(1.0, -7.9) + gamma_bound(K)) * exact.mag[r]));
                    }
                EXPECT_LE(worst, 1.0) << M << "x" << N << "x" << K << " ta " << ta << " tb " << tb;
            }
}

TEST_P(Matmul, Bf16LinearLayerAndThreadCounts) {
    std::mt19937 rng(9);
    const int N = 300, IC = 520, OC = 270;
    const auto inp = randn((size_t)N * IC, rng), w = randn((size_t)OC * IC, rng), b = randn(OC, rng),
               dout = randn((size_t)N * OC, rng);
    auto run = [&](int threads) { return linear_at_threads(inp, w, b, dout, N, IC, OC, threads, MatmulPrecision::bf16); };
    const auto one = run(1);
    const auto ir = rounded(inp), wr_ = rounded(w), dr = rounded(dout);
    const std::vector<float> half_inp((size_t)N * IC, 0.5f), half_w((size_t)OC * IC, 0.5f);
    expect_close("bf16 forward", one[0].data(), OC,
                 ref_gemm(false, true, N, OC, IC, ir.data(), IC, wr_.data(), IC, nullptr, 0, b.data()), N, OC, IC);
    expect_close("bf16 dinp", one[1].data(), IC,
                 ref_gemm(false, false, N, IC, OC, dr.data(), OC, wr_.data(), IC, half_inp.data(), IC, nullptr), N, IC, OC);
    expect_close("bf16 dweight", one[2].data(), IC,
                 ref_gemm(true, false, OC, IC, N, dr.data(), OC, ir.data(), IC, half_w.data(), IC, nullptr), OC, IC, N);
    for (int threads : {2, 3}) {
        const auto many = run(threads);
        for (int t = 0; t < 4; ++t) EXPECT_TRUE(one[t] == many[t]) << "output " << t << " differs with " << threads << " threads";
    }
}
