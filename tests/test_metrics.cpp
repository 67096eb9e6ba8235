// tests/test_metrics.cpp: the evaluation metrics (common/metrics.h) against values worked out by
// hand in the comments: a 4-class confusion matrix with a class that is predicted but never true
// and a class that never occurs at all, binary and K-class Matthews correlation, Pearson and
// Spearman (with ties), the report and the JSON object, and the errors for bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/metrics.h"
#include "test_helpers.h"

using namespace wr;

namespace {

const std::vector<std::string> kNames = {"pos", "neg", "neutral", "mixed"};

// The hand example: 12 examples over 4 classes (rows = true, columns = predicted).
//
//                 pred pos  neg  neutral  mixed   | support
//   true pos          4     1      1       0      |   6
//   true neg          2     3      1       0      |   6
//   true neutral      0     0      0       0      |   0     predicted twice, never true
//   true mixed        0     0      0       0      |   0     never true, never predicted
//   predicted         6     4      2       0        12
ConfusionMatrix hand_matrix() {
    ConfusionMatrix cm(4, "hand");
    const std::vector<int> truth = {0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1};
    const std::vector<int> pred = {0, 0, 0, 0, 1, 2, 0, 0, 1, 1, 1, 2};
    cm.add_all(truth, pred);
    return cm;
}

// The report split into lines, each line split at whitespace.
std::vector<std::vector<std::string>> report_rows(const std::string& report) {
    std::vector<std::vector<std::string>> rows;
    std::istringstream lines(report);
    std::string line;
    while (std::getline(lines, line)) {
        std::istringstream words(line);
        std::vector<std::string> row;
        std::string w;
        while (words >> w) row.push_back(w);
        rows.push_back(row);
    }
    return rows;
}

bool has_row(const std::string& report, const std::vector<std::string>& row) {
    for (const auto& r : report_rows(report))
        if (r == row) return true;
    return false;
}

}  // namespace

TEST(Metrics, ConfusionMatrixCounts) {
    const ConfusionMatrix cm = hand_matrix();
    EXPECT_EQ(cm.num_classes(), 4);
    EXPECT_EQ(cm.total(), 12);
    EXPECT_EQ(cm.correct(), 7);  // 4 + 3
    EXPECT_EQ(cm.at(0, 0), 4);
    EXPECT_EQ(cm.at(0, 2), 1);
    EXPECT_EQ(cm.at(1, 0), 2);
    EXPECT_EQ(cm.at(2, 0), 0);
    const std::vector<int64_t> rows = {6, 6, 0, 0}, cols = {6, 4, 2, 0};
    for (int c = 0; c < 4; c++) {
        EXPECT_EQ(cm.true_count(c), rows[c]) << c;
        EXPECT_EQ(cm.predicted_count(c), cols[c]) << c;
    }
}

TEST(Metrics, HandExamplePerClass) {
    const ClassificationMetrics m = classification_metrics(hand_matrix());
    ASSERT_EQ(m.per_class.size(), 4u);
    // pos:     TP 4, FP 2 (column 6 - 4), FN 2 (row 6 - 4): P = 4/6, R = 4/6, F1 = 8/12 = 2/3.
    EXPECT_NEAR(m.per_class[0].precision, 2.0 / 3, 1e-12);
    EXPECT_NEAR(m.per_class[0].recall, 2.0 / 3, 1e-12);
    EXPECT_NEAR(m.per_class[0].f1, 2.0 / 3, 1e-12);
    EXPECT_EQ(m.per_class[0].support, 6);
    // neg:     TP 3, FP 1, FN 3: P = 3/4, R = 3/6 = 1/2, F1 = 6 / (6 + 1 + 3) = 0.6
    //          (check: 2 P R / (P + R) = 0.375 * 2 / 1.25 = 0.6).
    EXPECT_NEAR(m.per_class[1].precision, 0.75, 1e-12);
    EXPECT_NEAR(m.per_class[1].recall, 0.5, 1e-12);
    EXPECT_NEAR(m.per_class[1].f1, 0.6, 1e-12);
    EXPECT_EQ(m.per_class[1].support, 6);
    // neutral: predicted but never true: TP 0, FP 2, FN 0: P = 0/2 = 0, R = 0/0 -> 0, F1 = 0/2 = 0.
    EXPECT_EQ(m.per_class[2].precision, 0.0);
    EXPECT_EQ(m.per_class[2].recall, 0.0);
    EXPECT_EQ(m.per_class[2].f1, 0.0);
    EXPECT_EQ(m.per_class[2].support, 0);
    EXPECT_EQ(m.per_class[2].predicted, 2);
    // mixed:   never anywhere: TP = FP = FN = 0: everything 0/0 -> 0, and no NaN anywhere.
    EXPECT_EQ(m.per_class[3].precision, 0.0);
    EXPECT_EQ(m.per_class[3].recall, 0.0);
    EXPECT_EQ(m.per_class[3].f1, 0.0);
    EXPECT_EQ(m.per_class[3].support, 0);
    EXPECT_EQ(m.per_class[3].predicted, 0);
}

