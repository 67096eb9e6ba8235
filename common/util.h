// common/util.h: small helpers every program and library file shares: the error type that
// names a file and a field, the vocabulary fingerprint, atomic file writes, timing.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace wr {

// Every reader and tool reports bad input by throwing this. The message always starts with the
// file (or "<flag>" for command-line problems), then the field, then what is wrong:
//   "data/x.bin: field 'version': is 7, this build reads version 1"
struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Build the message "PATH: field 'FIELD': WHAT" and throw it.
[[noreturn]] void fail(const std::string& path, const std::string& field, const std::string& what);

// 64-bit FNV-1a over raw bytes; `seed` lets hashes be chained.
uint64_t fnv1a64(const void* data, size_t n, uint64_t seed = 0xcbf29ce484222325ULL);

// Fingerprint of a vocabulary: FNV-1a over every token followed by '\n', in id order. Two
// vocabularies with the same tokens in the same order have the same fingerprint.
uint64_t vocab_fingerprint(const std::vector<std::string>& tokens);

// Write `bytes` to PATH.tmp.PID, flush, then rename onto PATH, so PATH is either the old file or
// the complete new one, never half written. Throws wr::Error naming PATH on failure.
void write_file_atomic(const std::string& path, const std::string& bytes);

// Read a whole file into memory; throws wr::Error naming PATH if it cannot be read.
std::string read_file(const std::string& path);

// A program's main: the OpenMP wait policy (below), a note on stderr when the machine is busy
// (busy_machine_note), stdout line-buffered (one line per step, also when piped to a file), then
// run(argc, argv); a wr::Error is printed as "PROGRAM: error: ..." and any other exception as an
// internal error, both with exit status 1.
//
// OpenMP threads wait for the next parallel region passively (they sleep) unless the environment
// says otherwise (OMP_WAIT_POLICY or GOMP_SPINCOUNT): spinning threads on a machine whose cores
// are taken by other work slow every barrier by a scheduler time slice (a step took 5 to 10 times
// longer), and on a quiet machine sleeping costs little (docs/decisions.md). The runtime reads its
// environment once, when it is loaded, so the program sets the variable and executes itself again.
int run_program(const char* program, int (*run)(int, char**), int argc, char** argv);

// "" when the 1-minute load average is below the number of cores, else a line saying that the
// machine is busy and the run will be slower than its timings elsewhere.
std::string busy_machine_note(double load_average, int cores);

// Create a directory and its parents (like mkdir -p); throws on failure.
void make_dirs(const std::string& path);
// make_dirs of the folder a file is to be written in (nothing for a bare file name).
void make_parent_dirs(const std::string& file_path);

// Removes the leftovers of killed writers from `dir`: files named NAME.tmp.PID (write_file_atomic,
// the shard writers) whose process PID has ended. Files of a running process are kept. Returns
// how many were removed (a missing folder: 0).
int remove_stale_temporaries(const std::string& dir);

// Before a program writes the file `out` (given by `flag`): it must not be one of `inputs` (the
// same file, however it is named: device and inode are compared), whatever `overwrite` says, and
// an existing file is replaced only when `overwrite`. Throws wr::Error naming the file.
void check_output_file(const std::string& out, const std::vector<std::string>& inputs, bool overwrite,
                       const std::string& flag = "--out");

// Whether a regular file (or a link to one) exists at path.
bool file_exists(const std::string& path);

// Wall-clock seconds since an arbitrary origin (steady clock).
double now_seconds();

// "12.3 MB", "4.5 GB" ...
std::string human_bytes(double bytes);

// Split "a,b,c" at `sep`, dropping empty pieces.
std::vector<std::string> split(std::string_view s, char sep);

// Expand shell-style globs (a list of patterns, each possibly with * ? []) into sorted existing
// paths; a pattern that matches nothing is an error naming it.
std::vector<std::string> expand_globs(const std::vector<std::string>& patterns);

}  // namespace wr
