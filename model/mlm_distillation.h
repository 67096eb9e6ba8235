// model/mlm_distillation.h: distill's --mlm mode, MLM-logit distillation, as the two commands the
// distill program hands its parsed flags to:
//   MlmCacheOptions, mlm_distill_cache   distill cache --mlm: an MLM teacher's top-k logits at the
//                                        masked positions of token shards, written once to a cache
//   MlmTrainOptions, mlm_distill_train   distill train --mlm: a student MLM trained on that cache
// (the teachers, students and batches it shares with the classifier mode: model/distillation.h).
// Both run on the CPU; the program applies --device first (it refuses cuda).
//
// MLM-logit distillation is task-agnostic (DistilBERT's soft MLM loss). An MLM teacher runs
// once over token shards at fixed masks (`distill cache --mlm`), and the cache keeps, per masked
// position, the position, the id the teacher saw, the original token and the teacher's top-k
// logits (data/logit_cache.h, kind MlmTopK). A student MLM then learns from those
// (`distill train --mlm`): at each masked position the soft cross-entropy against the teacher's
// top-k distribution (kernels/cross_entropy.h, soft_topk_cross_entropy_*), plus --label-weight
// times the ordinary MLM cross-entropy. The student is an MLM checkpoint (train_mlm --init and
// finetune --init take it). CPU only: the top-k soft cross-entropy has no CUDA kernel yet.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common/flags.h"
#include "model/distillation.h"
#include "model/engine.h"

namespace wr {

// The built-in MLM pipeline's files: ./prepare default (run by make) writes the shards, ./train_mlm
// the teacher.
inline const std::vector<std::string> kDefaultMlmShards = {"build/default/mlm/train_*.bin"};
inline const std::string kDefaultMlmTeacher = "runs/default_mlm/best.bin", kDefaultMlmCache = "runs/default_distill_mlm/teacher_topk.bin",
                         kDefaultMlmStudent = "runs/default_distill_mlm/student";

// ---- distill cache --mlm ----

struct MlmCacheOptions {
    std::string teacher = kDefaultMlmTeacher, vocab, out = kDefaultMlmCache;
    std::vector<std::string> transfer = kDefaultMlmShards;
    bool mlm = true, fp16 = false, whole_word = false, overwrite = false;
    int topk = 32, seq_len = 128, batch = 32;
    int64_t chunk = 16384;
    uint64_t mask_seed = 1;
    DeviceOptions device;

    void add_flags(Flags& f);
};

// Runs the teacher over the shards at the masks of (--mask-seed, sequence index) and writes its
// top k per masked position (resumable: a .partial cache is continued where it stopped; an
// up-to-date cache is left as it is). Returns the exit status: 0, or 130 when Ctrl-C stopped it.
int mlm_distill_cache(const MlmCacheOptions& o);

// ---- distill train --mlm ----

struct MlmTrainOptions : StudentOptions {
    std::string cache = kDefaultMlmCache, teacher = kDefaultMlmTeacher, vocab;
    std::vector<std::string> transfer = kDefaultMlmShards;
    bool mlm = true;
    double heldout = 0.05;

    MlmTrainOptions() { out = kDefaultMlmStudent, optimizer.lr = 1e-3; }

    void add_flags(Flags& f);
};

// Trains the student (from --init, --from-teacher or random; a --resume run from its newest
// checkpoint) on the cache, evaluating on the held-out sequences and keeping best.bin by the
// held-out soft loss. Returns the exit status: 0, or 130 when Ctrl-C stopped it.
int mlm_distill_train(const MlmTrainOptions& o);

}  // namespace wr
