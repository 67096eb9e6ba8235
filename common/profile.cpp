// common/profile.cpp: the range and step-window bookkeeping of profile.h; the backend does the
// rest.
#include "common/profile.h"

#include <cerrno>
#include <cstdlib>

#include "common/util.h"

namespace wr::profile {

namespace {
Backend g_backend;
int64_t g_first = 0, g_last = 0;
}  // namespace

void set_backend(const Backend& backend) { g_backend = backend; }
bool has_backend() { return g_backend.push != nullptr; }

Range::Range(const char* name) {
    if (g_backend.push) g_backend.push(name);
}
Range::~Range() {
    if (g_backend.pop) g_backend.pop();
}

std::pair<int64_t, int64_t> parse_step_window(const std::string& text) {
    if (text.empty()) return {0, 0};
    const size_t colon = text.find(':');
    auto number = [&](const std::string& s) -> int64_t {
        char* end = nullptr;
        errno = 0;
        const long long v = std::strtoll(s.c_str(), &end, 10);
        if (s.empty() || *end != '\0' || errno == ERANGE || v < 1) return -1;
        return v;
    };
    const int64_t first = colon == std::string::npos ? -1 : number(text.substr(0, colon));
    const int64_t last = colon == std::string::npos ? -1 : number(text.substr(colon + 1));
    if (first < 1 || last < first)
        throw Error("<command line>: flag --profile-steps: '" + text + "' is not FIRST:LAST with 1 <= FIRST <= LAST (e.g. 10:12)");
    return {first, last};
}

void set_step_window(int64_t first, int64_t last) { g_first = first, g_last = last; }

void step_begins(int64_t step) {
    if (g_first > 0 && step == g_first && g_backend.start) g_backend.start();
}

void step_ends(int64_t step) {
    if (g_first > 0 && step == g_last && g_backend.stop) g_backend.stop();
}

}  // namespace wr::profile
