// model/bert_cuda.cu: BERT forward and backward on the GPU (interface and what differs from the
// CPU model in model/bert_cuda.cuh). The sequence of ops is model/bert.cpp's, step for step, so
// the two files read side by side; the math of each step is in model/bert.h.
#include "model/bert_cuda.cuh"

#include <nvtx3/nvToolsExt.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>

#include "common/random.h"
#include "common/util.h"
#include "kernels/activations.cuh"
#include "kernels/attention.cuh"
#include "kernels/cross_entropy.cuh"
#include "kernels/cross_entropy.h"  // kIgnoreIndex, cross_entropy_count
#include "kernels/dropout.cuh"
#include "kernels/embedding.cuh"
#include "kernels/layernorm.cuh"
#include "kernels/matmul.cuh"
#include "kernels/optimizer.cuh"

namespace wr::cuda {

Precision parse_precision(const std::string& name, const std::string& where) {
    if (name == "fp32") return Precision::fp32;
    if (name == "bf16") return Precision::bf16;
    throw Error(where + ": precision '" + name + "' is not one of: bf16, fp32");
}

const char* precision_name(Precision p) { return p == Precision::fp32 ? "fp32" : "bf16"; }

namespace {

// A named range for Nsight Systems, closed at the end of the scope.
struct NvtxRange {
    explicit NvtxRange(const char* name) { nvtxRangePushA(name); }
    NvtxRange(const char* name, int layer) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%s %d", name, layer);
        nvtxRangePushA(buf);
    }
    ~NvtxRange() { nvtxRangePop(); }
};

// Carves typed arrays out of one device allocation (256-byte aligned): a sizing pass with a null
// base, then a pointer pass.
class Carver {
  public:
    explicit Carver(char* base) : base_(base) {}
    template <typename X>
    void take(X*& ptr, int64_t n) {
        used_ = (used_ + 255) / 256 * 256;
        ptr = base_ ? reinterpret_cast<X*>(base_ + used_) : nullptr;
        used_ += sizeof(X) * (size_t)n;
    }
    size_t used() const { return used_; }

