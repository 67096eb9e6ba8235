// model/run_folder.cpp: the run folder's own files (run.json, vocab.txt) and its preparation
// (see run_folder.h). run.json is read and written with nlohmann/json.
#include "model/run_folder.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/distributed.h"
#include "common/util.h"
#include "model/checkpoint.h"

namespace wr {

std::string folder_of(const std::string& path) {
    const size_t slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

std::string run_vocab_path(const std::string& dir) { return dir + "/vocab.txt"; }

void prepare_run_folder(const std::string& dir, bool overwrite, bool can_resume) {
    make_dirs(dir);
    std::vector<std::string> earlier;
    for (const char* pattern : {"/ckpt_*.bin", "/state_*.bin", "/best.bin", "/latest", "/log.jsonl", "/run.json"})
        try {
            for (std::string& p : expand_globs({dir + pattern})) earlier.push_back(std::move(p));
        } catch (const Error&) {  // nothing matches this pattern
        }
    if (earlier.empty()) return;
    if (!overwrite)
        throw Error(dir + ": already holds a run (" + earlier[0] + ", ...): " +
                    (can_resume ? "continue it with --resume " + dir + ", " : std::string()) +
                    "choose another --out, or pass --overwrite to replace it");
    if (file_exists(dir + "/run.json") && file_exists(run_vocab_path(dir))) earlier.push_back(run_vocab_path(dir));
    for (const std::string& p : earlier) std::remove(p.c_str());
    std::printf("removed %zu files of an earlier run from %s\n", earlier.size(), dir.c_str());
}

namespace {
bool is_one_of(const std::string& name, std::initializer_list<const char*> names) {
    return std::any_of(names.begin(), names.end(), [&](const char* n) { return name == n; });
}
// Flags that name the run folder itself, or say what to do with it: never saved.
bool names_the_folder(const std::string& name) { return is_one_of(name, {"out", "resume", "overwrite"}); }
}  // namespace

bool flag_may_change_on_resume(const std::string& name) {
    return names_the_folder(name) || is_one_of(name, {"steps", "epochs", "device", "precision", "threads", "cpu-isa", "profile-steps", "keep",
                                                      "save-every", "eval-every", "eval-batches", "max-skipped-steps", "vocab"});
}

std::string run_settings_json(const std::string& program, const Flags& flags) {
    nlohmann::ordered_json given = nlohmann::ordered_json::object();
    for (const std::string& name : flags.names())
        if (flags.was_set(name) && !names_the_folder(name)) given[name] = flags.value(name);
    nlohmann::ordered_json run = {{"program", program}, {"flags", given}};
    if (world().size > 1) run["ranks"] = world().size;  // a data-parallel run: --batch is per rank
    return run.dump(2) + "\n";
}

namespace {
// A run resumed on another number of ranks keeps its global batch (per-rank batch x ranks), so that
// the data position and the schedule mean the same: --batch becomes global / ranks now, or, when
// given, must be that.
void resume_batch_on_other_ranks(Flags& flags, const std::string& run_batch, int run_ranks, const std::string& path) {
    const int64_t global = std::stoll(run_batch) * run_ranks, now = world().size;
    const std::string was = "the run's global batch is " + std::to_string(global) + " (--batch " + run_batch + " x " +
                            std::to_string(run_ranks) + " rank" + (run_ranks == 1 ? "" : "s") + ", " + path + ")";
    if (flags.was_set("batch")) {
        if (std::stoll(flags.value("batch")) * now != global)
            throw Error("<command line>: flag --batch: '" + flags.value("batch") + "' x " + std::to_string(now) + " ranks differs from " +
                        was + ": give --batch " + (global % now == 0 ? std::to_string(global / now) : "(none fits)") + " or none");
        return;
    }
    if (global % now != 0)
        throw Error("<command line>: " + was + ", which " + std::to_string(now) + " ranks cannot share evenly: resume on a number "
                    "of ranks that divides it");
    flags.set_value("batch", std::to_string(global / now));
}
}  // namespace

void apply_run_settings(const std::string& dir, const std::string& program, Flags& flags) {
    const std::string path = dir + "/run.json";
    if (!file_exists(path)) {
        find_latest(dir);  // a missing folder, or one without a complete checkpoint, is named as such
        fail(path, "file", "is missing: the folder holds no run this version can resume (a run writes run.json when it starts)");
    }
    nlohmann::json run;
    try {
        run = nlohmann::json::parse(read_file(path));
    } catch (const nlohmann::json::exception& e) {
        fail(path, "json", std::string("is not valid JSON: ") + e.what());
    }
    if (!run.is_object() || !run.contains("program") || !run["program"].is_string()) fail(path, "program", "is missing");
    if (run["program"] != program)
        fail(path, "program", "is '" + run["program"].get<std::string>() + "': the run was made by another program than " + program);
    if (!run.contains("flags") || !run["flags"].is_object()) fail(path, "flags", "is missing or not an object");
    const nlohmann::json& saved = run["flags"];
    const std::vector<std::string> names = flags.names();
    int ranks = 1;  // the run's processes (data-parallel: --batch is per rank)
    if (run.contains("ranks")) {
        if (!run["ranks"].is_number_integer() || run["ranks"].get<int64_t>() < 1 || run["ranks"].get<int64_t>() > (1 << 20))
            fail(path, "ranks", "is not a positive integer");
        ranks = run["ranks"].get<int>();
    }
    for (const auto& [name, value] : saved.items()) {
        if (!value.is_string()) fail(path, "flags." + name, "is not a string");
        if (std::find(names.begin(), names.end(), name) == names.end()) fail(path, "flags." + name, "is not a flag of " + program);
    }
    for (const std::string& name : names) {
        if (names_the_folder(name)) continue;
        if (name == "batch" && ranks != world().size) {
            resume_batch_on_other_ranks(flags, saved.contains(name) ? saved[name].get<std::string>() : flags.default_value(name), ranks, path);
            continue;
        }
        const bool was_saved = saved.contains(name);
        const std::string run_value = was_saved ? saved[name].get<std::string>() : flags.default_value(name);
        if (flags.was_set(name)) {
            if (flag_may_change_on_resume(name)) continue;
            if (flags.value(name) != run_value)
                throw Error("<command line>: flag --" + name + ": '" + flags.value(name) + "' differs from the run's '" + run_value +
                            "' (" + path + "): a resumed run keeps the settings it was started with; drop the flag, or start a new run");
        } else if (was_saved) {
            try {
                flags.set_value(name, run_value);
            } catch (const Error& e) {
                fail(path, "flags." + name, e.what());
            }
        }
    }
}

void keep_vocab_in_run(const std::string& dir, const std::string& vocab_path) {
    if (!world().root()) return;  // rank 0 alone writes (common/distributed.h)
    const std::string kept = run_vocab_path(dir);
    const std::string bytes = read_file(vocab_path);
    if (file_exists(kept)) {
        if (read_file(kept) == bytes) return;
        fail(kept, "file", "holds another vocabulary than " + vocab_path + ": choose another --out");
    }
    write_file_atomic(kept, bytes);
}

void start_run_folder(const std::string& dir, bool overwrite, const std::string& settings_json, const std::string& vocab_path) {
    barrier();  // data-parallel: every rank has read its inputs (which --overwrite may remove) before rank 0 writes
    if (!world().root()) return;
    prepare_run_folder(dir, overwrite);
    keep_vocab_in_run(dir, vocab_path);
    write_file_atomic(dir + "/run.json", settings_json);
}

std::string default_vocab(const std::vector<std::string>& run_dirs, const std::string& fallback, std::FILE* say) {
    for (const std::string& dir : run_dirs)
        if (!dir.empty() && file_exists(run_vocab_path(dir))) {
            std::fprintf(say, "vocab: %s (the run's own; --vocab names another)\n", run_vocab_path(dir).c_str());
            return run_vocab_path(dir);
        }
    return fallback;
}

}  // namespace wr
