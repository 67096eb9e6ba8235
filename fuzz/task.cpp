// fuzz/task.cpp: fuzz target of the task.json reader (read_task, model/task.cpp), which
// finetune --eval-only / --predict and distill read beside a classifier checkpoint. An accepted
// task must have labels, and what task_json writes of it must read back as the same task (label
// names of ASCII characters exactly; others may be changed once: invalid UTF-8 becomes U+FFFD).
#include "fuzz/fuzz.h"
#include "model/task.h"

namespace {

using namespace wr;

bool same(const Task& a, const Task& b) {
    return a.label_names == b.label_names && a.regression == b.regression && a.pairs == b.pairs && a.max_len == b.max_len;
}

bool ascii(const Task& t) {
    for (const std::string& name : t.label_names)
        for (unsigned char c : name)
            if (c >= 0x80) return false;
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path = fuzz::input_file("task.json", {reinterpret_cast<const char*>(data), size});
    fuzz::accepts([&] {
        const Task task = read_task(path);
        FUZZ_CHECK(!task.label_names.empty());
        fuzz::input_file("task.json", task_json(task));
        const Task written = read_task(path);
        FUZZ_CHECK(!ascii(task) || same(written, task));
        fuzz::input_file("task.json", task_json(written));
        FUZZ_CHECK(same(read_task(path), written));
    });
    return 0;
}
