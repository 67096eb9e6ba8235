// model/bert_cuda.cuh: the BERT model of model/bert.h on an NVIDIA GPU. Same architecture, same
// parameter tensors (the host's ParamLayout at the interface; on the device a padded copy of it,
// model/device_layout.h), same forward/backward sequence, with both heads (MLM, and the
// classifier of BertForSequenceClassification with everything ClsInputs asks for: labels,
// regression targets, a teacher's logits), built from the CUDA ops in kernels/*.cuh. What differs
// from the CPU model:
//   - precision: activations and matmul operands in T = bf16 (mixed precision, the default) or
//     float (--precision fp32, for debugging and parity with the CPU); fp32 master weights, fp32
//     gradients and AdamW moments; the T copy of the weights is written by the AdamW kernel;
//   - layout: every tensor 16-byte aligned, and the decoder's output dimension padded to Vp, a
//     multiple of 64 (the extra logits are ignored by the loss; the padding rows stay zero);
//   - the MLM head runs on its M masked rows padded to a multiple of 64 with ignored rows (target
//     -100: loss 0, gradient 0), so the head's GEMMs see few distinct shapes, not one per batch;
//   - fusions: bias in the cuBLASLt epilogue, residual add + dropout + LayerNorm in one kernel,
//     attention as one flash-style kernel (no [B,NH,T,T] in memory), softmax + cross-entropy +
//     its gradient in one kernel over the gathered masked rows only;
//   - the optimizer step (norm, then clipping + AdamW + the bf16 copy in one kernel) runs on the
//     device; the host reads back only the scalars it logs (loss, correct count, gradient norm;
//     for the classifier the hard and soft loss sums and the correct and agreeing counts), and
//     logits only when asked. A training step's forwards (train_forward_*) leave their sums on the
//     device and optimizer_step reads them with the norm: one copy and one wait per step;
//   - batches go up from page-locked staging buffers, results come down through reused buffers;
//   - the model belongs to the device that was current when it was made: every call runs there;
//   - NVTX ranges mark the embeddings, each layer's attention and FFN, the head, the backward
//     pass and the optimizer, for Nsight Systems.
// Dropout masks are the CPU's (kernels/dropout.h), so with the same seed both paths drop the
// same elements.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "model/bert.h"
#include "model/training.h"

namespace wr::cuda {

enum class Precision { fp32, bf16 };
Precision parse_precision(const std::string& name, const std::string& where);  // "fp32" | "bf16"
const char* precision_name(Precision p);

class BertModelCuda {
  public:
    BertModelCuda(const BertConfig& config, Precision precision);
    ~BertModelCuda();
    BertModelCuda(const BertModelCuda&) = delete;
    BertModelCuda& operator=(const BertModelCuda&) = delete;

    // Parameters and AdamW moments to and from host buffers of layout.total() floats.
    void set_params(const float* host);
    void get_params(float* host) const;
    void get_grads(float* host) const;
    void set_moments(const float* m, const float* v);
    void get_moments(float* m, float* v) const;

    // As BertModel: the inputs are host arrays (copied to the device here). The result is read
    // back at once (one wait): for evaluation and tests.
    MlmResult forward_mlm(const MlmInputs& in, bool train, uint64_t dropout_seed);
    void backward_mlm();
    // The classifier head (config.num_labels = K >= 1): pooler on [CLS], dropout, linear; the
    // hard loss (cross-entropy with ignore index, or squared error for K = 1) and, with teacher
    // logits, the soft loss at the temperature, as BertModel::forward_classify / backward_classify.
    ClsResult forward_classify(const ClsInputs& in, bool train, uint64_t dropout_seed);
    void backward_classify();
    // A training step's forwards (dropout on): as forward_mlm / forward_classify with train = true,
    // without waiting for the result. Its sums stay on the device; optimizer_step returns it.
    void train_forward_mlm(const MlmInputs& in, uint64_t dropout_seed);
    void train_forward_classify(const ClsInputs& in, uint64_t dropout_seed);
    void zero_grads();
    void average_grads(int micro_batches);  // grads /= micro_batches (as the CPU loop does)
    void all_reduce_grads();                // data-parallel: the sum of every rank's gradients (kernels/nccl.cuh)

    // One optimizer update on the device: norm -> clip -> AdamW (as Optimizer::step on the CPU),
    // clipping and the bf16 copy inside the AdamW kernel. The settings come from the host
    // Optimizer, which counts the step (see model/engine.h). Then the one read of the step: the
    // gradient norm and the results of the train_forward_* calls since the last step.
    StepResults optimizer_step(const Optimizer& optimizer);

    // The last forward's logits at the masked positions [M,V] (valid until backward_mlm, which
    // overwrites them with their gradient), the last forward_classify's logits [B,K] (backward
    // leaves them), and the encoder output [B,T,C], as floats (each a download).
    std::vector<float> mlm_logits() const;
    std::vector<float> cls_logits() const;
    std::vector<float> encoder_output() const;

    // The largest |x| over the device buffers' padding (parameters, gradients, AdamW moments and
    // the bf16 copy, outside the host's tensors: model/device_layout.h); 0 while the padding is as
    // it must be. For tests: it downloads every buffer.
    float padding_max_abs() const;

    BertConfig config;
    ParamLayout layout;  // the host layout every host buffer of this interface has
    Precision precision;

    struct State;  // device buffers, defined in model/bert_cuda.cu

  private:
    std::unique_ptr<State> s_;
};

}  // namespace wr::cuda
