// data/table_reader.h: reads labeled-data tables for `prepare cls` / `prepare unlabeled`:
// TSV (tab-separated, no quoting, as GLUE ships), CSV (RFC 4180: quoted fields may hold commas,
// doubled quotes and newlines) and JSON lines (one object per line). The first row of TSV/CSV
// names the columns unless `has_header` is false, in which case columns are named "0", "1", ...
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace wr {

enum class TableFormat { Auto, Tsv, Csv, Jsonl };

TableFormat parse_table_format(const std::string& name, const std::string& path);  // "auto": by extension (.gz stripped)

struct TableRow {
    int64_t line;                     // 1-based line in the file where the row starts
    std::vector<std::string> values;  // the requested columns, in request order
};

// Reads the requested columns of every row. Errors (wr::Error) name the file and, where it
// applies, the line and column: a missing column lists the ones the file has.
std::vector<TableRow> read_table(const std::string& path, TableFormat format, const std::vector<std::string>& columns,
                                 bool has_header = true);

}  // namespace wr
