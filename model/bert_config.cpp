// model/bert_config.cpp: BertConfig's own functions (describe, validate), the size presets and the
// parameter layout a configuration implies (ParamLayout).
// Apart from bert.cpp so that what only reads a configuration (the checkpoint reader, and the
// fuzz targets built from it) links without the model's compute and its kernels.
#include "model/bert.h"

#include <cstdio>

#include "common/util.h"

namespace wr {

std::string BertConfig::describe() const {
    char buf[160];
    std::snprintf(buf, sizeof buf, "L%d-H%d (NH %d, F %d, V %d, P %d)", num_layers, hidden, num_heads, ffn, vocab_size, max_positions);
    return buf;
}

void BertConfig::validate(const std::string& where) const {
    // Generous limits (BERT-large has L 24, C 1024, F 4096, V 30522, P 512), but finite: no field
    // of a corrupted or hand-made file can ask for an absurd model (docs/checkpoints.md).
    const struct {
        int value;
        const char* name;
        int max;
    } sizes[] = {{num_layers, "num_layers", kMaxLayers},     {hidden, "hidden", kMaxHidden},
                 {num_heads, "num_heads", kMaxHidden},       {ffn, "ffn", kMaxFfn},
                 {vocab_size, "vocab_size", kMaxVocab},      {max_positions, "max_positions", kMaxPositions},
                 {type_vocab, "type_vocab", kMaxTypeVocab}};
    for (const auto& f : sizes)
        if (f.value <= 0 || f.value > f.max)
            fail(where, f.name, "is " + std::to_string(f.value) + ", must be positive and at most " + std::to_string(f.max));
    if (hidden % num_heads != 0)
        fail(where, "num_heads", std::to_string(num_heads) + " heads do not divide hidden size " + std::to_string(hidden));
    if (num_labels < 0 || num_labels > 65536) fail(where, "num_labels", "is " + std::to_string(num_labels) + ", must be 0 (MLM head) or 1..65536");
    if (pad_id < 0 || pad_id >= vocab_size) fail(where, "pad_id", "is " + std::to_string(pad_id) + ", outside the vocabulary");
    for (float p : {hidden_dropout, attention_dropout})
        if (!(p >= 0 && p < 1)) fail(where, "dropout", "must be in [0, 1)");
}

BertConfig bert_preset(const std::string& name, int vocab_size) {
    std::string spec = name;
    if (name == "tiny") spec = "L2-H128";
    else if (name == "mini") spec = "L4-H256";
    else if (name == "small") spec = "L4-H512";
    else if (name == "medium") spec = "L8-H512";
    else if (name == "base") spec = "L12-H768";
    int layers = 0, hidden = 0;
    char tail = 0;
    if (std::sscanf(spec.c_str(), "L%d-H%d%c", &layers, &hidden, &tail) != 2 || layers % 2 != 0 || layers < 2 || layers > 12 ||
        (hidden != 128 && hidden != 256 && hidden != 512 && hidden != 768)) {
        std::string names;
        for (const std::string& n : bert_preset_names()) names += (names.empty() ? "" : ", ") + n;
        throw Error("<command line>: model preset '" + name + "' is not one of: " + names);
    }
    BertConfig c;
    c.num_layers = layers;
    c.hidden = hidden;
    c.num_heads = hidden / 64;
    c.ffn = 4 * hidden;
    c.vocab_size = vocab_size;
    return c;
}

std::vector<std::string> bert_preset_names() {
    std::vector<std::string> names = {"tiny", "mini", "small", "medium", "base"};
    for (int l = 2; l <= 12; l += 2)
        for (int h : {128, 256, 512, 768}) names.push_back("L" + std::to_string(l) + "-H" + std::to_string(h));
    return names;
}

// ---------------------------------------------------------------------------------------------
// Parameter layout

void ParamLayout::add(const std::string& name, std::vector<int64_t> shape, Kind kind) {
    TensorSpec t;
    t.name = name;
    t.shape = std::move(shape);
    t.numel = 1;
    for (int64_t d : t.shape) t.numel *= d;
    t.offset = total_;
    t.weight_decay = kind == kMatrix || kind == kEmbedding;
    t.embedding = kind == kEmbedding || kind == kEmbeddingLayerNorm;
    t.layernorm_weight = kind == kLayerNormWeight || (kind == kEmbeddingLayerNorm && name.size() > 2 && name.back() == 'w');
    total_ += t.numel;
    tensors_.push_back(std::move(t));
}

ParamLayout::ParamLayout(const BertConfig& c) {
    const int64_t L = c.num_layers, C = c.hidden, F = c.ffn, V = c.vocab_size;
    add("embeddings.word", {V, C}, kEmbedding);
    add("embeddings.position", {c.max_positions, C}, kEmbedding);
    add("embeddings.token_type", {c.type_vocab, C}, kEmbedding);
    add("embeddings.ln_w", {C}, kEmbeddingLayerNorm);
    add("embeddings.ln_b", {C}, kEmbeddingLayerNorm);
    add("layers.qkv_w", {L, 3 * C, C}, kMatrix);
    add("layers.qkv_b", {L, 3 * C}, kBias);
    add("layers.attn_out_w", {L, C, C}, kMatrix);
    add("layers.attn_out_b", {L, C}, kBias);
    add("layers.ln1_w", {L, C}, kLayerNormWeight);
    add("layers.ln1_b", {L, C}, kBias);
    add("layers.ffn_in_w", {L, F, C}, kMatrix);
    add("layers.ffn_in_b", {L, F}, kBias);
    add("layers.ffn_out_w", {L, C, F}, kMatrix);
    add("layers.ffn_out_b", {L, C}, kBias);
    add("layers.ln2_w", {L, C}, kLayerNormWeight);
    add("layers.ln2_b", {L, C}, kBias);
    if (c.num_labels == 0) {  // BertForMaskedLM's head
        add("mlm_head.dense_w", {C, C}, kMatrix);
        add("mlm_head.dense_b", {C}, kBias);
        add("mlm_head.ln_w", {C}, kLayerNormWeight);
        add("mlm_head.ln_b", {C}, kBias);
        add("mlm_head.bias", {V}, kBias);
    } else {  // BertForSequenceClassification's pooler and classifier
        add("pooler.dense_w", {C, C}, kMatrix);
        add("pooler.dense_b", {C}, kBias);
        add("classifier.w", {c.num_labels, C}, kMatrix);
        add("classifier.b", {c.num_labels}, kBias);
    }
}

const TensorSpec* ParamLayout::find_optional(const std::string& name) const {
    for (const TensorSpec& t : tensors_)
        if (t.name == name) return &t;
    return nullptr;
}

const TensorSpec& ParamLayout::find(const std::string& name) const {
    if (const TensorSpec* t = find_optional(name)) return *t;
    throw Error("internal: no parameter tensor named '" + name + "'");
}

int64_t ParamLayout::embedding_count() const {
    int64_t n = 0;
    for (const TensorSpec& t : tensors_) n += t.embedding ? t.numel : 0;
    return n;
}

DecayRanges ParamLayout::decay_ranges() const {
    DecayRanges ranges;
    for (const TensorSpec& t : tensors_) {
        if (!t.weight_decay) continue;
        if (!ranges.empty() && ranges.back().end == t.offset) ranges.back().end += t.numel;
        else ranges.push_back({t.offset, t.offset + t.numel});
    }
    return ranges;
}

}  // namespace wr
