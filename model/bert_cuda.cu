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
    float* sums;                                               // [2] loss sum and correct count of the batch
    // backward scratch, reused layer after layer
    T *d_x, *d_x_next, *d_ln1, *d_proj, *d_atty, *d_emb;       // [N,C] x6
    T *d_qkv, *d_ffn_g, *d_ffn_h;                              // [N,3C] [N,F] [N,F]
    T *d_gathered, *d_head_h, *d_head_g, *d_head_ln;           // [M,C] x4
};

template <typename T>
void carve(Activations<T>& a, Carver& f, const BertConfig& c, int64_t B, int64_t T_, int64_t M) {
    const int64_t N = B * T_, C = c.hidden, F = c.ffn, L = c.num_layers, V = c.vocab_size;
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
    f.take(a.sums, 2);
    for (T** p : {&a.d_x, &a.d_x_next, &a.d_ln1, &a.d_proj, &a.d_atty, &a.d_emb}) f.take(*p, N * C);
    f.take(a.d_qkv, N * 3 * C);
    for (T** p : {&a.d_ffn_g, &a.d_ffn_h}) f.take(*p, N * F);
    for (T** p : {&a.d_gathered, &a.d_head_h, &a.d_head_g, &a.d_head_ln}) f.take(*p, M * C);
}

// A different dropout stream for every place dropout is applied, as model/bert.cpp.
uint64_t site_seed(uint64_t seed, int layer, int site) {
    return splitmix64_mix(seed + kGoldenGamma * (uint64_t)(layer * 8 + site + 1));
}
enum DropoutSite { kEmbeddings = 0, kAttentionProbs = 1, kAttentionOutput = 2, kFfnOutput = 3 };

template <typename T>
void zero(T* p, int64_t n) {
    WR_CUDA_CHECK(cudaMemsetAsync(p, 0, sizeof(T) * (size_t)n, stream()));
}
template <typename T>
void zero(std::initializer_list<T*> arrays, int64_t n) {
    for (T* p : arrays) zero(p, n);
}

// sums[0] = sum of losses[0..M), sums[1] = number of correct rows, added by one block in a fixed
// order (deterministic), so the host reads two floats per batch.
__global__ void batch_sums_kernel(float* sums, const float* losses, const int* correct, int M) {
    __shared__ float shared[32];
    float loss = 0.0f, right = 0.0f;
    for (int m = threadIdx.x; m < M; m += blockDim.x) loss += losses[m], right += (float)correct[m];
    loss = block_sum(loss, shared);
    right = block_sum(right, shared);
    if (threadIdx.x == 0) sums[0] = loss, sums[1] = right;
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
    DeviceArray<int> ints;                   // ids [N], types [N], lengths [B], positions [M], targets [M]
    std::vector<int> host_ints;
    int B = 0, T = 0, M = 0, capacity_B = 0, capacity_T = 0, capacity_M = 0;
    bool train = false, forward_done = false;
    uint64_t dropout_seed = 0;

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
    if (config.num_labels != 0) throw Error("--device cuda: the classifier head runs on the CPU only so far (the GPU model has the MLM head)");
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
template <typename T>
MlmResult forward(BertModelCuda::State& s, const BertConfig& c, const ParamLayout& layout) {
    const BertWeightsOf<T> w = s.weights<T>(layout);
    const Activations<T> a = view<T>(s, c);
    const int B = s.B, T_ = s.T, M = s.M, C = c.hidden, F = c.ffn, V = c.vocab_size, NH = c.num_heads;
    const int64_t N = (int64_t)B * T_;
    const int *ids = s.ints.data(), *types = ids + N, *lengths = types + N, *positions = lengths + B, *targets = positions + M;
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
        batch_sums_kernel<<<1, 1024, 0, stream()>>>(a.sums, a.losses, a.correct, M);
        WR_CUDA_CHECK_LAUNCH();
    }
    float sums[2];
    WR_CUDA_CHECK(cudaMemcpyAsync(sums, a.sums, sizeof sums, cudaMemcpyDeviceToHost, stream()));
    synchronize();
    result.loss = sums[0] / (float)M;
    result.correct = (int)sums[1];
    return result;
}

