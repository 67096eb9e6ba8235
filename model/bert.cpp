// model/bert.cpp: BERT forward and backward on the CPU, composed from the ops in kernels/.
// The math of each step is in model/bert.h; the shapes of each op in its header.
#include "model/bert.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/metrics.h"
#include "common/random.h"
#include "common/util.h"
#include "kernels/activations.h"
#include "kernels/attention.h"
#include "kernels/cross_entropy.h"
#include "kernels/dropout.h"
#include "kernels/embedding.h"
#include "kernels/layernorm.h"
#include "kernels/matmul.h"

namespace wr {

// ---------------------------------------------------------------------------------------------
// Activations: one buffer for the forward pass, one for the backward scratch, carved into named
// arrays. Per-layer arrays hold L slices; the backward scratch is reused layer after layer.

struct BertModel::Activations {
    // forward, kept for backward
    float *emb_sum, *emb_mean, *emb_rstd, *emb_ln, *x0;                 // [N,C] [N] [N] [N,C] [N,C]
    float *qkv, *att, *atty, *attn_proj, *res1, *ln1, *ln1_mean, *ln1_rstd;  // per layer: [N,3C] [B,NH,T,T] [N,C] x3 [N,C] [N] [N]
    // ffn_h: the pre-activation x W_in^T + b_in; once the forward's GELU has read it, it holds
    // GELU'(ffn_h) instead, all that the backward needs of it (kernels/activations.h).
    float *ffn_h, *ffn_g, *ffn_out, *res2, *ln2, *ln2_mean, *ln2_rstd;  // per layer: [N,F] [N,F] [N,C] [N,C] [N,C] [N] [N]
    float *gathered, *head_h, *head_g, *head_ln, *head_mean, *head_rstd, *logits, *losses;  // [M,C] x4 [M] [M] [M,V] [M]
    float *cls_x, *pool_h, *pooled, *pool_drop, *cls_logits, *cls_losses;  // [B,C] x4 [B,K] [B]
    float* scratch;                                                     // [N,C] dropout output before a residual add
    // backward scratch
    float *d_x, *d_x_next, *d_res, *d_ln1, *d_tmp, *d_proj, *d_atty, *d_qkv, *d_att;  // [N,C] x7, [N,3C], [B,NH,T,T]
    float *d_ffn_g, *d_ffn_h;                                           // [N,F] x2
    float *d_gathered, *d_head_h, *d_head_g, *d_head_ln, *d_logits;    // [M,C] x4, [M,V]
    float *d_cls_x, *d_pool_h, *d_pooled, *d_pool_drop, *d_cls_logits;  // [B,C] x4, [B,K]
};

namespace {

// Carves consecutive arrays out of one buffer: first a sizing pass, then a pointer pass.
class Carver {
  public:
    explicit Carver(float* base) : base_(base) {}
    void take(float*& ptr, int64_t n) {
        ptr = base_ ? base_ + used_ : nullptr;
        used_ += n;
    }
    int64_t used() const { return used_; }

