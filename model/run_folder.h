// model/run_folder.h: a training run's output folder, and what it carries so that the run can be
// continued and its checkpoints used without repeating anything:
//   DIR/run.json    the program and the flags the run was started with: `--resume DIR` alone
//                   continues with them, and a flag given then that contradicts them is refused
//   DIR/vocab.txt   the vocabulary its checkpoints were made with: a later program that reads a
//                   checkpoint of DIR takes it when --vocab is not given
// (the checkpoints, training states, `latest`, best.bin and log.jsonl are model/checkpoint.h's
// and model/training.h's; finetune and distill add task.json).
#pragma once
#include <cstdio>
#include <string>
#include <vector>

#include "common/flags.h"

namespace wr {

// A new run's output folder: created if needed; if it already holds a run (checkpoints, a
// training state, a log, run.json), that is an error naming it, unless `overwrite` says to remove
// those files (and only those; vocab.txt too where run.json shows the folder is a run's).
// can_resume: the program has --resume, which the error then suggests.
void prepare_run_folder(const std::string& dir, bool overwrite, bool can_resume = true);

// The flags that a resumed run may give other values than its start did: its length (steps,
// epochs: a finished run can be extended; the schedule follows the new total), where and how fast it
// runs (device, precision, threads, cpu-isa, profile-steps), the bookkeeping (keep, save-every, eval-every,
// eval-batches, max-skipped-steps), the vocabulary file (its fingerprint is checked against every
// checkpoint and shard instead), and out, resume and overwrite, which are never saved.
bool flag_may_change_on_resume(const std::string& name);

// run.json's text: {"program": PROGRAM, "flags": {NAME: VALUE, ...}} with every flag given on the
// command line (Flags::value text) except out, resume and overwrite.
std::string run_settings_json(const std::string& program, const Flags& flags);

// --resume DIR: reads DIR/run.json (an error naming it when it is missing, malformed, or from
// another program), then every saved flag not given now takes its saved value, and a flag given
// now whose value differs from the run's (the saved one, or the default where the run did not
// give it) is an error naming the flag, both values and run.json, unless it may change.
void apply_run_settings(const std::string& dir, const std::string& program, Flags& flags);

// A new run's folder, in this order: prepare_run_folder, vocab.txt (keep_vocab_in_run: a folder
// holding another vocabulary is refused before run.json is written), run.json (settings_json).
void start_run_folder(const std::string& dir, bool overwrite, const std::string& settings_json, const std::string& vocab_path);

// The vocabulary of a run folder (DIR/vocab.txt).
std::string run_vocab_path(const std::string& dir);

// Copies the vocabulary file into the run folder as vocab.txt (nothing when it is that file or
// holds the same bytes; an error when the folder holds another vocab.txt that is not a run's).
void keep_vocab_in_run(const std::string& dir, const std::string& vocab_path);

// --vocab when the user did not give one: the vocab.txt of the first of `run_dirs` that has one
// (the folder of --resume, or of the checkpoint given to --init / --teacher), else `fallback`
// (the built-in corpus's vocabulary). Prints which it took when it is not the fallback.
std::string default_vocab(const std::vector<std::string>& run_dirs, const std::string& fallback, std::FILE* say = stdout);

// The folder of a file path ("." for a bare name).
std::string folder_of(const std::string& path);

}  // namespace wr