  private:
    char* base_;
    size_t used_ = 0;
};

// The activation arrays, typed by the precision. Per-layer arrays hold L slices.
template <typename T>
struct Activations {
    // forward, kept for backward
    T *emb_sum, *emb_ln, *x0;                                  // [N,C] x3
    float *emb_mean, *emb_rstd;                                // [N] x2
    T *qkv, *atty, *res1, *ln1, *ffn_h, *ffn_g, *res2, *ln2;   // per layer: [N,3C] [N,C] [N,C] [N,C] [N,F] [N,F] [N,C] [N,C]
    float *lse, *ln1_mean, *ln1_rstd, *ln2_mean, *ln2_rstd;    // per layer: [B,NH,T] [N] x4
    T* proj;                                                   // [N,C] a dense output before its residual LayerNorm
    T *gathered, *head_h, *head_g, *head_ln, *logits;          // [M,C] x4, [M,V]
    float *head_mean, *head_rstd, *losses;                     // [M] x3
    int* correct;                                              // [M]
    float* sums;                                               // [4] the batch's sums the host reads (batch_sums_kernel)
    T *cls_x, *pool_h, *pooled, *pool_drop, *cls_logits;       // classifier: [B,C] x4, [B,K]
    float *cls_losses, *cls_soft_losses;                       // [B] x2 hard and soft loss per row
    int *cls_correct, *cls_agree;                              // [B] x2 argmax == label, argmax == the teacher's
    // backward scratch, reused layer after layer
    T *d_x, *d_x_next, *d_ln1, *d_proj, *d_atty, *d_emb;       // [N,C] x6
    T *d_qkv, *d_ffn_g, *d_ffn_h;                              // [N,3C] [N,F] [N,F]
    T *d_gathered, *d_head_h, *d_head_g, *d_head_ln;           // [M,C] x4
    T *d_cls_x, *d_pool_h, *d_pooled, *d_pool_drop, *d_cls_logits;  // [B,C] x4, [B,K]
};

// The MLM head's arrays have M rows (the decoder's logits exist only with the MLM head); the
// classifier's exist only with num_labels = K >= 1.
template <typename T>
void carve(Activations<T>& a, Carver& f, const BertConfig& c, int64_t B, int64_t T_, int64_t M) {
    const int64_t N = B * T_, C = c.hidden, F = c.ffn, L = c.num_layers, K = c.num_labels, V = K == 0 ? c.vocab_size : 0;
    for (T** p : {&a.emb_sum, &a.emb_ln, &a.x0, &a.proj}) f.take(*p, N * C);
    for (float** p : {&a.emb_mean, &a.emb_rstd}) f.take(*p, N);
    f.take(a.qkv, L * N * 3 * C);
    for (T** p : {&a.atty, &a.res1, &a.ln1, &a.res2, &a.ln2}) f.take(*p, L * N * C);
    for (T** p : {&a.ffn_h, &a.ffn_g}) f.take(*p, L * N * F);
    f.take(a.lse, L * B * c.num_heads * T_);
    for (float** p : {&a.ln1_mean, &a.ln1_rstd, &a.ln2_mean, &a.ln2_rstd}) f.take(*p, L * N);
    for (T** p : {&a.gathered, &a.head_h, &a.head_g, &a.head_ln}) f.take(*p, M * C);
    f.take(a.logits, M * V);
    for (float** p : {&a.head_mean, &a.head_rstd, &a.losses}) f.take(*p, M);
    f.take(a.correct, M);
    f.take(a.sums, 4);
    for (T** p : {&a.cls_x, &a.pool_h, &a.pooled, &a.pool_drop}) f.take(*p, K ? B * C : 0);
    f.take(a.cls_logits, B * K);
    for (float** p : {&a.cls_losses, &a.cls_soft_losses}) f.take(*p, K ? B : 0);
    for (int** p : {&a.cls_correct, &a.cls_agree}) f.take(*p, K ? B : 0);
    for (T** p : {&a.d_x, &a.d_x_next, &a.d_ln1, &a.d_proj, &a.d_atty, &a.d_emb}) f.take(*p, N * C);
    f.take(a.d_qkv, N * 3 * C);
    for (T** p : {&a.d_ffn_g, &a.d_ffn_h}) f.take(*p, N * F);
    for (T** p : {&a.d_gathered, &a.d_head_h, &a.d_head_g, &a.d_head_ln}) f.take(*p, M * C);
    for (T** p : {&a.d_cls_x, &a.d_pool_h, &a.d_pooled, &a.d_pool_drop}) f.take(*p, K ? B * C : 0);
    f.take(a.d_cls_logits, B * K);
}

// A different dropout stream for every place dropout is applied, as model/bert.cpp.
uint64_t site_seed(uint64_t seed, int layer, int site) {
    return splitmix64_mix(seed + kGoldenGamma * (uint64_t)(layer * 8 + site + 1));
}
enum DropoutSite { kEmbeddings = 0, kAttentionProbs = 1, kAttentionOutput = 2, kFfnOutput = 3, kClassifier = 4 };

template <typename T>
void zero(T* p, int64_t n) {
    WR_CUDA_CHECK(cudaMemsetAsync(p, 0, sizeof(T) * (size_t)n, stream()));
}
template <typename T>
void zero(std::initializer_list<T*> arrays, int64_t n) {
    for (T* p : arrays) zero(p, n);
}

// The sums over the rows m < M the host reads after a forward, added by one block in a fixed order
// (deterministic), so the host reads a few floats per batch:
//   sums[0] = sum of losses[m]   sums[1] = sum of counts[m]   (MLM: loss and correct rows)
//   sums[2] = sum of losses2[m]  sums[3] = sum of counts2[m]  (classifier: soft loss and agreeing rows)
// A null array sums to 0. Counts are exact in float up to 2^24 rows.
__global__ void batch_sums_kernel(float* sums, const float* losses, const int* counts, const float* losses2, const int* counts2,
                                  int M) {
    __shared__ float shared[32];
    float loss = 0.0f, count = 0.0f, loss2 = 0.0f, count2 = 0.0f;
    for (int m = threadIdx.x; m < M; m += blockDim.x) {
        if (losses) loss += losses[m];
        if (counts) count += (float)counts[m];
        if (losses2) loss2 += losses2[m];
        if (counts2) count2 += (float)counts2[m];
    }
    loss = block_sum(loss, shared);
    count = block_sum(count, shared);
    loss2 = block_sum(loss2, shared);
    count2 = block_sum(count2, shared);
    if (threadIdx.x == 0) sums[0] = loss, sums[1] = count, sums[2] = loss2, sums[3] = count2;
}

// x[i] /= divisor
__global__ void divide_kernel(float* x, int64_t n, float divisor) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) x[i] /= divisor;
}

}  // namespace

struct BertModelCuda::State {
    DeviceArray<float> params, grads, m, v;  // fp32 master weights, gradients, AdamW moments
    DeviceArray<bf16> params_bf16;           // the bf16 copy the bf16 forward/backward read
    DeviceArray<float> norm;                 // [1] the last step's gradient norm, kept on the device
    DeviceArray<char> acts;                  // every activation array, carved by carve()
    // The batch's integers: ids [N], types [N], lengths [B], then the head's rows and targets:
    // MLM: positions [M], targets [M]; classifier: the [CLS] rows b*T [B], labels [B] (-100: none).
    DeviceArray<int> ints;
    std::vector<int> host_ints;
    DeviceArray<float> floats;               // classifier: regression targets [B], teacher logits [B,K]
    std::vector<float> host_floats;
    int B = 0, T = 0, M = 0, capacity_B = 0, capacity_T = 0, capacity_M = 0;
    bool train = false;
    enum class Head { none, mlm, classifier } last = Head::none;  // the head of the last forward
    uint64_t dropout_seed = 0;
    // The last classifier batch, as the host knows it.
    bool has_labels = false, has_values = false, has_teacher = false;
    int counted = 0;  // labeled rows (regression: all B)
    float temperature = 1.0f, label_weight = 1.0f;

