// tests/test_device_layout.cpp: the GPU's padded parameter layout (model/device_layout.h), which
// the GPU model copies parameters, gradients and moments through, and the update spans its AdamW
// runs over, checked on the CPU: every tensor starts on a 64-element boundary, the decoder's
// output dimension is padded to a multiple of 64 with the MLM head only, host tensors map to the
// starts of their device slots without overlap, and AdamW's spans cover exactly the real elements
// with the host's decay choices. Also the CPU's update_spans (kernels/optimizer.h).
#include <gtest/gtest.h>

#include <vector>

#include "kernels/optimizer.h"
#include "model/bert.h"
#include "model/device_layout.h"
#include "test_helpers.h"

using namespace wr;

namespace {

BertConfig config(int hidden, int heads, int ffn, int vocab, int labels) {
    BertConfig c;
    c.num_layers = 3, c.hidden = hidden, c.num_heads = heads, c.ffn = ffn, c.vocab_size = vocab, c.max_positions = 37;
    c.num_labels = labels;
    c.validate("test");
    return c;
}

// Every structural property, for any layout.
void check_layout(const BertConfig& c) {
    const ParamLayout host(c);
    const DeviceLayout dev(host);
    const std::string what = c.describe() + (c.num_labels ? " classifier" : " MLM");
    ASSERT_EQ(dev.tensors().size(), host.tensors().size()) << what;
    ASSERT_EQ(dev.copies().size(), host.tensors().size()) << what;
    const int64_t V = c.vocab_size;
    const int64_t Vp = c.num_labels == 0 ? (V + 63) / 64 * 64 : V;
    EXPECT_EQ(dev.vocab_rows(), Vp) << what;
    int64_t slot_end = 0;  // end of the previous slot's real elements
    std::vector<char> real((size_t)dev.total(), 0);
    for (size_t i = 0; i < host.tensors().size(); i++) {
        const TensorSpec &h = host.tensors()[i], &d = dev.tensors()[i];
        const DeviceLayout::Copy& copy = dev.copies()[i];
        EXPECT_EQ(d.name, h.name) << what;
        EXPECT_EQ(d.offset % kDeviceAlign, 0) << what << ": " << d.name << " starts at " << d.offset;
        EXPECT_GE(d.offset, slot_end) << what << ": " << d.name << " overlaps the tensor before it";
        EXPECT_EQ(copy.host_offset, h.offset) << what << ": " << h.name;
        EXPECT_EQ(copy.device_offset, d.offset) << what << ": " << h.name;
        EXPECT_EQ(copy.count, h.numel) << what << ": " << h.name;
        const bool padded_rows = c.num_labels == 0 && (h.name == "embeddings.word" || h.name == "mlm_head.bias");
        std::vector<int64_t> shape = h.shape;
        if (padded_rows) shape[0] = Vp;
        EXPECT_EQ(d.shape, shape) << what << ": " << h.name;
        EXPECT_EQ(d.numel, padded_rows ? h.numel / V * Vp : h.numel) << what << ": " << h.name;
        EXPECT_EQ(d.weight_decay, h.weight_decay) << what << ": " << h.name;
        EXPECT_LE(d.offset + d.numel, dev.total()) << what << ": " << h.name;
        slot_end = d.offset + d.numel;
        for (int64_t k = 0; k < h.numel; k++) real[(size_t)(d.offset + k)] = h.weight_decay ? 2 : 1;
    }
    EXPECT_EQ(dev.total() % kDeviceAlign, 0) << what;
    EXPECT_EQ(dev.find_optional("embeddings.word"), &dev.tensors()[0]) << what;
    EXPECT_EQ(dev.find_optional("no such tensor"), nullptr) << what;

    // AdamW's spans: sorted, disjoint, exactly the real elements, decaying as the host decides.
    const UpdateSpans spans = dev.update_spans(host.decay_ranges());
    std::vector<char> covered((size_t)dev.total(), 0);
    int64_t previous_end = 0;
    for (const UpdateSpan& s : spans) {
        EXPECT_LT(s.begin, s.end) << what;
        EXPECT_GE(s.begin, previous_end) << what << ": spans out of order or overlapping";
        previous_end = s.end;
        for (int64_t k = s.begin; k < s.end; k++) covered[(size_t)k] = s.decay ? 2 : 1;
    }
    EXPECT_EQ(covered, real) << what << ": the spans must be the real elements, with their decay";
}

}  // namespace

