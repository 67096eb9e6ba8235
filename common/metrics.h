// common/metrics.h: evaluation metrics shared by finetune and distill: a confusion matrix and
// what it yields (accuracy, per-class precision/recall/F1, macro- and micro-F1, Matthews
// correlation), regression metrics (mean squared error, Pearson, Spearman), agreement of two
// prediction vectors, and renderers for a terminal report and for one JSON object.
//
// Conventions (scikit-learn's, with the label set passed explicitly):
//   - A ratio whose denominator is zero is 0: the precision of a class never predicted, the
//     recall of a class that never occurs in the truth, the F1 of a class with TP = FP = FN = 0,
//     the accuracy of an empty matrix, a correlation where one side has no variance.
//   - Per-class F1 is 2 TP / (2 TP + FP + FN), which equals 2 P R / (P + R) whenever that is
//     defined and is 0 when P + R = 0.
//   - Macro averages are the unweighted mean over ALL K classes of the label set, including
//     classes that occur neither in the truth nor in the predictions (they contribute 0). This is
//     scikit-learn with labels=range(K); scikit-learn's default (labels=None) would instead
//     average only over the labels present, and so gives a higher macro-F1 in that case.
//   - Micro averages are computed from TP, FP and FN summed over classes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace wr {

// Counts of (true class, predicted class) pairs over K classes: row = true, column = predicted.
class ConfusionMatrix {
public:
    // `source` names where the labels come from (a shard path, "dev", ...); it starts the message
    // of every error this matrix throws. K must be at least 1.
    explicit ConfusionMatrix(int num_classes, std::string source = "metrics");

    // Count one example. An id outside 0..K-1 throws wr::Error naming which side ("true class" or
    // "predicted class"), the bad id and the valid range.
    void add(int truth, int predicted);
    // Count a batch; the vectors must be the same length. Errors also name the example index.
    void add_all(const std::vector<int>& truth, const std::vector<int>& predicted);

    int num_classes() const { return k_; }
    const std::string& source() const { return source_; }
    int64_t at(int truth, int predicted) const;  // bounds-checked like add()
    int64_t total() const { return total_; }
    int64_t correct() const;                    // the trace
    int64_t true_count(int c) const;            // row sum: the support of class c
    int64_t predicted_count(int c) const;       // column sum

private:
    void check(int id, const char* side, int64_t example) const;
    int k_;
    std::string source_;
    std::vector<int64_t> counts_;  // [K, K] row-major, row = true class
    int64_t total_ = 0;
};

struct ClassMetrics {
    double precision = 0, recall = 0, f1 = 0;
    int64_t support = 0;    // how many examples truly are this class
    int64_t predicted = 0;  // how many examples were predicted as this class
};

struct ClassificationMetrics {
    int64_t n = 0;
    double accuracy = 0;
    double macro_precision = 0, macro_recall = 0, macro_f1 = 0;
    double micro_precision = 0, micro_recall = 0, micro_f1 = 0;
    // Matthews correlation in its K-class form (Gorodkin 2004, as scikit-learn computes it); for
    // K = 2 it is the usual (TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)). 0 when the
    // truth or the predictions hold a single class (zero denominator).
    double mcc = 0;
    std::vector<ClassMetrics> per_class;  // K entries
};

ClassificationMetrics classification_metrics(const ConfusionMatrix& cm);

// Fraction of positions where a[i] == b[i] (e.g. student argmax vs teacher argmax). The vectors
// must be the same length; empty vectors give 0.
double agreement(const std::vector<int>& a, const std::vector<int>& b);

// Index of the largest value in each row of a row-major [n, k] array; ties go to the lowest index.
std::vector<int> argmax_rows(const float* values, int64_t n, int k);

// Regression (a single output per example). The vectors must be the same, non-zero length.
// Sums run in double. A NaN input makes the result NaN.
double mean_squared_error(const std::vector<float>& predicted, const std::vector<float>& target);
double pearson(const std::vector<float>& x, const std::vector<float>& y);
// Pearson correlation of the ranks, tied values sharing the average of their ranks.
double spearman(const std::vector<float>& x, const std::vector<float>& y);
// 1-based ranks in ascending order, ties averaged: {3, 1, 4, 1, 5} -> {3, 1.5, 4, 1.5, 5}.
std::vector<double> average_ranks(const std::vector<float>& x);

struct RegressionMetrics {
    int64_t n = 0;
    double mse = 0, pearson = 0, spearman = 0;
};
RegressionMetrics regression_metrics(const std::vector<float>& predicted, const std::vector<float>& target);

// A terminal report:
//   accuracy 0.9123 | macro-F1 0.9012 | micro-F1 0.9123        (" | MCC 0.8200" added when K = 2)
//   then a per-class table (class, precision, recall, F1, support) and the confusion matrix
//   with rows and columns labeled by class name. `class_names` must hold K names, or be empty
//   to use "0", "1", ...
std::string format_report(const ConfusionMatrix& cm, const std::vector<std::string>& class_names = {});
std::string format_report(const RegressionMetrics& m);  // "mse 0.1234 | pearson 0.9 | spearman 0.9"

// One JSON object (no newline) for log.jsonl lines:
//   {"n":12,"accuracy":..,"macro_f1":..,"micro_f1":..,"macro_precision":..,"macro_recall":..,
//    "mcc":..,"classes":[names],"precision":[K],"recall":[K],"f1":[K],"support":[K],
//    "confusion":[[K] x K]}
// Numbers are written in the shortest form that reads back to the same double; a non-finite
// number is written as null. Names are escaped; invalid UTF-8 bytes become U+FFFD.
std::string metrics_json(const ConfusionMatrix& cm, const std::vector<std::string>& class_names = {});
std::string metrics_json(const RegressionMetrics& m);  // {"n":..,"mse":..,"pearson":..,"spearman":..}

// The pieces of the JSON writer, for programs that add their own fields.
std::string json_string(const std::string& s);  // quoted and escaped
std::string json_number(double v);              // shortest round-trip form, or null

}  // namespace wr