    template <typename X>
    BertWeightsOf<X> weights(const ParamLayout& layout);
    void refresh_copy(Precision p) {
        if (p == Precision::bf16) convert(params_bf16.data(), params.data(), params.size());
    }
};

template <>
BertWeightsOf<float> BertModelCuda::State::weights<float>(const ParamLayout& layout) {
    return BertWeightsOf<float>::view(layout, params.data());
}
template <>
BertWeightsOf<bf16> BertModelCuda::State::weights<bf16>(const ParamLayout& layout) {
    return BertWeightsOf<bf16>::view(layout, params_bf16.data());
}

BertModelCuda::BertModelCuda(const BertConfig& c, Precision p) : config(c), layout(c), precision(p), s_(new State) {
    config.validate("model config");
    if (!device_available()) throw Error("--device cuda: " + device_unavailable_reason());
    const int64_t n = layout.total();
    for (DeviceArray<float>* a : {&s_->params, &s_->grads, &s_->m, &s_->v}) a->resize(n), a->zero();
    if (p == Precision::bf16) s_->params_bf16.resize(n);
    s_->norm.resize(1);
}

BertModelCuda::~BertModelCuda() = default;

void BertModelCuda::set_params(const float* host) {
    s_->params.upload(host, layout.total());
    s_->refresh_copy(precision);
}
void BertModelCuda::get_params(float* host) const { s_->params.download(host, layout.total()); }
void BertModelCuda::get_grads(float* host) const { s_->grads.download(host, layout.total()); }
void BertModelCuda::set_moments(const float* m, const float* v) {
    s_->m.upload(m, layout.total());
    s_->v.upload(v, layout.total());
}
void BertModelCuda::get_moments(float* m, float* v) const {
    s_->m.download(m, layout.total());
    s_->v.download(v, layout.total());
}

void BertModelCuda::zero_grads() { s_->grads.zero(); }

void BertModelCuda::average_grads(int micro_batches) {
    const int64_t n = layout.total();
    divide_kernel<<<std::min<unsigned>(ceil_div(n, 256), 4096u), 256, 0, stream()>>>(s_->grads.data(), n, (float)micro_batches);
    WR_CUDA_CHECK_LAUNCH();
}

Optimizer::StepInfo BertModelCuda::optimizer_step(const Optimizer& optimizer) {
    NvtxRange range("optimizer");
    const int64_t n = layout.total();
    const AdamWConfig adamw = optimizer.adamw_config();
    global_grad_norm(s_->norm.data(), s_->grads.data(), n);
    if (optimizer.clip() > 0) clip_grad_norm(s_->grads.data(), n, s_->norm.data(), optimizer.clip());
    adamw_update(s_->params.data(), s_->grads.data(), s_->m.data(), s_->v.data(), n, optimizer.decay_ranges(), adamw,
                 optimizer.steps_done + 1, s_->norm.data());
    s_->refresh_copy(precision);
    float norm = 0;
    s_->norm.download(&norm, 1);
    Optimizer::StepInfo info;
    info.lr = adamw.lr;
    info.grad_norm = norm;
    info.skipped = !std::isfinite(norm);
    return info;
}

