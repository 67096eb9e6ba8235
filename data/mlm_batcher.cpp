// data/mlm_batcher.cpp: cutting token shards into [CLS] window [SEP] sequences, the per-epoch
// shuffle, BERT masking (token or whole-word) and the saved state. The design is at the top of
// data/mlm_batcher.h and in docs/mlm_batches.md.
//
// Where a shard's sequence comes from: documents d = 0 .. D-1 with tokens [b_d, e_d) of the
// shard. In the stream, document d starts at position b_d + d (one [SEP] before it per earlier
// document) and its separator sits at e_d + d (d < D-1). Stream length = tokens + D - 1, cut into
// windows of T - 2: window w = stream positions [w (T-2), min((w+1)(T-2), length)).
#include "data/mlm_batcher.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/random.h"
#include "common/util.h"

namespace wr {
namespace {

// ---- Random numbers --------------------------------------------------------------------------

// splitmix64: the state advances by a constant; each output is a strong mix of the state.
struct SplitMix64 {
    uint64_t state;
    explicit SplitMix64(uint64_t seed) : state(seed) {}
    uint64_t next() {
        return splitmix64_next(state);
    }
    // Integer in [0, n): the 64x64 -> 128-bit product's high half (bias below n / 2^64).
    uint64_t below(uint64_t n) { return (uint64_t)(((unsigned __int128)next() * n) >> 64); }
    // Double in [0, 1) from the top 53 bits: exact, the same everywhere.
    double uniform() { return (double)(next() >> 11) * 0x1.0p-53; }
};

// What a stream is for; each (seed, purpose, a, b) names an independent stream.
enum Purpose : uint64_t { kOrder = 1, kTrainingMasks = 2, kValidationMasks = 3 };

uint64_t stream_seed(uint64_t seed, Purpose purpose, uint64_t a, uint64_t b = 0) {
    SplitMix64 r1(seed ^ (purpose * 0xD1B54A32D192ED03ULL));
    SplitMix64 r2(r1.next() ^ a);
    SplitMix64 r3(r2.next() ^ b);
    return r3.next();
}

[[noreturn]] void bad_option(const std::string& field, const std::string& what) { fail("<flag>", field, what); }

// ---- State bytes -----------------------------------------------------------------------------

constexpr char kStateMagic[8] = {'W', 'R', 'M', 'L', 'M', 'P', 'O', 'S'};

}  // namespace

void MlmBatch::rows(int first, int count, MlmBatch& out) const {
    const int64_t begin = (int64_t)first * T, end = (int64_t)(first + count) * T;
    out.B = count, out.T = T;
    out.input_ids.assign(input_ids.begin() + begin, input_ids.begin() + end);
    out.token_types.assign(token_types.begin() + begin, token_types.begin() + end);
    out.mlm_targets.assign(mlm_targets.begin() + begin, mlm_targets.begin() + end);
    out.lengths.assign(lengths.begin() + first, lengths.begin() + first + count);
    out.sequence_index.assign(sequence_index.begin() + first, sequence_index.begin() + first + count);
    out.masked_positions.clear(), out.masked_targets.clear();
    for (size_t i = 0; i < masked_positions.size(); i++)  // ascending: the rows' positions are one run
        if (masked_positions[i] >= begin && masked_positions[i] < end) {
            out.masked_positions.push_back((int32_t)(masked_positions[i] - begin));
            out.masked_targets.push_back(masked_targets[i]);
        }
}

int64_t MlmBatch::token_count() const {
    int64_t total = 0;
    for (int32_t n : lengths) total += n;
    return total;
}

std::string MlmBatcherState::to_bytes() const { return encode_loader_state(*this, kStateMagic); }

MlmBatcherState MlmBatcherState::from_bytes(const std::string& bytes, const std::string& source) {
    MlmBatcherState s;
    static_cast<LoaderState&>(s) = decode_loader_state(bytes, kStateMagic, "mlm_batcher_state", source);
    return s;
}

// ---- Construction ----------------------------------------------------------------------------

MlmBatcher::MlmBatcher(const std::vector<std::string>& shard_paths, const Tokenizer& vocab,
                       const MlmBatcherOptions& options)
    : options_(options), pad_id_(vocab.pad_id), cls_id_(vocab.cls_id), sep_id_(vocab.sep_id), mask_id_(vocab.mask_id) {
    const MlmBatcherOptions& o = options_;
    if (shard_paths.empty()) throw Error("MLM batcher: no token shards given (the list of shard paths is empty)");
    if (o.seq_len < 3)
        bad_option("seq_len", "is " + std::to_string(o.seq_len) + ", an MLM sequence needs at least 3 tokens ([CLS], one token, [SEP])");
    if (o.batch_size < 1) bad_option("batch_size", "is " + std::to_string(o.batch_size) + ", must be at least 1");
    if ((int64_t)o.batch_size * o.seq_len > INT32_MAX)
        bad_option("batch_size", "batch_size x seq_len = " + std::to_string((int64_t)o.batch_size * o.seq_len) +
                                     " positions do not fit the int32 flat indices");
    if (!(o.mask_fraction > 0 && o.mask_fraction <= 1))
        bad_option("mask_fraction", "is " + std::to_string(o.mask_fraction) + ", must be in (0, 1]");
    if (!(o.mask_token_fraction >= 0 && o.random_token_fraction >= 0 && o.mask_token_fraction + o.random_token_fraction <= 1))
        bad_option("mask_token_fraction", "[MASK] " + std::to_string(o.mask_token_fraction) + " and random " +
                                              std::to_string(o.random_token_fraction) +
                                              " fractions must be >= 0 with a sum of at most 1");

    const int V = vocab.vocab_size();
    is_special_.assign(V, 0);
    for (int id : {vocab.pad_id, vocab.unk_id, vocab.cls_id, vocab.sep_id, vocab.mask_id}) is_special_[id] = 1;
    is_continuation_.assign(V, 0);
    for (int id = 0; id < V; id++) {
        const std::string& t = vocab.token(id);
        is_continuation_[id] = !is_special_[id] && t.size() > 2 && t[0] == '#' && t[1] == '#';
        if (!is_special_[id]) random_ids_.push_back(id);
    }
    if (random_ids_.empty()) fail(vocab.source(), "vocab_size", "the vocabulary has only special tokens");

    for (const std::string& path : shard_paths) {
        shards_.emplace_back(path, &vocab);  // validates the shard and its vocabulary
        const TokenShard& shard = shards_.back();
        if (shard.token_count() == 0)
            fail(path, "token_count", "is 0: the shard has no tokens to cut MLM sequences from");
        ShardLayout l;
        l.stream_length = shard.token_count() + shard.doc_count() - 1;
        l.first_sequence = sequence_count_;
        l.sequences = (l.stream_length + (o.seq_len - 2) - 1) / (o.seq_len - 2);
        layout_.push_back(l);
        sequence_count_ += l.sequences;
    }
    setup_ = setup_fingerprint();
}

// Everything that decides what sequence i is and how it may be masked, except the seed: the
// vocabulary, each shard's sizes, T and the masking options. Not the batch size (a resumed run may
// change it) nor the paths (the data may move).
uint64_t MlmBatcher::setup_fingerprint() const {
    uint64_t h = fnv1a64("wellread mlm batcher", 20);
    auto add = [&h](auto value) { h = fnv1a64(&value, sizeof value, h); };
    add(shards_[0].vocab_fingerprint());
    add((int64_t)shards_.size());
    for (const TokenShard& s : shards_) {
        add(s.token_count());
        add(s.doc_count());
    }
    add((int32_t)options_.seq_len);
    add((int32_t)options_.whole_word);
    add(options_.mask_fraction);
    add(options_.mask_token_fraction);
    add(options_.random_token_fraction);
    return h;
}

// ---- Sequences -------------------------------------------------------------------------------

void MlmBatcher::sequence(int64_t index, std::vector<int32_t>& ids) const {
    if (index < 0 || index >= sequence_count_)
        throw Error("MLM batcher: sequence " + std::to_string(index) + " out of range [0, " +
                    std::to_string(sequence_count_) + ")");
    // The shard: the last one whose first sequence is <= index.
    const auto after = std::upper_bound(layout_.begin(), layout_.end(), index,
                                        [](int64_t i, const ShardLayout& l) { return i < l.first_sequence; });
    const size_t s = (size_t)(after - layout_.begin()) - 1;
    const TokenShard& shard = shards_[s];
    const int64_t window = options_.seq_len - 2;
    const int64_t begin = (index - layout_[s].first_sequence) * window;
    const int64_t end = std::min(begin + window, layout_[s].stream_length);

    ids.resize(end - begin + 2);
    int32_t* out = ids.data();
    *out++ = cls_id_;
    // The document holding stream position `begin`: the last d with b_d + d <= begin.
    int64_t lo = 0, hi = shard.doc_count() - 1;
    while (lo < hi) {
        const int64_t mid = (lo + hi + 1) / 2;
        if (shard.doc_begin(mid) + mid <= begin) lo = mid;
        else hi = mid - 1;
    }
    int64_t d = lo;
    for (int64_t p = begin; p < end;) {
        const int64_t doc_stream_begin = shard.doc_begin(d) + d, doc_stream_end = shard.doc_end(d) + d;
        if (p < doc_stream_end) {  // inside document d
            const int64_t n = std::min(end, doc_stream_end) - p;
            shard.read(shard.doc_begin(d) + (p - doc_stream_begin), n, out);
            out += n;
            p += n;
        } else {  // the separator after document d (never after the last: the stream ends there)
            *out++ = sep_id_;
            p++;
            d++;
        }
    }
    *out = sep_id_;
}

// ---- Masking ---------------------------------------------------------------------------------

// Masks row `row` of a batch whose input_ids hold the row's original tokens; records targets.
void MlmBatcher::mask_row(MlmBatch& batch, int row, uint64_t mask_seed) const {
    SplitMix64 rng(mask_seed);
    const int T = batch.T, n = batch.lengths[row];
    int32_t* ids = &batch.input_ids[(size_t)row * T];

    // Candidates (non-special positions) grouped into units: single tokens, or with whole-word
    // masking words (a piece plus the '##' pieces right after it; a '##' piece after a special
    // token, e.g. at a window's start, begins a word of its own).
    std::vector<int32_t> candidates, unit_begin;  // unit u = candidates[unit_begin[u] .. unit_begin[u+1])
    for (int t = 0; t < n; t++) {
        if (is_special_[ids[t]]) continue;
        const bool continues_word = options_.whole_word && is_continuation_[ids[t]] && !candidates.empty() &&
                                    candidates.back() == t - 1;
        if (!continues_word) unit_begin.push_back((int32_t)candidates.size());
        candidates.push_back(t);
    }
    const int units = (int)unit_begin.size();
    if (units == 0) return;  // nothing to predict in this row
    unit_begin.push_back((int32_t)candidates.size());
    const int want = std::min((int)candidates.size(),
                              std::max(1, (int)std::floor(options_.mask_fraction * (double)candidates.size() + 0.5)));

    // Visit units in random order (Fisher-Yates, drawn as it goes) and take each one that still
    // fits in `want`; if none fits (every word longer than want), take the first visited.
    std::vector<int32_t> unit_order(units), chosen;
    for (int u = 0; u < units; u++) unit_order[u] = u;
    for (int i = 0; i < units && (int)chosen.size() < want; i++) {
        std::swap(unit_order[i], unit_order[i + (int)rng.below((uint64_t)(units - i))]);
        const int u = unit_order[i], size = unit_begin[u + 1] - unit_begin[u];
        if ((int)chosen.size() + size > want) continue;
        for (int c = unit_begin[u]; c < unit_begin[u + 1]; c++) chosen.push_back(candidates[c]);
    }
    if (chosen.empty())
        for (int c = unit_begin[unit_order[0]]; c < unit_begin[unit_order[0] + 1]; c++) chosen.push_back(candidates[c]);
    std::sort(chosen.begin(), chosen.end());

    // 80 / 10 / 10 per token, in position order.
    const double mask_below = options_.mask_token_fraction;
    const double random_below = options_.mask_token_fraction + options_.random_token_fraction;
    for (int t : chosen) {
        const int32_t original = ids[t];
        const double u = rng.uniform();
        if (u < mask_below) ids[t] = mask_id_;
        else if (u < random_below) ids[t] = random_ids_[rng.below(random_ids_.size())];
        const int32_t flat = row * T + t;
        batch.mlm_targets[flat] = original;
        batch.masked_positions.push_back(flat);
        batch.masked_targets.push_back(original);
    }
}

// ---- Batches ---------------------------------------------------------------------------------

void MlmBatcher::begin_batch(MlmBatch& batch, int rows) const {
    const int T = options_.seq_len;
    batch.B = rows;
    batch.T = T;
    batch.input_ids.assign((size_t)rows * T, pad_id_);
    batch.token_types.assign((size_t)rows * T, 0);
    batch.lengths.assign(rows, 0);
    batch.mlm_targets.assign((size_t)rows * T, MlmBatch::kNoTarget);
    batch.masked_positions.clear();
    batch.masked_targets.clear();
    batch.sequence_index.assign(rows, 0);
}

// Rows are filled in order, so masked_positions come out ascending.
void MlmBatcher::fill_row(MlmBatch& batch, int row, int64_t index, uint64_t mask_seed) const {
    std::vector<int32_t> ids;
    sequence(index, ids);
    std::copy(ids.begin(), ids.end(), batch.input_ids.begin() + (size_t)row * batch.T);
    batch.lengths[row] = (int32_t)ids.size();
    batch.sequence_index[row] = index;
    mask_row(batch, row, mask_seed);
}

void MlmBatcher::make_order(int64_t epoch) {
    order_.resize(sequence_count_);
    for (int64_t i = 0; i < sequence_count_; i++) order_[i] = i;
    SplitMix64 rng(stream_seed(options_.seed, kOrder, (uint64_t)epoch));
    for (int64_t i = sequence_count_ - 1; i > 0; i--) std::swap(order_[i], order_[rng.below((uint64_t)i + 1)]);
    order_epoch_ = epoch;
}

void MlmBatcher::next_batch(MlmBatch& batch) {
    begin_batch(batch, options_.batch_size);
    for (int row = 0; row < options_.batch_size; row++) {
        if (order_epoch_ != epoch_) make_order(epoch_);
        const int64_t index = order_[position_];
        fill_row(batch, row, index, stream_seed(options_.seed, kTrainingMasks, (uint64_t)epoch_, (uint64_t)index));
        if (++position_ == sequence_count_) {
            epoch_++;
            position_ = 0;
        }
    }
}

int64_t MlmBatcher::validation_batch_count() const {
    return (sequence_count_ + options_.batch_size - 1) / options_.batch_size;
}

void MlmBatcher::validation_batch(int64_t k, MlmBatch& batch) const {
    if (k < 0 || k >= validation_batch_count())
        throw Error("MLM batcher: validation batch " + std::to_string(k) + " out of range [0, " +
                    std::to_string(validation_batch_count()) + ")");
    const int64_t first = k * options_.batch_size;
    const int rows = (int)std::min<int64_t>(options_.batch_size, sequence_count_ - first);
    begin_batch(batch, rows);
    for (int row = 0; row < rows; row++)
        fill_row(batch, row, first + row, stream_seed(options_.validation_seed, kValidationMasks, (uint64_t)(first + row)));
}

// ---- State -----------------------------------------------------------------------------------

MlmBatcherState MlmBatcher::state() const {
    MlmBatcherState s;
    s.seed = options_.seed;
    s.epoch = epoch_;
    s.position = position_;
    s.setup = setup_;
    return s;
}

void MlmBatcher::restore(const MlmBatcherState& s) {
    if (s.setup != setup_)
        throw Error(shards_[0].path() + ": the saved MLM batcher state belongs to other shards, sequence length or " +
                    "masking options than these (" + std::to_string(shards_.size()) + " shards, T = " +
                    std::to_string(options_.seq_len) + ")");
    if (s.epoch < 0 || s.position < 0 || s.position >= sequence_count_)
        throw Error(shards_[0].path() + ": the saved MLM batcher state's position (epoch " + std::to_string(s.epoch) +
                    ", position " + std::to_string(s.position) + ") is out of range for " +
                    std::to_string(sequence_count_) + " sequences");
    options_.seed = s.seed;
    epoch_ = s.epoch;
    position_ = s.position;
    order_epoch_ = -1;  // the order is remade from (seed, epoch) on the next draw
}

}  // namespace wr
