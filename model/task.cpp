// model/task.cpp: task.json, written and read (model/task.h).
#include "model/task.h"

#include <cstdlib>

#include "common/metrics.h"  // json_string
#include "common/util.h"

namespace wr {

std::string task_json(const Task& t) {
    std::string s = "{\"label_kind\":" + json_string(t.regression ? "regression" : "class") + ",\"labels\":[";
    for (size_t i = 0; i < t.label_names.size(); i++) s += (i ? "," : "") + json_string(t.label_names[i]);
    return s + "],\"pairs\":" + (t.pairs ? "true" : "false") + ",\"max_len\":" + std::to_string(t.max_len) + "}\n";
}

// A small reader for the file task_json writes (our own format, one object, no nesting).
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
            if (labels[i] == '\\' && i + 1 < labels.size()) i++;
            name += labels[i];
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