namespace {

template <typename T>
Activations<T> view(BertModelCuda::State& s, const BertConfig& c) {
    Activations<T> a;
    Carver f(s.acts.data());
    carve(a, f, c, s.B, s.T, std::max(s.M, 1));
    return a;
}

// ---- forward ----

// Embeddings and encoder layers: from the batch's ids to the last layer's output (returned).
template <typename T>
const T* encoder_forward(BertModelCuda::State& s, const BertConfig& c, const BertWeightsOf<T>& w, const Activations<T>& a) {
    const int B = s.B, T_ = s.T, C = c.hidden, F = c.ffn, NH = c.num_heads;
    const int64_t N = (int64_t)B * T_;
    const int *ids = s.ints.data(), *types = ids + N, *lengths = types + N;
    const float p_hidden = s.train ? c.hidden_dropout : 0.0f, p_attn = s.train ? c.attention_dropout : 0.0f;
    const uint64_t seed = s.dropout_seed;

    {  // Embeddings: x0 = dropout(LayerNorm(wte[ids] + wpe[t] + wtt[types]))
        NvtxRange range("embeddings");
        embedding_forward(a.emb_sum, ids, types, w.wte, w.wpe, w.wtt, B, T_, C);
        layernorm_forward(a.emb_ln, a.emb_mean, a.emb_rstd, a.emb_sum, w.emb_ln_w, w.emb_ln_b, (int)N, C, c.layer_norm_eps);
        dropout_forward(a.x0, a.emb_ln, N * C, p_hidden, site_seed(seed, 0, kEmbeddings));
    }
    const T* x = a.x0;
    for (int l = 0; l < c.num_layers; l++) {
        T *qkv = a.qkv + l * N * 3 * C, *atty = a.atty + l * N * C, *res1 = a.res1 + l * N * C, *ln1 = a.ln1 + l * N * C;
        T *ffn_h = a.ffn_h + l * N * F, *ffn_g = a.ffn_g + l * N * F, *res2 = a.res2 + l * N * C, *ln2 = a.ln2 + l * N * C;
        {  // self-attention block: ln1 = LayerNorm(x + dropout(attention(x) W_o^T + b_o))
            NvtxRange range("attention", l);
            matmul_forward(qkv, x, w.qkv_w + l * 3 * C * C, w.qkv_b + l * 3 * C, (int)N, C, 3 * C);
            attention_forward(atty, a.lse + (int64_t)l * B * NH * T_, qkv, lengths, B, T_, C, NH, p_attn,
                              site_seed(seed, l, kAttentionProbs));
            matmul_forward(a.proj, atty, w.attn_out_w + l * C * C, w.attn_out_b + l * C, (int)N, C, C);
            residual_layernorm_forward(res1, ln1, a.ln1_mean + l * N, a.ln1_rstd + l * N, x, a.proj, w.ln1_w + l * C,
                                       w.ln1_b + l * C, (int)N, C, c.layer_norm_eps, p_hidden, site_seed(seed, l, kAttentionOutput));
        }
        {  // feed-forward block: ln2 = LayerNorm(ln1 + dropout(GELU(ln1 W_in^T + b_in) W_out^T + b_out))
            NvtxRange range("ffn", l);
            matmul_forward(ffn_h, ln1, w.ffn_in_w + l * F * C, w.ffn_in_b + l * F, (int)N, C, F);
            gelu_forward(ffn_g, ffn_h, N * F);
            matmul_forward(a.proj, ffn_g, w.ffn_out_w + l * C * F, w.ffn_out_b + l * C, (int)N, F, C);
            residual_layernorm_forward(res2, ln2, a.ln2_mean + l * N, a.ln2_rstd + l * N, ln1, a.proj, w.ln2_w + l * C,
                                       w.ln2_b + l * C, (int)N, C, c.layer_norm_eps, p_hidden, site_seed(seed, l, kFfnOutput));
        }
        x = ln2;
    }
    return x;
}

template <typename T>
MlmResult mlm_forward(BertModelCuda::State& s, const BertConfig& c, const ParamLayout& layout) {
    const BertWeightsOf<T> w = s.weights<T>(layout);
    const Activations<T> a = view<T>(s, c);
    const int B = s.B, M = s.M, C = c.hidden, V = c.vocab_size;
    const int64_t N = (int64_t)B * s.T;
    const int *positions = s.ints.data() + 2 * N + B, *targets = positions + M;
    const T* x = encoder_forward(s, c, w, a);

    MlmResult result;
    if (M == 0) return result;
    {  // MLM head on the masked positions only; the loss without storing probabilities
        NvtxRange range("mlm head");
        gather_rows(a.gathered, x, positions, M, C);
        matmul_forward(a.head_h, a.gathered, w.head_w, w.head_b, M, C, C);
        gelu_forward(a.head_g, a.head_h, (int64_t)M * C);
        layernorm_forward(a.head_ln, a.head_mean, a.head_rstd, a.head_g, w.head_ln_w, w.head_ln_b, M, C, c.layer_norm_eps);
        matmul_forward(a.logits, a.head_ln, w.wte, w.mlm_bias, M, C, V);  // decoder tied to the word embeddings
        cross_entropy_forward_backward(a.logits, a.losses, a.correct, targets, M, V, 0.0f, /*backward=*/false);
        batch_sums_kernel<<<1, 1024, 0, stream()>>>(a.sums, a.losses, a.correct, nullptr, nullptr, M);
        WR_CUDA_CHECK_LAUNCH();
    }
    float sums[2];
    WR_CUDA_CHECK(cudaMemcpyAsync(sums, a.sums, sizeof sums, cudaMemcpyDeviceToHost, stream()));
    synchronize();
    result.loss = sums[0] / (float)M;
    result.correct = (int)sums[1];
    return result;
}

// The classifier head: pooled = tanh(x[:, 0] W_pool^T + b_pool); logits = dropout(pooled) W_cls^T + b_cls;
// the hard loss per row (cross-entropy and correct flags, or squared error) and, with teacher
// logits, the soft loss per row (and agreeing flags); then one read-back of their sums.
template <typename T>
ClsResult classify_forward(BertModelCuda::State& s, const BertConfig& c, const ParamLayout& layout) {
    const BertWeightsOf<T> w = s.weights<T>(layout);
    const Activations<T> a = view<T>(s, c);
    const int B = s.B, C = c.hidden, K = c.num_labels;
    const int64_t N = (int64_t)B * s.T;
    const int *rows = s.ints.data() + 2 * N + B, *labels = rows + B;
    const float *values = s.floats.data(), *teacher = values + B;
    const T* x = encoder_forward(s, c, w, a);

    {
        NvtxRange range("classifier head");
        gather_rows(a.cls_x, x, rows, B, C);  // position 0 of every sequence: [CLS]
        matmul_forward(a.pool_h, a.cls_x, w.pool_w, w.pool_b, B, C, C);
        tanh_forward(a.pooled, a.pool_h, (int64_t)B * C);
        dropout_forward(a.pool_drop, a.pooled, (int64_t)B * C, s.train ? c.hidden_dropout : 0.0f,
                        site_seed(s.dropout_seed, 0, kClassifier));
        matmul_forward(a.cls_logits, a.pool_drop, w.cls_w, w.cls_b, B, C, K);
        if (s.has_values) mse_forward(a.cls_losses, a.cls_logits, values, B);  // regression (K = 1)
        else if (s.has_labels) cross_entropy_forward_backward(a.cls_logits, a.cls_losses, a.cls_correct, labels, B, K, 0.0f, false);
        if (s.has_teacher) {
            if (K == 1) mse_forward(a.cls_soft_losses, a.cls_logits, teacher, B);
            else soft_cross_entropy_forward(a.cls_soft_losses, a.cls_logits, teacher, B, K, s.temperature, a.cls_agree);
        }
    }
    ClsResult result;
    const bool hard = s.has_labels || s.has_values;
    if (!hard && !s.has_teacher) return result;  // logits only (prediction): nothing to read back
    batch_sums_kernel<<<1, 1024, 0, stream()>>>(a.sums, hard ? a.cls_losses : nullptr, s.has_labels ? a.cls_correct : nullptr,
                                                s.has_teacher ? a.cls_soft_losses : nullptr,
                                                s.has_teacher && K > 1 ? a.cls_agree : nullptr, B);
    WR_CUDA_CHECK_LAUNCH();
    float sums[4];
    WR_CUDA_CHECK(cudaMemcpyAsync(sums, a.sums, sizeof sums, cudaMemcpyDeviceToHost, stream()));
    synchronize();
    result.counted = s.counted;
    result.hard_loss = s.counted > 0 ? sums[0] / (float)s.counted : 0.0f;  // ignored rows have loss 0
    result.correct = (int)sums[1];
    if (s.has_teacher) {
        result.soft_loss = B > 0 ? sums[2] / (float)B : 0.0f;
        result.agree = (int)sums[3];
    }
    result.loss = s.has_teacher ? result.soft_loss + s.label_weight * result.hard_loss : result.hard_loss;
    return result;
}

// ---- backward ----

// The encoder's backward: a.d_x holds d loss / d (last layer's output) on entry; parameter
// gradients are added into g.
template <typename T>
void encoder_backward(BertModelCuda::State& s, const BertConfig& c, const BertWeightsOf<T>& w, const BertWeightsOf<float>& g,
                      Activations<T>& a) {
    const int B = s.B, T_ = s.T, C = c.hidden, F = c.ffn, NH = c.num_heads;
    const int64_t N = (int64_t)B * T_;
    const int *ids = s.ints.data(), *types = ids + N, *lengths = types + N;
    const float p_hidden = s.train ? c.hidden_dropout : 0.0f, p_attn = s.train ? c.attention_dropout : 0.0f;
    const uint64_t seed = s.dropout_seed;

    // Encoder layers, last to first: d_x holds d loss / d (layer output), d_x_next receives
    // d loss / d (layer input).
    for (int l = c.num_layers - 1; l >= 0; l--) {
        const T* x = l == 0 ? a.x0 : a.ln2 + (l - 1) * N * C;
        const T *qkv = a.qkv + l * N * 3 * C, *atty = a.atty + l * N * C, *res1 = a.res1 + l * N * C, *ln1 = a.ln1 + l * N * C;
        const T *ffn_h = a.ffn_h + l * N * F, *ffn_g = a.ffn_g + l * N * F, *res2 = a.res2 + l * N * C;
        {  // ln2 = LayerNorm(ln1 + dropout(ffn_out)), ffn_out = GELU(ln1 W_in^T + b_in) W_out^T + b_out
            NvtxRange range("ffn backward", l);
            zero({a.d_ln1, a.d_proj}, N * C);
            zero({a.d_ffn_g, a.d_ffn_h}, N * F);
            residual_layernorm_backward(a.d_ln1, a.d_proj, g.ln2_w + l * C, g.ln2_b + l * C, a.d_x, res2, w.ln2_w + l * C,
                                        a.ln2_mean + l * N, a.ln2_rstd + l * N, (int)N, C, p_hidden, site_seed(seed, l, kFfnOutput));
            matmul_backward(a.d_ffn_g, g.ffn_out_w + l * C * F, g.ffn_out_b + l * C, a.d_proj, ffn_g, w.ffn_out_w + l * C * F, (int)N,
                            F, C);
            gelu_backward(a.d_ffn_h, ffn_h, a.d_ffn_g, N * F);
            matmul_backward(a.d_ln1, g.ffn_in_w + l * F * C, g.ffn_in_b + l * F, a.d_ffn_h, ln1, w.ffn_in_w + l * F * C, (int)N, C, F);
        }
        {  // ln1 = LayerNorm(x + dropout(attn_out)), attn_out = attention(x W_qkv^T + b_qkv) W_o^T + b_o
            NvtxRange range("attention backward", l);
            zero({a.d_x_next, a.d_proj, a.d_atty}, N * C);
            zero(a.d_qkv, N * 3 * C);
            residual_layernorm_backward(a.d_x_next, a.d_proj, g.ln1_w + l * C, g.ln1_b + l * C, a.d_ln1, res1, w.ln1_w + l * C,
                                        a.ln1_mean + l * N, a.ln1_rstd + l * N, (int)N, C, p_hidden,
                                        site_seed(seed, l, kAttentionOutput));
            matmul_backward(a.d_atty, g.attn_out_w + l * C * C, g.attn_out_b + l * C, a.d_proj, atty, w.attn_out_w + l * C * C, (int)N,
                            C, C);
            attention_backward(a.d_qkv, a.d_atty, atty, qkv, a.lse + (int64_t)l * B * NH * T_, lengths, B, T_, C, NH, p_attn,
                               site_seed(seed, l, kAttentionProbs));
            matmul_backward(a.d_x_next, g.qkv_w + l * 3 * C * C, g.qkv_b + l * 3 * C, a.d_qkv, x, w.qkv_w + l * 3 * C * C, (int)N, C,
                            3 * C);
        }
        std::swap(a.d_x, a.d_x_next);
    }

    {  // Embeddings: x0 = dropout(LayerNorm(emb_sum)); d_proj and d_atty serve as scratch
        NvtxRange range("embeddings backward");
        zero({a.d_proj, a.d_emb}, N * C);
        dropout_backward(a.d_proj, a.d_x, N * C, p_hidden, site_seed(seed, 0, kEmbeddings));
        layernorm_backward(a.d_emb, g.emb_ln_w, g.emb_ln_b, a.d_proj, a.emb_sum, w.emb_ln_w, a.emb_mean, a.emb_rstd, (int)N, C);
        embedding_backward(g.wte, g.wpe, g.wtt, a.d_emb, ids, types, B, T_, C);
    }
}

template <typename T>
void mlm_backward(BertModelCuda::State& s, const BertConfig& c, const ParamLayout& layout) {
    NvtxRange whole("backward");
    const BertWeightsOf<T> w = s.weights<T>(layout);
    const BertWeightsOf<float> g = BertWeightsOf<float>::view(layout, s.grads.data());
    Activations<T> a = view<T>(s, c);
    const int B = s.B, M = s.M, C = c.hidden, V = c.vocab_size;
    const int64_t N = (int64_t)B * s.T;
    const int *positions = s.ints.data() + 2 * N + B, *targets = positions + M;

    zero(a.d_x, N * C);
    if (M > 0) {  // MLM head: d loss / d logits = (softmax - onehot) / M, written over the logits
        NvtxRange range("mlm head backward");
        zero({a.d_head_ln, a.d_head_g, a.d_head_h, a.d_gathered}, (int64_t)M * C);
        cross_entropy_forward_backward(a.logits, a.losses, nullptr, targets, M, V, 1.0f / M, /*backward=*/true);
        matmul_backward(a.d_head_ln, g.wte, g.mlm_bias, a.logits, a.head_ln, w.wte, M, C, V);
        layernorm_backward(a.d_head_g, g.head_ln_w, g.head_ln_b, a.d_head_ln, a.head_g, w.head_ln_w, a.head_mean, a.head_rstd, M, C);
        gelu_backward(a.d_head_h, a.head_h, a.d_head_g, (int64_t)M * C);
        matmul_backward(a.d_gathered, g.head_w, g.head_b, a.d_head_h, a.gathered, w.head_w, M, C, C);
        gather_rows_backward(a.d_x, a.d_gathered, positions, M, C);
    }
    encoder_backward(s, c, w, g, a);
}

// d loss / d logits of the classifier (the hard loss weighted, plus the soft loss), back through
// the classifier, dropout, tanh and the pooler, scattered to the [CLS] rows of d_x (zero
// elsewhere), then the encoder.
template <typename T>
void classify_backward(BertModelCuda::State& s, const BertConfig& c, const ParamLayout& layout) {
    NvtxRange whole("backward");
    const BertWeightsOf<T> w = s.weights<T>(layout);
    const BertWeightsOf<float> g = BertWeightsOf<float>::view(layout, s.grads.data());
    Activations<T> a = view<T>(s, c);
    const int B = s.B, C = c.hidden, K = c.num_labels;
    const int64_t N = (int64_t)B * s.T, BC = (int64_t)B * C, BK = (int64_t)B * K;
    const int *rows = s.ints.data() + 2 * N + B, *labels = rows + B;
    const float *values = s.floats.data(), *teacher = values + B;
    const float p_hidden = s.train ? c.hidden_dropout : 0.0f;
    {
        NvtxRange range("classifier head backward");
        // The hard loss, weighted (label_weight; 1 without a teacher), into d_cls_logits.
        if ((s.has_labels || s.has_values) && s.label_weight != 0.0f && (K == 1 || s.counted > 0)) {
            if (K == 1) {
                zero(a.d_cls_logits, BK);
                mse_backward(a.d_cls_logits, a.cls_logits, values, B, s.label_weight);
            } else {  // the fused kernel overwrites its logits with their gradient: give it a copy
                WR_CUDA_CHECK(cudaMemcpyAsync(a.d_cls_logits, a.cls_logits, sizeof(T) * (size_t)BK, cudaMemcpyDeviceToDevice, stream()));
                cross_entropy_forward_backward(a.d_cls_logits, a.cls_losses, nullptr, labels, B, K, s.label_weight / (float)s.counted,
                                               /*backward=*/true);
            }
        } else {
            zero(a.d_cls_logits, BK);
        }
        if (s.has_teacher) {  // the soft loss, a mean over all rows, added
            if (K == 1) mse_backward(a.d_cls_logits, a.cls_logits, teacher, B);
            else soft_cross_entropy_backward(a.d_cls_logits, a.cls_logits, teacher, B, K, s.temperature, 1.0f / (float)B);
        }
        zero({a.d_pool_drop, a.d_pooled, a.d_pool_h, a.d_cls_x}, BC);
        matmul_backward(a.d_pool_drop, g.cls_w, g.cls_b, a.d_cls_logits, a.pool_drop, w.cls_w, B, C, K);
        dropout_backward(a.d_pooled, a.d_pool_drop, BC, p_hidden, site_seed(s.dropout_seed, 0, kClassifier));
        tanh_backward(a.d_pool_h, a.pooled, a.d_pooled, BC);
        matmul_backward(a.d_cls_x, g.pool_w, g.pool_b, a.d_pool_h, a.cls_x, w.pool_w, B, C, C);
        zero(a.d_x, N * C);
        gather_rows_backward(a.d_x, a.d_cls_x, rows, B, C);
    }
    encoder_backward(s, c, w, g, a);
}

// What both heads do first: checks the batch's integers as BertModel::start_batch does, makes
// activation memory for the largest batch seen so far, keeps the batch's settings, and stages
// ids, types and lengths in host_ints (the head appends its rows and targets, then upload_growing).
void start_batch(BertModelCuda::State& s, const BertConfig& c, Precision precision, int B, int T, int M, const int32_t* ids,
                 const int32_t* types, const int32_t* lengths, bool train, uint64_t dropout_seed) {
    check_batch_tokens(c, B, T, ids, types, lengths);  // the CPU model's checks
    const int64_t N = (int64_t)B * T;

    if (B > s.capacity_B || T > s.capacity_T || M > s.capacity_M || s.acts.size() == 0) {
        s.capacity_B = std::max(B, s.capacity_B), s.capacity_T = std::max(T, s.capacity_T);
        s.capacity_M = std::max(std::max(M, 1), s.capacity_M);
        Carver sizing(nullptr);
        if (precision == Precision::fp32) {
            Activations<float> a;
            carve(a, sizing, c, s.capacity_B, s.capacity_T, s.capacity_M);
        } else {
            Activations<bf16> a;
            carve(a, sizing, c, s.capacity_B, s.capacity_T, s.capacity_M);
        }
        synchronize();  // the old buffer may still be in use
        s.acts.resize((int64_t)sizing.used());
    }
    s.B = B, s.T = T, s.M = M, s.train = train, s.dropout_seed = dropout_seed;
    // The batch's integers, uploaded at once by upload_ints (the caller's arrays may be reused).
    s.host_ints.assign(ids, ids + N);
    s.host_ints.insert(s.host_ints.end(), types, types + N);
    s.host_ints.insert(s.host_ints.end(), lengths, lengths + B);
}

// host -> device in one copy, into a buffer that only grows (pageable memory: the copy is staged
// before cudaMemcpyAsync returns, so the host vector may change afterwards). Growing frees the old
// buffer, which kernels of the previous batch may still read: wait for them first, as start_batch
// does before it grows the activations.
template <typename X>
void upload_growing(DeviceArray<X>& device, const std::vector<X>& host) {
    if ((int64_t)host.size() > device.size()) {
        synchronize();
        device.resize((int64_t)host.size());
    }
    if (!host.empty())
        WR_CUDA_CHECK(cudaMemcpyAsync(device.data(), host.data(), sizeof(X) * host.size(), cudaMemcpyHostToDevice, stream()));
}

}  // namespace

