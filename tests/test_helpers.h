// tests/test_helpers.h: small helpers shared by the test suites: a scratch folder per test,
// running a program and capturing its output, patching bytes of a binary file.
#pragma once
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/util.h"

namespace wr::testing {

// A fresh folder under /tmp, removed when the test ends.
struct ScratchDir {
    std::string path;
    ScratchDir() {
        char tmpl[] = "/tmp/wellread_test_XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~ScratchDir() { std::system(("rm -rf '" + path + "'").c_str()); }
    std::string operator/(const std::string& name) const { return path + "/" + name; }
};

struct RunResult {
    int exit_code;
    std::string output;  // stdout and stderr together
};

// Runs a shell command from the repository root and captures what it prints.
inline RunResult run_command(const std::string& command) {
    RunResult r{-1, ""};
    FILE* p = popen((command + " 2>&1").c_str(), "r");
    if (!p) return r;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
    const int status = pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

inline void write_text(const std::string& path, const std::string& text) { write_file_atomic(path, text); }

// True when ../shared/data is present (it is on development machines and in CI).
inline bool have_shared_data() { return std::system("test -d ../shared/data") == 0; }

}  // namespace wr::testing

// Expects `statement` to throw wr::Error whose message contains every one of the given pieces.
#define EXPECT_ERROR_MENTIONS(statement, ...)                                                   \
    do {                                                                                        \
        try {                                                                                   \
            statement;                                                                          \
            ADD_FAILURE() << "expected wr::Error from: " #statement;                            \
        } catch (const wr::Error& e_) {                                                         \
            for (const char* piece_ : {__VA_ARGS__})                                            \
                EXPECT_NE(std::string(e_.what()).find(piece_), std::string::npos)               \
                    << "error message '" << e_.what() << "' should mention '" << piece_ << "'"; \
        }                                                                                       \
    } while (0)
