// common/flags.h: the one command-line parser all programs share. Each program declares its
// flags with a default, a help line and the variable they fill; `-h` / `--help` prints them all
// with their defaults; an unknown flag, a missing value or a value of the wrong type is an error
// that names the flag.
//
//   std::string vocab = "build/default/vocab.txt"; int steps = 1000;
//   wr::Flags flags("train_mlm", "MLM pretraining of a compact BERT");
//   flags.add("vocab", &vocab, "vocabulary file (vocab.txt)");
//   flags.add("steps", &steps, "optimizer steps");
//   flags.parse(argc, argv);          // accepts --steps 10 and --steps=10
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace wr {

class Flags {
  public:
    Flags(std::string program, std::string summary);

    void add(const std::string& name, std::string* target, const std::string& help);
    void add(const std::string& name, int* target, const std::string& help);
    void add(const std::string& name, int64_t* target, const std::string& help);
    void add(const std::string& name, uint64_t* target, const std::string& help);
    void add(const std::string& name, double* target, const std::string& help);
    void add(const std::string& name, bool* target, const std::string& help);  // --name / --no-name / --name=true
    // A comma-separated list; repeating the flag appends ("--input a,b --input c").
    void add(const std::string& name, std::vector<std::string>* target, const std::string& help);

    // Parses argv[first..]; prints help and exits 0 on -h/--help; throws wr::Error on bad flags.
    // An argument that does not start with "--" is an error naming it (so that an unquoted glob
    // such as `--input data/*.txt` cannot silently lose files), unless allow_positional() was
    // called, in which case such arguments are collected in positional().
    void parse(int argc, char** argv, int first = 1);
    void allow_positional(const std::string& what) { positional_help_ = what; }
    const std::vector<std::string>& positional() const { return positional_; }
    bool was_set(const std::string& name) const;  // given on the command line (not the default)
    std::string help() const;

    // The names of the flags, in declaration order.
    std::vector<std::string> names() const;
    // A flag's value as text that reads back to the same value (bool: true/false, list: a,b,
    // number: 17 significant digits): the current one, and the default it was declared with.
    std::string value(const std::string& name) const;
    std::string default_value(const std::string& name) const;
    // Assigns a value as if it had been given on the command line (was_set is then true); the
    // value is checked as parse() checks it. A resumed run takes its saved settings this way.
    void set_value(const std::string& name, const std::string& value);

  private:
    struct Flag {
        std::string name, help, default_text, type, default_value;
        bool is_bool = false, is_list = false, set = false;
        std::function<void(const std::string&)> assign;
        std::function<std::string()> show;  // the current value, as value() gives it
    };
    Flag& declare(const std::string& name, const std::string& help, std::string default_text, std::string type);
    Flag* find(const std::string& name);
    const Flag& get(const std::string& name) const;  // an unknown name is an internal error
    std::string program_, summary_;
    std::vector<Flag> flags_;
    std::vector<std::string> positional_;
    std::string positional_help_;  // empty: positional arguments are refused
};

}  // namespace wr