TEST(Metrics, HandExampleAverages) {
    const ClassificationMetrics m = classification_metrics(hand_matrix());
    EXPECT_EQ(m.n, 12);
    // accuracy = trace / total = 7 / 12.
    EXPECT_NEAR(m.accuracy, 7.0 / 12, 1e-12);
    // macro over all 4 classes, the two absent ones counting as 0:
    //   F1 (2/3 + 3/5 + 0 + 0) / 4 = (19/15) / 4 = 19/60 = 0.31667
    //   (averaging over the 2 classes present only would give 19/30: the convention is tested).
    //   P  (2/3 + 3/4) / 4 = (17/12) / 4 = 17/48;  R  (2/3 + 1/2) / 4 = (7/6) / 4 = 7/24.
    EXPECT_NEAR(m.macro_f1, 19.0 / 60, 1e-12);
    EXPECT_NEAR(m.macro_precision, 17.0 / 48, 1e-12);
    EXPECT_NEAR(m.macro_recall, 7.0 / 24, 1e-12);
    // micro: TP = 4 + 3 = 7, FP = 2 + 1 + 2 + 0 = 5, FN = 2 + 3 + 0 + 0 = 5:
    //   P = R = 7/12, F1 = 14 / (14 + 5 + 5) = 7/12 (= accuracy, as for any single-label data).
    EXPECT_NEAR(m.micro_precision, 7.0 / 12, 1e-12);
    EXPECT_NEAR(m.micro_recall, 7.0 / 12, 1e-12);
    EXPECT_NEAR(m.micro_f1, 7.0 / 12, 1e-12);
    // K-class MCC: s = 12, c = 7, t = (6, 6, 0, 0), p = (6, 4, 2, 0):
    //   c s - t.p = 84 - (36 + 24) = 24;  s^2 - p.p = 144 - 56 = 88;  s^2 - t.t = 144 - 72 = 72;
    //   24 / sqrt(88 * 72) = 24 / sqrt(576 * 11) = 1 / sqrt(11) = 0.30151.
    EXPECT_NEAR(m.mcc, 1.0 / std::sqrt(11.0), 1e-12);
}

TEST(Metrics, MicroF1EqualsAccuracyForSingleLabelData) {
    // A lopsided 5-class matrix from a fixed pseudo-random sequence: the identity has to come out
    // of the summed TP/FP/FN, whatever the counts.
    ConfusionMatrix cm(5);
    uint32_t state = 12345;
    auto next = [&] {
        state = state * 1664525u + 1013904223u;
        return (int)((state >> 16) % 5);
    };
    for (int i = 0; i < 997; i++) {
        const int t = next();
        const int p = (next() < 2) ? t : next();  // right a bit more than chance
        cm.add(t, p);
    }
    const ClassificationMetrics m = classification_metrics(cm);
    EXPECT_GT(m.accuracy, 0.2);
    EXPECT_LT(m.accuracy, 0.9);
    EXPECT_NEAR(m.micro_f1, m.accuracy, 1e-12);
    EXPECT_NEAR(m.micro_precision, m.accuracy, 1e-12);
    EXPECT_NEAR(m.micro_recall, m.accuracy, 1e-12);
    EXPECT_NEAR(m.accuracy, (double)cm.correct() / 997, 1e-15);
}

