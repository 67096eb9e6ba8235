// common/util.cpp: implementation of the shared helpers declared in util.h.
#include "common/util.h"

#include "common/distributed.h"

#include <glob.h>
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace wr {

void fail(const std::string& path, const std::string& field, const std::string& what) {
    throw Error(path + ": field '" + field + "': " + what);
}

uint64_t fnv1a64(const void* data, size_t n, uint64_t seed) {
    const auto* p = static_cast<const unsigned char*>(data);
    uint64_t h = seed;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t vocab_fingerprint(const std::vector<std::string>& tokens) {
    uint64_t h = 0xcbf29ce484222325ULL;
    const char newline = '\n';
    for (const std::string& t : tokens) {
        h = fnv1a64(t.data(), t.size(), h);
        h = fnv1a64(&newline, 1, h);
    }
    return h;
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
    make_parent_dirs(path);
    const std::string tmp = path + ".tmp." + std::to_string(getpid());
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) throw Error(path + ": cannot create temporary file " + tmp + ": " + std::strerror(errno));
    const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size() && std::fflush(f) == 0 &&
                    fsync(fileno(f)) == 0;
    const int err = errno;
    std::fclose(f);
    if (!ok) {
        std::remove(tmp.c_str());
        throw Error(path + ": write failed: " + std::strerror(err));
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        const int e = errno;
        std::remove(tmp.c_str());
        throw Error(path + ": cannot rename temporary file into place: " + std::strerror(e));
    }
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open: " + std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

bool file_exists(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

void make_dirs(const std::string& path) {
    if (path.empty()) return;
    std::string partial;
    for (size_t i = 0; i <= path.size(); i++) {
        if (i == path.size() || path[i] == '/') {
            partial = path.substr(0, i);
            if (!partial.empty() && mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST)
                throw Error(partial + ": cannot create directory: " + std::strerror(errno));
        }
    }
}

void make_parent_dirs(const std::string& file_path) {
    const size_t slash = file_path.rfind('/');
    if (slash != std::string::npos && slash > 0) make_dirs(file_path.substr(0, slash));
}

int remove_stale_temporaries(const std::string& dir) {
    DIR* d = opendir(dir.empty() ? "." : dir.c_str());
    if (!d) return 0;
    int removed = 0;
    while (const dirent* e = readdir(d)) {
        const std::string name = e->d_name;
        const size_t at = name.rfind(".tmp.");
        if (at == std::string::npos || at + 5 >= name.size()) continue;
        const std::string digits = name.substr(at + 5);
        if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
        const long pid = std::stol(digits);
        if (pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;  // running (or not ours to ask about): keep
        if (std::remove((dir.empty() ? name : dir + "/" + name).c_str()) == 0) removed++;
    }
    closedir(d);
    return removed;
}

void check_output_file(const std::string& out, const std::vector<std::string>& inputs, bool overwrite,
                       const std::string& flag) {
    struct stat o;
    if (::stat(out.c_str(), &o) != 0) return;  // not there yet
    for (const std::string& in : inputs) {
        struct stat i;
        if (::stat(in.c_str(), &i) == 0 && i.st_dev == o.st_dev && i.st_ino == o.st_ino)
            throw Error(out + ": flag " + flag + " names an input of this command (" + in + "); choose another " + flag);
    }
    if (!overwrite) throw Error(out + ": exists; pass --overwrite to replace it (flag " + flag + ")");
}

double now_seconds() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

std::string human_bytes(double bytes) {
    const char* units[] = {"B", "KB", "MB", "GB", "TB"};
    int u = 0;
    while (bytes >= 1000.0 && u < 4) {
        bytes /= 1000.0;
        u++;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
    return buf;
}

std::vector<std::string> split(std::string_view s, char sep) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= s.size()) {
        size_t end = s.find(sep, start);
        if (end == std::string_view::npos) end = s.size();
        if (end > start) out.emplace_back(s.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

std::vector<std::string> expand_globs(const std::vector<std::string>& patterns) {
    std::vector<std::string> out;
    for (const std::string& pattern : patterns) {
        glob_t g{};
        const int rc = glob(pattern.c_str(), 0, nullptr, &g);
        if (rc == GLOB_NOMATCH || g.gl_pathc == 0) {
            globfree(&g);
            throw Error(pattern + ": no such file (the pattern matches nothing)");
        }
        for (size_t i = 0; i < g.gl_pathc; i++) out.emplace_back(g.gl_pathv[i]);
        globfree(&g);
    }
    return out;
}

std::string busy_machine_note(double load_average, int cores) {
    if (!(load_average >= cores)) return "";
    char text[200];
    std::snprintf(text, sizeof text,
                  "note: the machine is busy (load average %.1f on %d cores): steps will be slower than on a quiet machine", load_average,
                  cores);
    return text;
}

namespace {
// See run_program: a passive wait unless the environment chose; true when the program must be
// executed again for the runtime to see it.
bool choose_openmp_wait_policy() {
    if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return false;
    setenv("OMP_WAIT_POLICY", "passive", 1);
    return true;
}
}  // namespace

int run_program(const char* program, int (*run)(int, char**), int argc, char** argv) {
    if (choose_openmp_wait_policy()) {
        execv("/proc/self/exe", argv);  // returns only when it failed: then go on with the runtime's default
    }
    try {
        init_world();
    } catch (const Error& e) {
        std::fprintf(stderr, "%s: error: %s\n", program, e.what());
        return 1;
    }
    const World& w = world();
    // Rank 0 speaks for the run; the other ranks print only their errors (named by rank).
    if (!w.root() && !std::freopen("/dev/null", "w", stdout)) std::fprintf(stderr, "%s: rank %d: cannot silence stdout\n", program, w.rank);
    const std::string who = w.size > 1 ? std::string(program) + " (rank " + std::to_string(w.rank) + " of " + std::to_string(w.size) + ")" : program;
    double load = 0;
    if (std::FILE* f = std::fopen("/proc/loadavg", "r")) {
        if (std::fscanf(f, "%lf", &load) != 1) load = 0;
        std::fclose(f);
    }
    const std::string note = busy_machine_note(load, (int)sysconf(_SC_NPROCESSORS_ONLN));
    if (!note.empty() && w.root()) std::fprintf(stderr, "%s: %s\n", program, note.c_str());
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    try {
        const int status = run(argc, argv);
        finalize_world();
        return status;
    } catch (const Error& e) {
        std::fprintf(stderr, "%s: error: %s\n", who.c_str(), e.what());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: internal error: %s\n", who.c_str(), e.what());
    }
    if (w.size > 1) {  // the other ranks would wait for this one forever: end them all
        std::fprintf(stderr, "%s: stopping every rank; the checkpoints written so far are complete\n", who.c_str());
        std::fflush(stderr);
        abort_world(1);
    }
    return 1;
}

}  // namespace wr
