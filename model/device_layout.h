// model/device_layout.h: where the GPU model (model/bert_cuda.cuh) keeps the parameters, their
// gradients, the AdamW moments and the bf16 copy: the host's ParamLayout (model/bert.h), tensor for
// tensor in the same order, with two kinds of zero padding the host never sees:
//   - every tensor starts on a multiple of kDeviceAlign = 64 elements (256 bytes of fp32, 128 of
//     bf16), so every tensor's base is 16-byte aligned for vector loads and cuBLASLt;
//   - with the MLM head, the decoder's output dimension is padded from V to Vp, the next multiple of
//     64: the word embeddings get Vp rows and the MLM bias Vp entries (V = 30522 is not a multiple
//     of 8, which rules out Hopper's fastest GEMM kernels). The decoder then makes [M, Vp] logits;
//     the loss ignores the Vp - V extra ones (kernels/cross_entropy.cuh) and writes them a zero
//     gradient, so the padding rows get zero gradients and stay zero.
// A host tensor of n elements is the first n elements of its device slot (the word embeddings'
// V rows, then the padding rows). Checkpoints, the host model and the optimizer's host buffers
// keep the host layout; the GPU model copies tensor by tensor between the two (copies()).
// AdamW touches only the real elements (update_spans), never the padding.
// Plain C++, so that the layout is tested on any machine.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/optimizer.h"
#include "model/bert.h"

namespace wr {

constexpr int64_t kDeviceAlign = 64;  // elements; every device tensor starts on a multiple
constexpr int kVocabAlign = 64;       // the decoder's padded output dimension is a multiple of this

class DeviceLayout {
  public:
    explicit DeviceLayout(const ParamLayout& host);

    // The device's tensors: the host's names, in the host's order, with device offsets; the word
    // embeddings are [Vp, C] and the MLM bias [Vp] (numel counts the padding rows).
    const std::vector<TensorSpec>& tensors() const { return tensors_; }
    const TensorSpec* find_optional(const std::string& name) const;  // null if absent (BertWeightsOf::view)
    int64_t total() const { return total_; }  // elements of each device buffer, padding included
    int vocab_rows() const { return vocab_rows_; }  // Vp (V when the layout has no MLM head)

    // One contiguous host range and where it lives on the device, one per tensor.
    struct Copy {
        int64_t host_offset = 0, device_offset = 0, count = 0;
    };
    const std::vector<Copy>& copies() const { return copies_; }

    // The spans AdamW updates: every tensor's real elements, decaying where the host's decay ranges
    // (over the host layout) cover the tensor, merged where they touch. A range that covers part of
    // a tensor is an error (wr::Error): decay is decided per tensor.
    UpdateSpans update_spans(const DecayRanges& host_decay_ranges) const;

  private:
    std::vector<TensorSpec> tensors_;
    std::vector<Copy> copies_;
    int64_t total_ = 0;
    int vocab_rows_ = 0;
};

}  // namespace wr
