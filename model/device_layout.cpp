// model/device_layout.cpp: the GPU's padded parameter layout (what and why: device_layout.h).
#include "model/device_layout.h"

#include "common/util.h"

namespace wr {

namespace {
int64_t round_up(int64_t x, int64_t multiple) { return (x + multiple - 1) / multiple * multiple; }
}  // namespace

DeviceLayout::DeviceLayout(const ParamLayout& host) {
    const TensorSpec* bias = host.find_optional("mlm_head.bias");
    const int64_t V = host.find("embeddings.word").shape[0];
    vocab_rows_ = (int)(bias ? round_up(V, kVocabAlign) : V);
    for (const TensorSpec& h : host.tensors()) {
        TensorSpec d = h;
        if (bias && (h.name == "embeddings.word" || h.name == "mlm_head.bias")) {
            d.shape[0] = vocab_rows_;
            d.numel = h.numel / V * vocab_rows_;
        }
        d.offset = total_;
        total_ = round_up(d.offset + d.numel, kDeviceAlign);
        copies_.push_back({h.offset, d.offset, h.numel});
        tensors_.push_back(std::move(d));
    }
}

const TensorSpec* DeviceLayout::find_optional(const std::string& name) const {
    for (const TensorSpec& t : tensors_)
        if (t.name == name) return &t;
    return nullptr;
}

UpdateSpans DeviceLayout::update_spans(const DecayRanges& host_decay_ranges) const {
    UpdateSpans spans;
    for (size_t i = 0; i < copies_.size(); i++) {
        const Copy& c = copies_[i];
        const int64_t begin = c.host_offset, end = c.host_offset + c.count;
        bool decay = false;
        for (const ParamRange& r : host_decay_ranges) {
            if (r.end <= begin || r.begin >= end) continue;  // no overlap
            if (r.begin > begin || r.end < end)
                throw Error("internal: a weight-decay range [" + std::to_string(r.begin) + ", " + std::to_string(r.end) +
                            ") covers only part of the tensor " + tensors_[i].name);
            decay = true;
        }
        if (c.count == 0) continue;
        if (!spans.empty() && spans.back().end == c.device_offset && spans.back().decay == decay) spans.back().end += c.count;
        else spans.push_back({c.device_offset, c.device_offset + c.count, decay});
    }
    return spans;
}

}  // namespace wr
