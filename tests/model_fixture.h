// tests/model_fixture.h: the PyTorch reference fixture of the whole model (written by
// dev/bert_reference.py: Hugging Face BertForMaskedLM in double precision): its config, weights
// and batch, shared by the CPU model tests (test_model.cpp) and the GPU ones (test_cuda_model.cu).
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/tensor_file.h"
#include "model/bert.h"

namespace wr::testing {

inline constexpr const char* kFixture = "tests/fixtures/bert/mlm_reference.bin";

// ||a - b|| / ||b||: the relative error the parity tests state their tolerances in.
inline double relative_error(const float* a, const float* b, int64_t n) {
    double diff = 0, ref = 0;
    for (int64_t i = 0; i < n; i++) {
        diff += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        ref += (double)b[i] * b[i];
    }
    return std::sqrt(diff) / std::max(std::sqrt(ref), 1e-30);
}

struct MlmFixture {
    TensorFile file = TensorFile::load(kFixture);
    BertConfig config;
    MlmInputs inputs;

    MlmFixture() {
        const auto& c = file.i32("config");
        config.num_layers = c[0], config.hidden = c[1], config.num_heads = c[2], config.ffn = c[3];
        config.vocab_size = c[4], config.max_positions = c[5], config.type_vocab = c[6];
        config.hidden_dropout = config.attention_dropout = 0;
        const Tensor& ids = file.get("input_ids");
        inputs.B = (int)ids.shape[0];
        inputs.T = (int)ids.shape[1];
        inputs.input_ids = ids.i32.data();
        inputs.token_types = file.i32("token_types").data();
        inputs.lengths = file.i32("lengths").data();
        inputs.M = (int)file.i32("masked_positions").size();
        inputs.masked_positions = file.i32("masked_positions").data();
        inputs.masked_targets = file.i32("masked_targets").data();
    }

    // The fixture's weights into a buffer laid out by `layout` (a model's params).
    void load_weights(const ParamLayout& layout, float* params) const {
        for (const TensorSpec& t : layout.tensors()) {
            const Tensor& ref = file.get("param." + t.name);
            ASSERT_EQ(ref.shape, t.shape) << t.name;
            std::memcpy(params + t.offset, ref.f32.data(), sizeof(float) * t.numel);
        }
    }
    void load_weights(BertModel& model) const { load_weights(model.layout, model.params.data()); }
};

}  // namespace wr::testing
