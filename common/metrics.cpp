// common/metrics.cpp: implementation of the evaluation metrics declared in metrics.h.
#include "common/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>

#include "common/util.h"

namespace wr {

// ---- confusion matrix ----

ConfusionMatrix::ConfusionMatrix(int num_classes, std::string source) : k_(num_classes), source_(std::move(source)) {
    if (num_classes < 1) fail(source_, "classes", "is " + std::to_string(num_classes) + ", need at least 1");
    counts_.assign((size_t)k_ * k_, 0);
}

void ConfusionMatrix::check(int id, const char* side, int64_t example) const {
    if (id >= 0 && id < k_) return;
    std::string what = "is " + std::to_string(id);
    if (example >= 0) what += " at example " + std::to_string(example);
    what += ", expected 0.." + std::to_string(k_ - 1) + " (" + std::to_string(k_) + " classes)";
    fail(source_, side, what);
}

void ConfusionMatrix::add(int truth, int predicted) {
    check(truth, "true class", -1);
    check(predicted, "predicted class", -1);
    counts_[(size_t)truth * k_ + predicted]++;
    total_++;
}

void ConfusionMatrix::add_all(const std::vector<int>& truth, const std::vector<int>& predicted) {
    if (truth.size() != predicted.size())
        fail(source_, "predictions",
             "there are " + std::to_string(predicted.size()) + " for " + std::to_string(truth.size()) + " true labels");
    // Validate everything first so a bad batch leaves the matrix unchanged.
    for (size_t i = 0; i < truth.size(); i++) {
        check(truth[i], "true class", (int64_t)i);
        check(predicted[i], "predicted class", (int64_t)i);
    }
    for (size_t i = 0; i < truth.size(); i++) counts_[(size_t)truth[i] * k_ + predicted[i]]++;
    total_ += (int64_t)truth.size();
}

int64_t ConfusionMatrix::at(int truth, int predicted) const {
    check(truth, "true class", -1);
    check(predicted, "predicted class", -1);
    return counts_[(size_t)truth * k_ + predicted];
}

int64_t ConfusionMatrix::correct() const {
    int64_t s = 0;
    for (int c = 0; c < k_; c++) s += counts_[(size_t)c * k_ + c];
    return s;
}

int64_t ConfusionMatrix::true_count(int c) const {
    check(c, "class", -1);
    int64_t s = 0;
    for (int p = 0; p < k_; p++) s += counts_[(size_t)c * k_ + p];
    return s;
}

int64_t ConfusionMatrix::predicted_count(int c) const {
    check(c, "class", -1);
    int64_t s = 0;
    for (int t = 0; t < k_; t++) s += counts_[(size_t)t * k_ + c];
    return s;
}

// ---- classification metrics ----

namespace {

// num / den, or 0 when den is 0 (the convention stated in metrics.h).
double ratio(double num, double den) { return den == 0 ? 0.0 : num / den; }

}  // namespace

ClassificationMetrics classification_metrics(const ConfusionMatrix& cm) {
    const int k = cm.num_classes();
    ClassificationMetrics m;
    m.n = cm.total();
    m.accuracy = ratio((double)cm.correct(), (double)m.n);
    m.per_class.resize(k);
    int64_t tp_sum = 0, fp_sum = 0, fn_sum = 0;
    for (int c = 0; c < k; c++) {
        ClassMetrics& pc = m.per_class[c];
        const int64_t tp = cm.at(c, c);
        pc.support = cm.true_count(c);
        pc.predicted = cm.predicted_count(c);
        const int64_t fp = pc.predicted - tp, fn = pc.support - tp;
        pc.precision = ratio((double)tp, (double)(tp + fp));
        pc.recall = ratio((double)tp, (double)(tp + fn));
        pc.f1 = ratio(2.0 * tp, (double)(2 * tp + fp + fn));
        m.macro_precision += pc.precision;
        m.macro_recall += pc.recall;
        m.macro_f1 += pc.f1;
        tp_sum += tp;
        fp_sum += fp;
        fn_sum += fn;
    }
    m.macro_precision /= k;
    m.macro_recall /= k;
    m.macro_f1 /= k;
    m.micro_precision = ratio((double)tp_sum, (double)(tp_sum + fp_sum));
    m.micro_recall = ratio((double)tp_sum, (double)(tp_sum + fn_sum));
    m.micro_f1 = ratio(2.0 * tp_sum, (double)(2 * tp_sum + fp_sum + fn_sum));

    // K-class Matthews correlation: with s examples, c correct, t_k true and p_k predicted counts,
    // (c s - sum t_k p_k) / sqrt((s^2 - sum p_k^2) (s^2 - sum t_k^2)). Doubles: s^2 can pass 2^63.
    const double s = (double)m.n, correct = (double)cm.correct();
    double tp_dot = 0, pp = 0, tt = 0;
    for (int c = 0; c < k; c++) {
        const double t = (double)m.per_class[c].support, p = (double)m.per_class[c].predicted;
        tp_dot += t * p;
        pp += p * p;
        tt += t * t;
    }
    const double den = (s * s - pp) * (s * s - tt);
    m.mcc = den <= 0 ? 0.0 : (correct * s - tp_dot) / std::sqrt(den);
    return m;
}

double agreement(const std::vector<int>& a, const std::vector<int>& b) {
    if (a.size() != b.size())
        fail("agreement", "predictions", "lengths differ: " + std::to_string(a.size()) + " and " + std::to_string(b.size()));
    int64_t same = 0;
    for (size_t i = 0; i < a.size(); i++) same += a[i] == b[i];
    return ratio((double)same, (double)a.size());
}

std::vector<int> argmax_rows(const float* values, int64_t n, int k) {
    if (k < 1) fail("argmax", "columns", "is " + std::to_string(k) + ", need at least 1");
    std::vector<int> out((size_t)n);
    for (int64_t i = 0; i < n; i++) {
        const float* row = values + i * k;
        int best = 0;
        for (int j = 1; j < k; j++)
            if (row[j] > row[best]) best = j;
        out[(size_t)i] = best;
    }
    return out;
}

// ---- regression metrics ----

namespace {

void check_pair(const char* what, const std::vector<float>& x, const std::vector<float>& y) {
    if (x.size() != y.size())
        fail(what, "values", "lengths differ: " + std::to_string(x.size()) + " and " + std::to_string(y.size()));
    if (x.empty()) fail(what, "values", "none given");
}

double pearson_of(const std::vector<double>& x, const std::vector<double>& y) {
    const double n = (double)x.size();
    double mx = 0, my = 0;
    for (size_t i = 0; i < x.size(); i++) mx += x[i], my += y[i];
    mx /= n;
    my /= n;
    double sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < x.size(); i++) {
        const double dx = x[i] - mx, dy = y[i] - my;
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if (std::isnan(sxy) || std::isnan(sxx) || std::isnan(syy)) return std::numeric_limits<double>::quiet_NaN();
    if (sxx == 0 || syy == 0) return 0.0;
    return std::clamp(sxy / std::sqrt(sxx * syy), -1.0, 1.0);
}

bool has_nan(const std::vector<float>& v) {
    return std::any_of(v.begin(), v.end(), [](float f) { return std::isnan(f); });
}

}  // namespace

double mean_squared_error(const std::vector<float>& predicted, const std::vector<float>& target) {
    check_pair("mean squared error", predicted, target);
    double s = 0;
    for (size_t i = 0; i < predicted.size(); i++) {
        const double d = (double)predicted[i] - (double)target[i];
        s += d * d;
    }
    return s / (double)predicted.size();
}

double pearson(const std::vector<float>& x, const std::vector<float>& y) {
    check_pair("pearson", x, y);
    return pearson_of(std::vector<double>(x.begin(), x.end()), std::vector<double>(y.begin(), y.end()));
}

std::vector<double> average_ranks(const std::vector<float>& x) {
    for (size_t i = 0; i < x.size(); i++)
        if (std::isnan(x[i])) fail("ranks", "value " + std::to_string(i), "is NaN, which has no rank");
    std::vector<size_t> order(x.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
    std::vector<double> ranks(x.size());
    for (size_t i = 0; i < order.size();) {
        size_t j = i + 1;
        while (j < order.size() && x[order[j]] == x[order[i]]) j++;
        // positions i..j-1 (0-based) hold one tied value: ranks i+1..j, whose mean is (i+1+j)/2.
        const double r = 0.5 * (double)(i + 1 + j);
        for (size_t t = i; t < j; t++) ranks[order[t]] = r;
        i = j;
    }
    return ranks;
}

double spearman(const std::vector<float>& x, const std::vector<float>& y) {
    check_pair("spearman", x, y);
    if (has_nan(x) || has_nan(y)) return std::numeric_limits<double>::quiet_NaN();
    return pearson_of(average_ranks(x), average_ranks(y));
}

RegressionMetrics regression_metrics(const std::vector<float>& predicted, const std::vector<float>& target) {
    RegressionMetrics m;
    m.n = (int64_t)predicted.size();
    m.mse = mean_squared_error(predicted, target);
    m.pearson = pearson(predicted, target);
    m.spearman = spearman(predicted, target);
    return m;
}

// ---- rendering ----

namespace {

std::vector<std::string> names_for(const ConfusionMatrix& cm, const std::vector<std::string>& class_names) {
    if (class_names.empty()) {
        std::vector<std::string> names;
        for (int c = 0; c < cm.num_classes(); c++) names.push_back(std::to_string(c));
        return names;
    }
    if ((int)class_names.size() != cm.num_classes())
        fail(cm.source(), "class names",
             "there are " + std::to_string(class_names.size()) + " for " + std::to_string(cm.num_classes()) + " classes");
    return class_names;
}

std::string fixed4(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.4f", v);
    return buf;
}

// Terminal columns taken by UTF-8 text, counting one per code point (not per byte).
size_t display_width(const std::string& s) {
    size_t w = 0;
    for (unsigned char ch : s) w += (ch & 0xC0) != 0x80;
    return w;
}

std::string pad_left(const std::string& s, size_t width) {
    const size_t w = display_width(s);
    return w >= width ? s : std::string(width - w, ' ') + s;
}

std::string pad_right(const std::string& s, size_t width) {
    const size_t w = display_width(s);
    return w >= width ? s : s + std::string(width - w, ' ');
}

}  // namespace

std::string format_report(const ConfusionMatrix& cm, const std::vector<std::string>& class_names) {
    const std::vector<std::string> names = names_for(cm, class_names);
    const ClassificationMetrics m = classification_metrics(cm);
    const int k = cm.num_classes();

    std::string out = "accuracy " + fixed4(m.accuracy) + " | macro-F1 " + fixed4(m.macro_f1) + " | micro-F1 " +
                      fixed4(m.micro_f1);
    if (k == 2) out += " | MCC " + fixed4(m.mcc);
    out += "\n\n";

    // Per-class table.
    size_t name_w = display_width("class");
    for (const std::string& n : names) name_w = std::max(name_w, display_width(n));
    size_t support_w = display_width("support");
    for (const ClassMetrics& pc : m.per_class) support_w = std::max(support_w, std::to_string(pc.support).size());
    out += pad_right("class", name_w) + "  " + pad_left("precision", 9) + "  " + pad_left("recall", 9) + "  " +
           pad_left("F1", 9) + "  " + pad_left("support", support_w) + "\n";
    for (int c = 0; c < k; c++) {
        const ClassMetrics& pc = m.per_class[c];
        out += pad_right(names[c], name_w) + "  " + pad_left(fixed4(pc.precision), 9) + "  " +
               pad_left(fixed4(pc.recall), 9) + "  " + pad_left(fixed4(pc.f1), 9) + "  " +
               pad_left(std::to_string(pc.support), support_w) + "\n";
    }

    // Confusion matrix, labeled on both sides.
    const std::string corner = "true\\pred";
    const size_t row_w = std::max(name_w, display_width(corner));
    std::vector<size_t> col_w(k);
    for (int p = 0; p < k; p++) {
        col_w[p] = display_width(names[p]);
        for (int t = 0; t < k; t++) col_w[p] = std::max(col_w[p], std::to_string(cm.at(t, p)).size());
    }
    out += "\nconfusion matrix (rows: true class, columns: predicted class)\n";
    out += pad_right(corner, row_w);
    for (int p = 0; p < k; p++) out += "  " + pad_left(names[p], col_w[p]);
    out += "\n";
    for (int t = 0; t < k; t++) {
        out += pad_right(names[t], row_w);
        for (int p = 0; p < k; p++) out += "  " + pad_left(std::to_string(cm.at(t, p)), col_w[p]);
        out += "\n";
    }
    return out;
}

std::string format_report(const RegressionMetrics& m) {
    return "mse " + fixed4(m.mse) + " | pearson " + fixed4(m.pearson) + " | spearman " + fixed4(m.spearman) + "\n";
}

std::string json_number(double v) {
    if (!std::isfinite(v)) return "null";
    char buf[64];
    const auto res = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip form
    return std::string(buf, res.ptr);
}

std::string json_string(const std::string& s) {
    static const char hex[] = "0123456789abcdef";
    std::string out = "\"";
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const size_t n = s.size();
    for (size_t i = 0; i < n;) {
        const unsigned char c = p[i];
        if (c < 0x80) {
            switch (c) {
                case '"': out += "\\\""; break;
                case '\\': out += "\\\\"; break;
                case '\n': out += "\\n"; break;
                case '\r': out += "\\r"; break;
                case '\t': out += "\\t"; break;
                default:
                    if (c < 0x20) {
                        out += "\\u00";
                        out += hex[c >> 4];
                        out += hex[c & 15];
                    } else {
                        out += (char)c;
                    }
            }
            i++;
            continue;
        }
        // A multi-byte UTF-8 sequence: copy it if well formed (no overlong forms, no surrogates,
        // nothing past U+10FFFF), else write U+FFFD for the lead byte and resynchronize.
        size_t len = 0;
        unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
        if (c >= 0xC2 && c <= 0xDF) len = 2;
        else if (c >= 0xE0 && c <= 0xEF) len = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        else if (c >= 0xF0 && c <= 0xF4) len = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        bool ok = len > 0 && i + len <= n && p[i + 1] >= lo && p[i + 1] <= hi;
        for (size_t j = 2; ok && j < len; j++) ok = (p[i + j] & 0xC0) == 0x80;
        if (ok) {
            out.append(s, i, len);
            i += len;
        } else {
            out += "\\ufffd";
            i++;
        }
    }
    return out + "\"";
}

std::string metrics_json(const ConfusionMatrix& cm, const std::vector<std::string>& class_names) {
    const std::vector<std::string> names = names_for(cm, class_names);
    const ClassificationMetrics m = classification_metrics(cm);
    const int k = cm.num_classes();
    auto array = [&](auto field) {
        std::string a = "[";
        for (int c = 0; c < k; c++) a += (c ? "," : "") + field(c);
        return a + "]";
    };
    std::string out = "{\"n\":" + std::to_string(m.n);
    out += ",\"accuracy\":" + json_number(m.accuracy);
    out += ",\"macro_f1\":" + json_number(m.macro_f1);
    out += ",\"micro_f1\":" + json_number(m.micro_f1);
    out += ",\"macro_precision\":" + json_number(m.macro_precision);
    out += ",\"macro_recall\":" + json_number(m.macro_recall);
    out += ",\"mcc\":" + json_number(m.mcc);
    out += ",\"classes\":" + array([&](int c) { return json_string(names[c]); });
    out += ",\"precision\":" + array([&](int c) { return json_number(m.per_class[c].precision); });
    out += ",\"recall\":" + array([&](int c) { return json_number(m.per_class[c].recall); });
    out += ",\"f1\":" + array([&](int c) { return json_number(m.per_class[c].f1); });
    out += ",\"support\":" + array([&](int c) { return std::to_string(m.per_class[c].support); });
    out += ",\"confusion\":" + array([&](int t) {
               std::string row = "[";
               for (int p = 0; p < k; p++) row += (p ? "," : "") + std::to_string(cm.at(t, p));
               return row + "]";
           });
    return out + "}";
}

std::string metrics_json(const RegressionMetrics& m) {
    return "{\"n\":" + std::to_string(m.n) + ",\"mse\":" + json_number(m.mse) + ",\"pearson\":" +
           json_number(m.pearson) + ",\"spearman\":" + json_number(m.spearman) + "}";
}

}  // namespace wr