TEST(Metrics, BinaryMatthewsCorrelation) {
    // Class 1 positive: TP 6, TN 3, FP 1, FN 2.
    //   MCC = (6*3 - 1*2) / sqrt((6+1)(6+2)(3+1)(3+2)) = 16 / sqrt(1120) = 0.47809.
    ConfusionMatrix cm(2);
    for (int i = 0; i < 6; i++) cm.add(1, 1);
    for (int i = 0; i < 3; i++) cm.add(0, 0);
    cm.add(0, 1);
    cm.add(1, 0);
    cm.add(1, 0);
    EXPECT_NEAR(classification_metrics(cm).mcc, 16.0 / std::sqrt(1120.0), 1e-12);

    ConfusionMatrix perfect(2), inverted(2), constant(2);
    for (int i = 0; i < 4; i++) {
        perfect.add(i % 2, i % 2);
        inverted.add(i % 2, 1 - i % 2);
        constant.add(i % 2, 1);  // always predicts 1: zero denominator -> 0
    }
    EXPECT_NEAR(classification_metrics(perfect).mcc, 1.0, 1e-12);
    EXPECT_NEAR(classification_metrics(inverted).mcc, -1.0, 1e-12);
    EXPECT_EQ(classification_metrics(constant).mcc, 0.0);
}

TEST(Metrics, EmptyMatrixIsAllZeros) {
    const ClassificationMetrics m = classification_metrics(ConfusionMatrix(3));
    EXPECT_EQ(m.n, 0);
    EXPECT_EQ(m.accuracy, 0.0);
    EXPECT_EQ(m.macro_f1, 0.0);
    EXPECT_EQ(m.micro_f1, 0.0);
    EXPECT_EQ(m.mcc, 0.0);
}

TEST(Metrics, AgreementAndArgmax) {
    // Agree at positions 0, 1, 3: 3 of 5.
    EXPECT_NEAR(agreement({0, 1, 2, 1, 0}, {0, 1, 1, 1, 2}), 0.6, 1e-15);
    EXPECT_EQ(agreement({}, {}), 0.0);
    EXPECT_ERROR_MENTIONS(agreement({0, 1}, {0}), "agreement", "2", "1");

    const float logits[] = {1, 3, 2,  //
                            5, 5, 0,  // tie: the lower index wins
                            -4, -9, -1};
    EXPECT_EQ(argmax_rows(logits, 3, 3), (std::vector<int>{1, 0, 2}));
}

TEST(Metrics, MeanSquaredErrorAndPearson) {
    // (0^2 + 1^2 + 2^2) / 3 = 5/3.
    EXPECT_NEAR(mean_squared_error({1, 2, 4}, {1, 3, 2}), 5.0 / 3, 1e-12);
    // x = 1 2 3 4 (mean 2.5), y = 2 4 5 9 (mean 5): dx = -1.5 -.5 .5 1.5, dy = -3 -1 0 4;
    //   sum dx dy = 4.5 + .5 + 0 + 6 = 11, sum dx^2 = 5, sum dy^2 = 26: r = 11 / sqrt(130) = 0.96476.
    EXPECT_NEAR(pearson({1, 2, 3, 4}, {2, 4, 5, 9}), 11.0 / std::sqrt(130.0), 1e-12);
    EXPECT_NEAR(pearson({1, 2, 3}, {6, 4, 2}), -1.0, 1e-12);
    EXPECT_EQ(pearson({1, 2, 3}, {7, 7, 7}), 0.0);  // no variance: 0 by convention
}

TEST(Metrics, AverageRanksShareTies) {
    EXPECT_EQ(average_ranks({3, 1, 4, 1, 5}), (std::vector<double>{3, 1.5, 4, 1.5, 5}));
    // Three-way tie at ranks 2, 3, 4 -> 3 each.
    EXPECT_EQ(average_ranks({0.5f, 2, 2, 2, 9}), (std::vector<double>{1, 3, 3, 3, 5}));
    EXPECT_EQ(average_ranks({7, 7}), (std::vector<double>{1.5, 1.5}));
    EXPECT_ERROR_MENTIONS(average_ranks({1, NAN}), "value 1", "NaN");
}

