// tests/test_task.cpp: task.json (model/task.h), what finetune writes beside a classifier
// checkpoint and --eval-only, --predict and distill read back: label names with characters JSON
// escapes come back unchanged, the escapes other JSON writers use are understood, and what is not
// JSON is refused.
#include <gtest/gtest.h>

#include "common/util.h"
#include "model/task.h"
#include "test_helpers.h"

using namespace wr;
using wr::testing::ScratchDir;

// The fuzz target of read_task found label names with a tab, a newline or a control character
// coming back as "t", "n" or "u0001" (the reader dropped the backslash of every escape).
TEST(Task, LabelNamesRoundTripThroughTaskJson) {
    ScratchDir dir;
    const std::string path = dir / "task.json";
    Task task;
    task.label_names = {"tab\there", "new\nline\r", "bell\x07", "quote\"back\\slash/", "caf\xc3\xa9", "\xf0\x9f\x98\x80", "\\u0041"};
    task.pairs = true;
    task.max_len = 64;
    write_file_atomic(path, task_json(task));
    const Task back = read_task(path);
    EXPECT_EQ(back.label_names, task.label_names);
    EXPECT_TRUE(back.pairs);
    EXPECT_FALSE(back.regression);
    EXPECT_EQ(back.max_len, 64);
}

TEST(Task, ReadsTheEscapesOfOtherJsonWriters) {
    ScratchDir dir;
    const std::string path = dir / "task.json";
    write_file_atomic(path, "{\"label_kind\":\"class\",\"labels\":[\"caf\\u00e9\",\"\\ud83d\\ude00\",\"a\\/b\\b\\f\"],"
                            "\"pairs\":false,\"max_len\":128}\n");
    EXPECT_EQ(read_task(path).label_names, (std::vector<std::string>{"caf\xc3\xa9", "\xf0\x9f\x98\x80", "a/b\b\f"}));
    // Not JSON: a short \u escape, a surrogate without its pair (RFC 8259 strings are Unicode).
    for (const char* bad : {"x\\u12", "\\ud83d"}) {
        write_file_atomic(path, std::string("{\"label_kind\":\"class\",\"labels\":[\"") + bad + "\"],\"pairs\":false,\"max_len\":128}\n");
        EXPECT_ERROR_MENTIONS(read_task(path), path.c_str(), "not valid JSON");
    }
}