MlmResult BertModelCuda::forward_mlm(const MlmInputs& in, bool train, uint64_t dropout_seed) {
    const BertConfig& c = config;
    if (c.num_labels != 0) throw Error("internal: forward_mlm on a model with a classifier head");
    const int64_t N = (int64_t)in.B * in.T;
    for (int m = 0; m < in.M; m++)
        if (in.masked_positions[m] < 0 || in.masked_positions[m] >= N || in.masked_targets[m] < 0 ||
            in.masked_targets[m] >= c.vocab_size)
            throw Error("batch: masked position " + std::to_string(m) + " is outside the batch or its target outside the vocabulary");
    State& s = *s_;
    start_batch(s, c, precision, in.B, in.T, in.M, in.input_ids, in.token_types, in.lengths, train, dropout_seed);
    s.host_ints.insert(s.host_ints.end(), in.masked_positions, in.masked_positions + in.M);
    s.host_ints.insert(s.host_ints.end(), in.masked_targets, in.masked_targets + in.M);
    upload_growing(s.ints, s.host_ints);
    s.last = State::Head::mlm;
    return precision == Precision::fp32 ? mlm_forward<float>(s, c, layout) : mlm_forward<bf16>(s, c, layout);
}

void BertModelCuda::backward_mlm() {
    if (s_->last != State::Head::mlm) throw Error("internal: backward_mlm without a forward_mlm");
    if (precision == Precision::fp32) mlm_backward<float>(*s_, config, layout);
    else mlm_backward<bf16>(*s_, config, layout);
}

