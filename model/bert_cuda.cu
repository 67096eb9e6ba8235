// model/bert_cuda.cu: BERT forward and backward on the GPU (interface and what differs from the
// CPU model in model/bert_cuda.cuh). The sequence of ops is model/bert.cpp's, step for step, so
// the two files read side by side; the math of each step is in model/bert.h.
#include "model/bert_cuda.cuh"

#include <nvtx3/nvToolsExt.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <type_traits>

#include "common/random.h"
#include "common/util.h"
#include "kernels/activations.cuh"
#include "kernels/nccl.cuh"
#include "kernels/attention.cuh"
#include "kernels/cross_entropy.cuh"
#include "kernels/cross_entropy.h"  // kIgnoreIndex, cross_entropy_count
#include "kernels/dropout.cuh"
#include "kernels/embedding.cuh"
#include "kernels/layernorm.cuh"
#include "kernels/matmul.cuh"
#include "kernels/optimizer.cuh"
#include "model/device_layout.h"

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
    T *gathered, *head_h, *head_g, *head_ln, *logits;          // [M,C] x4, [M,Vp] (M: padded rows)
    float *head_mean, *head_rstd, *losses;                     // [M] x3
    int* correct;                                              // [M]
    T *cls_x, *pool_h, *pooled, *pool_drop, *cls_logits;       // classifier: [B,C] x4, [B,K]
    float *cls_losses, *cls_soft_losses;                       // [B] x2 hard and soft loss per row
    int *cls_correct, *cls_agree;                              // [B] x2 argmax == label, argmax == the teacher's
    // backward scratch, reused layer after layer
    T *d_x, *d_x_next, *d_ln1, *d_proj, *d_atty, *d_emb;       // [N,C] x6
    T *d_qkv, *d_ffn_g, *d_ffn_h;                              // [N,3C] [N,F] [N,F]
    T *d_gathered, *d_head_h, *d_head_g, *d_head_ln;           // [M,C] x4
    T *d_cls_x, *d_pool_h, *d_pooled, *d_pool_drop, *d_cls_logits;  // [B,C] x4, [B,K]
};

// The MLM head's arrays have M rows (padded: a multiple of 64), its logits Vp columns (the
// padded decoder's; they exist only with the MLM head); the classifier's exist only with
// num_labels = K >= 1.
template <typename T>
void carve(Activations<T>& a, Carver& f, const BertConfig& c, int64_t B, int64_t T_, int64_t M, int64_t Vp) {
    const int64_t N = B * T_, C = c.hidden, F = c.ffn, L = c.num_layers, K = c.num_labels, V = K == 0 ? Vp : 0;
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
    explicit State(const ParamLayout& host) : dlayout(host) {}

    // A forward whose sums wait in `readback` for the host, and what the host knows of its batch
    // to turn them into a result.
    struct Pending {
        bool classifier = false;
        bool has_sums = false;  // false: nothing to read (no masked position; a classifier forward without targets)
        int M = 0;              // MLM: masked positions (the real ones)
        int B = 0, counted = 0;
        bool has_labels = false, has_teacher = false;
        float label_weight = 1.0f;
    };

    int device = 0;                           // the device the model lives on (current when it was made)
    DeviceLayout dlayout;                     // the padded device layout of the parameters
    DeviceArray<float> params, grads, m, v;  // fp32 master weights, gradients, AdamW moments (dlayout)
    DeviceArray<bf16> params_bf16;           // the bf16 copy the bf16 forward/backward read
    DeviceArray<char> acts;                  // every activation array, carved by carve()
    // The batch's integers: ids [N], types [N], lengths [B], then the head's rows and targets:
    // MLM: positions [Mp], targets [Mp] (rows M.. Mp-1: position 0, target -100); classifier:
    // the [CLS] rows b*T [B], labels [B] (-100: none). Floats (classifier): regression targets [B],
    // teacher logits [B,K]. Staged in page-locked memory, copied up asynchronously; `uploaded`
    // marks the end of the last copy (the staging arrays are refilled only after it).
    DeviceArray<int> ints;
    DeviceArray<float> floats;
    PinnedArray<int> staged_ints;
    PinnedArray<float> staged_floats;
    Event uploaded;
    // What the host reads: [0] the gradient norm of the last step, then 4 sums per pending forward
    // (batch_sums_kernel), read in one copy into readback_host.
    DeviceArray<float> readback;
    PinnedArray<float> readback_host;
    std::vector<Pending> pending;
    // download_as_float's reused buffers.
    DeviceArray<float> download_device;
    PinnedArray<float> download_host;
    int B = 0, T = 0, M = 0, Mp = 0, capacity_B = 0, capacity_T = 0, capacity_M = 0;
    bool train = false;
    enum class Head { none, mlm, classifier } last = Head::none;  // the head of the last forward
    uint64_t dropout_seed = 0;
    // The last classifier batch, as the host knows it.
    bool has_labels = false, has_values = false, has_teacher = false;
    int counted = 0;  // labeled rows (regression: all B)
    float temperature = 1.0f, label_weight = 1.0f;
    float grad_scale = 1.0f;  // the inputs' grad_scale (a data-parallel rank's share of the global batch)

    template <typename X>
    BertWeightsOf<X> weights();
    void refresh_copy(Precision p) {
        if (p == Precision::bf16) convert(params_bf16.data(), params.data(), params.size());
    }
    // Where the next forward's 4 sums go (readback grows, keeping what it holds, when full).
    float* next_slot() {
        const int64_t needed = 1 + 4 * ((int64_t)pending.size() + 1);
        if (needed > readback.size()) {
            DeviceArray<float> bigger(std::max<int64_t>(needed, 2 * readback.size()));
            WR_CUDA_CHECK(cudaMemcpyAsync(bigger.data(), readback.data(), sizeof(float) * (size_t)readback.size(),
                                          cudaMemcpyDeviceToDevice, stream()));
            synchronize();  // queued kernels may still use the old array
            readback = std::move(bigger);
        }
        return readback.data() + 1 + 4 * (int64_t)pending.size();
    }
};

