// common/flags.cpp: implementation of the shared command-line parser (see flags.h).
#include "common/flags.h"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "common/util.h"

namespace wr {

namespace {

[[noreturn]] void bad_value(const std::string& name, const std::string& value, const char* expected) {
    throw Error("<command line>: flag --" + name + ": '" + value + "' is not " + expected);
}

int64_t parse_int(const std::string& name, const std::string& value) {
    errno = 0;
    char* end = nullptr;
    const long long v = std::strtoll(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || errno == ERANGE) bad_value(name, value, "an integer");
    return v;
}

std::string format_double(double v) {
    std::ostringstream ss;
    ss << v;
    return ss.str();
}

std::string exact_double(double v) {  // the shortest text that reads back to the same double
    char buf[40];
    for (int digits = 15; digits <= 17; digits++) {
        std::snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (std::strtod(buf, nullptr) == v) break;
    }
    return buf;
}

}  // namespace

Flags::Flags(std::string program, std::string summary) : program_(std::move(program)), summary_(std::move(summary)) {}

Flags::Flag& Flags::declare(const std::string& name, const std::string& help, std::string default_text, std::string type) {
    if (find(name)) throw Error("internal: flag --" + name + " declared twice");
    Flag& f = flags_.emplace_back();
    f.name = name;
    f.help = help;
    f.default_text = std::move(default_text);
    f.type = std::move(type);
    return f;
}

Flags::Flag* Flags::find(const std::string& name) {
    for (Flag& f : flags_)
        if (f.name == name) return &f;
    return nullptr;
}

void Flags::add(const std::string& name, std::string* target, const std::string& help) {
    Flag& f = declare(name, help, target->empty() ? "\"\"" : *target, "STR");
    f.assign = [target](const std::string& v) { *target = v; };
    f.show = [target] { return *target; };
    f.default_value = f.show();
}

void Flags::add(const std::string& name, int* target, const std::string& help) {
    Flag& f = declare(name, help, std::to_string(*target), "INT");
    f.assign = [target, name](const std::string& v) {
        const int64_t x = parse_int(name, v);
        if (x < INT32_MIN || x > INT32_MAX) bad_value(name, v, "a 32-bit integer");
        *target = (int)x;
    };
    f.show = [target] { return std::to_string(*target); };
    f.default_value = f.show();
}

void Flags::add(const std::string& name, int64_t* target, const std::string& help) {
    Flag& f = declare(name, help, std::to_string(*target), "INT");
    f.assign = [target, name](const std::string& v) { *target = parse_int(name, v); };
    f.show = [target] { return std::to_string(*target); };
    f.default_value = f.show();
}

void Flags::add(const std::string& name, uint64_t* target, const std::string& help) {
    Flag& f = declare(name, help, std::to_string(*target), "INT");
    f.assign = [target, name](const std::string& v) {
        const int64_t x = parse_int(name, v);
        if (x < 0) bad_value(name, v, "a non-negative integer");
        *target = (uint64_t)x;
    };
    f.show = [target] { return std::to_string(*target); };
    f.default_value = f.show();
}

void Flags::add(const std::string& name, double* target, const std::string& help) {
    Flag& f = declare(name, help, format_double(*target), "NUM");
    f.assign = [target, name](const std::string& v) {
        char* end = nullptr;
        const double x = std::strtod(v.c_str(), &end);
        if (v.empty() || *end != '\0') bad_value(name, v, "a number");
        *target = x;
    };
    f.show = [target] { return exact_double(*target); };
    f.default_value = f.show();
}

void Flags::add(const std::string& name, bool* target, const std::string& help) {
    Flag& f = declare(name, help, *target ? "true" : "false", "");
    f.is_bool = true;
    f.assign = [target, name](const std::string& v) {
        if (v == "true" || v == "1" || v == "yes") *target = true;
        else if (v == "false" || v == "0" || v == "no") *target = false;
        else bad_value(name, v, "true or false");
    };
    f.show = [target] { return std::string(*target ? "true" : "false"); };
    f.default_value = f.show();
}

void Flags::add(const std::string& name, std::vector<std::string>* target, const std::string& help) {
    std::string shown;
    for (const std::string& s : *target) shown += (shown.empty() ? "" : ",") + s;
    Flag& f = declare(name, help, shown.empty() ? "\"\"" : shown, "LIST");
    f.is_list = true;
    f.assign = [target, first = true](const std::string& v) mutable {
        if (first) target->clear();  // the first use replaces the default, later uses append
        first = false;
        for (std::string& s : split(v, ',')) target->push_back(std::move(s));
    };
    f.show = [target] {
        std::string joined;
        for (const std::string& s : *target) joined += (joined.empty() ? "" : ",") + s;
        return joined;
    };
    f.default_value = f.show();
}

void Flags::parse(int argc, char** argv, int first) {
    for (int i = first; i < argc; i++) {
        std::string arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            std::fputs(help().c_str(), stdout);
            std::exit(0);
        }
        if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
            if (positional_help_.empty())
                throw Error("<command line>: unexpected argument '" + arg + "' (values belong to a flag; several files go in one " +
                            "comma-separated or quoted-glob value, e.g. --input 'data/*.txt')");
            positional_.push_back(arg);
            continue;
        }
        std::string name = arg.substr(2), value;
        bool has_value = false;
        if (const size_t eq = name.find('='); eq != std::string::npos) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
            has_value = true;
        }
        Flag* f = find(name);
        if (!f && !has_value && name.rfind("no-", 0) == 0 && find(name.substr(3)) && find(name.substr(3))->is_bool) {
            f = find(name.substr(3));
            value = "false";
            has_value = true;
        }
        if (!f) throw Error("<command line>: unknown flag --" + name + " (run " + program_ + " -h for the list)");
        if (!has_value) {
            if (f->is_bool) value = "true";
            else if (i + 1 < argc) value = argv[++i];
            else throw Error("<command line>: flag --" + name + " needs a value");
        }
        f->assign(value);
        f->set = true;
    }
}

bool Flags::was_set(const std::string& name) const {
    for (const Flag& f : flags_)
        if (f.name == name) return f.set;
    return false;
}

std::vector<std::string> Flags::names() const {
    std::vector<std::string> names;
    for (const Flag& f : flags_) names.push_back(f.name);
    return names;
}

const Flags::Flag& Flags::get(const std::string& name) const {
    for (const Flag& f : flags_)
        if (f.name == name) return f;
    throw Error("internal: no flag --" + name);
}

std::string Flags::value(const std::string& name) const { return get(name).show(); }

std::string Flags::default_value(const std::string& name) const { return get(name).default_value; }

void Flags::set_value(const std::string& name, const std::string& value) {
    Flag& f = const_cast<Flag&>(get(name));
    f.assign(value);
    f.set = true;
}

std::string Flags::help() const {
    std::string out = program_ + ": " + summary_ + "\n\nflags (default in brackets):\n";
    for (const Flag& f : flags_) {
        std::string left = "  --" + f.name + (f.type.empty() ? "" : " " + f.type);
        if (left.size() < 28) left.resize(28, ' ');
        else left += "\n" + std::string(28, ' ');
        out += left + f.help + " [" + f.default_text + "]\n";
    }
    out += std::string("  -h, --help").append(28 - 12, ' ') + "this list\n";
    return out;
}

}  // namespace wr