TEST(DeviceLayout, PresetsAndOddWidthsArePaddedAndAligned) {
    check_layout(bert_preset("tiny", 30522));
    check_layout(bert_preset("base", 30522));
    check_layout(config(60, 1, 150, 97, 0));     // width 60, an odd feed-forward size, V < 64
    check_layout(config(100, 2, 333, 1001, 0));  // width 100
    check_layout(config(64, 2, 128, 128, 0));    // V already a multiple of 64: no padding rows
    check_layout(config(60, 2, 150, 97, 3));     // a classifier: no decoder, V not padded
}

TEST(DeviceLayout, DecoderRowsArePaddedToAMultipleOf64) {
    const BertConfig c = bert_preset("tiny", 30522);
    const DeviceLayout dev{ParamLayout(c)};
    EXPECT_EQ(dev.vocab_rows(), 30528);
    EXPECT_EQ(dev.find_optional("embeddings.word")->shape, (std::vector<int64_t>{30528, c.hidden}));
    EXPECT_EQ(dev.find_optional("mlm_head.bias")->shape, (std::vector<int64_t>{30528}));
    // Width 60: every host offset is a multiple of 60 but not of 64; the device's are.
    const ParamLayout odd(config(60, 1, 150, 97, 0));
    const DeviceLayout odd_dev(odd);
    int unaligned = 0;
    for (const TensorSpec& t : odd.tensors()) unaligned += t.offset % 8 != 0;
    EXPECT_GT(unaligned, 0) << "this width's host layout has tensors off 16-byte (8 bf16) boundaries: the case for padding";
    for (const TensorSpec& t : odd_dev.tensors()) EXPECT_EQ(t.offset % 64, 0) << t.name;
}

TEST(DeviceLayout, DecayRangeOverPartOfATensorIsRefused) {
    const ParamLayout host(config(64, 2, 128, 97, 0));
    const DeviceLayout dev(host);
    const TensorSpec& qkv = host.find("layers.qkv_w");
    EXPECT_ERROR_MENTIONS(dev.update_spans({{qkv.offset, qkv.offset + 10}}), "layers.qkv_w", "part");
    // No decay at all: one span per run of touching tensors, none decaying.
    for (const UpdateSpan& s : dev.update_spans({})) EXPECT_FALSE(s.decay);
}

TEST(Optimizer, UpdateSpansCutTheBufferAtTheDecayRanges) {
    const UpdateSpans spans = update_spans({{0, 10}, {10, 20}, {30, 40}}, 50);
    const std::vector<std::vector<int64_t>> want = {{0, 10, 1}, {10, 20, 1}, {20, 30, 0}, {30, 40, 1}, {40, 50, 0}};
    ASSERT_EQ(spans.size(), want.size());
    for (size_t i = 0; i < want.size(); i++) {
        EXPECT_EQ(spans[i].begin, want[i][0]);
        EXPECT_EQ(spans[i].end, want[i][1]);
        EXPECT_EQ(spans[i].decay, want[i][2] == 1);
    }
    EXPECT_EQ(update_spans({}, 5).size(), 1u);
    EXPECT_TRUE(update_spans({}, 0).empty());
    EXPECT_THROW(update_spans({{10, 20}, {15, 30}}, 40), Error);
    EXPECT_THROW(update_spans({{10, 50}}, 40), Error);
}
