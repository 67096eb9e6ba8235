// data/table_reader.cpp: TSV, CSV and JSON-lines readers (JSON parsing by nlohmann/json).
#include "data/table_reader.h"

#include <nlohmann/json.hpp>

#include <cstring>

#include "common/util.h"
#include "data/text_reader.h"

namespace wr {

TableFormat parse_table_format(const std::string& name, const std::string& path) {
    if (name == "tsv") return TableFormat::Tsv;
    if (name == "csv") return TableFormat::Csv;
    if (name == "jsonl" || name == "json") return TableFormat::Jsonl;
    if (name != "auto") throw Error("<command line>: flag --format: '" + name + "' is not one of auto, tsv, csv, jsonl");
    std::string p = path;
    if (p.size() > 3 && p.compare(p.size() - 3, 3, ".gz") == 0) p.resize(p.size() - 3);
    auto ends = [&p](const char* ext) { return p.size() >= std::strlen(ext) && p.compare(p.size() - std::strlen(ext), std::string::npos, ext) == 0; };
    if (ends(".tsv") || ends(".tab")) return TableFormat::Tsv;
    if (ends(".csv")) return TableFormat::Csv;
    if (ends(".jsonl") || ends(".json") || ends(".ndjson")) return TableFormat::Jsonl;
    throw Error(path + ": cannot tell the table format from the extension (use --format tsv|csv|jsonl)");
}

namespace {

// Splits one TSV line at tabs.
void split_tsv(const std::string& line, std::vector<std::string>& fields) {
    fields.clear();
    size_t start = 0;
    while (true) {
        const size_t tab = line.find('\t', start);
        fields.emplace_back(line, start, tab == std::string::npos ? std::string::npos : tab - start);
        if (tab == std::string::npos) break;
        start = tab + 1;
    }
}

// Reads one CSV record, which may span several lines when a quoted field holds newlines.
bool next_csv_record(LineReader& in, std::vector<std::string>& fields) {
    std::string line;
    if (!in.next(line)) return false;
    const int64_t first_line = in.line_number();
    fields.assign(1, "");
    bool quoted = false;
    for (size_t i = 0;; i++) {
        if (i == line.size()) {
            if (!quoted) break;
            if (!in.next(line)) throw Error(in.path() + ": line " + std::to_string(first_line) + ": a quoted field is never closed");
            fields.back() += '\n';
            i = (size_t)-1;  // restart on the new line
            continue;
        }
        const char c = line[i];
        if (quoted) {
            if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') fields.back() += '"', i++;
            else if (c == '"') quoted = false;
            else fields.back() += c;
        } else if (c == '"') {
            quoted = true;
        } else if (c == ',') {
            fields.emplace_back();
        } else {
            fields.back() += c;
        }
    }
    return true;
}

std::string json_value_text(const nlohmann::json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_null()) return "";
    return v.dump();  // numbers and booleans as they are written: 1, 0.5, true
}

// Maps requested column names to indices of `header`; a name of digits is an index when the
// header does not have it.
std::vector<size_t> resolve_columns(const std::string& path, const std::vector<std::string>& header,
                                    const std::vector<std::string>& columns) {
    std::vector<size_t> index;
    for (const std::string& want : columns) {
        size_t found = header.size();
        for (size_t i = 0; i < header.size(); i++)
            if (header[i] == want) found = i;
        if (found == header.size() && !want.empty() && want.size() < 10 && want.find_first_not_of("0123456789") == std::string::npos &&
            std::stoul(want) < header.size())
            found = std::stoul(want);
        if (found == header.size()) {
            std::string have;
            for (const std::string& h : header) have += (have.empty() ? "" : ", ") + h;
            fail(path, want, "no such column (the file has: " + have + ")");
        }
        index.push_back(found);
    }
    return index;
}

}  // namespace

std::vector<TableRow> read_table(const std::string& path, TableFormat format, const std::vector<std::string>& columns,
                                 bool has_header) {
    format = format == TableFormat::Auto ? parse_table_format("auto", path) : format;
    LineReader in(path);
    std::vector<TableRow> rows;
    std::string line;
    if (format == TableFormat::Jsonl) {
        while (in.next(line)) {
            if (line.find_first_not_of(" \t") == std::string::npos) continue;
            nlohmann::json object;
            try {
                object = nlohmann::json::parse(line);
            } catch (const nlohmann::json::parse_error& e) {
                throw Error(path + ": line " + std::to_string(in.line_number()) + ": not valid JSON: " + e.what());
            }
            if (!object.is_object()) throw Error(path + ": line " + std::to_string(in.line_number()) + ": not a JSON object");
            TableRow row{in.line_number(), {}};
            for (const std::string& c : columns) {
                auto it = object.find(c);
                if (it == object.end()) throw Error(path + ": line " + std::to_string(in.line_number()) + ": no field '" + c + "'");
                row.values.push_back(json_value_text(*it));
            }
            rows.push_back(std::move(row));
        }
        return rows;
    }

    std::vector<std::string> fields, header;
    auto next_record = [&]() {
        if (format == TableFormat::Csv) return next_csv_record(in, fields);
        if (!in.next(line)) return false;
        split_tsv(line, fields);
        return true;
    };
    std::vector<size_t> index;
    int64_t start_line = 1;
    bool first = true;
    while (next_record()) {
        if (first) {
            first = false;
            if (has_header) header = fields;
            else for (size_t i = 0; i < fields.size(); i++) header.push_back(std::to_string(i));
            index = resolve_columns(path, header, columns);
            if (has_header) {
                start_line = in.line_number() + 1;
                continue;
            }
        }
        if (fields.size() == 1 && fields[0].empty()) {  // blank line
            start_line = in.line_number() + 1;
            continue;
        }
        if (fields.size() != header.size())
            throw Error(path + ": line " + std::to_string(start_line) + ": has " + std::to_string(fields.size()) +
                        " columns, the header has " + std::to_string(header.size()));
        TableRow row{start_line, {}};
        for (size_t i : index) row.values.push_back(fields[i]);
        rows.push_back(std::move(row));
        start_line = in.line_number() + 1;
    }
    return rows;
}

}  // namespace wr