template <>
BertWeightsOf<float> BertModelCuda::State::weights<float>() {
    return BertWeightsOf<float>::view(dlayout, params.data());
}
template <>
BertWeightsOf<bf16> BertModelCuda::State::weights<bf16>() {
    return BertWeightsOf<bf16>::view(dlayout, params_bf16.data());
}

BertModelCuda::BertModelCuda(const BertConfig& c, Precision p) : config(c), layout(c), precision(p) {
    config.validate("model config");
    if (!device_available()) throw Error("--device cuda: " + device_unavailable_reason());
    s_.reset(new State(layout));
    s_->device = current_device();
    const int64_t n = s_->dlayout.total();  // padding included: zero, and it stays zero
    for (DeviceArray<float>* a : {&s_->params, &s_->grads, &s_->m, &s_->v}) a->resize(n), a->zero();
    if (p == Precision::bf16) s_->params_bf16.resize(n), s_->params_bf16.zero();
    s_->readback.resize(1 + 4 * 16);
    s_->readback.zero();
}

BertModelCuda::~BertModelCuda() {
    try {
        if (s_) {
            const DeviceGuard guard(s_->device);  // the buffers are freed on their own device
            s_.reset();
        }
    } catch (...) {  // a destructor does not throw; the device is gone anyway
    }
}

namespace {
// Host buffer (host layout) <-> device buffer (device layout), tensor by tensor. The host side is
// pageable memory: an upload returns once the driver has taken the data; downloads end with a wait.
void upload_tensors(float* device, const float* host, const DeviceLayout& dlayout) {
    for (const DeviceLayout::Copy& c : dlayout.copies())
        WR_CUDA_CHECK(cudaMemcpyAsync(device + c.device_offset, host + c.host_offset, sizeof(float) * (size_t)c.count,
                                      cudaMemcpyHostToDevice, stream()));
}
void download_tensors(float* host, const float* device, const DeviceLayout& dlayout) {
    for (const DeviceLayout::Copy& c : dlayout.copies())
        WR_CUDA_CHECK(cudaMemcpyAsync(host + c.host_offset, device + c.device_offset, sizeof(float) * (size_t)c.count,
                                      cudaMemcpyDeviceToHost, stream()));
    synchronize();
}
}  // namespace

