// model/task.cpp: task.json, written and read with nlohmann/json (model/task.h).
#include "model/task.h"

#include <cstdint>
#include <nlohmann/json.hpp>

#include "common/util.h"

namespace wr {

std::string task_json(const Task& t) {
    const nlohmann::ordered_json task = {{"label_kind", t.regression ? "regression" : "class"},
                                         {"labels", t.label_names},
                                         {"pairs", t.pairs},
                                         {"max_len", t.max_len}};
    return task.dump() + "\n";
}

Task read_task(const std::string& path) {
    if (!file_exists(path)) fail(path, "file", "is missing: a classifier checkpoint needs the task.json its run wrote beside it");
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(read_file(path));
    } catch (const nlohmann::json::exception& e) {
        fail(path, "json", std::string("is not valid JSON: ") + e.what());
    }
    if (!j.is_object()) fail(path, "json", "is not a JSON object");
    auto field = [&](const char* key) -> const nlohmann::json& {
        if (!j.contains(key)) fail(path, key, "is missing");
        return j[key];
    };
    Task t;
    const nlohmann::json& kind = field("label_kind");
    if (kind != "class" && kind != "regression") fail(path, "label_kind", "is " + kind.dump() + ", not \"class\" or \"regression\"");
    t.regression = kind == "regression";
    const nlohmann::json& labels = field("labels");
    if (!labels.is_array() || labels.empty()) fail(path, "labels", "is not a non-empty list");
    for (const nlohmann::json& name : labels) {
        if (!name.is_string()) fail(path, "labels", "holds " + name.dump() + ", not a string");
        t.label_names.push_back(name.get<std::string>());
    }
    if (t.regression && t.label_names.size() != 1) fail(path, "labels", "a regression task has one target name");
    const nlohmann::json& pairs = field("pairs");
    if (!pairs.is_boolean()) fail(path, "pairs", "is " + pairs.dump() + ", not true or false");
    t.pairs = pairs.get<bool>();
    const nlohmann::json& max_len = field("max_len");
    if (!max_len.is_number_integer() || max_len.get<int64_t>() < 0 || max_len.get<int64_t>() > (1 << 20))
        fail(path, "max_len", "is " + max_len.dump() + ", not a whole number of tokens in [0, 1048576]");
    t.max_len = max_len.get<int>();
    return t;
}

std::string task_path_beside(const std::string& checkpoint) {
    const size_t slash = checkpoint.rfind('/');
    return (slash == std::string::npos ? std::string(".") : checkpoint.substr(0, slash)) + "/task.json";
}

}  // namespace wr
