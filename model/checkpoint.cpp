// model/checkpoint.cpp: checkpoint and training-state files, and the output folder's keeper. The
// byte layouts are in docs/checkpoints.md; the header comment of checkpoint.h says what is checked.
#include "model/checkpoint.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <set>

#include "common/binary_io.h"
#include "common/distributed.h"
#include "common/util.h"

namespace wr {

namespace {

using u128 = unsigned __int128;

// ---------------------------------------------------------------------------------------------
// Checkpoint layout: 64-byte header, 64-byte config block, tensor table, parameters.

constexpr size_t kConfigAt = kHeaderBytes, kConfigBytes = 64;
constexpr size_t kTableAt = kConfigAt + kConfigBytes;
constexpr size_t kTensorEntryFixedBytes = 32;  // before the dims and the name
constexpr uint32_t kMaxTensors = 4096, kMaxTensorName = 256, kMaxTensorDims = 8;
constexpr uint32_t kMaxLabels = 1 << 16;
constexpr uint32_t kFlagWeightDecay = 1, kFlagEmbedding = 2;

// Every BertConfig field, in the order of the config block (field i at byte 64 + 4 i). The one
// list serves writing, reading and comparing, so a new field is added in one place.
struct ConfigField {
    const char* name;
    int BertConfig::*int_member;
    float BertConfig::*float_member;
};
constexpr ConfigField kConfigFields[] = {
    {"num_layers", &BertConfig::num_layers, nullptr},
    {"hidden", &BertConfig::hidden, nullptr},
    {"num_heads", &BertConfig::num_heads, nullptr},
    {"ffn", &BertConfig::ffn, nullptr},
    {"vocab_size", &BertConfig::vocab_size, nullptr},
    {"max_positions", &BertConfig::max_positions, nullptr},
    {"type_vocab", &BertConfig::type_vocab, nullptr},
    {"pad_id", &BertConfig::pad_id, nullptr},
    {"layer_norm_eps", nullptr, &BertConfig::layer_norm_eps},
    {"hidden_dropout", nullptr, &BertConfig::hidden_dropout},
    {"attention_dropout", nullptr, &BertConfig::attention_dropout},
};
static_assert(sizeof(kConfigFields) / sizeof(kConfigFields[0]) * 4 <= kConfigBytes, "config block overflows");

std::string float_string(float x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", x);  // enough digits to tell any two floats apart
    return buf;
}

std::string field_value(const BertConfig& c, const ConfigField& f) {
    return f.int_member ? std::to_string(c.*f.int_member) : float_string(c.*f.float_member);
}

bool same_field(const BertConfig& a, const BertConfig& b, const ConfigField& f) {
    return f.int_member ? a.*f.int_member == b.*f.int_member : a.*f.float_member == b.*f.float_member;
}

std::string shape_string(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

// BertConfig::validate, plus what it leaves out that a checkpoint must hold: a usable eps.
void check_config(const std::string& path, const BertConfig& config) {
    config.validate(path);
    if (!(config.layer_norm_eps > 0 && std::isfinite(config.layer_norm_eps)))
        fail(path, "layer_norm_eps", "is " + float_string(config.layer_norm_eps) + ", must be positive and finite");
}

// The config must describe the tensors the file holds: every tensor of the config's encoder (the
// embeddings and the layers, which each of its models has, whatever the head) is in the table
// with the shape the config gives it. So the model a program builds from the config takes little
// more memory than the file, whatever the config says.
void check_config_describes_tensors(const Checkpoint& ck) {
    const ParamLayout layout(ck.config);
    for (const TensorSpec& t : layout.tensors()) {
        if (t.name.rfind("embeddings.", 0) != 0 && t.name.rfind("layers.", 0) != 0) continue;  // a head's: may be absent
        const TensorSpec* held = ck.find(t.name);
        if (!held || held->shape != t.shape)
            fail(ck.path, "config", "describes tensor '" + t.name + "' as " + shape_string(t.shape) + " (" + ck.config.describe() +
                                        "), but the checkpoint holds " + (held ? shape_string(held->shape) : "no such tensor"));
    }
}

size_t tensor_entry_bytes(size_t name_length, size_t ndim) {
    return kTensorEntryFixedBytes + 8 * ndim + align8(name_length);
}

// The writer's side of what the reader requires of a kind and a table; a failure is a bug of the
// calling program, reported before anything is written.
void check_weights_to_save(const std::string& path, const WeightsView& w) {
    auto refuse = [&path](const std::string& why) { throw Error(path + ": cannot save the checkpoint: " + why); };
    const bool kind_ok = w.kind == CheckpointKind::Mlm ? w.num_labels == 0
                         : w.kind == CheckpointKind::Classifier && w.num_labels >= 1 && w.num_labels <= (int)kMaxLabels;
    check_config(path, w.config);
    if (!kind_ok) refuse("kind " + std::to_string((uint32_t)w.kind) + " with " + std::to_string(w.num_labels) + " labels");
    if (w.tensors.empty() || w.tensors.size() > kMaxTensors) refuse(std::to_string(w.tensors.size()) + " tensors");
    int64_t next = 0;
    for (const TensorSpec& t : w.tensors) {
        int64_t elements = 1;
        for (int64_t d : t.shape) elements *= d > 0 ? d : 0;
        if (t.name.empty() || t.name.size() > kMaxTensorName || t.shape.empty() || t.shape.size() > kMaxTensorDims ||
            elements != t.numel || t.offset != next)
            refuse("tensor '" + t.name + "' is not a named tensor of 1.." + std::to_string(kMaxTensorDims) +
                   " dims right after the one before it");
        next += t.numel;
    }
    if (next != w.param_count) refuse("the tensors hold " + std::to_string(next) + " of " + std::to_string(w.param_count) + " parameters");
}

std::string encode_checkpoint(const std::string& path, const WeightsView& w, uint64_t vocab_fingerprint, uint64_t& sum) {
    check_weights_to_save(path, w);
    size_t table_bytes = 0;
    for (const TensorSpec& t : w.tensors) table_bytes += tensor_entry_bytes(t.name.size(), t.shape.size());
    const size_t param_bytes = (size_t)w.param_count * sizeof(float);
    std::string file(kTableAt + table_bytes + param_bytes, '\0');
    auto* bytes = reinterpret_cast<unsigned char*>(file.data());

    sum = params_checksum(w.params, w.param_count);
    std::memcpy(bytes, kCheckpointMagic, 8);
    put<uint32_t>(bytes, 8, kCheckpointVersion);
    put<uint32_t>(bytes, 12, (uint32_t)w.kind);
    put<uint32_t>(bytes, 16, (uint32_t)w.num_labels);
    put<uint32_t>(bytes, 20, (uint32_t)w.tensors.size());
    put<uint64_t>(bytes, 24, vocab_fingerprint);
    put<uint64_t>(bytes, 32, (uint64_t)w.param_count);
    put<uint64_t>(bytes, 40, sum);
    put<uint64_t>(bytes, 48, (uint64_t)table_bytes);

    size_t at = kConfigAt;
    for (const ConfigField& f : kConfigFields) {
        if (f.int_member) put<int32_t>(bytes, at, w.config.*f.int_member);
        else put<float>(bytes, at, w.config.*f.float_member);
        at += 4;
    }

    at = kTableAt;
    for (const TensorSpec& t : w.tensors) {
        put<uint32_t>(bytes, at, (uint32_t)t.name.size());
        put<uint32_t>(bytes, at + 4, (uint32_t)t.shape.size());
        put<uint32_t>(bytes, at + 8, (t.weight_decay ? kFlagWeightDecay : 0) | (t.embedding ? kFlagEmbedding : 0));
        put<uint64_t>(bytes, at + 16, (uint64_t)t.offset);
        put<uint64_t>(bytes, at + 24, (uint64_t)t.numel);
        for (size_t d = 0; d < t.shape.size(); d++) put<int64_t>(bytes, at + kTensorEntryFixedBytes + 8 * d, t.shape[d]);
        std::memcpy(bytes + at + kTensorEntryFixedBytes + 8 * t.shape.size(), t.name.data(), t.name.size());
        at += tensor_entry_bytes(t.name.size(), t.shape.size());
    }
    std::memcpy(bytes + at, w.params, param_bytes);
    seal_checksum(file);
    return file;
}

// The tensor table of a checksum-verified file: every entry within the table, sane sizes, unique
// names, shapes agreeing with numel, tensors contiguous in order and filling the parameters.
std::vector<TensorSpec> parse_tensor_table(const std::string& path, const unsigned char* bytes, uint32_t count,
                                           size_t table_bytes, uint64_t param_count) {
    std::vector<TensorSpec> tensors(count);
    std::set<std::string> names;
    const size_t end = kTableAt + table_bytes;
    size_t at = kTableAt;
    uint64_t next = 0;
    for (uint32_t i = 0; i < count; i++) {
        const std::string which = "tensor " + std::to_string(i);
        if (end - at < kTensorEntryFixedBytes) fail(path, "tensors", which + " runs past the end of the table");
        const uint32_t name_length = get<uint32_t>(bytes, at), ndim = get<uint32_t>(bytes, at + 4);
        const uint32_t flags = get<uint32_t>(bytes, at + 8);
        if (name_length < 1 || name_length > kMaxTensorName)
            fail(path, "tensors", which + " has a name of " + std::to_string(name_length) + " bytes, must be 1.." +
                                      std::to_string(kMaxTensorName));
        if (ndim < 1 || ndim > kMaxTensorDims)
            fail(path, "tensors", which + " has " + std::to_string(ndim) + " dims, must be 1.." + std::to_string(kMaxTensorDims));
        if (end - at < tensor_entry_bytes(name_length, ndim)) fail(path, "tensors", which + " runs past the end of the table");
        TensorSpec& t = tensors[i];
        t.name.assign(reinterpret_cast<const char*>(bytes + at + kTensorEntryFixedBytes + 8 * ndim), name_length);
        const std::string named = which + " ('" + t.name + "')";
        if (!names.insert(t.name).second) fail(path, "tensors", named + ": the name appears twice");
        if (flags & ~(kFlagWeightDecay | kFlagEmbedding)) fail(path, "tensors", named + " has unknown flags " + std::to_string(flags));
        t.weight_decay = flags & kFlagWeightDecay;
        t.embedding = flags & kFlagEmbedding;
        u128 elements = 1;
        for (uint32_t d = 0; d < ndim; d++) {
            const int64_t dim = get<int64_t>(bytes, at + kTensorEntryFixedBytes + 8 * d);
            if (dim < 1) fail(path, "tensors", named + " has dimension " + std::to_string(dim) + ", must be positive");
            t.shape.push_back(dim);
            elements *= (uint64_t)dim;
            if (elements > param_count) fail(path, "tensors", named + " has more elements than the checkpoint has parameters");
        }
        const uint64_t offset = get<uint64_t>(bytes, at + 16), numel = get<uint64_t>(bytes, at + 24);
        if (numel != (uint64_t)elements)
            fail(path, "tensors", named + " has numel " + std::to_string(numel) + ", but its shape " + shape_string(t.shape) +
                                      " has " + std::to_string((uint64_t)elements) + " elements");
        if (offset != next)
            fail(path, "tensors", named + " starts at " + std::to_string(offset) + ", not at " + std::to_string(next) +
                                      " where the tensor before it ends");
        if (numel > param_count - next) fail(path, "tensors", named + " runs past the end of the parameters");
        t.offset = (int64_t)offset;
        t.numel = (int64_t)numel;
        next += numel;
        at += tensor_entry_bytes(name_length, ndim);
    }
    if (at != end) fail(path, "table_bytes", "is " + std::to_string(table_bytes) + ", but the table's entries take " + std::to_string(at - kTableAt));
    if (next != param_count)
        fail(path, "tensors", "hold " + std::to_string(next) + " parameters, the header says " + std::to_string(param_count));
    return tensors;
}

// ---------------------------------------------------------------------------------------------
// Training-state layout: 64-byte header, RNG words, loader bytes (padded to 8), m, v.

std::string encode_training_state(const TrainingProgress& p, uint64_t params_checksum, const float* m, const float* v,
                                  int64_t n) {
    const size_t rng_bytes = 8 * p.rng_state.size(), loader_at = kHeaderBytes + rng_bytes;
    const size_t m_at = loader_at + align8(p.loader_state.size()), moment_bytes = (size_t)n * sizeof(float);
    std::string file(m_at + 2 * moment_bytes, '\0');
    auto* bytes = reinterpret_cast<unsigned char*>(file.data());
    std::memcpy(bytes, kTrainingStateMagic, 8);
    put<uint32_t>(bytes, 8, kTrainingStateVersion);
    put<uint32_t>(bytes, 12, (uint32_t)p.rng_state.size());
    put<int64_t>(bytes, 16, p.step);
    put<uint64_t>(bytes, 24, (uint64_t)n);
    put<uint64_t>(bytes, 32, params_checksum);
    put<uint64_t>(bytes, 40, (uint64_t)p.loader_state.size());
    put<double>(bytes, 48, p.best_val_loss);
    if (rng_bytes) std::memcpy(bytes + kHeaderBytes, p.rng_state.data(), rng_bytes);
    std::memcpy(bytes + loader_at, p.loader_state.data(), p.loader_state.size());
    std::memcpy(bytes + m_at, m, moment_bytes);
    std::memcpy(bytes + m_at + moment_bytes, v, moment_bytes);
    seal_checksum(file);
    return file;
}

// ---------------------------------------------------------------------------------------------
// Output folder names

constexpr const char* kLatestName = "latest";
constexpr const char* kBestName = "best.bin";

std::string step_file_name(const std::string& prefix, int64_t step) {
    char digits[32];
    std::snprintf(digits, sizeof digits, "%08lld", (long long)step);
    return prefix + "_" + digits + ".bin";
}

std::string step_file(const std::string& dir, const std::string& prefix, int64_t step) {
    return dir + "/" + step_file_name(prefix, step);
}

// The step of a file name the keeper makes ("ckpt_00000100.bin" -> 100), or -1 for any other name.
int64_t own_step(const std::string& name, const std::string& prefix) {
    const std::string head = prefix + "_", tail = ".bin";
    if (name.size() < head.size() + 8 + tail.size() || name.compare(0, head.size(), head) != 0 ||
        name.compare(name.size() - tail.size(), tail.size(), tail) != 0)
        return -1;
    const std::string digits = name.substr(head.size(), name.size() - head.size() - tail.size());
    if (digits.size() > 18 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return -1;
    const int64_t step = std::stoll(digits);
    return step_file_name(prefix, step) == name ? step : -1;  // exactly as the keeper writes it, no other padding
}

bool is_directory(const std::string& path) {
    struct stat st {};
    return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_file(const std::string& path) {
    struct stat st {};
    return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Checkpoints

WeightsView weights_of(const BertModel& model) {
    const int K = model.config.num_labels;
    return WeightsView{model.config, model.layout.tensors(), model.params.data(), model.layout.total(),
                       K > 0 ? CheckpointKind::Classifier : CheckpointKind::Mlm, K};
}

uint64_t params_checksum(const float* params, int64_t n) {
    Checksum c;
    c.update(params, (size_t)n * sizeof(float));
    return c.digest();
}

uint64_t save_checkpoint(const std::string& path, const WeightsView& weights, uint64_t vocab_fingerprint) {
    uint64_t sum = 0;
    write_file_atomic(path, encode_checkpoint(path, weights, vocab_fingerprint, sum));
    return sum;
}

uint64_t save_checkpoint(const std::string& path, const BertConfig& config, uint64_t vocab_fingerprint,
                         const ParamLayout& layout, const float* params) {
    return save_checkpoint(path, WeightsView{config, layout.tensors(), params, layout.total()}, vocab_fingerprint);
}

const TensorSpec* Checkpoint::find(const std::string& name) const {
    for (const TensorSpec& t : tensors)
        if (t.name == name) return &t;
    return nullptr;
}

namespace {
// Weights that are not finite (a run that diverged, a corrupted export saved with a valid
// checksum) would give NaN losses and silent nonsense: an error naming the tensor instead.
void check_finite_weights(const Checkpoint& ck) {
    for (const TensorSpec& t : ck.tensors) {
        const float* w = ck.params.data() + t.offset;
        int64_t bad = 0, first = -1;
        for (int64_t i = 0; i < t.numel; i++)
            if (!std::isfinite(w[i])) bad++, first = first < 0 ? i : first;
        if (bad > 0)
            fail(ck.path, "tensor " + t.name, std::to_string(bad) + " of its " + std::to_string(t.numel) +
                                                  " weights are not finite (the first, at index " + std::to_string(first) + ", is " +
                                                  float_string(w[first]) + "): the run that saved it diverged");
    }
}
}  // namespace

Checkpoint load_checkpoint(const std::string& path) {
    const std::string file = read_file(path);
    const auto* bytes = reinterpret_cast<const unsigned char*>(file.data());
    check_common_header(path, bytes, file.size(), kCheckpointMagic, kCheckpointVersion, "checkpoint");

    Checkpoint ck;
    ck.path = path;
    const uint32_t kind = get<uint32_t>(bytes, 12), num_labels = get<uint32_t>(bytes, 16);
    const uint32_t tensor_count = get<uint32_t>(bytes, 20);
    const uint64_t param_count = get<uint64_t>(bytes, 32), table_bytes = get<uint64_t>(bytes, 48);
    if (kind != (uint32_t)CheckpointKind::Mlm && kind != (uint32_t)CheckpointKind::Classifier)
        fail(path, "kind", "is " + std::to_string(kind) + ", must be 1 (MLM) or 2 (classifier)");
    if (kind == (uint32_t)CheckpointKind::Mlm ? num_labels != 0 : num_labels < 1 || num_labels > kMaxLabels)
        fail(path, "num_labels", "is " + std::to_string(num_labels) + ", must be 0 for kind 1 (MLM) and 1.." +
                                     std::to_string(kMaxLabels) + " for kind 2 (classifier)");
    if (tensor_count < 1 || tensor_count > kMaxTensors)
        fail(path, "tensor_count", "is " + std::to_string(tensor_count) + ", must be 1.." + std::to_string(kMaxTensors));
    if (param_count < 1) fail(path, "param_count", "is 0, a checkpoint holds at least one parameter");
    if (table_bytes % 8 != 0 || table_bytes < (uint64_t)tensor_count * (kTensorEntryFixedBytes + 16))
        fail(path, "table_bytes", "is " + std::to_string(table_bytes) + ", not a table of " + std::to_string(tensor_count) +
                                      " tensors (a multiple of 8, at least 48 per tensor)");
    check_size(path, file.size(), (u128)kTableAt + table_bytes + (u128)param_count * sizeof(float));
    check_checksum(path, bytes, file.size());

    ck.kind = (CheckpointKind)kind;
    ck.num_labels = (int)num_labels;
    ck.config.num_labels = (int)num_labels;  // which head: 0 the MLM head, K the classifier's
    ck.vocab_fingerprint = get<uint64_t>(bytes, 24);
    ck.params_checksum = get<uint64_t>(bytes, 40);
    size_t at = kConfigAt;
    for (const ConfigField& f : kConfigFields) {
        if (f.int_member) ck.config.*f.int_member = get<int32_t>(bytes, at);
        else ck.config.*f.float_member = get<float>(bytes, at);
        at += 4;
    }
    check_config(path, ck.config);

    ck.tensors = parse_tensor_table(path, bytes, tensor_count, (size_t)table_bytes, param_count);
    check_config_describes_tensors(ck);
    ck.params.resize((size_t)param_count);
    std::memcpy(ck.params.data(), bytes + kTableAt + table_bytes, (size_t)param_count * sizeof(float));
    if (params_checksum(ck.params.data(), (int64_t)param_count) != ck.params_checksum)
        fail(path, "params_checksum", "does not match the parameters: the file is corrupted");
    check_finite_weights(ck);
    return ck;
}

// Dropout rates are saved but not compared: they are settings of a training run (continued
// pretraining or fine-tuning may use other rates), not of the architecture.
bool is_training_setting(const ConfigField& f) { return std::strstr(f.name, "dropout") != nullptr; }

void check_same_config(const Checkpoint& checkpoint, const BertConfig& model_config) {
    for (const ConfigField& f : kConfigFields)
        if (!is_training_setting(f) && !same_field(checkpoint.config, model_config, f))
            fail(checkpoint.path, f.name, "checkpoint has " + field_value(checkpoint.config, f) + ", the model " +
                                              field_value(model_config, f));
}

void check_vocab_fingerprint(const Checkpoint& checkpoint, uint64_t expected, const std::string& vocab_path) {
    if (checkpoint.vocab_fingerprint != expected)
        fail(checkpoint.path, "vocab_fingerprint", "checkpoint has " + hex64(checkpoint.vocab_fingerprint) + ", the vocabulary " +
                                                       (vocab_path.empty() ? "" : vocab_path + " ") + hex64(expected) +
                                                       ": the checkpoint was trained with another vocabulary (pass its own with "
                                                       "--vocab, or leave --vocab out to take the vocab.txt of its run folder)");
}

std::vector<std::string> copy_matching_tensors(const Checkpoint& checkpoint, const std::vector<TensorSpec>& dst_tensors,
                                               float* dst_params) {
    std::vector<std::pair<const TensorSpec*, const TensorSpec*>> copies;  // (checkpoint's, destination's)
    for (const TensorSpec& dst : dst_tensors) {
        const TensorSpec* src = checkpoint.find(dst.name);
        if (!src) continue;
        if (src->shape != dst.shape)
            fail(checkpoint.path, "tensors", "tensor '" + dst.name + "' is " + shape_string(src->shape) +
                                                 " in the checkpoint but " + shape_string(dst.shape) + " in the model");
        copies.emplace_back(src, &dst);
    }
    std::vector<std::string> names;
    for (const auto& [src, dst] : copies) {
        std::memcpy(dst_params + dst->offset, checkpoint.params.data() + src->offset, (size_t)src->numel * sizeof(float));
        names.push_back(dst->name);
    }
    return names;
}

void load_into(BertModel& model, const Checkpoint& checkpoint, uint64_t expected_vocab_fingerprint, const std::string& vocab_path) {
    if (checkpoint.num_labels != model.config.num_labels)
        fail(checkpoint.path, "num_labels",
             "checkpoint has " + std::to_string(checkpoint.num_labels) + " (" + (checkpoint.num_labels ? "a classifier" : "the MLM head") +
                 "), the model " + std::to_string(model.config.num_labels) + " (" +
                 (model.config.num_labels ? "a classifier" : "the MLM head") + ")");
    check_same_config(checkpoint, model.config);
    check_vocab_fingerprint(checkpoint, expected_vocab_fingerprint, vocab_path);
    for (const TensorSpec& t : model.layout.tensors())
        if (!checkpoint.find(t.name))
            fail(checkpoint.path, "tensors", "has no tensor '" + t.name + "', which the model needs");
    copy_matching_tensors(checkpoint, model.layout.tensors(), model.params.data());  // checks shapes before copying
}

// ---------------------------------------------------------------------------------------------
// Training state

void save_training_state(const std::string& path, const TrainingProgress& progress, uint64_t params_checksum,
                         const float* m, const float* v, int64_t param_count) {
    auto refuse = [&path](const std::string& why) { throw Error(path + ": cannot save the training state: " + why); };
    if (progress.step < 0) refuse("step " + std::to_string(progress.step) + " is negative");
    if (param_count < 1) refuse("no parameters");
    if (progress.rng_state.size() > UINT32_MAX) refuse("more RNG words than the header can count");
    if (std::isnan(progress.best_val_loss)) refuse("the best validation loss is NaN (+inf stands for none yet)");
    write_file_atomic(path, encode_training_state(progress, params_checksum, m, v, param_count));
}

TrainingState load_training_state(const std::string& path, int64_t expected_param_count,
                                  uint64_t expected_params_checksum, const std::string& checkpoint_path) {
    const std::string file = read_file(path);
    const auto* bytes = reinterpret_cast<const unsigned char*>(file.data());
    check_common_header(path, bytes, file.size(), kTrainingStateMagic, kTrainingStateVersion, "training-state file");

    TrainingState s;
    TrainingProgress& p = s.progress;
    const uint32_t rng_words = get<uint32_t>(bytes, 12);
    p.step = get<int64_t>(bytes, 16);
    const uint64_t param_count = get<uint64_t>(bytes, 24), loader_bytes = get<uint64_t>(bytes, 40);
    s.params_checksum = get<uint64_t>(bytes, 32);
    p.best_val_loss = get<double>(bytes, 48);
    if (p.step < 0) fail(path, "step", "is " + std::to_string(p.step) + ", must not be negative");
    if (param_count < 1) fail(path, "param_count", "is 0, must be positive");
    if (std::isnan(p.best_val_loss)) fail(path, "best_val_loss", "is NaN (+inf stands for none yet)");
    const size_t loader_at = kHeaderBytes + 8 * (size_t)rng_words;
    check_size(path, file.size(), (u128)loader_at + ((u128)loader_bytes + 7) / 8 * 8 + (u128)param_count * 2 * sizeof(float));
    check_checksum(path, bytes, file.size());

    if (param_count != (uint64_t)expected_param_count)
        fail(path, "param_count", "is " + std::to_string(param_count) + ", but the checkpoint " + checkpoint_path + " has " +
                                      std::to_string(expected_param_count) + " parameters: the state belongs to another model");
    if (s.params_checksum != expected_params_checksum)
        fail(path, "params_checksum", "is " + hex64(s.params_checksum) + ", but the checkpoint " + checkpoint_path + " has " +
                                          hex64(expected_params_checksum) + ": the state was saved with another checkpoint");

    p.rng_state.resize(rng_words);
    if (rng_words) std::memcpy(p.rng_state.data(), bytes + kHeaderBytes, 8 * (size_t)rng_words);
    p.loader_state.assign(file.data() + loader_at, (size_t)loader_bytes);
    const size_t m_at = loader_at + align8((size_t)loader_bytes), moment_bytes = (size_t)param_count * sizeof(float);
    s.m.resize((size_t)param_count);
    s.v.resize((size_t)param_count);
    std::memcpy(s.m.data(), bytes + m_at, moment_bytes);
    std::memcpy(s.v.data(), bytes + m_at + moment_bytes, moment_bytes);
    return s;
}

TrainingState load_training_state(const std::string& path, const Checkpoint& checkpoint) {
    return load_training_state(path, (int64_t)checkpoint.params.size(), checkpoint.params_checksum, checkpoint.path);
}

// ---------------------------------------------------------------------------------------------
// The output folder

ResumePoint find_latest(const std::string& dir) {
    if (!is_directory(dir)) throw Error(dir + ": cannot resume: no such folder");
    const std::string latest = dir + "/" + kLatestName;
    if (!is_file(latest))
        throw Error(dir + ": cannot resume: no checkpoint here (no file '" + kLatestName + "', which names the newest checkpoint)");
    std::string text = read_file(latest);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    if (text.empty() || text.size() > 18 || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
        fail(latest, "step", "is '" + text.substr(0, 40) + "', not a step number");
    ResumePoint r;
    r.step = std::stoll(text);
    r.checkpoint_path = step_file(dir, "ckpt", r.step);
    r.state_path = step_file(dir, "state", r.step);
    for (const std::string& path : {r.checkpoint_path, r.state_path})
        if (!is_file(path)) fail(latest, "step", "names step " + text + ", but " + path + " does not exist");
    return r;
}

TrainingState load_training_state(const ResumePoint& at, const Checkpoint& checkpoint) {
    TrainingState state = load_training_state(at.state_path, checkpoint);
    if (state.progress.step != at.step)
        fail(at.state_path, "step", "is " + std::to_string(state.progress.step) + ", but its checkpoint " + checkpoint.path +
                                        " is the one of step " + std::to_string(at.step) +
                                        ": the state was saved at another step than the checkpoint");
    return state;
}

CheckpointKeeper::CheckpointKeeper(std::string dir, int keep_last, double best_val_loss)
    : dir_(std::move(dir)), keep_last_(keep_last), best_val_loss_(best_val_loss) {
    if (keep_last_ < 1) throw Error(dir_ + ": keeping the last " + std::to_string(keep_last_) + " checkpoints: must keep at least 1");
    if (!world().root()) return;  // rank 0 alone writes (common/distributed.h)
    make_dirs(dir_);
    if (const int n = remove_stale_temporaries(dir_))
        std::printf("%s: removed %d temporary file%s left by a killed run\n", dir_.c_str(), n, n == 1 ? "" : "s");
}

std::string CheckpointKeeper::checkpoint_path(int64_t step) const { return step_file(dir_, "ckpt", step); }
std::string CheckpointKeeper::state_path(int64_t step) const { return step_file(dir_, "state", step); }

bool CheckpointKeeper::save(const WeightsView& weights, uint64_t vocab_fingerprint, const float* m, const float* v,
                            TrainingProgress progress, double val_loss) {
    const int64_t step = progress.step;
    const bool new_best = std::isfinite(val_loss) && val_loss < best_val_loss_;  // NaN: not evaluated
    progress.best_val_loss = new_best ? val_loss : best_val_loss_;
    if (!world().root()) {  // the other ranks keep count of the best, and write nothing
        best_val_loss_ = progress.best_val_loss;
        return new_best;
    }

    uint64_t sum = 0;
    const std::string checkpoint = encode_checkpoint(checkpoint_path(step), weights, vocab_fingerprint, sum);
    write_file_atomic(checkpoint_path(step), checkpoint);
    save_training_state(state_path(step), progress, sum, m, v, weights.param_count);
    if (new_best) write_file_atomic(dir_ + "/" + kBestName, checkpoint);
    best_val_loss_ = progress.best_val_loss;
    write_file_atomic(dir_ + "/" + kLatestName, std::to_string(step) + "\n");
    delete_old_pairs(step);
    return new_best;
}

std::vector<std::string> CheckpointKeeper::own_files(const std::string& dir) {
    std::vector<std::string> files;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        const bool own = name == kLatestName || name == kBestName || own_step(name, "ckpt") >= 0 || own_step(name, "state") >= 0;
        if (own && entry.is_regular_file(ec)) files.push_back(dir + "/" + name);
    }
    std::sort(files.begin(), files.end());
    return files;
}

// Keeps the newest pair and the keep_last - 1 pairs before it; deletes the older ones. A step with
// only one of its two files (a save cut short) counts as a pair. Only regular files named exactly
// as the keeper names them are touched. Errors are ignored: a file that cannot be deleted costs
// disk space, not the run.
void CheckpointKeeper::delete_old_pairs(int64_t newest_step) const {
    std::map<int64_t, std::vector<std::filesystem::path>, std::greater<int64_t>> older;  // newest first
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
        if (!entry.is_regular_file(ec)) continue;
        const std::string name = entry.path().filename().string();
        for (const char* prefix : {"ckpt", "state"}) {
            const int64_t step = own_step(name, prefix);
            if (step >= 0 && step < newest_step) older[step].push_back(entry.path());
        }
    }
    int kept = 1;  // the newest
    for (const auto& [step, files] : older) {
        if (kept++ < keep_last_) continue;
        for (const auto& file : files) std::filesystem::remove(file, ec);
    }
}

}  // namespace wr