// ---- backward ----
template <typename T>
void backward(BertModelCuda::State& s, const BertConfig& c, const ParamLayout& layout) {
    NvtxRange whole("backward");
    const BertWeightsOf<T> w = s.weights<T>(layout);
    const BertWeightsOf<float> g = BertWeightsOf<float>::view(layout, s.grads.data());
    Activations<T> a = view<T>(s, c);
    const int B = s.B, T_ = s.T, M = s.M, C = c.hidden, F = c.ffn, V = c.vocab_size, NH = c.num_heads;
    const int64_t N = (int64_t)B * T_;
    const int *ids = s.ints.data(), *types = ids + N, *lengths = types + N, *positions = lengths + B, *targets = positions + M;
    const float p_hidden = s.train ? c.hidden_dropout : 0.0f, p_attn = s.train ? c.attention_dropout : 0.0f;
    const uint64_t seed = s.dropout_seed;

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

}  // namespace

MlmResult BertModelCuda::forward_mlm(const MlmInputs& in, bool train, uint64_t dropout_seed) {
    const BertConfig& c = config;
    if (in.T > c.max_positions)
        throw Error("sequence length " + std::to_string(in.T) + " is above the model's " + std::to_string(c.max_positions) + " positions");
    State& s = *s_;
    const int64_t N = (int64_t)in.B * in.T;
    for (int64_t i = 0; i < N; i++)
        if (in.input_ids[i] < 0 || in.input_ids[i] >= c.vocab_size || in.token_types[i] < 0 || in.token_types[i] >= c.type_vocab)
            throw Error("batch: token " + std::to_string(i) + " has id " + std::to_string(in.input_ids[i]) + " / type " +
                        std::to_string(in.token_types[i]) + " outside the model's vocabulary " + std::to_string(c.vocab_size) + " / " +
                        std::to_string(c.type_vocab));
    for (int m = 0; m < in.M; m++)
        if (in.masked_positions[m] < 0 || in.masked_positions[m] >= N || in.masked_targets[m] < 0 ||
            in.masked_targets[m] >= c.vocab_size)
            throw Error("batch: masked position " + std::to_string(m) + " is outside the batch or its target outside the vocabulary");

    // Activation memory for the largest batch seen so far.
    if (in.B > s.capacity_B || in.T > s.capacity_T || in.M > s.capacity_M || s.acts.size() == 0) {
        s.capacity_B = std::max(in.B, s.capacity_B), s.capacity_T = std::max(in.T, s.capacity_T);
        s.capacity_M = std::max(std::max(in.M, 1), s.capacity_M);
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
    s.B = in.B, s.T = in.T, s.M = in.M, s.train = train, s.dropout_seed = dropout_seed;

    // The batch's integers, in one upload (the caller's arrays may be reused).
    s.host_ints.assign(in.input_ids, in.input_ids + N);
    s.host_ints.insert(s.host_ints.end(), in.token_types, in.token_types + N);
    s.host_ints.insert(s.host_ints.end(), in.lengths, in.lengths + in.B);
    s.host_ints.insert(s.host_ints.end(), in.masked_positions, in.masked_positions + in.M);
    s.host_ints.insert(s.host_ints.end(), in.masked_targets, in.masked_targets + in.M);
    if ((int64_t)s.host_ints.size() > s.ints.size()) s.ints.resize((int64_t)s.host_ints.size());
    WR_CUDA_CHECK(cudaMemcpyAsync(s.ints.data(), s.host_ints.data(), sizeof(int) * s.host_ints.size(), cudaMemcpyHostToDevice,
                                  stream()));
    s.forward_done = true;
    return precision == Precision::fp32 ? forward<float>(s, c, layout) : forward<bf16>(s, c, layout);
}

void BertModelCuda::backward_mlm() {
    if (!s_->forward_done) throw Error("internal: backward_mlm without a forward_mlm");
    if (precision == Precision::fp32) backward<float>(*s_, config, layout);
    else backward<bf16>(*s_, config, layout);
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

std::vector<float> BertModelCuda::encoder_output() const {
    const int64_t n = (int64_t)s_->B * s_->T * config.hidden, last = (int64_t)(config.num_layers - 1) * n;
    if (precision == Precision::fp32) return download_as_float(view<float>(*s_, config).ln2 + last, n);
    return download_as_float(view<bf16>(*s_, config).ln2 + last, n);
}

}  // namespace wr::cuda
