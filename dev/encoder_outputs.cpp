// dev/encoder_outputs.cpp: runs the CPU model's encoder on given token ids and writes its output,
// for comparisons against other implementations (dev/check_minilm.py: transformers on the same
// imported weights). A dev tool, not a test.
//
//   build/encoder_outputs --checkpoint CK.bin --inputs IN.bin --out OUT.bin [--vocab vocab.txt] [--threads N]
//
// IN.bin is a WRTENSOR file (common/tensor_file.h) with int32 input_ids [B,T], token_types [B,T]
// and lengths [B] (valid tokens per row; the rest is padding). OUT.bin gets float32
// encoder_output [B,T,C] (the last layer's output at every position; padded rows are computed
// attending to the valid keys only) and, for a classifier checkpoint, logits [B,K]. The model is
// built from the checkpoint's config and head: an MLM checkpoint runs forward_mlm with no masked
// positions, a classifier forward_classify with no labels; dropout off. With --vocab, the
// checkpoint's vocabulary fingerprint must be that vocabulary's.
#include <omp.h>

#include <cstdio>
#include <string>
#include <vector>

#include "common/flags.h"
#include "common/tensor_file.h"
#include "common/util.h"
#include "data/tokenizer.h"
#include "model/bert.h"
#include "model/checkpoint.h"

using namespace wr;

int main(int argc, char** argv) {
    std::string checkpoint, inputs, out, vocab;
    int threads = 0;
    Flags flags("encoder_outputs", "Writes the encoder output of a checkpoint on given token ids (WRTENSOR in and out).");
    flags.add("checkpoint", &checkpoint, "a wellread checkpoint (MLM or classifier)");
    flags.add("inputs", &inputs, "WRTENSOR file: input_ids [B,T], token_types [B,T], lengths [B] (int32)");
    flags.add("out", &out, "WRTENSOR file to write: encoder_output [B,T,C] (and logits [B,K] for a classifier)");
    flags.add("vocab", &vocab, "optional vocab.txt whose fingerprint the checkpoint must have");
    flags.add("threads", &threads, "OpenMP threads (0: all cores)");
    try {
        flags.parse(argc, argv);
        if (checkpoint.empty() || inputs.empty() || out.empty()) throw Error("<flag>: --checkpoint, --inputs and --out are required");
        if (threads > 0) omp_set_num_threads(threads);

        const Checkpoint ck = load_checkpoint(checkpoint);
        const uint64_t fingerprint = vocab.empty() ? ck.vocab_fingerprint : Tokenizer::load(vocab).fingerprint();
        BertModel model(ck.config);  // the checkpoint's head: ck.config.num_labels
        load_into(model, ck, fingerprint);

        const TensorFile in = TensorFile::load(inputs);
        const Tensor& ids = in.get("input_ids");
        if (ids.dtype != Tensor::DType::I32 || ids.shape.size() != 2) fail(inputs, "input_ids", "must be int32 [B,T]");
        const int B = (int)ids.shape[0], T = (int)ids.shape[1], C = model.config.hidden, K = model.config.num_labels;
        const std::vector<int32_t>& types = in.i32("token_types");
        const std::vector<int32_t>& lengths = in.i32("lengths");
        if (types.size() != ids.i32.size()) fail(inputs, "token_types", "must have the shape of input_ids");
        if (lengths.size() != (size_t)B) fail(inputs, "lengths", "must have B = " + std::to_string(B) + " entries");

        const double t0 = now_seconds();
        if (K == 0) {
            MlmInputs batch;
            batch.B = B, batch.T = T, batch.input_ids = ids.i32.data(), batch.token_types = types.data();
            batch.lengths = lengths.data();  // M = 0: the encoder only
            model.forward_mlm(batch, /*train=*/false, 0);
        } else {
            ClsInputs batch;
            batch.B = B, batch.T = T, batch.input_ids = ids.i32.data(), batch.token_types = types.data();
            batch.lengths = lengths.data();  // no labels: no loss
            model.forward_classify(batch, /*train=*/false, 0);
        }
        const double seconds = now_seconds() - t0;

        TensorFile result;
        Tensor hidden;
        hidden.shape = {B, T, C};
        hidden.f32.assign(model.encoder_output(), model.encoder_output() + (size_t)B * T * C);
        result.put("encoder_output", std::move(hidden));
        if (K > 0) {
            Tensor logits;
            logits.shape = {B, K};
            logits.f32.assign(model.cls_logits(), model.cls_logits() + (size_t)B * K);
            result.put("logits", std::move(logits));
        }
        result.save(out);
        std::printf("%s: %s, %d x %d tokens in %.3f s -> %s\n", checkpoint.c_str(), model.config.describe().c_str(), B, T,
                    seconds, out.c_str());
    } catch (const Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
