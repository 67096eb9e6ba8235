// model/bert.h: the compact BERT model, equal in architecture to Hugging Face BertForMaskedLM
// (post-LN encoder, exact erf GELU, LayerNorm eps 1e-12, learned positions, token types, MLM head
// with its decoder tied to the word embeddings and a bias of its own), with explicit forward and
// backward passes built from the ops in kernels/. Letters as in kernels/common.h.
//
// All parameters live in one contiguous float buffer described by a table of named tensors
// (ParamLayout); BertWeights gives named pointers into any buffer of that layout, so the
// parameters, their gradients and the two AdamW moments share one description. Tensors of the
// encoder layers are stacked: qkv_w is [L, 3C, C], layer l's slice starts at l * 3C * C.
//
//   embeddings:  x0 = dropout(LayerNorm(wte[ids] + wpe[t] + wtt[types]))                [B,T,C]
//   layer l:     qkv = x W_qkv^T + b                                                       [B,T,3C]
//                a   = attention(qkv, lengths)      (softmax(q k^T / sqrt(HS)), padding keys masked)
//                x1  = LayerNorm(x + dropout(a W_o^T + b_o))
//                x   = LayerNorm(x1 + dropout(GELU(x1 W_in^T + b_in) W_out^T + b_out))
//   MLM head, on the M masked positions only:
//                h = LayerNorm(GELU(x[masked] W_head^T + b_head));  logits = h wte^T + mlm_bias  [M,V]
//                loss = mean cross-entropy of logits against the original tokens; in MLM-logit
//                       distillation a top-k soft cross-entropy against a teacher (MlmInputs)
//   classifier head (BertForSequenceClassification), when config.num_labels = K >= 1:
//                pooled = tanh(x[:, 0] W_pool^T + b_pool)            (the [CLS] position)  [B,C]
//                logits = dropout(pooled) W_cls^T + b_cls                                  [B,K]
//                loss = mean cross-entropy against the labels, or for K = 1 (regression)
//                       the mean squared error against the targets; in distillation a soft
//                       cross-entropy against a teacher's logits (ClsInputs)
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cross_entropy.h"
#include "kernels/matmul.h"
#include "kernels/optimizer.h"

namespace wr {

// The largest value BertConfig::validate accepts for each size (the smallest is 1).
constexpr int kMaxLayers = 1024, kMaxHidden = 65536, kMaxFfn = 262144, kMaxVocab = 1 << 24, kMaxPositions = 1 << 20,
              kMaxTypeVocab = 1024;

struct BertConfig {
    int num_layers = 2;       // L
    int hidden = 128;         // C
    int num_heads = 2;        // NH
    int ffn = 512;            // F (4C by default)
    int vocab_size = 0;       // V
    int max_positions = 512;  // P
    int type_vocab = 2;
    int pad_id = 0;           // [PAD]: its embedding row starts at zero, as in Hugging Face
    float layer_norm_eps = 1e-12f;
    float hidden_dropout = 0.1f;
    float attention_dropout = 0.1f;
    int num_labels = 0;       // 0: the MLM head; K >= 1: pooler + classifier over K outputs (1: regression)

    std::string describe() const;  // "L4-H256 (NH 4, F 1024, V 30522, P 512)"
    // Every size 1..its kMax above, NH divides C, pad_id in [0, V), num_labels 0..65536, dropout
    // rates in [0, 1); throws wr::Error naming `where` and the field.
    void validate(const std::string& where) const;
};

// Presets of "Well-Read Students Learn Better": L in {2,4,6,8,10,12} x H in {128,256,512,768},
// NH = H/64, F = 4H, written "L4-H256", plus the usual names: tiny = L2-H128, mini = L4-H256,
// small = L4-H512, medium = L8-H512, base = L12-H768.
BertConfig bert_preset(const std::string& name, int vocab_size);
std::vector<std::string> bert_preset_names();

struct TensorSpec {
    std::string name;             // "layers.qkv_w"
    std::vector<int64_t> shape;   // [L, 3C, C]
    int64_t offset = 0, numel = 0;
    bool weight_decay = false;    // AdamW decays matrices and embeddings, not biases or LayerNorm
    bool embedding = false;       // counted as embedding parameters in the start-up report
    bool layernorm_weight = false;  // initialized to 1 (matrices and embeddings: normal(0, 0.02); the rest 0)
};

class ParamLayout {
  public:
    explicit ParamLayout(const BertConfig& config);
    const std::vector<TensorSpec>& tensors() const { return tensors_; }
    const TensorSpec& find(const std::string& name) const;  // throws if absent
    const TensorSpec* find_optional(const std::string& name) const;  // null if absent
    int64_t total() const { return total_; }
    int64_t embedding_count() const;
    int64_t non_embedding_count() const { return total_ - embedding_count(); }
    DecayRanges decay_ranges() const;  // the tensors AdamW decays, as ranges of the buffer (adjacent merged)