void BertModelCuda::set_params(const float* host) {
    const DeviceGuard guard(s_->device);
    upload_tensors(s_->params.data(), host, s_->dlayout);
    s_->refresh_copy(precision);
}
void BertModelCuda::get_params(float* host) const {
    const DeviceGuard guard(s_->device);
    download_tensors(host, s_->params.data(), s_->dlayout);
}
void BertModelCuda::get_grads(float* host) const {
    const DeviceGuard guard(s_->device);
    download_tensors(host, s_->grads.data(), s_->dlayout);
}
void BertModelCuda::set_moments(const float* m, const float* v) {
    const DeviceGuard guard(s_->device);
    upload_tensors(s_->m.data(), m, s_->dlayout);
    upload_tensors(s_->v.data(), v, s_->dlayout);
}
void BertModelCuda::get_moments(float* m, float* v) const {
    const DeviceGuard guard(s_->device);
    download_tensors(m, s_->m.data(), s_->dlayout);
    download_tensors(v, s_->v.data(), s_->dlayout);
}

void BertModelCuda::zero_grads() {
    const DeviceGuard guard(s_->device);
    s_->grads.zero();
}

void BertModelCuda::all_reduce_grads() {
    const DeviceGuard guard(s_->device);
    all_reduce_sum_device(s_->grads.data(), s_->grads.size());
}

void BertModelCuda::average_grads(int micro_batches) {
    const DeviceGuard guard(s_->device);
    const int64_t n = s_->grads.size();
    divide_kernel<<<std::min<unsigned>(ceil_div(n, 256), 4096u), 256, 0, stream()>>>(s_->grads.data(), n, (float)micro_batches);
    WR_CUDA_CHECK_LAUNCH();
}

namespace {

using Pending = BertModelCuda::State::Pending;

// A forward's result from its 4 sums (batch_sums_kernel) and what the host knows of the batch.
MlmResult mlm_result(const Pending& p, const float* sums) {
    MlmResult r;
    if (!p.has_sums) return r;
    r.loss = r.hard_loss = sums[0] / (float)p.M;
    r.correct = (int)sums[1];
    return r;
}
ClsResult cls_result(const Pending& p, const float* sums) {
    ClsResult r;
    if (!p.has_sums) return r;  // logits only (prediction)
    r.counted = p.counted;
    r.hard_loss = p.counted > 0 ? sums[0] / (float)p.counted : 0.0f;  // ignored rows have loss 0
    r.correct = (int)sums[1];
    if (p.has_teacher) {
        r.soft_loss = p.B > 0 ? sums[2] / (float)p.B : 0.0f;
        r.agree = (int)sums[3];
    }
    r.loss = p.has_teacher ? r.soft_loss + p.label_weight * r.hard_loss : r.hard_loss;
    return r;
}

// The result of the last forward, read at once (one small copy, one wait) and taken off the
// pending list: what forward_mlm / forward_classify return.
const float* read_last(BertModelCuda::State& s, Pending& p) {
    p = s.pending.back();
    s.pending.pop_back();
    if (!p.has_sums) return nullptr;
    float* host = s.readback_host.reserve(4);  // no copy into it is in flight: every read waits
    WR_CUDA_CHECK(cudaMemcpyAsync(host, s.readback.data() + 1 + 4 * (int64_t)s.pending.size(), 4 * sizeof(float),
                                  cudaMemcpyDeviceToHost, stream()));
    synchronize();
    return host;
}

}  // namespace

StepResults BertModelCuda::optimizer_step(const Optimizer& optimizer) {
    const DeviceGuard guard(s_->device);
    State& s = *s_;
    StepResults results;
    {
        NvtxRange range("optimizer");
        const AdamWConfig adamw = optimizer.adamw_config();
        float* norm = s.readback.data();  // [0]: read with the step's sums below
        global_grad_norm(norm, s.grads.data(), s.grads.size());
        adamw_update(s.params.data(), precision == Precision::bf16 ? s.params_bf16.data() : nullptr, s.grads.data(), s.m.data(),
                     s.v.data(), s.dlayout.update_spans(optimizer.decay_ranges()), adamw, optimizer.steps_done + 1, norm,
                     optimizer.clip());
        results.info.lr = adamw.lr;
    }
    // The step's one read: the norm and the pending forwards' sums, one copy, one wait.
    const int64_t n = 1 + 4 * (int64_t)s.pending.size();
    float* host = s.readback_host.reserve(n);
    WR_CUDA_CHECK(cudaMemcpyAsync(host, s.readback.data(), sizeof(float) * (size_t)n, cudaMemcpyDeviceToHost, stream()));
    synchronize();
    results.info.grad_norm = host[0];
    results.info.skipped = !std::isfinite(host[0]);
    for (size_t k = 0; k < s.pending.size(); k++) {
        const float* sums = host + 1 + 4 * k;
        if (s.pending[k].classifier) results.cls.push_back(cls_result(s.pending[k], sums));
        else results.mlm.push_back(mlm_result(s.pending[k], sums));
    }
    s.pending.clear();
    return results;
}

