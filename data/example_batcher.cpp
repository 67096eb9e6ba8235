// data/example_batcher.cpp: checking an example set against the model, the per-epoch order
// (shuffle, optional length bucketing, batch shuffle), padded batches and the saved state. The
// design is at the top of data/example_batcher.h and in docs/classification_batches.md.
#include "data/example_batcher.h"

#include <algorithm>
#include <climits>
#include <cstring>

#include "common/random.h"
#include "common/util.h"

namespace wr {
namespace {

// ---- Random numbers --------------------------------------------------------------------------

struct Rng {
    uint64_t state;
    explicit Rng(uint64_t seed) : state(seed) {}
    uint64_t next() { return splitmix64_next(state); }
    // Integer in [0, n): the 64x64 -> 128-bit product's high half.
    uint64_t below(uint64_t n) { return (uint64_t)(((unsigned __int128)next() * n) >> 64); }
};

// What a stream is for; each (seed, purpose, epoch) names an independent stream.
enum Purpose : uint64_t { kExampleOrder = 1, kBatchOrder = 2 };

uint64_t stream_seed(uint64_t seed, Purpose purpose, uint64_t epoch) {
    Rng r1(seed ^ (purpose * 0xA0761D6478BD642FULL) ^ 0x6578616d706c6573ULL);  // "examples"
    Rng r2(r1.next() ^ epoch);
    return r2.next();
}

template <class T>
void shuffle(std::vector<T>& v, Rng& rng) {  // Fisher-Yates, from the back
    for (size_t i = v.size(); i > 1; i--) std::swap(v[i - 1], v[rng.below(i)]);
}

[[noreturn]] void bad_option(const std::string& field, const std::string& what) { fail("<flag>", field, what); }

// ---- State bytes -----------------------------------------------------------------------------

constexpr char kStateMagic[8] = {'W', 'R', 'E', 'X', 'B', 'P', 'O', 'S'};

}  // namespace

void ExampleBatch::rows(int first, int count, ExampleBatch& out) const {
    const int64_t begin = (int64_t)first * T, end = (int64_t)(first + count) * T;
    out.B = count, out.T = T;
    out.input_ids.assign(input_ids.begin() + begin, input_ids.begin() + end);
    out.token_types.assign(token_types.begin() + begin, token_types.begin() + end);
    out.lengths.assign(lengths.begin() + first, lengths.begin() + first + count);
    out.labels.assign(labels.begin() + first, labels.begin() + first + count);
    out.values.assign(values.begin() + first, values.begin() + first + count);
    out.example_index.assign(example_index.begin() + first, example_index.begin() + first + count);
}

int64_t ExampleBatch::token_count() const {
    int64_t total = 0;
    for (int32_t n : lengths) total += n;
    return total;
}

std::string ExampleBatcherState::to_bytes() const { return encode_loader_state(*this, kStateMagic); }

ExampleBatcherState ExampleBatcherState::from_bytes(const std::string& bytes, const std::string& source) {
    ExampleBatcherState s;
    static_cast<LoaderState&>(s) = decode_loader_state(bytes, kStateMagic, "example_batcher_state", source);
    return s;
}

// ---- Construction and checks -----------------------------------------------------------------

ExampleBatcher::ExampleBatcher(ExampleSet set, const std::string& source, const Tokenizer& vocab, int num_labels,
                               int max_positions, const ExampleBatcherOptions& options)
    : set_(std::move(set)), source_(source), options_(options), pad_id_(vocab.pad_id) {
    ExampleBatcherOptions& o = options_;
    if (o.eval_batch_size == 0) o.eval_batch_size = o.batch_size;
    if (o.batch_size < 1) bad_option("batch_size", "is " + std::to_string(o.batch_size) + ", must be at least 1");
    if (o.eval_batch_size < 1)
        bad_option("eval_batch_size", "is " + std::to_string(o.eval_batch_size) + ", must be at least 1 (0: batch_size)");
    if (o.bucket_window < 1)
        bad_option("bucket_window", "is " + std::to_string(o.bucket_window) + ", must be at least 1 (batches per window)");
    if ((int64_t)o.bucket_window * o.batch_size > INT32_MAX)
        bad_option("bucket_window", "bucket_window x batch_size = " +
                                        std::to_string((int64_t)o.bucket_window * o.batch_size) + " is too large");
    if (max_positions < 2) bad_option("max_positions", "is " + std::to_string(max_positions) + ", must be at least 2");

    if (set_.vocab_size != vocab.vocab_size() || set_.vocab_fingerprint != vocab.fingerprint())
        fail(source_, "vocab_fingerprint", "the examples were made with another vocabulary (" +
                                               std::to_string(set_.vocab_size) + " tokens) than " + vocab.source() +
                                               " (" + std::to_string(vocab.vocab_size()) + " tokens)");
    const int64_t N = (int64_t)set_.examples.size();
    if (N == 0) fail(source_, "example_count", "is 0: there are no examples to make batches of");
    if (o.drop_last && N < o.batch_size)
        bad_option("drop_last", "with " + std::to_string(N) + " examples in " + source_ + " and batch_size " +
                                    std::to_string(o.batch_size) + " an epoch would have no batches");
    if (set_.label_kind == LabelKind::Regression && num_labels != 1)
        fail(source_, "label_kind", "is regression (one target) but the model has " + std::to_string(num_labels) +
                                        " outputs");
    if (set_.label_kind == LabelKind::Class && num_labels < 1)
        fail(source_, "label_kind", "is classification but the model has " + std::to_string(num_labels) + " labels");

    const int V = vocab.vocab_size();
    for (int64_t i = 0; i < N; i++) {
        const Example& e = set_.examples[i];
        const std::string which = "example " + std::to_string(i);
        const int64_t n = (int64_t)e.ids.size();
        if (n < 2) fail(source_, "tokens", which + " has " + std::to_string(n) + " tokens, at least 2 ([CLS] [SEP]) are needed");
        if (n > max_positions)
            fail(source_, "tokens", which + " has length " + std::to_string(n) + ", more than the model's " +
                                        std::to_string(max_positions) + " positions");
        for (int32_t id : e.ids)
            if (id < 0 || id >= V)
                fail(source_, "tokens", which + " has token id " + std::to_string(id) + " outside the vocabulary of " +
                                            std::to_string(V));
        if (e.second_start != 0 && (e.second_start < 2 || e.second_start > n - 1))
            fail(source_, "second_start", which + " has second_start " + std::to_string(e.second_start) +
                                              ", must be 0 or in [2, " + std::to_string(n - 1) + "]");
        if (set_.label_kind == LabelKind::Class && (e.label < 0 || e.label >= num_labels))
            fail(source_, "labels", which + " has label " + std::to_string(e.label) + " but the model has " +
                                        std::to_string(num_labels) + " labels (0 .. " + std::to_string(num_labels - 1) + ")");
        max_length_ = std::max(max_length_, (int32_t)n);
    }
    if ((int64_t)std::max(o.batch_size, o.eval_batch_size) * max_length_ > INT32_MAX)
        bad_option("batch_size", "batch_size x longest example (" + std::to_string(max_length_) +
                                     ") does not fit the int32 flat indices");
    setup_ = setup_fingerprint();
}

// Everything that decides the batches besides the seed: the examples (ids, second_start, labels or
// values, in order), the vocabulary, the batch size, drop_last and the bucketing options. Not
// the evaluation batch size, nor the source path (the data may move).
uint64_t ExampleBatcher::setup_fingerprint() const {
    Checksum c(0x6578616d706c6531ULL);
    auto add = [&c](auto value) { c.update(&value, sizeof value); };
    add(set_.vocab_fingerprint);
    add((uint32_t)set_.label_kind);
    add((int64_t)set_.examples.size());
    for (const Example& e : set_.examples) {
        add((int64_t)e.ids.size());
        c.update(e.ids.data(), e.ids.size() * sizeof(int32_t));
        add(e.second_start);
        if (set_.label_kind == LabelKind::Regression) add(e.value);
        else add(e.label);
    }
    add((int32_t)options_.batch_size);
    add((int32_t)options_.drop_last);
    add((int32_t)options_.bucket);
    add((int32_t)(options_.bucket ? options_.bucket_window : 0));
    return c.digest();
}

// ---- Batches ---------------------------------------------------------------------------------

void ExampleBatcher::make_batch(const int64_t* indices, int count, ExampleBatch& batch) const {
    const int64_t N = example_count();
    int T = 0;
    for (int b = 0; b < count; b++) {
        if (indices[b] < 0 || indices[b] >= N)
            throw Error(source_ + ": example " + std::to_string(indices[b]) + " out of range [0, " + std::to_string(N) + ")");
        T = std::max(T, (int)set_.examples[indices[b]].ids.size());
    }
    batch.B = count;
    batch.T = T;
    batch.input_ids.assign((size_t)count * T, pad_id_);
    batch.token_types.assign((size_t)count * T, 0);
    batch.lengths.assign(count, 0);
    batch.labels.assign(count, ExampleBatch::kNoLabel);
    batch.values.assign(count, 0.0f);
    batch.example_index.assign(indices, indices + count);
    for (int b = 0; b < count; b++) {
        const Example& e = set_.examples[indices[b]];
        const int n = (int)e.ids.size();
        std::copy(e.ids.begin(), e.ids.end(), batch.input_ids.begin() + (size_t)b * T);
        if (e.second_start > 0)
            std::fill(batch.token_types.begin() + (size_t)b * T + e.second_start, batch.token_types.begin() + (size_t)b * T + n, 1);
        batch.lengths[b] = n;
        if (set_.label_kind == LabelKind::Class) batch.labels[b] = e.label;
        if (set_.label_kind == LabelKind::Regression) batch.values[b] = e.value;
    }
}

int64_t ExampleBatcher::batches_per_epoch() const {
    const int64_t N = example_count(), B = options_.batch_size;
    return options_.drop_last ? N / B : (N + B - 1) / B;
}

// The epoch's order: shuffle; with drop_last keep the first floor(N / B) * B; without bucketing
// cut into batches in that order (the short batch last), with bucketing sort windows of
// bucket_window x B by length, cut them, and shuffle the batches.
void ExampleBatcher::make_epoch(int64_t epoch) {
    const int64_t N = example_count(), B = options_.batch_size;
    order_.resize(N);
    for (int64_t i = 0; i < N; i++) order_[i] = i;
    Rng rng(stream_seed(options_.seed, kExampleOrder, (uint64_t)epoch));
    shuffle(order_, rng);
    if (options_.drop_last) order_.resize(N / B * B);
    const int64_t M = (int64_t)order_.size();

    batch_begin_.clear();
    for (int64_t at = 0; at < M; at += B) batch_begin_.push_back(at);
    batch_begin_.push_back(M);
    if (options_.bucket) {
        // Sort each window by length. stable_sort keeps equal lengths in their shuffled order, so
        // the result is unique (the same with every standard library).
        const int64_t window = (int64_t)options_.bucket_window * B;
        for (int64_t w = 0; w < M; w += window) {
            const auto first = order_.begin() + w, last = order_.begin() + std::min(M, w + window);
            std::stable_sort(first, last, [this](int64_t a, int64_t b) {
                return set_.examples[a].ids.size() < set_.examples[b].ids.size();
            });
        }
        // Shuffle the batches (as whole runs of order_), then lay them out again.
        const int64_t batches = (int64_t)batch_begin_.size() - 1;
        std::vector<int64_t> which(batches);
        for (int64_t j = 0; j < batches; j++) which[j] = j;
        Rng batch_rng(stream_seed(options_.seed, kBatchOrder, (uint64_t)epoch));
        shuffle(which, batch_rng);
        std::vector<int64_t> order, begin;
        order.reserve(M);
        for (int64_t j : which) {
            begin.push_back((int64_t)order.size());
            order.insert(order.end(), order_.begin() + batch_begin_[j], order_.begin() + batch_begin_[j + 1]);
        }
        begin.push_back(M);
        order_.swap(order);
        batch_begin_.swap(begin);
    }
    order_epoch_ = epoch;
}

void ExampleBatcher::next_batch(ExampleBatch& batch) {
    if (order_epoch_ != epoch_) make_epoch(epoch_);
    const int64_t begin = batch_begin_[position_], end = batch_begin_[position_ + 1];
    make_batch(order_.data() + begin, (int)(end - begin), batch);
    if (++position_ == batches_per_epoch()) {
        epoch_++;
        position_ = 0;
    }
}

int64_t ExampleBatcher::eval_batch_count() const {
    return (example_count() + options_.eval_batch_size - 1) / options_.eval_batch_size;
}

void ExampleBatcher::eval_batch(int64_t k, ExampleBatch& batch) const {
    if (k < 0 || k >= eval_batch_count())
        throw Error(source_ + ": evaluation batch " + std::to_string(k) + " out of range [0, " +
                    std::to_string(eval_batch_count()) + ")");
    const int64_t first = k * options_.eval_batch_size;
    const int rows = (int)std::min<int64_t>(options_.eval_batch_size, example_count() - first);
    std::vector<int64_t> indices(rows);
    for (int r = 0; r < rows; r++) indices[r] = first + r;
    make_batch(indices.data(), rows, batch);
}

// ---- State -----------------------------------------------------------------------------------

ExampleBatcherState ExampleBatcher::state() const {
    ExampleBatcherState s;
    s.seed = options_.seed;
    s.epoch = epoch_;
    s.position = position_;
    s.setup = setup_;
    return s;
}

void ExampleBatcher::restore(const ExampleBatcherState& s) {
    if (s.setup != setup_)
        throw Error(source_ + ": the saved example batcher state belongs to other examples or batch options than these (" +
                    std::to_string(example_count()) + " examples, batch_size " + std::to_string(options_.batch_size) +
                    ", bucket " + (options_.bucket ? "on" : "off") + ", drop_last " + (options_.drop_last ? "on" : "off") + ")");
    if (s.epoch < 0 || s.position < 0 || s.position >= batches_per_epoch())
        throw Error(source_ + ": the saved example batcher state's position (epoch " + std::to_string(s.epoch) +
                    ", batch " + std::to_string(s.position) + ") is out of range for " +
                    std::to_string(batches_per_epoch()) + " batches per epoch");
    options_.seed = s.seed;
    epoch_ = s.epoch;
    position_ = s.position;
    order_epoch_ = -1;  // the order is remade from (seed, epoch) on the next batch
}

}  // namespace wr
