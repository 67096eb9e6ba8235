// model/task.cpp: task.json, written and read (model/task.h).
#include "model/task.h"

#include <cstdint>
#include <cstdlib>

#include "common/metrics.h"  // json_string
#include "common/util.h"

namespace wr {

std::string task_json(const Task& t) {
    std::string s = "{\"label_kind\":" + json_string(t.regression ? "regression" : "class") + ",\"labels\":[";
    for (size_t i = 0; i < t.label_names.size(); i++) s += (i ? "," : "") + json_string(t.label_names[i]);
    return s + "],\"pairs\":" + (t.pairs ? "true" : "false") + ",\"max_len\":" + std::to_string(t.max_len) + "}\n";
}

namespace {

// Code point `c` as UTF-8 (c <= 0x10ffff).
void append_utf8(std::string& out, uint32_t c) {
    if (c < 0x80) {
        out += (char)c;
    } else if (c < 0x800) {
        out += (char)(0xc0 | (c >> 6));
        out += (char)(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
        out += (char)(0xe0 | (c >> 12));
        out += (char)(0x80 | ((c >> 6) & 0x3f));
        out += (char)(0x80 | (c & 0x3f));
    } else {
        out += (char)(0xf0 | (c >> 18));
        out += (char)(0x80 | ((c >> 12) & 0x3f));
        out += (char)(0x80 | ((c >> 6) & 0x3f));
        out += (char)(0x80 | (c & 0x3f));
    }
}

// The 4 hex digits of a \u escape at s[at..at+3], or -1.
int32_t hex4(const std::string& s, size_t at) {
    if (at + 4 > s.size()) return -1;
    int32_t v = 0;
    for (size_t i = at; i < at + 4; i++) {
        const char c = s[i];
        const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

}  // namespace

// A small reader for the file task_json writes (our own format, one object, no nesting). Label
// names take JSON's escapes (json_string writes \n, \t, \u0001 ...; other writers also \u for
// any character, with surrogate pairs); an unpaired surrogate becomes U+FFFD.
Task read_task(const std::string& path) {
    if (!file_exists(path)) fail(path, "file", "is missing: a classifier checkpoint needs the task.json its run wrote beside it");
    const std::string text = read_file(path);
    Task t;
    auto field = [&](const std::string& key) -> std::string {
        const size_t at = text.find("\"" + key + "\":");
        if (at == std::string::npos) fail(path, key, "is missing");
        return text.substr(at + key.size() + 3);
    };
    t.regression = field("label_kind").rfind("\"regression\"", 0) == 0;
    t.pairs = field("pairs").rfind("true", 0) == 0;
    t.max_len = std::atoi(field("max_len").c_str());
    const std::string labels = field("labels");
    size_t i = 1;  // after '['
    while (i < labels.size() && labels[i] != ']') {
        if (labels[i] != '"') fail(path, "labels", "is not a list of strings");
        std::string name;
        for (i++; i < labels.size() && labels[i] != '"'; i++) {
            if (labels[i] != '\\' || i + 1 == labels.size()) {
                name += labels[i];
                continue;
            }
            const char c = labels[++i];
            if (c == 'b') name += '\b';
            else if (c == 'f') name += '\f';
            else if (c == 'n') name += '\n';
            else if (c == 'r') name += '\r';
            else if (c == 't') name += '\t';
            else if (c != 'u') name += c;  // \" \\ \/
            else {
                int32_t code = hex4(labels, i + 1);
                if (code < 0) fail(path, "labels", "has a \\u escape without 4 hex digits");
                i += 4;
                if (code >= 0xd800 && code < 0xdc00) {  // a high surrogate: its low one must follow
                    const int32_t low = i + 2 < labels.size() && labels[i + 1] == '\\' && labels[i + 2] == 'u' ? hex4(labels, i + 3) : -1;
                    if (low >= 0xdc00 && low < 0xe000) {
                        code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
                        i += 6;
                    } else {
                        code = 0xfffd;
                    }
                } else if (code >= 0xdc00 && code < 0xe000) {
                    code = 0xfffd;
                }
                append_utf8(name, (uint32_t)code);
            }
        }
        t.label_names.push_back(name);
        i++;
        if (i < labels.size() && labels[i] == ',') i++;
    }
    if (t.label_names.empty()) fail(path, "labels", "is empty");
    return t;
}

std::string task_path_beside(const std::string& checkpoint) {
    const size_t slash = checkpoint.rfind('/');
    return (slash == std::string::npos ? std::string(".") : checkpoint.substr(0, slash)) + "/task.json";
}

}  // namespace wr
