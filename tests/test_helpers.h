// tests/test_helpers.h: small helpers shared by the test suites: a scratch folder per test,
// running a program and capturing its output, patching bytes of a binary file.
#pragma once
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

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

// Starts a shell command in the background (from the repository root), its stdout and stderr into
// output_path; returns its pid.
inline pid_t spawn(const std::string& command, const std::string& output_path) {
    const std::string line = "exec " + command + " > '" + output_path + "' 2>&1";
    const pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", line.c_str(), (char*)nullptr);
        _exit(127);
    }
    return pid;
}

// Waits for a child; its exit code, or -1 when it did not exit normally or took over `seconds`
// (then it is killed).
inline int wait_exit(pid_t pid, double seconds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The last training step recorded in DIR/log.jsonl (complete lines only; 0 when none yet).
inline int64_t last_logged_step(const std::string& dir) {
    std::string text;
    try {
        text = read_file(dir + "/log.jsonl");
    } catch (const Error&) {
        return 0;
    }
    const std::string key = "{\"kind\":\"train\",\"step\":";
    const size_t end = text.rfind('\n');
    const size_t at = end == std::string::npos ? std::string::npos : text.rfind(key, end);
    return at == std::string::npos ? 0 : std::atoll(text.c_str() + at + key.size());
}

// Runs a training command whose run folder is `dir` in the background and presses Ctrl-C
// (SIGINT) once step `step` is in its log; returns its exit code (130: it saved and stopped), or
// -1 when it ended before that step or hung. Its output goes to output_path.
inline int interrupt_after_step(const std::string& command, const std::string& dir, int64_t step, const std::string& output_path) {
    const pid_t pid = spawn(command, output_path);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (std::chrono::steady_clock::now() < deadline) {
        if (last_logged_step(dir) >= step) {
            kill(pid, SIGINT);
            return wait_exit(pid, 120);
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) return -1;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    kill(pid, SIGKILL);
    wait_exit(pid, 10);
    return -1;
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
