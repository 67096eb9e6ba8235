// common/schedule.h: the learning rate at each optimizer step: linear warmup from 0, then a
// linear or cosine decay to a final fraction of the peak. One schedule for all three programs.
//
// With s = the step's index (0 for the first update, as the step counter of Hugging Face's
// LambdaLR), W = warmup_steps, S = total_steps, f = final_fraction:
//   warmup (s < W):  lr = peak * s / W                      (so the very first update has lr 0)
//   after:           p  = min(1, (s - W) / (S - W))         (progress of the decay, 0 -> 1;
//                                                            p = 1 when S <= W)
//                    linear: lr = peak * (1 - (1 - f) * p)
//                    cosine: lr = peak * (f + (1 - f) * 0.5 * (1 + cos(pi * p)))
// With f = 0 these are exactly Hugging Face's get_linear_schedule_with_warmup
// (peak * max(0, (S - s) / (S - W))) and get_cosine_schedule_with_warmup (num_cycles = 0.5).
// The rate reaches f * peak at s = S and stays there for any step beyond (HF's cosine would
// rise again after S; a run never goes there).
#pragma once
#include <cstdint>
#include <string>

namespace wr {

enum class LrDecay { Linear, Cosine };

// "linear" or "cosine"; anything else throws wr::Error naming `flag` (e.g. "--schedule").
LrDecay parse_lr_decay(const std::string& name, const std::string& flag = "--schedule");
const char* lr_decay_name(LrDecay decay);

struct LrSchedule {
    double peak = 1e-4;
    int64_t warmup_steps = 0;   // W >= 0
    int64_t total_steps = 1;    // S >= 1
    LrDecay decay = LrDecay::Linear;
    double final_fraction = 0;  // f in [0, 1]

    void check() const;             // throws wr::Error naming the bad field
    double at(int64_t step) const;  // lr for step index s >= 0 (formula above)
};

}  // namespace wr
