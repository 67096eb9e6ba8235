// tests/gradcheck.h: central finite differences for checking a backward pass against its forward.
//
// The pattern: pick a random R shaped like the op's output and let the scalar loss be
// L = sum(out * R), accumulated in double. Then dL/dout = R, so running the backward pass with
// dout = R must give dL/dx for every input and parameter x. For each element x[i] of one of them,
//   numeric[i] = (L(x[i] + h) - L(x[i] - h)) / (x[i]+h - (x[i]-h))
// where the perturbed values are the float numbers actually stored (the denominator uses them,
// not 2h, so float rounding of x +- h does not bias the quotient). The comparison reports the
// relative error of the whole tensor, ||analytic - numeric|| / ||numeric|| (robust to elements
// whose gradient is near zero), and the worst single element.
//
// Error budget for float32 ops: the truncation error is O(h^2 f''') and the rounding error about
// eps_float * |L| / h; h = 1e-2 .. 1e-3 on inputs of size ~1 keeps both near 1e-4 .. 1e-3.
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <ostream>
#include <random>
#include <vector>

namespace wr::testing {

// Values drawn uniformly from [lo, hi), reproducible from the seed.
inline std::vector<float> random_vector(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> dist(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) x = (float)dist(rng);
    return v;
}

// sum_i out[i] * R[i] in double: the scalar loss whose gradient with respect to out is R.
inline double weighted_sum(const std::vector<float>& out, const std::vector<float>& R) {
    double s = 0.0;
    for (size_t i = 0; i < out.size(); i++) s += (double)out[i] * (double)R[i];
    return s;
}

struct GradCheckResult {
    double rel_err = 0.0;       // ||analytic - numeric|| / ||numeric|| over the checked elements
    double max_abs_err = 0.0;   // max_i |analytic[i] - numeric[i]|
    int64_t worst = -1;         // the element with max_abs_err
    double worst_analytic = 0.0, worst_numeric = 0.0;
    int64_t checked = 0;        // elements perturbed
};

inline std::ostream& operator<<(std::ostream& os, const GradCheckResult& r) {
    return os << "relative error " << r.rel_err << " over " << r.checked << " elements; worst element "
              << r.worst << ": analytic " << r.worst_analytic << " numeric " << r.worst_numeric;
}

// Compares analytic[0..n) with central differences of loss() with respect to x[0..n). loss()
// must run the forward pass from the current contents of x and return L; x is restored after
// every element. With `stride` > 1 only every stride-th element is checked (large tensors).
inline GradCheckResult check_gradient(const std::function<double()>& loss, float* x, const float* analytic,
                                      int64_t n, double h, int64_t stride = 1) {
    GradCheckResult r;
    double diff_sq = 0.0, ref_sq = 0.0;
    for (int64_t i = 0; i < n; i += stride) {
        const float saved = x[i];
        const float plus = (float)(saved + h), minus = (float)(saved - h);
        x[i] = plus;
        const double loss_plus = loss();
        x[i] = minus;
        const double loss_minus = loss();
        x[i] = saved;
        const double numeric = (loss_plus - loss_minus) / ((double)plus - (double)minus);
        const double err = std::fabs((double)analytic[i] - numeric);
        diff_sq += err * err;
        ref_sq += numeric * numeric;
        if (err > r.max_abs_err || r.worst < 0) {
            r.max_abs_err = err;
            r.worst = i;
            r.worst_analytic = analytic[i];
            r.worst_numeric = numeric;
        }
        r.checked++;
    }
    r.rel_err = std::sqrt(diff_sq) / std::fmax(std::sqrt(ref_sq), 1e-30);
    return r;
}

}  // namespace wr::testing