  private:
    float* base_;
    int64_t used_ = 0;
};

void carve(BertModel::Activations& a, Carver& f, Carver& d, const BertConfig& c, int64_t B, int64_t T, int64_t M) {
    const int64_t N = B * T, C = c.hidden, F = c.ffn, L = c.num_layers, A = B * c.num_heads * T * T, K = c.num_labels;
    const int64_t V = K == 0 ? c.vocab_size : 0;  // the MLM head's arrays exist only with the MLM head
    for (float** p : {&a.emb_sum, &a.emb_ln, &a.x0, &a.scratch}) f.take(*p, N * C);
    for (float** p : {&a.emb_mean, &a.emb_rstd}) f.take(*p, N);
    f.take(a.qkv, L * N * 3 * C);
    f.take(a.att, L * A);
    for (float** p : {&a.atty, &a.attn_proj, &a.res1, &a.ln1, &a.ffn_out, &a.res2, &a.ln2}) f.take(*p, L * N * C);
    for (float** p : {&a.ln1_mean, &a.ln1_rstd, &a.ln2_mean, &a.ln2_rstd}) f.take(*p, L * N);
    for (float** p : {&a.ffn_h, &a.ffn_g}) f.take(*p, L * N * F);
    for (float** p : {&a.gathered, &a.head_h, &a.head_g, &a.head_ln}) f.take(*p, M * C);
    for (float** p : {&a.head_mean, &a.head_rstd, &a.losses}) f.take(*p, M);
    f.take(a.logits, M * V);
    for (float** p : {&a.cls_x, &a.pool_h, &a.pooled, &a.pool_drop}) f.take(*p, K ? B * C : 0);
    f.take(a.cls_logits, B * K);
    f.take(a.cls_losses, K ? B : 0);

    for (float** p : {&a.d_x, &a.d_x_next, &a.d_res, &a.d_ln1, &a.d_tmp, &a.d_proj, &a.d_atty}) d.take(*p, N * C);
    d.take(a.d_qkv, N * 3 * C);
    d.take(a.d_att, A);
    for (float** p : {&a.d_ffn_g, &a.d_ffn_h}) d.take(*p, N * F);
    for (float** p : {&a.d_gathered, &a.d_head_h, &a.d_head_g, &a.d_head_ln}) d.take(*p, M * C);
    d.take(a.d_logits, M * V);
    for (float** p : {&a.d_cls_x, &a.d_pool_h, &a.d_pooled, &a.d_pool_drop}) d.take(*p, K ? B * C : 0);
    d.take(a.d_cls_logits, B * K);
}

// A different dropout stream for every place dropout is applied: (layer, site) mixed into the
// step's seed with splitmix64.
uint64_t site_seed(uint64_t seed, int layer, int site) {
    return splitmix64_mix(seed + kGoldenGamma * (uint64_t)(layer * 8 + site + 1));
}

enum DropoutSite { kEmbeddings = 0, kAttentionProbs = 1, kAttentionOutput = 2, kFfnOutput = 3, kClassifier = 4 };

void zero(float* p, int64_t n) { std::memset(p, 0, sizeof(float) * (size_t)n); }

}  // namespace

BertModel::BertModel(const BertConfig& c) : config(c), layout(c) {
    config.validate("model config");
    params.assign((size_t)layout.total(), 0.0f);
    grads.assign((size_t)layout.total(), 0.0f);
    w = BertWeights::view(layout, params.data());
    g = BertWeights::view(layout, grads.data());
}

void BertModel::init_weights(uint64_t seed) {
    // normal(0, 0.02) by Box-Muller on splitmix64 draws: the same weights on every platform.
    uint64_t state = seed;
    auto next = [&state]() { return splitmix64_next(state); };
    auto uniform = [&next]() { return ((next() >> 11) + 0.5) / 9007199254740992.0; };  // (0, 1)
    for (const TensorSpec& t : layout.tensors()) {
        float* p = params.data() + t.offset;
        for (int64_t i = 0; i < t.numel; i++) {
            if (t.weight_decay) {  // matrices and embeddings
                const double r = std::sqrt(-2.0 * std::log(uniform())), angle = 2.0 * M_PI * uniform();
                p[i] = (float)(0.02 * r * std::cos(angle));
            } else {
                p[i] = t.layernorm_weight ? 1.0f : 0.0f;
            }
        }
    }
    zero(w.wte + (int64_t)config.pad_id * config.hidden, config.hidden);
}

void BertModel::ensure_activations(int B, int T, int M) {
    if (B <= capacity_B_ && T <= capacity_T_ && M <= capacity_M_ && !acts_.empty()) return;
    capacity_B_ = std::max(B, capacity_B_);
    capacity_T_ = std::max(T, capacity_T_);
    capacity_M_ = std::max(M, capacity_M_);
    Activations a;
    Carver f(nullptr), d(nullptr);
    carve(a, f, d, config, capacity_B_, capacity_T_, capacity_M_);
    acts_.assign((size_t)f.used(), 0.0f);
    dacts_.assign((size_t)d.used(), 0.0f);
}

void BertModel::zero_grads() { std::fill(grads.begin(), grads.end(), 0.0f); }

BertModel::Activations BertModel::views() {
    Activations a;
    Carver f(acts_.data()), d(dacts_.data());
    carve(a, f, d, config, B_, T_, M_);
    return a;
}

const float* BertModel::encoder_output() const {
    return const_cast<BertModel*>(this)->views().ln2 + (int64_t)(config.num_layers - 1) * B_ * T_ * config.hidden;
}

const float* BertModel::mlm_logits() const { return const_cast<BertModel*>(this)->views().logits; }
const float* BertModel::cls_logits() const { return const_cast<BertModel*>(this)->views().cls_logits; }

void check_batch_tokens(const BertConfig& c, int B, int T, const int32_t* ids, const int32_t* types, const int32_t* lengths) {
    if (T > c.max_positions)
        throw Error("sequence length " + std::to_string(T) + " is above the model's " + std::to_string(c.max_positions) + " positions");
    const int64_t N = (int64_t)B * T;
    for (int64_t i = 0; i < N; i++)
        if (ids[i] < 0 || ids[i] >= c.vocab_size || types[i] < 0 || types[i] >= c.type_vocab)
            throw Error("batch: token " + std::to_string(i) + " has id " + std::to_string(ids[i]) + " / type " + std::to_string(types[i]) +
                        " outside the model's vocabulary " + std::to_string(c.vocab_size) + " / " + std::to_string(c.type_vocab));
    for (int b = 0; b < B; b++)
        if (lengths[b] < 1 || lengths[b] > T)
            throw Error("batch: sequence " + std::to_string(b) + " has length " + std::to_string(lengths[b]) + ", outside 1.." + std::to_string(T));
}

BertModel::Activations BertModel::start_batch(int B, int T, int M, const int32_t* ids, const int32_t* types, const int32_t* lengths,
                                              const int32_t* positions, const int32_t* targets, bool train, uint64_t dropout_seed) {
    const BertConfig& c = config;
    check_batch_tokens(c, B, T, ids, types, lengths);
    const int64_t N = (int64_t)B * T;
    ensure_activations(B, T, std::max(M, 1));
    B_ = B, T_ = T, M_ = M, train_ = train, dropout_seed_ = dropout_seed;
    // Keep the batch's integer inputs for backward (the caller's arrays may be reused).
    saved_ints_.assign(ids, ids + N);
    saved_ints_.insert(saved_ints_.end(), types, types + N);
    saved_ints_.insert(saved_ints_.end(), lengths, lengths + B);
    saved_ints_.insert(saved_ints_.end(), positions, positions + M);
    saved_ints_.insert(saved_ints_.end(), targets, targets + M);
    return views();
}

// Embeddings and encoder layers: from the saved ids to a.ln2 of the last layer.
void BertModel::encoder_forward(const Activations& a) {
    const BertConfig& c = config;
    const int64_t N = (int64_t)B_ * T_, C = c.hidden, F = c.ffn, NH = c.num_heads;
    const int32_t *ids = saved_ints_.data(), *types = ids + N, *lengths = types + N;
    const float p_hidden = train_ ? c.hidden_dropout : 0.0f, p_attn = train_ ? c.attention_dropout : 0.0f;
    const uint64_t seed = dropout_seed_;

    // Embeddings: x0 = dropout(LayerNorm(wte[ids] + wpe[t] + wtt[types]))
    embedding_forward(a.emb_sum, ids, types, w.wte, w.wpe, w.wtt, B_, T_, (int)C);
    layernorm_forward(a.emb_ln, a.emb_mean, a.emb_rstd, a.emb_sum, w.emb_ln_w, w.emb_ln_b, (int)N, (int)C, c.layer_norm_eps);
    dropout_forward(a.x0, a.emb_ln, N * C, p_hidden, site_seed(seed, 0, kEmbeddings));

    const float* x = a.x0;
    for (int l = 0; l < c.num_layers; l++) {
        float *qkv = a.qkv + l * N * 3 * C, *att = a.att + l * B_ * NH * T_ * T_, *atty = a.atty + l * N * C;
        float *proj = a.attn_proj + l * N * C, *res1 = a.res1 + l * N * C, *ln1 = a.ln1 + l * N * C;
        float *ffn_h = a.ffn_h + l * N * F, *ffn_g = a.ffn_g + l * N * F, *ffn_out = a.ffn_out + l * N * C;
        float *res2 = a.res2 + l * N * C, *ln2 = a.ln2 + l * N * C;
        // self-attention block
        matmul_forward(qkv, x, w.qkv_w + l * 3 * C * C, w.qkv_b + l * 3 * C, (int)N, (int)C, (int)(3 * C), matmul_precision);
        attention_forward(atty, att, qkv, lengths, B_, T_, (int)C, (int)NH, p_attn, site_seed(seed, l, kAttentionProbs), matmul_precision);
        matmul_forward(proj, atty, w.attn_out_w + l * C * C, w.attn_out_b + l * C, (int)N, (int)C, (int)C, matmul_precision);
        dropout_forward(a.scratch, proj, N * C, p_hidden, site_seed(seed, l, kAttentionOutput));
        add_forward(res1, x, a.scratch, N * C);
        layernorm_forward(ln1, a.ln1_mean + l * N, a.ln1_rstd + l * N, res1, w.ln1_w + l * C, w.ln1_b + l * C, (int)N, (int)C,
                          c.layer_norm_eps);
        // feed-forward block
        matmul_forward(ffn_h, ln1, w.ffn_in_w + l * F * C, w.ffn_in_b + l * F, (int)N, (int)C, (int)F, matmul_precision);
        gelu_forward(ffn_g, ffn_h, N * F, /*slope=*/ffn_h);
        matmul_forward(ffn_out, ffn_g, w.ffn_out_w + l * C * F, w.ffn_out_b + l * C, (int)N, (int)F, (int)C, matmul_precision);
        dropout_forward(a.scratch, ffn_out, N * C, p_hidden, site_seed(seed, l, kFfnOutput));
        add_forward(res2, ln1, a.scratch, N * C);
        layernorm_forward(ln2, a.ln2_mean + l * N, a.ln2_rstd + l * N, res2, w.ln2_w + l * C, w.ln2_b + l * C, (int)N, (int)C,
                          c.layer_norm_eps);
        x = ln2;
    }
}

// The encoder's backward: a.d_x holds d loss / d (last layer's output) on entry; parameter
// gradients are added into g.
void BertModel::encoder_backward(Activations& a) {
    const BertConfig& c = config;
    const int64_t N = (int64_t)B_ * T_, C = c.hidden, F = c.ffn, NH = c.num_heads;
    const int32_t *ids = saved_ints_.data(), *types = ids + N, *lengths = types + N;
    const float p_hidden = train_ ? c.hidden_dropout : 0.0f, p_attn = train_ ? c.attention_dropout : 0.0f;
    const uint64_t seed = dropout_seed_;

    // Encoder layers, last to first. d_x holds d loss / d (layer output); d_x_next receives
    // d loss / d (layer input).
    for (int l = c.num_layers - 1; l >= 0; l--) {
        const float* x = l == 0 ? a.x0 : a.ln2 + (l - 1) * N * C;
        const float *qkv = a.qkv + l * N * 3 * C, *att = a.att + l * B_ * NH * T_ * T_, *atty = a.atty + l * N * C;
        const float *res1 = a.res1 + l * N * C, *ln1 = a.ln1 + l * N * C;
        const float *ffn_h = a.ffn_h + l * N * F, *ffn_g = a.ffn_g + l * N * F, *res2 = a.res2 + l * N * C;
        for (float* p : {a.d_res, a.d_ln1, a.d_tmp, a.d_proj, a.d_atty, a.d_x_next}) zero(p, N * C);
        zero(a.d_qkv, N * 3 * C);
        zero(a.d_ffn_g, N * F);
        zero(a.d_ffn_h, N * F);
        // x = LayerNorm(res2), res2 = ln1 + dropout(ffn_out)
        layernorm_backward(a.d_res, g.ln2_w + l * C, g.ln2_b + l * C, a.d_x, res2, w.ln2_w + l * C, a.ln2_mean + l * N,
                           a.ln2_rstd + l * N, (int)N, (int)C);
        add_backward(a.d_ln1, a.d_tmp, a.d_res, N * C);
        dropout_backward(a.d_proj, a.d_tmp, N * C, p_hidden, site_seed(seed, l, kFfnOutput));  // d ffn_out
        matmul_backward(a.d_ffn_g, g.ffn_out_w + l * C * F, g.ffn_out_b + l * C, a.d_proj, ffn_g, w.ffn_out_w + l * C * F, (int)N,
                        (int)F, (int)C, matmul_precision);
        gelu_backward_from_slope(a.d_ffn_h, /*slope=*/ffn_h, a.d_ffn_g, N * F);
        matmul_backward(a.d_ln1, g.ffn_in_w + l * F * C, g.ffn_in_b + l * F, a.d_ffn_h, ln1, w.ffn_in_w + l * F * C, (int)N, (int)C,
                        (int)F, matmul_precision);
        // ln1 = LayerNorm(res1), res1 = x + dropout(attn_proj)
        zero(a.d_res, N * C);
        zero(a.d_tmp, N * C);
        zero(a.d_proj, N * C);
        layernorm_backward(a.d_res, g.ln1_w + l * C, g.ln1_b + l * C, a.d_ln1, res1, w.ln1_w + l * C, a.ln1_mean + l * N,
                           a.ln1_rstd + l * N, (int)N, (int)C);
        add_backward(a.d_x_next, a.d_tmp, a.d_res, N * C);
        dropout_backward(a.d_proj, a.d_tmp, N * C, p_hidden, site_seed(seed, l, kAttentionOutput));
        matmul_backward(a.d_atty, g.attn_out_w + l * C * C, g.attn_out_b + l * C, a.d_proj, atty, w.attn_out_w + l * C * C, (int)N,
                        (int)C, (int)C, matmul_precision);
        attention_backward(a.d_qkv, a.d_att, a.d_atty, qkv, att, lengths, B_, T_, (int)C, (int)NH, p_attn,
                           site_seed(seed, l, kAttentionProbs), matmul_precision);
        matmul_backward(a.d_x_next, g.qkv_w + l * 3 * C * C, g.qkv_b + l * 3 * C, a.d_qkv, x, w.qkv_w + l * 3 * C * C, (int)N,
                        (int)C, (int)(3 * C), matmul_precision);
        std::swap(a.d_x, a.d_x_next);
    }

    // Embeddings: x0 = dropout(LayerNorm(emb_sum)).
    zero(a.d_tmp, N * C);
    zero(a.d_res, N * C);
    dropout_backward(a.d_tmp, a.d_x, N * C, p_hidden, site_seed(seed, 0, kEmbeddings));
    layernorm_backward(a.d_res, g.emb_ln_w, g.emb_ln_b, a.d_tmp, a.emb_sum, w.emb_ln_w, a.emb_mean, a.emb_rstd, (int)N, (int)C);
    embedding_backward(g.wte, g.wpe, g.wtt, a.d_res, ids, types, B_, T_, (int)C);
}

// ---------------------------------------------------------------------------------------------
// The MLM head

MlmResult BertModel::forward_mlm(const MlmInputs& in, bool train, uint64_t dropout_seed) {
    const BertConfig& c = config;
    if (c.num_labels != 0) throw Error("internal: forward_mlm on a model with a classifier head");
    const int64_t N = (int64_t)in.B * in.T, C = c.hidden, V = c.vocab_size;
    for (int m = 0; m < in.M; m++)
        if (in.masked_positions[m] < 0 || in.masked_positions[m] >= N || in.masked_targets[m] < 0 || in.masked_targets[m] >= V)
            throw Error("batch: masked position " + std::to_string(m) + " is outside the batch or its target outside the vocabulary");
    if (in.teacher_ids) {  // MLM-logit distillation
        if (!in.teacher_values || in.teacher_k < 1 || in.teacher_k > V)
            throw Error("batch: teacher top-k ids need their values and a k in 1.." + std::to_string(V) + " (k is " +
                        std::to_string(in.teacher_k) + ")");
        if (!(in.temperature > 0.0f)) throw Error("batch: the distillation temperature must be positive, not " + std::to_string(in.temperature));
        for (int64_t i = 0; i < (int64_t)in.M * in.teacher_k; i++)
            if (in.teacher_ids[i] < 0 || in.teacher_ids[i] >= V)
                throw Error("batch: teacher top-k id " + std::to_string(in.teacher_ids[i]) + " of masked position " +
                            std::to_string(i / in.teacher_k) + " is outside the vocabulary");
    }
    const Activations a = start_batch(in.B, in.T, in.M, in.input_ids, in.token_types, in.lengths, in.masked_positions,
                                      in.masked_targets, train, dropout_seed);
    teacher_k_ = in.teacher_ids ? in.teacher_k : 0;
    if (teacher_k_ > 0) {
        saved_teacher_ids_.assign(in.teacher_ids, in.teacher_ids + (int64_t)in.M * teacher_k_);
        saved_teacher_.assign(in.teacher_values, in.teacher_values + (int64_t)in.M * teacher_k_);
    } else {
        saved_teacher_ids_.clear();
        saved_teacher_.clear();
    }
    temperature_ = in.temperature;
    label_weight_ = teacher_k_ > 0 ? in.label_weight : 1.0f;
    grad_scale_ = in.grad_scale;
    encoder_forward(a);

    // MLM head on the masked positions only.
    MlmResult result;
    if (M_ == 0) return result;
    const int32_t *positions = saved_ints_.data() + 2 * N + B_, *targets = positions + M_;
    const float* x = a.ln2 + (int64_t)(c.num_layers - 1) * N * C;
    for (int m = 0; m < M_; m++) std::memcpy(a.gathered + m * C, x + (int64_t)positions[m] * C, sizeof(float) * C);
    matmul_forward(a.head_h, a.gathered, w.head_w, w.head_b, M_, (int)C, (int)C, matmul_precision);
    gelu_forward(a.head_g, a.head_h, (int64_t)M_ * C);
    layernorm_forward(a.head_ln, a.head_mean, a.head_rstd, a.head_g, w.head_ln_w, w.head_ln_b, M_, (int)C, c.layer_norm_eps);
    matmul_forward(a.logits, a.head_ln, w.wte, w.mlm_bias, M_, (int)C, (int)V, matmul_precision);  // decoder tied to the word embeddings
    mlm_softmax_.resize(M_);
    // Training: the hard loss's gradient is made here, with the loss (each exp once); backward_mlm
    // then starts from it.
    dlogits_ready_ = train_ && label_weight_ != 0.0f;
    if (dlogits_ready_)
        cross_entropy_forward_backward(a.losses, a.d_logits, a.logits, targets, M_, (int)V, grad_scale_ * label_weight_ / M_,
                                       mlm_softmax_.data());
    else
        cross_entropy_forward(a.losses, a.logits, targets, M_, (int)V, mlm_softmax_.data());
    double loss = 0;
    for (int m = 0; m < M_; m++) loss += a.losses[m];
    // The argmax of each row: the first logit equal to the row's max (which the softmax stats hold).
    int correct = 0;
#pragma omp parallel for schedule(static) reduction(+ : correct)
    for (int m = 0; m < M_; m++) {
        const float* row = a.logits + (int64_t)m * V;
        correct += (int)(std::find(row, row + V, mlm_softmax_[m].max) - row) == targets[m];
    }
    result.correct = correct;
    result.hard_loss = result.loss = (float)(loss / M_);
    if (teacher_k_ > 0) {
        const int k = teacher_k_;
        std::vector<float> losses(M_);
        soft_topk_cross_entropy_forward(losses.data(), a.logits, saved_teacher_ids_.data(), saved_teacher_.data(), M_, (int)V, k,
                                        temperature_);
        double soft = 0.0;
        for (float l : losses) soft += l;
        result.soft_loss = (float)(soft / M_);
        // The teacher's top-1: its largest value (the first of equal ones); the student's: its argmax.
        const std::vector<int> student = argmax_rows(a.logits, M_, (int)V), top = argmax_rows(saved_teacher_.data(), M_, k);
        for (int m = 0; m < M_; m++) result.agree += student[m] == saved_teacher_ids_[(int64_t)m * k + top[m]];
        result.loss = result.soft_loss + label_weight_ * result.hard_loss;
    }
    return result;
}

void BertModel::backward_mlm() {
    const BertConfig& c = config;
    const int64_t N = (int64_t)B_ * T_, C = c.hidden, V = c.vocab_size;
    const int32_t *positions = saved_ints_.data() + 2 * N + B_, *targets = positions + M_;
    Activations a = views();

    // MLM head: d loss / d logits = (softmax - onehot) / M (times label_weight, plus tau (q - p) / M
    // with a teacher), then back through decoder, LN, GELU, dense.
    zero(a.d_x, N * C);
    if (M_ > 0) {
        for (float* p : {a.d_head_ln, a.d_head_g, a.d_head_h, a.d_gathered}) zero(p, (int64_t)M_ * C);
        if (!dlogits_ready_) {  // else forward_mlm made the hard loss's gradient already
            zero(a.d_logits, (int64_t)M_ * V);
            if (label_weight_ != 0.0f)
                cross_entropy_backward(a.d_logits, a.logits, targets, M_, (int)V, grad_scale_ * label_weight_ / M_, mlm_softmax_.data());
        }
        if (teacher_k_ > 0)
            soft_topk_cross_entropy_backward(a.d_logits, a.logits, saved_teacher_ids_.data(), saved_teacher_.data(), M_, (int)V,
                                             teacher_k_, temperature_, grad_scale_ / M_);
        matmul_backward(a.d_head_ln, g.wte, g.mlm_bias, a.d_logits, a.head_ln, w.wte, M_, (int)C, (int)V, matmul_precision);
        layernorm_backward(a.d_head_g, g.head_ln_w, g.head_ln_b, a.d_head_ln, a.head_g, w.head_ln_w, a.head_mean, a.head_rstd, M_, (int)C);
        gelu_backward(a.d_head_h, a.head_h, a.d_head_g, (int64_t)M_ * C);
        matmul_backward(a.d_gathered, g.head_w, g.head_b, a.d_head_h, a.gathered, w.head_w, M_, (int)C, (int)C, matmul_precision);
        for (int m = 0; m < M_; m++) {  // scatter back to the positions (distinct, so no two rows collide)
            float* dst = a.d_x + (int64_t)positions[m] * C;
            const float* src = a.d_gathered + (int64_t)m * C;
            for (int64_t i = 0; i < C; i++) dst[i] += src[i];
        }
    }
    encoder_backward(a);
}

// ---------------------------------------------------------------------------------------------
// The classifier head: pooler on [CLS], dropout, linear; cross-entropy or squared error.

void check_cls_inputs(const ClsInputs& in, int K) {
    if (K < 1) throw Error("internal: forward_classify on a model with the MLM head");
    for (int b = 0; in.labels && b < in.B; b++)
        if (in.labels[b] != kIgnoreIndex && (in.labels[b] < 0 || in.labels[b] >= K))
            throw Error("batch: label " + std::to_string(in.labels[b]) + " of row " + std::to_string(b) + " is outside the model's " +
                        std::to_string(K) + " classes");
    if ((K == 1 && in.labels) || (K > 1 && in.values))
        throw Error(K == 1 ? "batch: a regression model (1 output) was given class labels, not target values"
                           : "batch: a classifier of " + std::to_string(K) + " classes was given regression targets, not labels");
    if (in.teacher_logits && !(in.temperature > 0.0f))
        throw Error("batch: the distillation temperature must be positive, not " + std::to_string(in.temperature));
}

ClsResult BertModel::forward_classify(const ClsInputs& in, bool train, uint64_t dropout_seed) {
    const BertConfig& c = config;
    const int K = c.num_labels;
    check_cls_inputs(in, K);
    // The labels ride along as the "targets" of start_batch (M = 0: no masked positions).
    Activations a = start_batch(in.B, in.T, 0, in.input_ids, in.token_types, in.lengths, nullptr, nullptr, train, dropout_seed);
    has_labels_ = in.labels != nullptr || in.values != nullptr;
    if (in.labels) saved_ints_.insert(saved_ints_.end(), in.labels, in.labels + in.B);
    if (in.values) saved_values_.assign(in.values, in.values + in.B);
    else saved_values_.clear();
    if (in.teacher_logits) saved_teacher_.assign(in.teacher_logits, in.teacher_logits + (int64_t)in.B * K);
    else saved_teacher_.clear();
    temperature_ = in.temperature;
    label_weight_ = in.teacher_logits ? in.label_weight : 1.0f;
    grad_scale_ = in.grad_scale;
    encoder_forward(a);

    const int64_t N = (int64_t)B_ * T_, C = c.hidden;
    const float* x = a.ln2 + (int64_t)(c.num_layers - 1) * N * C;
    for (int b = 0; b < B_; b++) std::memcpy(a.cls_x + b * C, x + (int64_t)b * T_ * C, sizeof(float) * C);  // position 0: [CLS]
    matmul_forward(a.pool_h, a.cls_x, w.pool_w, w.pool_b, B_, (int)C, (int)C, matmul_precision);
    tanh_forward(a.pooled, a.pool_h, (int64_t)B_ * C);
    dropout_forward(a.pool_drop, a.pooled, (int64_t)B_ * C, train_ ? c.hidden_dropout : 0.0f, site_seed(dropout_seed_, 0, kClassifier));
    matmul_forward(a.cls_logits, a.pool_drop, w.cls_w, w.cls_b, B_, (int)C, K, matmul_precision);

    ClsResult result;
    if (K == 1 && in.values) {  // regression
        result.counted = B_;
        result.hard_loss = mse_forward(a.cls_losses, a.cls_logits, saved_values_.data(), B_);
    } else if (K > 1 && in.labels) {
        const int32_t* labels = saved_ints_.data() + 2 * N + B_;
        cross_entropy_forward(a.cls_losses, a.cls_logits, labels, B_, K);
        result.counted = cross_entropy_count(labels, B_);
        result.hard_loss = cross_entropy_mean(a.cls_losses, labels, B_);
        for (int b = 0; b < B_; b++) {
            const float* row = a.cls_logits + (int64_t)b * K;
            result.correct += labels[b] != kIgnoreIndex && (int)(std::max_element(row, row + K) - row) == labels[b];
        }
    }
    if (in.teacher_logits) {
        std::vector<float> losses(B_);
        if (K == 1) {
            result.soft_loss = mse_forward(losses.data(), a.cls_logits, saved_teacher_.data(), B_);
        } else {
            soft_cross_entropy_forward(losses.data(), a.cls_logits, saved_teacher_.data(), B_, K, temperature_);
            double sum = 0.0;
            for (float l : losses) sum += l;
            result.soft_loss = B_ > 0 ? (float)(sum / B_) : 0.0f;
            const std::vector<int> student = argmax_rows(a.cls_logits, B_, K), teacher = argmax_rows(saved_teacher_.data(), B_, K);
            for (int b = 0; b < B_; b++) result.agree += student[b] == teacher[b];
        }
    }
    result.loss = in.teacher_logits ? result.soft_loss + label_weight_ * result.hard_loss : result.hard_loss;
    return result;
}

void BertModel::backward_classify() {
    const BertConfig& c = config;
    const int K = c.num_labels;
    const int64_t N = (int64_t)B_ * T_, C = c.hidden;
    const bool distill = !saved_teacher_.empty();
    if (!has_labels_ && !distill) throw Error("internal: backward_classify after a forward without labels or teacher logits");
    Activations a = views();
    zero(a.d_cls_logits, (int64_t)B_ * K);
    if (has_labels_ && label_weight_ != 0.0f) {  // the hard loss, weighted
        if (K == 1) {
            std::vector<float> d((size_t)B_, 0.0f);
            mse_backward(d.data(), a.cls_logits, saved_values_.data(), B_);
            for (int b = 0; b < B_; b++) a.d_cls_logits[b] += grad_scale_ * label_weight_ * d[b];
        } else {
            const int32_t* labels = saved_ints_.data() + 2 * N + B_;
            const int counted = cross_entropy_count(labels, B_);
            if (counted > 0) cross_entropy_backward(a.d_cls_logits, a.cls_logits, labels, B_, K, grad_scale_ * label_weight_ / counted);
        }
    }
    if (distill) {  // the soft loss, a mean over all rows
        if (K == 1) {
            std::vector<float> d((size_t)B_, 0.0f);
            mse_backward(d.data(), a.cls_logits, saved_teacher_.data(), B_);
            for (int b = 0; b < B_; b++) a.d_cls_logits[b] += grad_scale_ * d[b];
        } else {
            soft_cross_entropy_backward(a.d_cls_logits, a.cls_logits, saved_teacher_.data(), B_, K, temperature_, grad_scale_ / B_);
        }
    }
    for (float* p : {a.d_pool_drop, a.d_pooled, a.d_pool_h, a.d_cls_x}) zero(p, (int64_t)B_ * C);
    matmul_backward(a.d_pool_drop, g.cls_w, g.cls_b, a.d_cls_logits, a.pool_drop, w.cls_w, B_, (int)C, K, matmul_precision);
    dropout_backward(a.d_pooled, a.d_pool_drop, (int64_t)B_ * C, train_ ? c.hidden_dropout : 0.0f, site_seed(dropout_seed_, 0, kClassifier));
    tanh_backward(a.d_pool_h, a.pooled, a.d_pooled, (int64_t)B_ * C);
    matmul_backward(a.d_cls_x, g.pool_w, g.pool_b, a.d_pool_h, a.cls_x, w.pool_w, B_, (int)C, (int)C, matmul_precision);
    zero(a.d_x, N * C);
    for (int b = 0; b < B_; b++) std::memcpy(a.d_x + (int64_t)b * T_ * C, a.d_cls_x + b * C, sizeof(float) * C);
    encoder_backward(a);
}

}  // namespace wr
