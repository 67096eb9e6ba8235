// model/distillation.cpp: the student flags, teachers, students and batches of distill's two
// modes (distillation.h).
#include "model/distillation.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "common/random.h"
#include "common/util.h"
#include "model/run_folder.h"
#include "model/training.h"

namespace wr {

namespace {
const std::string kDefaultVocab = "build/default/vocab.txt";  // the built-in corpus's (./prepare default, run by make)
}  // namespace

std::string distill_vocab_path(const std::string& given, const std::vector<std::string>& checkpoints) {
    if (!given.empty()) return given;
    std::vector<std::string> folders;
    for (const std::string& path : checkpoints)
        if (!path.empty()) folders.push_back(folder_of(path));
    return default_vocab(folders, kDefaultVocab);
}

void StudentOptions::add_student_flags(Flags& f, bool mlm) {
    f.add("out", &out, mlm ? "output folder: the student's checkpoints (MLM checkpoints), log.jsonl"
                           : "output folder: the student's checkpoints, task.json, log.jsonl");
    f.add("overwrite", &overwrite, "replace the checkpoints of an earlier run in --out");
    f.add("resume", &resume, "continue the run in this folder exactly where it stopped, with its settings (run.json)");
    f.add("init", &init, mlm ? "student from this MLM checkpoint; else random (size flags) or --from-teacher"
                             : "student from this checkpoint: MLM (pretrained distillation) or classifier; else random or --from-teacher");
    f.add("from-teacher", &from_teacher, "student from every k-th layer of the teacher (same width; --layers sets the student's depth)");
    size.add_flags(f);
    f.add("temperature", &temperature, mlm ? "tau: softmax(logits / tau) for the teacher's top k and the student's vocabulary; loss x tau^2"
                                           : "tau: both distributions at softmax(logits / tau); the soft loss is scaled by tau^2");
    f.add("label-weight", &label_weight, mlm ? "alpha: add alpha x the ordinary MLM cross-entropy on the original tokens"
                                             : "alpha: add alpha x cross-entropy on the transfer set's own labels (it must have them)");
    f.add("batch", &batch, mlm ? "sequences per batch" : "examples per batch (padded to the batch's longest)");
    f.add("epochs", &epochs, mlm ? "passes over the cached sequences (those not held out)" : "passes over the transfer set");
    f.add("eval-every", &eval_every, "also evaluate every N steps (0: after each epoch only)");
    f.add("keep", &keep, mlm ? "keep the last K checkpoints (best.bin, the lowest held-out soft loss, is kept besides)"
                             : "keep the last K checkpoints (best.bin is kept besides)");
    f.add("dropout", &dropout, "the student's dropout on embeddings and hidden outputs (and the pooled vector)");
    f.add("attention-dropout", &attention_dropout, "the student's dropout on attention probabilities");
    f.add("seed", &seed, "seed of the student's initialization, data order and dropout");
    optimizer.add_flags(f);
}

void StudentOptions::note_given(Flags& f, const std::string& program) {
    if (!resume.empty()) {
        apply_run_settings(resume, program, f);
        out = resume;
    }
    settings_json = run_settings_json(program, f);
    size.note_given(f);
    warmup_given = f.was_set("warmup");
}

Teacher load_teacher(const std::string& path, const Tokenizer& vocab) {
    const Checkpoint ck = load_checkpoint(path);
    if (ck.kind != CheckpointKind::Classifier)
        fail(path, "kind", "is an MLM checkpoint; the teacher must be a classifier (fine-tune it with finetune first)");
    Task task = read_task(task_path_beside(path));
    if (task.num_labels() != ck.num_labels)
        fail(task_path_beside(path), "labels", "name " + std::to_string(task.num_labels()) + " outputs, the checkpoint " + path +
                                                   " has " + std::to_string(ck.num_labels));
    ClassifierInit init;
    init.dropout = init.attention_dropout = 0.0f;  // the teacher only ever runs in evaluation mode
    return Teacher{classifier_from_checkpoint(ck, path, vocab, ck.num_labels, init), task, ck.params_checksum};
}

ExampleSet tokens_only(ExampleSet set) {
    set.label_kind = LabelKind::None;
    set.label_names.clear();
    for (Example& e : set.examples) e.label = -1, e.value = 0.0f;
    return set;
}

bool run_teacher(Engine& teacher, const ExampleBatcher& batcher, int64_t first, int batch_size, const TeacherSink& sink, bool show_progress) {
    const int64_t N = batcher.example_count();
    const auto t0 = std::chrono::steady_clock::now();
    auto last_print = t0;
    std::vector<int64_t> indices;
    ExampleBatch batch;
    for (int64_t start = first; start < N; start += batch_size) {
        if (StopRequest::requested()) return false;
        indices.clear();
        for (int64_t i = start; i < std::min(N, start + batch_size); i++) indices.push_back(i);
        batcher.make_batch(indices.data(), (int)indices.size(), batch);
        ClsResult r;
        const float* logits = teacher.classify(inputs_of(batch, false, false), /*train=*/false, 0, r);
        sink((int64_t)indices.size(), logits);
        const auto now = std::chrono::steady_clock::now();
        const double since_print = std::chrono::duration<double>(now - last_print).count();
        if (show_progress && (since_print > 5.0 || start + batch_size >= N)) {
            const double seconds = std::chrono::duration<double>(now - t0).count();
            const int64_t done = std::min(N, start + batch_size);
            const double rate = (double)(done - first) / std::max(seconds, 1e-9);
            std::printf("cache: %lld/%lld examples | %.0f examples/s | %.0f s left\n", (long long)done, (long long)N, rate,
                        (double)(N - done) / std::max(rate, 1e-9));
            last_print = now;
        }
    }
    return true;
}

BertConfig config_from_teacher(const ModelSizeOptions& size, const BertConfig& tc) {
    BertConfig c = tc;
    c.num_layers = size.layers ? size.layers : std::max(1, tc.num_layers / 2);
    if (size.hidden && size.hidden != tc.hidden)
        throw Error("<command line>: --from-teacher keeps the teacher's width " + std::to_string(tc.hidden) + "; --hidden " +
                    std::to_string(size.hidden) + " differs");
    if (tc.num_layers % c.num_layers != 0)
        throw Error("<command line>: --from-teacher: the student's " + std::to_string(c.num_layers) + " layers must divide the teacher's " +
                    std::to_string(tc.num_layers));
    return c;
}

int copy_teacher_layers(BertModel& student, const BertModel& teacher) {
    const int layers = student.config.num_layers, k = teacher.config.num_layers / layers;
    for (const TensorSpec& t : student.layout.tensors()) {
        const TensorSpec& from = teacher.layout.find(t.name);
        const float* src = teacher.params.data() + from.offset;
        float* dst = student.params.data() + t.offset;
        if (t.name.rfind("layers.", 0) != 0) {
            std::copy(src, src + t.numel, dst);
            continue;
        }
        const int64_t per_layer = t.numel / layers;
        for (int l = 0; l < layers; l++) std::copy(src + (int64_t)l * k * per_layer, src + ((int64_t)l * k + 1) * per_layer, dst + l * per_layer);
    }
    return k;
}

MlmTeacher load_mlm_teacher(const std::string& path, const Tokenizer& vocab) {
    const Checkpoint ck = load_checkpoint(path);
    if (ck.kind != CheckpointKind::Mlm)
        fail(path, "kind", "is a classifier checkpoint; the --mlm teacher must be an MLM checkpoint (made by train_mlm), with its MLM head");
    BertConfig c = ck.config;
    c.hidden_dropout = c.attention_dropout = 0.0f;  // evaluation mode only
    MlmTeacher teacher{BertModel(c), ck.params_checksum};
    load_into(teacher.model, ck, vocab.fingerprint(), vocab.source());
    return teacher;
}

void top_k(const float* row, int V, int k, int32_t* ids, float* values, std::vector<int32_t>& order) {
    order.resize(V);
    for (int v = 0; v < V; v++) order[v] = v;
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [row](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    for (int j = 0; j < k; j++) ids[j] = order[j], values[j] = row[order[j]];
}

MlmInputs mlm_inputs(const MlmBatch& b) {
    MlmInputs in;
    in.B = b.B, in.T = b.T, in.input_ids = b.input_ids.data(), in.token_types = b.token_types.data(), in.lengths = b.lengths.data();
    in.M = b.M(), in.masked_positions = b.masked_positions.data(), in.masked_targets = b.masked_targets.data();
    return in;
}

void MlmDistillBatches::make(const int64_t* groups, int n, Batch& out) const {
    const int k = cache.k();
    std::vector<std::vector<int32_t>> ids(n);
    int T = 3;
    for (int i = 0; i < n; i++) {
        text.sequence(cache.group_sequence[groups[i]], ids[i]);
        T = std::max(T, (int)ids[i].size());
    }
    MlmBatch& b = out.batch;
    b.B = n, b.T = T;
    b.input_ids.assign((size_t)n * T, pad_id);
    b.token_types.assign((size_t)n * T, 0);
    b.lengths.assign(n, 0);
    b.mlm_targets.assign((size_t)n * T, MlmBatch::kNoTarget);
    b.masked_positions.clear(), b.masked_targets.clear();
    b.sequence_index.assign(n, 0);
    out.teacher_ids.clear(), out.teacher_values.clear();
    std::vector<int32_t> top_ids(k);
    std::vector<float> top_values(k);
    for (int i = 0; i < n; i++) {
        const int64_t g = groups[i], sequence = cache.group_sequence[g];
        const int len = (int)ids[i].size();
        std::copy(ids[i].begin(), ids[i].end(), b.input_ids.begin() + (size_t)i * T);
        b.lengths[i] = len;
        b.sequence_index[i] = sequence;
        for (int64_t r = cache.group_begin[g]; r < cache.group_begin[g + 1]; r++) {
            const int32_t t = cache.position(r);
            if (t >= len - 1 || ids[i][t] != cache.target(r))
                fail(cache.path, "rows", "row " + std::to_string(r) + ": sequence " + std::to_string(sequence) + " position " +
                                             std::to_string(t) + " holds token " + std::to_string(cache.target(r)) +
                                             " in the cache but not in the text: the cache belongs to other shards");
            const int32_t flat = i * T + t;
            b.input_ids[flat] = cache.input_id(r);
            b.mlm_targets[flat] = cache.target(r);
            b.masked_positions.push_back(flat);
            b.masked_targets.push_back(cache.target(r));
            cache.topk(r, top_ids.data(), top_values.data());
            out.teacher_ids.insert(out.teacher_ids.end(), top_ids.begin(), top_ids.end());
            out.teacher_values.insert(out.teacher_values.end(), top_values.begin(), top_values.end());
        }
    }
}

bool is_heldout(int64_t sequence, double fraction) {
    return (double)(splitmix64_mix((uint64_t)sequence ^ 0x686f6c646f7574ULL) >> 11) * 0x1.0p-53 < fraction;
}

}  // namespace wr
