// model/task.h: what a classifier checkpoint needs besides its weights to be used on text (label
// names, classes or regression, sentence pairs, maximum length), and task.json, the small file
// finetune writes beside its checkpoints to keep it. Apart from model/classifier.h so that the
// reader links on its own (the fuzz targets).
#pragma once
#include <string>
#include <vector>

namespace wr {

struct Task {
    std::vector<std::string> label_names;  // class names in id order; one target name for regression
    bool regression = false;
    bool pairs = false;                    // trained on sentence pairs
    int max_len = 0;                       // the truncation length of the training examples

    int num_labels() const { return regression ? 1 : (int)label_names.size(); }
};

std::string task_json(const Task& task);
Task read_task(const std::string& path);                          // what task_json wrote; errors name the file
std::string task_path_beside(const std::string& checkpoint_path);  // DIR/task.json for DIR/x.bin

}  // namespace wr