namespace {

template <typename T>
Activations<T> view(BertModelCuda::State& s, const BertConfig& c) {
    Activations<T> a;
    Carver f(s.acts.data());
    carve(a, f, c, s.B, s.T, std::max(s.Mp, 1), s.dlayout.vocab_rows());
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

// The MLM head on the Mp gathered rows (M masked positions, then Mp - M copies of row 0 with
// target -100: loss 0, never correct), over the Vp padded decoder outputs (the loss reads V);
// the sums of the losses and correct flags into `sums` (batch_sums_kernel). False when M = 0
// (no head, nothing to sum).
template <typename T>
bool mlm_forward(BertModelCuda::State& s, const BertConfig& c, float* sums) {
    const BertWeightsOf<T> w = s.weights<T>();
    const Activations<T> a = view<T>(s, c);
    const int B = s.B, M = s.M, Mp = s.Mp, C = c.hidden, V = c.vocab_size, Vp = s.dlayout.vocab_rows();
    const int64_t N = (int64_t)B * s.T;
    const int *positions = s.ints.data() + 2 * N + B, *targets = positions + Mp;
    const T* x = encoder_forward(s, c, w, a);
    if (M == 0) return false;
    {  // MLM head on the masked positions only; the loss without storing probabilities
        NvtxRange range("mlm head");
        gather_rows(a.gathered, x, positions, Mp, C);
        matmul_forward(a.head_h, a.gathered, w.head_w, w.head_b, Mp, C, C);
        gelu_forward(a.head_g, a.head_h, (int64_t)Mp * C);
        layernorm_forward(a.head_ln, a.head_mean, a.head_rstd, a.head_g, w.head_ln_w, w.head_ln_b, Mp, C, c.layer_norm_eps);
        matmul_forward(a.logits, a.head_ln, w.wte, w.mlm_bias, Mp, C, Vp);  // decoder tied to the word embeddings
        cross_entropy_forward_backward(a.logits, a.losses, a.correct, targets, Mp, V, 0.0f, /*backward=*/false, Vp);
        batch_sums_kernel<<<1, 1024, 0, stream()>>>(sums, a.losses, a.correct, nullptr, nullptr, Mp);
        WR_CUDA_CHECK_LAUNCH();
    }
    return true;
}

// The classifier head: pooled = tanh(x[:, 0] W_pool^T + b_pool); logits = dropout(pooled) W_cls^T + b_cls;
// the hard loss per row (cross-entropy and correct flags, or squared error) and, with teacher
// logits, the soft loss per row (and agreeing flags); then their sums into `sums`. False when the
// batch has neither targets nor a teacher (logits only: nothing to sum).
template <typename T>
bool classify_forward(BertModelCuda::State& s, const BertConfig& c, float* sums) {
    const BertWeightsOf<T> w = s.weights<T>();
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
    const bool hard = s.has_labels || s.has_values;
    if (!hard && !s.has_teacher) return false;
    batch_sums_kernel<<<1, 1024, 0, stream()>>>(sums, hard ? a.cls_losses : nullptr, s.has_labels ? a.cls_correct : nullptr,
                                                s.has_teacher ? a.cls_soft_losses : nullptr,
                                                s.has_teacher && K > 1 ? a.cls_agree : nullptr, B);
    WR_CUDA_CHECK_LAUNCH();
    return true;
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
void mlm_backward(BertModelCuda::State& s, const BertConfig& c) {
    NvtxRange whole("backward");
    const BertWeightsOf<T> w = s.weights<T>();
    const BertWeightsOf<float> g = BertWeightsOf<float>::view(s.dlayout, s.grads.data());
    Activations<T> a = view<T>(s, c);
    const int B = s.B, M = s.M, Mp = s.Mp, C = c.hidden, V = c.vocab_size, Vp = s.dlayout.vocab_rows();
    const int64_t N = (int64_t)B * s.T;
    const int *positions = s.ints.data() + 2 * N + B, *targets = positions + Mp;

    zero(a.d_x, N * C);
    if (M > 0) {  // MLM head: d loss / d logits = (softmax - onehot) / M, written over the logits
        NvtxRange range("mlm head backward");
        zero({a.d_head_ln, a.d_head_g, a.d_head_h, a.d_gathered}, (int64_t)Mp * C);
        // The padding rows (target -100) and the padded outputs (columns V..Vp-1) get gradient 0,
        // so the decoder's padding rows and bias entries get none.
        cross_entropy_forward_backward(a.logits, a.losses, nullptr, targets, Mp, V, s.grad_scale / M, /*backward=*/true, Vp);
        matmul_backward(a.d_head_ln, g.wte, g.mlm_bias, a.logits, a.head_ln, w.wte, Mp, C, Vp);
        layernorm_backward(a.d_head_g, g.head_ln_w, g.head_ln_b, a.d_head_ln, a.head_g, w.head_ln_w, a.head_mean, a.head_rstd, Mp, C);
        gelu_backward(a.d_head_h, a.head_h, a.d_head_g, (int64_t)Mp * C);
        matmul_backward(a.d_gathered, g.head_w, g.head_b, a.d_head_h, a.gathered, w.head_w, Mp, C, C);
        // The M real rows only: the padding rows' gradients are 0, and they all name row 0 (the
        // scatter's warps must not share a row).
        gather_rows_backward(a.d_x, a.d_gathered, positions, M, C);
    }
    encoder_backward(s, c, w, g, a);
}

// d loss / d logits of the classifier (the hard loss weighted, plus the soft loss), back through
// the classifier, dropout, tanh and the pooler, scattered to the [CLS] rows of d_x (zero
// elsewhere), then the encoder.
template <typename T>
void classify_backward(BertModelCuda::State& s, const BertConfig& c) {
    NvtxRange whole("backward");
    const BertWeightsOf<T> w = s.weights<T>();
    const BertWeightsOf<float> g = BertWeightsOf<float>::view(s.dlayout, s.grads.data());
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
                mse_backward(a.d_cls_logits, a.cls_logits, values, B, s.grad_scale * s.label_weight);
            } else {  // the fused kernel overwrites its logits with their gradient: give it a copy
                WR_CUDA_CHECK(cudaMemcpyAsync(a.d_cls_logits, a.cls_logits, sizeof(T) * (size_t)BK, cudaMemcpyDeviceToDevice, stream()));
                cross_entropy_forward_backward(a.d_cls_logits, a.cls_losses, nullptr, labels, B, K, s.grad_scale * s.label_weight / (float)s.counted,
                                               /*backward=*/true);
            }
        } else {
            zero(a.d_cls_logits, BK);
        }
        if (s.has_teacher) {  // the soft loss, a mean over all rows, added
            if (K == 1) mse_backward(a.d_cls_logits, a.cls_logits, teacher, B, s.grad_scale);
            else soft_cross_entropy_backward(a.d_cls_logits, a.cls_logits, teacher, B, K, s.temperature, s.grad_scale / (float)B);
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
// activation memory for the largest batch seen so far (Mp: the MLM head's padded rows), and keeps
// the batch's settings.
void start_batch(BertModelCuda::State& s, const BertConfig& c, Precision precision, int B, int T, int M, int Mp, const int32_t* ids,
                 const int32_t* types, const int32_t* lengths, bool train, uint64_t dropout_seed) {
    check_batch_tokens(c, B, T, ids, types, lengths);  // the CPU model's checks
    if (B > s.capacity_B || T > s.capacity_T || Mp > s.capacity_M || s.acts.size() == 0) {
        s.capacity_B = std::max(B, s.capacity_B), s.capacity_T = std::max(T, s.capacity_T);
        s.capacity_M = std::max(std::max(Mp, 1), s.capacity_M);
        Carver sizing(nullptr);
        if (precision == Precision::fp32) {
            Activations<float> a;
            carve(a, sizing, c, s.capacity_B, s.capacity_T, s.capacity_M, s.dlayout.vocab_rows());
        } else {
            Activations<bf16> a;
            carve(a, sizing, c, s.capacity_B, s.capacity_T, s.capacity_M, s.dlayout.vocab_rows());
        }
        synchronize();  // the old buffer may still be in use
        s.acts.resize((int64_t)sizing.used());
    }
    s.B = B, s.T = T, s.M = M, s.Mp = Mp, s.train = train, s.dropout_seed = dropout_seed;
}

// The page-locked staging arrays for a batch of n_ints integers and n_floats floats, free to
// fill: the copy of the previous batch out of them has finished.
struct Staged {
    int* ints;
    float* floats;
};
Staged stage(BertModelCuda::State& s, int64_t n_ints, int64_t n_floats) {
    s.uploaded.wait();  // at once unless the last batch's copy is still queued
    return {s.staged_ints.reserve(n_ints), s.staged_floats.reserve(n_floats)};
}
// The staged batch up to the device, asynchronously. Growing a device array frees the old one,
// which kernels of the previous batch may still read: wait for them first.
void upload_staged(BertModelCuda::State& s, int64_t n_ints, int64_t n_floats) {
    if (n_ints > s.ints.size() || n_floats > s.floats.size()) {
        synchronize();
        if (n_ints > s.ints.size()) s.ints.resize(n_ints);
        if (n_floats > s.floats.size()) s.floats.resize(n_floats);
    }
    if (n_ints > 0)
        WR_CUDA_CHECK(cudaMemcpyAsync(s.ints.data(), s.staged_ints.data(), sizeof(int) * (size_t)n_ints, cudaMemcpyHostToDevice,
                                      stream()));
    if (n_floats > 0)
        WR_CUDA_CHECK(cudaMemcpyAsync(s.floats.data(), s.staged_floats.data(), sizeof(float) * (size_t)n_floats,
                                      cudaMemcpyHostToDevice, stream()));
    s.uploaded.record();
}

// ids [N], types [N], lengths [B] into the staging array at `out`; returns the end.
int* stage_tokens(int* out, int B, int T, const int32_t* ids, const int32_t* types, const int32_t* lengths) {
    const int64_t N = (int64_t)B * T;
    out = std::copy(ids, ids + N, out);
    out = std::copy(types, types + N, out);
    return std::copy(lengths, lengths + B, out);
}

// The MLM head's row count on the device: M padded to a multiple of 64 (0 stays 0), so that the
// head's GEMMs see a few shapes over a run instead of one per batch (each new shape costs a
// cuBLASLt heuristic query inside a timed step).
int padded_rows(int M) { return (M + 63) / 64 * 64; }

}  // namespace

namespace {
// The MLM forward of both entry points; its sums go to the next readback slot, pending.
void queue_mlm(BertModelCuda::State& s, const BertConfig& c, Precision precision, const MlmInputs& in, bool train,
               uint64_t dropout_seed) {
    if (c.num_labels != 0) throw Error("internal: forward_mlm on a model with a classifier head");
    if (in.teacher_ids) throw Error("internal: the GPU model has no MLM-logit distillation (teacher ids)");
    const int64_t N = (int64_t)in.B * in.T;
    for (int m = 0; m < in.M; m++)
        if (in.masked_positions[m] < 0 || in.masked_positions[m] >= N || in.masked_targets[m] < 0 ||
            in.masked_targets[m] >= c.vocab_size)
            throw Error("batch: masked position " + std::to_string(m) + " is outside the batch or its target outside the vocabulary");
    const int Mp = padded_rows(in.M);
    start_batch(s, c, precision, in.B, in.T, in.M, Mp, in.input_ids, in.token_types, in.lengths, train, dropout_seed);
    const int64_t n_ints = 2 * N + in.B + 2 * (int64_t)Mp;
    int* out = stage_tokens(stage(s, n_ints, 0).ints, in.B, in.T, in.input_ids, in.token_types, in.lengths);
    out = std::copy(in.masked_positions, in.masked_positions + in.M, out);
    out = std::fill_n(out, Mp - in.M, 0);  // padding rows read row 0
    out = std::copy(in.masked_targets, in.masked_targets + in.M, out);
    std::fill_n(out, Mp - in.M, kIgnoreIndex);
    upload_staged(s, n_ints, 0);
    s.grad_scale = in.grad_scale;
    s.last = BertModelCuda::State::Head::mlm;

    float* sums = s.next_slot();
    Pending p;
    p.M = in.M;
    p.has_sums = precision == Precision::fp32 ? mlm_forward<float>(s, c, sums) : mlm_forward<bf16>(s, c, sums);
    s.pending.push_back(p);
}

// The classifier forward of both entry points; its sums go to the next readback slot, pending.
void queue_classify(BertModelCuda::State& s, const BertConfig& c, Precision precision, const ClsInputs& in, bool train,
                    uint64_t dropout_seed) {
    const int K = c.num_labels;
    check_cls_inputs(in, K);  // the CPU model's checks and messages
    start_batch(s, c, precision, in.B, in.T, 0, 0, in.input_ids, in.token_types, in.lengths, train, dropout_seed);
    const int64_t N = (int64_t)in.B * in.T;
    // ints: tokens, the [CLS] rows, labels (-100 without); floats: regression targets [B] (zeros
    // without), then the teacher's logits [B,K] when given.
    const int64_t n_ints = 2 * N + 3 * (int64_t)in.B, n_floats = in.B + (in.teacher_logits ? (int64_t)in.B * K : 0);
    const Staged staged = stage(s, n_ints, n_floats);
    int* out = stage_tokens(staged.ints, in.B, in.T, in.input_ids, in.token_types, in.lengths);
    for (int b = 0; b < in.B; b++) *out++ = b * in.T;
    if (in.labels) std::copy(in.labels, in.labels + in.B, out);
    else std::fill_n(out, in.B, kIgnoreIndex);
    if (in.values) std::copy(in.values, in.values + in.B, staged.floats);
    else std::fill_n(staged.floats, in.B, 0.0f);
    if (in.teacher_logits) std::copy(in.teacher_logits, in.teacher_logits + (int64_t)in.B * K, staged.floats + in.B);
    upload_staged(s, n_ints, n_floats);

    s.has_labels = in.labels != nullptr, s.has_values = in.values != nullptr, s.has_teacher = in.teacher_logits != nullptr;
    s.counted = in.labels ? cross_entropy_count(in.labels, in.B) : in.values ? in.B : 0;
    s.temperature = in.temperature;
    s.label_weight = in.teacher_logits ? in.label_weight : 1.0f;
    s.grad_scale = in.grad_scale;
    s.last = BertModelCuda::State::Head::classifier;

    float* sums = s.next_slot();
    Pending p;
    p.classifier = true;
    p.B = in.B, p.counted = s.counted, p.has_labels = s.has_labels, p.has_teacher = s.has_teacher, p.label_weight = s.label_weight;
    p.has_sums = precision == Precision::fp32 ? classify_forward<float>(s, c, sums) : classify_forward<bf16>(s, c, sums);
    s.pending.push_back(p);
}
}  // namespace

MlmResult BertModelCuda::forward_mlm(const MlmInputs& in, bool train, uint64_t dropout_seed) {
    const DeviceGuard guard(s_->device);
    queue_mlm(*s_, config, precision, in, train, dropout_seed);
    Pending p;
    const float* sums = read_last(*s_, p);
    return mlm_result(p, sums);
}

void BertModelCuda::train_forward_mlm(const MlmInputs& in, uint64_t dropout_seed) {
    const DeviceGuard guard(s_->device);
    queue_mlm(*s_, config, precision, in, /*train=*/true, dropout_seed);
}

void BertModelCuda::backward_mlm() {
    const DeviceGuard guard(s_->device);
    if (s_->last != State::Head::mlm) throw Error("internal: backward_mlm without a forward_mlm");
    if (precision == Precision::fp32) mlm_backward<float>(*s_, config);
    else mlm_backward<bf16>(*s_, config);
}

ClsResult BertModelCuda::forward_classify(const ClsInputs& in, bool train, uint64_t dropout_seed) {
    const DeviceGuard guard(s_->device);
    queue_classify(*s_, config, precision, in, train, dropout_seed);
    Pending p;
    const float* sums = read_last(*s_, p);
    return cls_result(p, sums);
}

void BertModelCuda::train_forward_classify(const ClsInputs& in, uint64_t dropout_seed) {
    const DeviceGuard guard(s_->device);
    queue_classify(*s_, config, precision, in, /*train=*/true, dropout_seed);
}

void BertModelCuda::backward_classify() {
    const DeviceGuard guard(s_->device);
    const State& s = *s_;
    if (s.last != State::Head::classifier) throw Error("internal: backward_classify without a forward_classify");
    if (!s.has_labels && !s.has_values && !s.has_teacher)
        throw Error("internal: backward_classify after a forward without labels or teacher logits");
    if (precision == Precision::fp32) classify_backward<float>(*s_, config);
    else classify_backward<bf16>(*s_, config);
}

namespace {
// rows x cols elements of a device array whose rows are ld >= cols apart, as packed floats on the
// host, through the model's reused buffers: converted on the device (T = bf16) into a float
// buffer, copied into page-locked memory, one wait, then out to the vector.
template <typename T>
std::vector<float> download_as_float(BertModelCuda::State& s, const T* device, int64_t rows, int64_t cols, int64_t ld) {
    const int64_t n = rows * ld;
    std::vector<float> host((size_t)(rows * cols));
    if (n == 0) return host;
    const float* source = nullptr;
    if constexpr (std::is_same_v<T, float>) {
        source = device;
    } else {
        if (n > s.download_device.size()) {
            synchronize();  // the old buffer may still be read by an earlier download's copy
            s.download_device.resize(n);
        }
        convert(s.download_device.data(), device, n);
        source = s.download_device.data();
    }
    float* staged = s.download_host.reserve(n);  // no copy into it is in flight: every download waits
    WR_CUDA_CHECK(cudaMemcpyAsync(staged, source, sizeof(float) * (size_t)n, cudaMemcpyDeviceToHost, stream()));
    synchronize();
    for (int64_t r = 0; r < rows; r++) std::copy(staged + r * ld, staged + r * ld + cols, host.begin() + r * cols);
    return host;
}
}  // namespace

std::vector<float> BertModelCuda::mlm_logits() const {
    const DeviceGuard guard(s_->device);
    const int64_t M = s_->M, V = config.vocab_size, Vp = s_->dlayout.vocab_rows();
    if (precision == Precision::fp32) return download_as_float(*s_, view<float>(*s_, config).logits, M, V, Vp);
    return download_as_float(*s_, view<bf16>(*s_, config).logits, M, V, Vp);
}

std::vector<float> BertModelCuda::cls_logits() const {
    const DeviceGuard guard(s_->device);
    if (s_->last != State::Head::classifier) throw Error("internal: cls_logits without a forward_classify");
    const int64_t B = s_->B, K = config.num_labels;
    if (precision == Precision::fp32) return download_as_float(*s_, view<float>(*s_, config).cls_logits, B, K, K);
    return download_as_float(*s_, view<bf16>(*s_, config).cls_logits, B, K, K);
}

std::vector<float> BertModelCuda::encoder_output() const {
    const DeviceGuard guard(s_->device);
    const int64_t rows = (int64_t)s_->B * s_->T, C = config.hidden, last = (int64_t)(config.num_layers - 1) * rows * C;
    if (precision == Precision::fp32) return download_as_float(*s_, view<float>(*s_, config).ln2 + last, rows, C, C);
    return download_as_float(*s_, view<bf16>(*s_, config).ln2 + last, rows, C, C);
}

float BertModelCuda::padding_max_abs() const {
    const DeviceGuard guard(s_->device);
    const int64_t n = s_->dlayout.total();
    std::vector<char> real((size_t)n, 0);
    for (const DeviceLayout::Copy& c : s_->dlayout.copies()) std::fill_n(real.begin() + c.device_offset, c.count, 1);
    float worst = 0.0f;
    auto scan = [&](const std::vector<float>& x) {
        for (int64_t i = 0; i < n; i++)
            if (!real[(size_t)i]) worst = std::max(worst, std::fabs(x[(size_t)i]));
    };
    for (const DeviceArray<float>* a : {&s_->params, &s_->grads, &s_->m, &s_->v}) scan(download_as_float(*s_, a->data(), 1, n, n));
    if (precision == Precision::bf16) scan(download_as_float(*s_, s_->params_bf16.data(), 1, n, n));
    return worst;
}

}  // namespace wr::cuda