ClsResult BertModelCuda::forward_classify(const ClsInputs& in, bool train, uint64_t dropout_seed) {
    const BertConfig& c = config;
    const int K = c.num_labels;
    check_cls_inputs(in, K);  // the CPU model's checks and messages
    State& s = *s_;
    start_batch(s, c, precision, in.B, in.T, 0, in.input_ids, in.token_types, in.lengths, train, dropout_seed);
    for (int b = 0; b < in.B; b++) s.host_ints.push_back(b * in.T);  // the [CLS] rows
    if (in.labels) s.host_ints.insert(s.host_ints.end(), in.labels, in.labels + in.B);
    else s.host_ints.insert(s.host_ints.end(), (size_t)in.B, kIgnoreIndex);
    upload_growing(s.ints, s.host_ints);
    // Regression targets [B] (zeros without), then the teacher's logits [B,K] when given.
    if (in.values) s.host_floats.assign(in.values, in.values + in.B);
    else s.host_floats.assign((size_t)in.B, 0.0f);
    if (in.teacher_logits) s.host_floats.insert(s.host_floats.end(), in.teacher_logits, in.teacher_logits + (int64_t)in.B * K);
    upload_growing(s.floats, s.host_floats);

    s.has_labels = in.labels != nullptr, s.has_values = in.values != nullptr, s.has_teacher = in.teacher_logits != nullptr;
    s.counted = in.labels ? cross_entropy_count(in.labels, in.B) : in.values ? in.B : 0;
    s.temperature = in.temperature;
    s.label_weight = in.teacher_logits ? in.label_weight : 1.0f;
    s.last = State::Head::classifier;
    return precision == Precision::fp32 ? classify_forward<float>(s, c, layout) : classify_forward<bf16>(s, c, layout);
}