TEST(Metrics, SpearmanWithTies) {
    // x = 10 20 20 30 -> ranks 1 2.5 2.5 4;  y = 1 3 2 2 -> ranks 1 4 2.5 2.5. Both have mean 2.5:
    //   dx = -1.5 0 0 1.5, dy = -1.5 1.5 0 0: sum dx dy = 2.25, sum dx^2 = sum dy^2 = 4.5:
    //   rho = 2.25 / 4.5 = 0.5. (The no-ties shortcut 1 - 6 sum d^2 / (n (n^2 - 1)) would give
    //   1 - 6 * 4.5 / 60 = 0.55, so this checks that ties are handled as Pearson on ranks.)
    EXPECT_NEAR(spearman({10, 20, 20, 30}, {1, 3, 2, 2}), 0.5, 1e-12);
    // Monotone but not linear: rho = 1 while Pearson < 1.
    EXPECT_NEAR(spearman({1, 2, 3, 4}, {1, 8, 27, 64}), 1.0, 1e-12);
    EXPECT_LT(pearson({1, 2, 3, 4}, {1, 8, 27, 64}), 0.99);
    EXPECT_NEAR(spearman({1, 2, 3}, {3, 2, 1}), -1.0, 1e-12);
    EXPECT_TRUE(std::isnan(spearman({1, NAN, 3}, {1, 2, 3})));

    const RegressionMetrics r = regression_metrics({10, 20, 20, 30}, {1, 3, 2, 2});
    EXPECT_EQ(r.n, 4);
    EXPECT_NEAR(r.spearman, 0.5, 1e-12);
    // mse: (81 + 289 + 324 + 784) / 4 = 1478 / 4 = 369.5.
    EXPECT_NEAR(r.mse, 369.5, 1e-9);
    EXPECT_NE(format_report(r).find("spearman 0.5000"), std::string::npos);
    const auto j = nlohmann::json::parse(metrics_json(r));
    EXPECT_EQ(j.at("n").get<int>(), 4);
    EXPECT_NEAR(j.at("spearman").get<double>(), 0.5, 1e-12);
}

TEST(Metrics, RegressionRejectsMismatchedOrEmptyInput) {
    EXPECT_ERROR_MENTIONS(mean_squared_error({1, 2}, {1}), "mean squared error", "2", "1");
    EXPECT_ERROR_MENTIONS(pearson({}, {}), "pearson", "none");
    EXPECT_ERROR_MENTIONS(spearman({1}, {1, 2}), "spearman", "differ");
}

TEST(Metrics, ReportShowsNamesNumbersAndMatrix) {
    const std::string report = format_report(hand_matrix(), kNames);
    // Headline: 7/12 = 0.5833, 19/60 = 0.3167.
    EXPECT_EQ(report.rfind("accuracy 0.5833 | macro-F1 0.3167 | micro-F1 0.5833\n", 0), 0u) << report;
    EXPECT_EQ(report.find("MCC"), std::string::npos);  // only for binary tasks
    // Per-class table.
    EXPECT_TRUE(has_row(report, {"class", "precision", "recall", "F1", "support"})) << report;
    EXPECT_TRUE(has_row(report, {"pos", "0.6667", "0.6667", "0.6667", "6"})) << report;
    EXPECT_TRUE(has_row(report, {"neg", "0.7500", "0.5000", "0.6000", "6"})) << report;
    EXPECT_TRUE(has_row(report, {"neutral", "0.0000", "0.0000", "0.0000", "0"})) << report;
    EXPECT_TRUE(has_row(report, {"mixed", "0.0000", "0.0000", "0.0000", "0"})) << report;
    // Confusion matrix with names on both sides.
    EXPECT_TRUE(has_row(report, {"true\\pred", "pos", "neg", "neutral", "mixed"})) << report;
    EXPECT_TRUE(has_row(report, {"pos", "4", "1", "1", "0"})) << report;
    EXPECT_TRUE(has_row(report, {"neg", "2", "3", "1", "0"})) << report;
    EXPECT_TRUE(has_row(report, {"neutral", "0", "0", "0", "0"})) << report;

    // Columns line up: every row of the matrix is as wide as its header.
    const auto at = report.find("true\\pred");
    std::istringstream lines(report.substr(at));
    std::string header, row;
    std::getline(lines, header);
    while (std::getline(lines, row)) EXPECT_EQ(row.size(), header.size()) << row;

    // Without names the classes are numbered; a binary task adds MCC to the headline.
    ConfusionMatrix bin(2);
    bin.add(0, 0);
    bin.add(1, 1);
    bin.add(1, 0);
    const std::string b = format_report(bin);
    EXPECT_TRUE(has_row(b, {"true\\pred", "0", "1"})) << b;
    EXPECT_TRUE(has_row(b, {"1", "1", "1"})) << b;
    // MCC: s 3, c 2, t (1, 2), p (2, 1): (6 - 4) / sqrt((9 - 5)(9 - 5)) = 0.5.
    EXPECT_NE(b.find("| MCC 0.5000"), std::string::npos) << b;
}

