// common/schedule.cpp: the learning-rate schedule; the formula is in common/schedule.h.
#include "common/schedule.h"

#include <algorithm>
#include <cmath>

#include "common/util.h"

namespace wr {

LrDecay parse_lr_decay(const std::string& name, const std::string& flag) {
    if (name == "linear") return LrDecay::Linear;
    if (name == "cosine") return LrDecay::Cosine;
    throw Error(flag + ": '" + name + "' is not a schedule: use linear or cosine");
}

const char* lr_decay_name(LrDecay decay) { return decay == LrDecay::Cosine ? "cosine" : "linear"; }

void LrSchedule::check() const {
    auto bad = [](const std::string& field, const std::string& what) {
        throw Error("learning-rate schedule: " + field + " " + what);
    };
    if (!(peak >= 0) || !std::isfinite(peak)) bad("peak", std::to_string(peak) + " must be finite and >= 0");
    if (warmup_steps < 0) bad("warmup_steps", std::to_string(warmup_steps) + " must be >= 0");
    if (total_steps < 1) bad("total_steps", std::to_string(total_steps) + " must be >= 1");
    if (!(final_fraction >= 0 && final_fraction <= 1))
        bad("final_fraction", std::to_string(final_fraction) + " must be in [0, 1]");
}

double LrSchedule::at(int64_t step) const {
    const double s = (double)std::max<int64_t>(step, 0);
    const double W = (double)warmup_steps, S = (double)total_steps, f = final_fraction;
    if (s < W) return peak * s / W;
    // S <= W: no decay phase; the rate is already at its end (Hugging Face's linear gives 0 there).
    const double progress = S > W ? std::min(1.0, (s - W) / (S - W)) : 1.0;
    if (decay == LrDecay::Cosine) return peak * (f + (1 - f) * 0.5 * (1 + std::cos(M_PI * progress)));
    return peak * (1 - (1 - f) * progress);
}

}  // namespace wr