void BertModelCuda::backward_classify() {
    const State& s = *s_;
    if (s.last != State::Head::classifier) throw Error("internal: backward_classify without a forward_classify");
    if (!s.has_labels && !s.has_values && !s.has_teacher)
        throw Error("internal: backward_classify after a forward without labels or teacher logits");
    if (precision == Precision::fp32) classify_backward<float>(*s_, config, layout);
    else classify_backward<bf16>(*s_, config, layout);
}

namespace {
template <typename T>
std::vector<float> download_as_float(const T* device, int64_t n) {
    DeviceArray<float> tmp(n);
    convert(tmp.data(), device, n);
    std::vector<float> host((size_t)n);
    tmp.download(host.data(), n);
    return host;
}
}  // namespace

std::vector<float> BertModelCuda::mlm_logits() const {
    const int64_t n = (int64_t)s_->M * config.vocab_size;
    if (precision == Precision::fp32) return download_as_float(view<float>(*s_, config).logits, n);
    return download_as_float(view<bf16>(*s_, config).logits, n);
}

std::vector<float> BertModelCuda::cls_logits() const {
    if (s_->last != State::Head::classifier) throw Error("internal: cls_logits without a forward_classify");
    const int64_t n = (int64_t)s_->B * config.num_labels;
    if (precision == Precision::fp32) return download_as_float(view<float>(*s_, config).cls_logits, n);
    return download_as_float(view<bf16>(*s_, config).cls_logits, n);
}

std::vector<float> BertModelCuda::encoder_output() const {
    const int64_t n = (int64_t)s_->B * s_->T * config.hidden, last = (int64_t)(config.num_layers - 1) * n;
    if (precision == Precision::fp32) return download_as_float(view<float>(*s_, config).ln2 + last, n);
    return download_as_float(view<bf16>(*s_, config).ln2 + last, n);
}

}  // namespace wr::cuda