  private:
    enum Kind { kMatrix, kBias, kLayerNormWeight, kEmbedding, kEmbeddingLayerNorm };
    void add(const std::string& name, std::vector<int64_t> shape, Kind kind);
    std::vector<TensorSpec> tensors_;
    int64_t total_ = 0;
};

// Named pointers into a buffer laid out by ParamLayout (parameters, gradients, AdamW moments; on
// the GPU also the bf16 copy of the parameters, hence the element type).
template <typename T>
struct BertWeightsOf {
    T *wte, *wpe, *wtt, *emb_ln_w, *emb_ln_b;                           // [V,C] [P,C] [2,C] [C] [C]
    T *qkv_w, *qkv_b, *attn_out_w, *attn_out_b, *ln1_w, *ln1_b;          // [L,3C,C] [L,3C] [L,C,C] [L,C] [L,C] [L,C]
    T *ffn_in_w, *ffn_in_b, *ffn_out_w, *ffn_out_b, *ln2_w, *ln2_b;      // [L,F,C] [L,F] [L,C,F] [L,C] [L,C] [L,C]
    T *head_w, *head_b, *head_ln_w, *head_ln_b, *mlm_bias;               // [C,C] [C] [C] [C] [V]    (MLM head)
    T *pool_w, *pool_b, *cls_w, *cls_b;                                  // [C,C] [C] [K,C] [K]      (classifier)
    // The head the layout does not have is null.

    // `layout`: a ParamLayout, or anything with the same find_optional (the GPU's DeviceLayout).
    template <typename Layout>
    static BertWeightsOf view(const Layout& layout, T* base) {
        auto at = [&](const char* name) {
            const TensorSpec* t = layout.find_optional(name);
            return t ? base + t->offset : nullptr;
        };
        return {at("embeddings.word"),    at("embeddings.position"), at("embeddings.token_type"), at("embeddings.ln_w"),
                at("embeddings.ln_b"),    at("layers.qkv_w"),        at("layers.qkv_b"),          at("layers.attn_out_w"),
                at("layers.attn_out_b"),  at("layers.ln1_w"),        at("layers.ln1_b"),          at("layers.ffn_in_w"),
                at("layers.ffn_in_b"),    at("layers.ffn_out_w"),    at("layers.ffn_out_b"),      at("layers.ln2_w"),
                at("layers.ln2_b"),       at("mlm_head.dense_w"),    at("mlm_head.dense_b"),      at("mlm_head.ln_w"),
                at("mlm_head.ln_b"),      at("mlm_head.bias"),       at("pooler.dense_w"),        at("pooler.dense_b"),
                at("classifier.w"),       at("classifier.b")};
    }
};
using BertWeights = BertWeightsOf<float>;

// One MLM batch as the model consumes it (data/mlm_batcher.h produces these).
struct MlmInputs {
    int B = 0, T = 0;
    const int32_t* input_ids = nullptr;    // [B,T]
    const int32_t* token_types = nullptr;  // [B,T]
    const int32_t* lengths = nullptr;      // [B] valid tokens; keys beyond are padding
    int M = 0;                             // masked positions
    const int32_t* masked_positions = nullptr;  // [M] flat indices b*T + t
    const int32_t* masked_targets = nullptr;    // [M] original token ids
    // MLM-logit distillation (distill train --mlm): the teacher's top-k predictions at each masked
    // position as soft targets. The loss becomes
    //   soft + label_weight * hard
    // soft: mean over the M rows of the top-k soft cross-entropy at `temperature`
    //       (kernels/cross_entropy.h, soft_topk_cross_entropy_*),
    // hard: the mean cross-entropy against masked_targets above.
    // Without teacher ids the loss is the hard loss alone. CPU only (the GPU model refuses them).
    int teacher_k = 0;                          // k, 1..V
    const int32_t* teacher_ids = nullptr;       // [M,k] token ids, distinct within a row
    const float* teacher_values = nullptr;      // [M,k] the teacher's logits of those tokens
    float temperature = 1.0f;
    float label_weight = 0.0f;
    // The gradient's factor (the reported loss is not scaled): 1, or on a data-parallel rank its
    // share of the global batch (masked positions / rows here over those of all ranks), so that
    // the ranks' gradients add up to the gradient of the global batch's mean loss.
    float grad_scale = 1.0f;
};

struct MlmResult {
    float loss = 0;       // the training loss: the mean cross-entropy, or soft + label_weight * hard
    int correct = 0;      // masked positions whose argmax is the target
    float hard_loss = 0;  // mean cross-entropy over the M masked positions (= loss without a teacher)
    float soft_loss = 0;  // mean top-k soft cross-entropy against the teacher (0 without one)
    int agree = 0;        // masked positions whose argmax is the teacher's top-1 (with teacher ids)
};

// One classification batch (data/example_batcher.h produces these).
struct ClsInputs {
    int B = 0, T = 0;
    const int32_t* input_ids = nullptr;    // [B,T]
    const int32_t* token_types = nullptr;  // [B,T]
    const int32_t* lengths = nullptr;      // [B]
    const int32_t* labels = nullptr;       // [B] class index, or -100 (no loss); null: no loss at all
    const float* values = nullptr;         // [B] regression targets (num_labels = 1); null: no loss
    // Distillation (distill train): a teacher's logits [B,K] as soft targets. The loss becomes
    //   soft + label_weight * hard
    // soft: mean over all B rows of the soft cross-entropy at `temperature`
    //       (kernels/cross_entropy.h; for K = 1 the squared error against the teacher's output),
    // hard: the loss above over the labeled rows (0 where labels and values are null).
    // Without teacher logits the loss is the hard loss alone, weight 1.
    const float* teacher_logits = nullptr;
    float temperature = 1.0f;
    float label_weight = 0.0f;
    // The gradient's factor (the reported loss is not scaled): 1, or on a data-parallel rank its
    // share of the global batch (masked positions / rows here over those of all ranks), so that
    // the ranks' gradients add up to the gradient of the global batch's mean loss.
    float grad_scale = 1.0f;
};

// The checks every batch gets (CPU and GPU): T within the positions, ids and token types within
// the vocabularies, lengths in 1..T. Throws wr::Error.
void check_batch_tokens(const BertConfig& config, int B, int T, const int32_t* ids, const int32_t* types, const int32_t* lengths);

// The checks every forward_classify makes (CPU and GPU): labels within the K classes, labels for
// classes and values for regression only, a positive temperature. Throws wr::Error.
void check_cls_inputs(const ClsInputs& in, int K);

struct ClsResult {
    float loss = 0;        // the training loss: the hard loss, or soft + label_weight * hard
    float hard_loss = 0;   // mean over the labeled rows (cross-entropy, or squared error for regression)
    float soft_loss = 0;   // mean soft cross-entropy against the teacher (0 without teacher logits)
    int counted = 0;       // labeled rows (those the hard loss is over)
    int correct = 0;       // rows whose argmax is the label (classes only)
    int agree = 0;         // rows whose argmax is the teacher's (classes, with teacher logits)
};

class BertModel {
  public:
    explicit BertModel(const BertConfig& config);