TEST(Metrics, JsonHasTheHeadlineAndPerClassArrays) {
    const std::string text = metrics_json(hand_matrix(), kNames);
    EXPECT_EQ(text.find('\n'), std::string::npos);
    const auto j = nlohmann::json::parse(text);
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(j.at("n").get<int>(), 12);
    EXPECT_NEAR(j.at("accuracy").get<double>(), 7.0 / 12, 1e-15);
    EXPECT_NEAR(j.at("macro_f1").get<double>(), 19.0 / 60, 1e-15);
    EXPECT_NEAR(j.at("micro_f1").get<double>(), 7.0 / 12, 1e-15);
    EXPECT_NEAR(j.at("mcc").get<double>(), 1.0 / std::sqrt(11.0), 1e-15);
    EXPECT_EQ(j.at("classes").get<std::vector<std::string>>(), kNames);
    const auto p = j.at("precision").get<std::vector<double>>();
    const auto r = j.at("recall").get<std::vector<double>>();
    const auto f = j.at("f1").get<std::vector<double>>();
    ASSERT_EQ(p.size(), 4u);
    ASSERT_EQ(r.size(), 4u);
    ASSERT_EQ(f.size(), 4u);
    EXPECT_NEAR(p[1], 0.75, 1e-15);
    EXPECT_NEAR(r[1], 0.5, 1e-15);
    EXPECT_NEAR(f[1], 0.6, 1e-15);
    EXPECT_EQ(f[3], 0.0);
    EXPECT_EQ(j.at("support").get<std::vector<int>>(), (std::vector<int>{6, 6, 0, 0}));
    EXPECT_EQ(j.at("confusion").get<std::vector<std::vector<int>>>(),
              (std::vector<std::vector<int>>{{4, 1, 1, 0}, {2, 3, 1, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}}));
}

TEST(Metrics, JsonEscapesNamesAndNumbers) {
    const std::vector<std::string> names = {"say \"hi\"", "back\\slash", "new\nline\ttab\x01", "caf\xc3\xa9 \xe2\x9c\x93",
                                            "bad \xff byte \xc3"};
    ConfusionMatrix cm(5);
    cm.add(0, 0);
    const auto j = nlohmann::json::parse(metrics_json(cm, names));  // throws on bad escapes or UTF-8
    const auto parsed = j.at("classes").get<std::vector<std::string>>();
    ASSERT_EQ(parsed.size(), 5u);
    for (int i = 0; i < 4; i++) EXPECT_EQ(parsed[i], names[i]);
    EXPECT_EQ(parsed[4], "bad \xef\xbf\xbd byte \xef\xbf\xbd");  // invalid bytes -> U+FFFD

    EXPECT_EQ(json_string("a\"b\\c\x1f"), "\"a\\\"b\\\\c\\u001f\"");
    EXPECT_EQ(json_string("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");  // a UTF-16 surrogate is not UTF-8
    EXPECT_EQ(json_number(0.1), "0.1");
    EXPECT_EQ(json_number(7), "7");
    EXPECT_EQ(std::stod(json_number(1.0 / 3)), 1.0 / 3);  // round-trips
    EXPECT_EQ(json_number(NAN), "null");
    EXPECT_EQ(json_number(-INFINITY), "null");
}

TEST(Metrics, OutOfRangeClassIdsAreErrors) {
    ConfusionMatrix cm(4, "dev.bin");
    EXPECT_ERROR_MENTIONS(cm.add(4, 0), "dev.bin", "true class", "is 4", "0..3");
    EXPECT_ERROR_MENTIONS(cm.add(0, -1), "dev.bin", "predicted class", "is -1", "0..3");
    EXPECT_ERROR_MENTIONS(cm.at(0, 9), "predicted class", "is 9");
    // A batch names the example and leaves the matrix as it was.
    EXPECT_ERROR_MENTIONS(cm.add_all({0, 1, 2}, {0, 1, 7}), "predicted class", "is 7", "example 2");
    EXPECT_ERROR_MENTIONS(cm.add_all({0, 1, 2}, {0, 1}), "dev.bin", "predictions", "2", "3");
    EXPECT_EQ(cm.total(), 0);
    EXPECT_ERROR_MENTIONS(ConfusionMatrix(0, "x.bin"), "x.bin", "classes", "at least 1");
    EXPECT_ERROR_MENTIONS(format_report(cm, {"a", "b", "c"}), "dev.bin", "class names", "3", "4");
    EXPECT_ERROR_MENTIONS(metrics_json(cm, {"a"}), "class names");
}