    // normal(0, 0.02) for matrices and embeddings, LayerNorm 1 and 0, biases 0, as BERT.
    void init_weights(uint64_t seed);

    // Forward pass; keeps what backward needs. `train` turns dropout on, with masks drawn from
    // `dropout_seed` (a different seed each step).
    MlmResult forward_mlm(const MlmInputs& in, bool train, uint64_t dropout_seed);
    // Adds d(loss)/d(parameters) into grads, for the batch of the last forward_mlm.
    void backward_mlm();

    // The classifier head (config.num_labels >= 1): forward and backward as the MLM pair.
    ClsResult forward_classify(const ClsInputs& in, bool train, uint64_t dropout_seed);
    void backward_classify();
    const float* cls_logits() const;  // [B,K] logits of the last forward_classify

    void zero_grads();

    // The encoder's output [B,T,C] of the last forward (for tests and later heads).
    const float* encoder_output() const;

    BertConfig config;
    // The precision of every matrix product, the attention's included (kernels/matmul.h): fp32,
    // the exact reference, or bf16 operands with fp32 sums (CPU mixed precision). Everything
    // else (weights, gradients, LayerNorm, softmax, losses) is fp32 either way.
    MatmulPrecision matmul_precision = MatmulPrecision::fp32;
    ParamLayout layout;
    std::vector<float> params, grads;
    BertWeights w, g;  // named views of params and grads

    struct Activations;  // the named arrays of the activation buffers (model/bert.cpp)
    const float* mlm_logits() const;  // [M,V] logits of the last forward at the masked positions

  private:
    void ensure_activations(int B, int T, int M);
    // Checks and keeps the batch's integers; sizes the activations. Returns the activation views.
    Activations start_batch(int B, int T, int M, const int32_t* ids, const int32_t* types, const int32_t* lengths,
                            const int32_t* positions, const int32_t* targets, bool train, uint64_t dropout_seed);
    Activations views();
    void encoder_forward(const Activations& a);   // embeddings and layers: x0 ... ln2 of the last layer
    void encoder_backward(Activations& a);        // from a.d_x = d loss / d (last layer's output)
    std::vector<float> acts_, dacts_;
    std::vector<SoftmaxStats> mlm_softmax_;  // the MLM loss's softmax stats per masked row, for backward
    bool dlogits_ready_ = false;             // a training forward_mlm wrote d loss / d logits already
    std::vector<int32_t> saved_ints_;  // copies of the batch's ids, types, lengths, positions, targets (labels)
    std::vector<float> saved_values_;  // regression targets of a classifier batch
    std::vector<float> saved_teacher_; // teacher logits [B,K] of a distillation batch; MLM: top-k values [M,k]
    std::vector<int32_t> saved_teacher_ids_;  // MLM distillation: top-k ids [M,k]
    int teacher_k_ = 0;                // MLM distillation: k (0: no teacher)
    float temperature_ = 1.0f, label_weight_ = 1.0f, grad_scale_ = 1.0f;
    int B_ = 0, T_ = 0, M_ = 0, capacity_B_ = 0, capacity_T_ = 0, capacity_M_ = 0;
    bool train_ = false, has_labels_ = false;
    uint64_t dropout_seed_ = 0;
};

}  // namespace wr
