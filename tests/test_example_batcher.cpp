// tests/test_example_batcher.cpp: classifier batches from example sets: padding to each batch's
// own longest example, token types of single texts and pairs (element by element against the
// examples), every example once per epoch in training and evaluation, per-epoch shuffles and
// seeds, length bucketing (less padding, still every example once), drop_last, exact resume from
// saved state bytes, and the errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "common/util.h"
#include "data/example_batcher.h"
#include "data/mlm_batcher.h"
#include "data/shards.h"
#include "data/tokenizer.h"
#include "test_helpers.h"

using namespace wr;
using wr::testing::ScratchDir;

namespace {

// Vocabulary with [PAD] deliberately not at id 0: ids 0-4 are "w0" [UNK] [CLS] [SEP] [MASK],
// 5-19 words, 20 [PAD], 21-59 words. Example tokens are drawn from 21-59.
constexpr int kPadId = 20, kFirstWord = 21, kVocabSize = 60;

Tokenizer make_vocab() {
    std::vector<std::string> tokens = {"w0", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    for (int i = 5; i < kVocabSize; i++) tokens.push_back(i == kPadId ? "[PAD]" : "w" + std::to_string(i));
    return Tokenizer(tokens);
}

// N examples of lengths in [min_len, max_len]; a `pair_percent` share are pairs [CLS] A [SEP] B
// [SEP] (pairs need max_len >= 5). Class labels cycle through num_labels classes.
ExampleSet make_set(const Tokenizer& vocab, int N, uint32_t seed, int min_len = 3, int max_len = 40,
                    int pair_percent = 50, LabelKind kind = LabelKind::Class, int num_labels = 3) {
    std::mt19937 rng(seed);
    ExampleSet set;
    set.label_kind = kind;
    if (kind == LabelKind::Class)
        for (int c = 0; c < num_labels; c++) set.label_names.push_back("class" + std::to_string(c));
    if (kind == LabelKind::Regression) set.label_names = {"score"};
    set.vocab_size = vocab.vocab_size();
    set.vocab_fingerprint = vocab.fingerprint();
    set.max_len = 512;
    for (int i = 0; i < N; i++) {
        Example e;
        const int n = min_len + (int)(rng() % (uint32_t)(max_len - min_len + 1));
        const bool pair = n >= 5 && (int)(rng() % 100) < pair_percent;
        auto word = [&rng] { return kFirstWord + (int32_t)(rng() % (kVocabSize - kFirstWord)); };
        e.ids.push_back(vocab.cls_id);
        if (pair) {
            const int a = 1 + (int)(rng() % (uint32_t)(n - 4));  // A: 1 .. n-4 tokens, B: the rest (>= 1)
            for (int t = 0; t < a; t++) e.ids.push_back(word());
            e.ids.push_back(vocab.sep_id);
            e.second_start = (int32_t)e.ids.size();
            while ((int)e.ids.size() < n - 1) e.ids.push_back(word());
        } else {
            while ((int)e.ids.size() < n - 1) e.ids.push_back(word());
        }
        e.ids.push_back(vocab.sep_id);
        if (kind == LabelKind::Class) e.label = i % num_labels;
        if (kind == LabelKind::Regression) e.value = 0.25f * (float)(i % 17) - 1.0f;
        set.examples.push_back(e);
    }
    return set;
}

ExampleBatcherOptions options(int B, uint64_t seed = 1, bool bucket = false, bool drop_last = false) {
    ExampleBatcherOptions o;
    o.batch_size = B;
    o.seed = seed;
    o.bucket = bucket;
    o.drop_last = drop_last;
    return o;
}

ExampleBatcher make_batcher(const ExampleSet& set, const ExampleBatcherOptions& o, int num_labels = 3,
                            int max_positions = 512) {
    static const Tokenizer vocab = make_vocab();
    return ExampleBatcher(set, "mem/train.bin", vocab, num_labels, max_positions, o);
}

bool same_batch(const ExampleBatch& a, const ExampleBatch& b) {
    return a.B == b.B && a.T == b.T && a.input_ids == b.input_ids && a.token_types == b.token_types &&
           a.lengths == b.lengths && a.labels == b.labels && a.values == b.values && a.example_index == b.example_index;
}

// Checks every element of a batch against the examples its rows name.
void check_batch(const ExampleBatch& batch, const ExampleSet& set) {
    ASSERT_GE(batch.B, 1);
    ASSERT_EQ((int)batch.example_index.size(), batch.B);
    ASSERT_EQ((int)batch.input_ids.size(), batch.B * batch.T);
    ASSERT_EQ((int)batch.token_types.size(), batch.B * batch.T);
    ASSERT_EQ((int)batch.lengths.size(), batch.B);
    ASSERT_EQ((int)batch.labels.size(), batch.B);
    ASSERT_EQ((int)batch.values.size(), batch.B);
    int longest = 0;
    for (int b = 0; b < batch.B; b++) {
        ASSERT_GE(batch.example_index[b], 0);
        ASSERT_LT(batch.example_index[b], (int64_t)set.examples.size());
        longest = std::max(longest, (int)set.examples[batch.example_index[b]].ids.size());
    }
    ASSERT_EQ(batch.T, longest) << "T must be the longest example of this batch";
    for (int b = 0; b < batch.B; b++) {
        const Example& e = set.examples[batch.example_index[b]];
        const int n = (int)e.ids.size();
        ASSERT_EQ(batch.lengths[b], n);
        for (int t = 0; t < batch.T; t++) {
            const int32_t id = batch.input_ids[b * batch.T + t], type = batch.token_types[b * batch.T + t];
            if (t < n) {
                ASSERT_EQ(id, e.ids[t]) << "row " << b << " position " << t;
                const int32_t expected_type = (e.second_start > 0 && t >= e.second_start) ? 1 : 0;
                ASSERT_EQ(type, expected_type) << "row " << b << " position " << t << " second_start " << e.second_start;
            } else {
                ASSERT_EQ(id, kPadId) << "padding of row " << b << " at " << t;
                ASSERT_EQ(type, 0) << "padding of row " << b << " at " << t;
            }
        }
        ASSERT_EQ(batch.labels[b], set.label_kind == LabelKind::Class ? e.label : -1);
        ASSERT_EQ(batch.values[b], set.label_kind == LabelKind::Regression ? e.value : 0.0f);
    }
}

// The example indices of the next `batches` training batches, batch after batch.
std::vector<std::vector<int64_t>> draw(ExampleBatcher& batcher, int64_t batches) {
    std::vector<std::vector<int64_t>> out;
    ExampleBatch batch;
    for (int64_t i = 0; i < batches; i++) {
        batcher.next_batch(batch);
        out.push_back(batch.example_index);
    }
    return out;
}

// [PAD] positions of a batch of these examples, from the example lengths alone.
int64_t padding_of(const std::vector<int64_t>& rows, const ExampleSet& set) {
    int64_t longest = 0, tokens = 0;
    for (int64_t i : rows) {
        longest = std::max<int64_t>(longest, (int64_t)set.examples[i].ids.size());
        tokens += (int64_t)set.examples[i].ids.size();
    }
    return longest * (int64_t)rows.size() - tokens;
}

}  // namespace

TEST(ExampleBatcher, HandWrittenBatch) {
    const Tokenizer vocab = make_vocab();
    ExampleSet set = make_set(vocab, 0, 1);
    // [CLS] 30 31 [SEP]  (single, class 2)  and  [CLS] 40 [SEP] 41 42 [SEP]  (pair, class 0)
    Example single, pair;
    single.ids = {2, 30, 31, 3};
    single.label = 2;
    pair.ids = {2, 40, 3, 41, 42, 3};
    pair.second_start = 3;
    pair.label = 0;
    set.examples = {single, pair};
    ExampleBatcherOptions o = options(4);
    const ExampleBatcher batcher(set, "mem/two.bin", vocab, 3, 512, o);
    ASSERT_EQ(batcher.eval_batch_count(), 1);
    ExampleBatch batch;
    batcher.eval_batch(0, batch);
    EXPECT_EQ(batch.B, 2);
    EXPECT_EQ(batch.T, 6);
    EXPECT_EQ(batch.input_ids, (std::vector<int32_t>{2, 30, 31, 3, 20, 20, /**/ 2, 40, 3, 41, 42, 3}));
    EXPECT_EQ(batch.token_types, (std::vector<int32_t>{0, 0, 0, 0, 0, 0, /**/ 0, 0, 0, 1, 1, 1}));
    EXPECT_EQ(batch.lengths, (std::vector<int32_t>{4, 6}));
    EXPECT_EQ(batch.labels, (std::vector<int32_t>{2, 0}));
    EXPECT_EQ(batch.values, (std::vector<float>{0, 0}));
    EXPECT_EQ(batch.example_index, (std::vector<int64_t>{0, 1}));
    EXPECT_EQ(batch.token_count(), 10);
    EXPECT_EQ(batch.padding_count(), 2);

    // Alone, the single example is padded to its own length: no padding at all.
    const int64_t first = 0;
    batcher.make_batch(&first, 1, batch);
    EXPECT_EQ(batch.T, 4);
    EXPECT_EQ(batch.input_ids, (std::vector<int32_t>{2, 30, 31, 3}));
    EXPECT_EQ(batch.token_types, (std::vector<int32_t>{0, 0, 0, 0}));
}

TEST(ExampleBatcher, RowsMatchTheirExamples) {
    const Tokenizer vocab = make_vocab();
    struct Case {
        LabelKind kind;
        int num_labels;
    };
    for (const Case c : {Case{LabelKind::Class, 3}, Case{LabelKind::Regression, 1}, Case{LabelKind::None, 2}}) {
        const ExampleSet set = make_set(vocab, 157, 5, 3, 50, 50, c.kind, 3);
        for (bool bucket : {false, true}) {
            ExampleBatcher batcher = make_batcher(set, options(12, 3, bucket), c.num_labels);
            ExampleBatch batch;
            int singles = 0, pairs = 0;
            for (int64_t i = 0; i < 2 * batcher.batches_per_epoch(); i++) {
                batcher.next_batch(batch);
                check_batch(batch, set);
                if (::testing::Test::HasFatalFailure()) return;
                for (int b = 0; b < batch.B; b++) (set.examples[batch.example_index[b]].second_start ? pairs : singles)++;
            }
            EXPECT_GT(singles, 50);  // both kinds were seen
            EXPECT_GT(pairs, 50);
            for (int64_t k = 0; k < batcher.eval_batch_count(); k++) {
                batcher.eval_batch(k, batch);
                check_batch(batch, set);
                if (::testing::Test::HasFatalFailure()) return;
            }
        }
    }
}

TEST(ExampleBatcher, EveryExampleOncePerEpoch) {
    const Tokenizer vocab = make_vocab();
    const ExampleSet set = make_set(vocab, 203, 7);
    for (bool bucket : {false, true}) {
        ExampleBatcherOptions o = options(16, 9, bucket);
        o.bucket_window = 3;  // several windows, the last one partial
        ExampleBatcher batcher = make_batcher(set, o);
        ASSERT_EQ(batcher.batches_per_epoch(), 13);  // ceil(203 / 16)
        for (int epoch = 0; epoch < 3; epoch++) {
            EXPECT_EQ(batcher.epoch(), epoch);
            EXPECT_EQ(batcher.position(), 0);
            std::vector<int> seen(203, 0);
            int short_batches = 0;
            for (const auto& rows : draw(batcher, 13)) {
                if (rows.size() != 16) {
                    EXPECT_EQ(rows.size(), 11u);  // 203 mod 16
                    short_batches++;
                }
                for (int64_t i : rows) seen[i]++;
            }
            EXPECT_EQ(short_batches, 1) << "bucket " << bucket;
            for (int i = 0; i < 203; i++) ASSERT_EQ(seen[i], 1) << "example " << i << " epoch " << epoch << " bucket " << bucket;
        }
        EXPECT_EQ(batcher.epoch(), 3);
    }

    // Evaluation: shard order, batches of eval_batch_size, the last one short.
    ExampleBatcherOptions o = options(16);
    o.eval_batch_size = 10;
    const ExampleBatcher batcher = make_batcher(set, o);
    ASSERT_EQ(batcher.eval_batch_count(), 21);
    std::vector<int64_t> all;
    ExampleBatch batch;
    for (int64_t k = 0; k < 21; k++) {
        batcher.eval_batch(k, batch);
        EXPECT_EQ(batch.B, k < 20 ? 10 : 3);
        all.insert(all.end(), batch.example_index.begin(), batch.example_index.end());
    }
    ASSERT_EQ(all.size(), 203u);
    for (int64_t i = 0; i < 203; i++) EXPECT_EQ(all[i], i);
    EXPECT_ERROR_MENTIONS(batcher.eval_batch(21, batch), "mem/train.bin", "out of range");
}

TEST(ExampleBatcher, DropLastDropsRandomExamples) {
    const Tokenizer vocab = make_vocab();
    const ExampleSet set = make_set(vocab, 203, 8);
    for (bool bucket : {false, true}) {
        ExampleBatcher batcher = make_batcher(set, options(16, 4, bucket, /*drop_last=*/true));
        ASSERT_EQ(batcher.batches_per_epoch(), 12);  // floor(203 / 16)
        std::set<std::set<int64_t>> dropped_sets;
        for (int epoch = 0; epoch < 4; epoch++) {
            std::set<int64_t> seen;
            for (const auto& rows : draw(batcher, 12)) {
                ASSERT_EQ(rows.size(), 16u);
                for (int64_t i : rows) EXPECT_TRUE(seen.insert(i).second) << "example " << i << " twice in one epoch";
            }
            ASSERT_EQ(seen.size(), 192u);
            std::set<int64_t> dropped;
            for (int64_t i = 0; i < 203; i++)
                if (!seen.count(i)) dropped.insert(i);
            EXPECT_EQ(dropped.size(), 11u);
            dropped_sets.insert(dropped);
        }
        EXPECT_GT(dropped_sets.size(), 1u) << "the dropped examples must change between epochs";
    }
}

TEST(ExampleBatcher, EpochsDifferSeedsDecide) {
    const Tokenizer vocab = make_vocab();
    const ExampleSet set = make_set(vocab, 150, 9);
    for (bool bucket : {false, true}) {
        ExampleBatcher a = make_batcher(set, options(10, 42, bucket));
        const auto epoch0 = draw(a, 15), epoch1 = draw(a, 15);
        EXPECT_NE(epoch0, epoch1) << "a new epoch must have a new order";
        std::vector<int64_t> flat0, flat1;
        for (const auto& r : epoch0) flat0.insert(flat0.end(), r.begin(), r.end());
        for (const auto& r : epoch1) flat1.insert(flat1.end(), r.begin(), r.end());
        int same_place = 0;
        for (size_t i = 0; i < flat0.size(); i++) same_place += flat0[i] == flat1[i];
        EXPECT_LT(same_place, 15) << "two epochs' orders should be nearly unrelated";
        std::vector<int64_t> identity(150);
        for (int i = 0; i < 150; i++) identity[i] = i;
        EXPECT_NE(flat0, identity) << "the training order must be shuffled";

        ExampleBatcher b = make_batcher(set, options(10, 42, bucket)), c = make_batcher(set, options(10, 43, bucket));
        ExampleBatch x, y;
        for (int i = 0; i < 30; i++) {
            b.next_batch(x);
            ASSERT_EQ(x.example_index, i < 15 ? epoch0[i] : epoch1[i - 15]) << "same seed, batch " << i;
        }
        EXPECT_NE(draw(c, 15), epoch0) << "another seed must give another order";
        // Two fresh batchers of one seed give equal batches in every field.
        ExampleBatcher d = make_batcher(set, options(10, 7, bucket)), e = make_batcher(set, options(10, 7, bucket));
        for (int i = 0; i < 20; i++) {
            d.next_batch(x);
            e.next_batch(y);
            ASSERT_TRUE(same_batch(x, y)) << "batch " << i;
        }
    }
}

TEST(ExampleBatcher, BucketingReducesPadding) {
    const Tokenizer vocab = make_vocab();
    const ExampleSet set = make_set(vocab, 1000, 10, 3, 130);
    ExampleBatcherOptions plain_o = options(16, 5), bucket_o = options(16, 5, true);
    bucket_o.bucket_window = 10;  // windows of 160 examples
    ExampleBatcher plain = make_batcher(set, plain_o), bucketed = make_batcher(set, bucket_o);
    ASSERT_EQ(bucketed.batches_per_epoch(), 63);
    for (int epoch = 0; epoch < 2; epoch++) {
        int64_t plain_padding = 0, bucket_padding = 0;
        std::vector<int> seen(1000, 0);
        std::vector<int64_t> longest;
        ExampleBatch batch;
        for (const auto& rows : draw(plain, 63)) plain_padding += padding_of(rows, set);
        for (int64_t j = 0; j < 63; j++) {
            bucketed.next_batch(batch);
            EXPECT_EQ(batch.padding_count(), padding_of(batch.example_index, set));
            bucket_padding += padding_of(batch.example_index, set);
            longest.push_back(batch.T);
            for (int64_t i : batch.example_index) seen[i]++;
        }
        std::printf("  epoch %d: padding %lld without bucketing, %lld with\n", epoch, (long long)plain_padding,
                    (long long)bucket_padding);
        EXPECT_LT(bucket_padding * 4, plain_padding) << "bucketing should remove most padding";
        for (int i = 0; i < 1000; i++) ASSERT_EQ(seen[i], 1) << "example " << i;
        EXPECT_FALSE(std::is_sorted(longest.begin(), longest.end())) << "bucketed batches must be shuffled";
    }

    // One window over the whole epoch: the batches are consecutive runs of the length-sorted
    // examples, so their length ranges do not overlap.
    bucket_o.bucket_window = 1000;
    ExampleBatcher whole = make_batcher(set, bucket_o);
    std::vector<std::pair<size_t, size_t>> ranges;  // (shortest, longest) per batch
    std::vector<size_t> whole_longest;
    for (const auto& rows : draw(whole, 63)) {
        size_t lo = SIZE_MAX, hi = 0;
        for (int64_t i : rows) {
            lo = std::min(lo, set.examples[i].ids.size());
            hi = std::max(hi, set.examples[i].ids.size());
        }
        ranges.push_back({lo, hi});
        whole_longest.push_back(hi);
    }
    EXPECT_FALSE(std::is_sorted(whole_longest.begin(), whole_longest.end())) << "the batches must be shuffled";
    for (size_t a = 0; a < ranges.size(); a++)
        for (size_t b = a + 1; b < ranges.size(); b++)
            EXPECT_TRUE(ranges[a].second <= ranges[b].first || ranges[b].second <= ranges[a].first)
                << "batches " << a << " and " << b << " overlap in length";
}

TEST(ExampleBatcher, ResumeFromSavedStateIsExact) {
    const Tokenizer vocab = make_vocab();
    const ExampleSet set = make_set(vocab, 101, 11);
    for (bool bucket : {false, true}) {
        for (bool drop_last : {false, true}) {
            ExampleBatcherOptions o = options(8, 77, bucket, drop_last);
            o.bucket_window = 4;
            ExampleBatcher reference = make_batcher(set, o);
            const int64_t per_epoch = drop_last ? 12 : 13;
            ASSERT_EQ(reference.batches_per_epoch(), per_epoch);
            std::vector<ExampleBatch> all(3 * per_epoch);
            for (auto& b : all) reference.next_batch(b);

            for (int64_t cut : {(int64_t)0, (int64_t)1, (int64_t)5, per_epoch - 1, per_epoch, per_epoch + 3, 2 * per_epoch - 1}) {
                ExampleBatcher first = make_batcher(set, o);
                ExampleBatch batch;
                for (int64_t i = 0; i < cut; i++) first.next_batch(batch);
                const ExampleBatcherState saved = first.state();
                EXPECT_EQ(saved.epoch, cut / per_epoch);
                EXPECT_EQ(saved.position, cut % per_epoch);
                EXPECT_EQ(saved.seed, 77u);
                const std::string bytes = saved.to_bytes();
                ASSERT_EQ(bytes.size(), 56u);

                ExampleBatcherOptions other_seed = o;
                other_seed.seed = 1234;  // the state's seed wins
                ExampleBatcher resumed = make_batcher(set, other_seed);
                resumed.restore(ExampleBatcherState::from_bytes(bytes, "run/state.bin"));
                EXPECT_EQ(resumed.epoch(), cut / per_epoch);
                EXPECT_EQ(resumed.position(), cut % per_epoch);
                for (int64_t i = cut; i < (int64_t)all.size(); i++) {
                    resumed.next_batch(batch);
                    ASSERT_TRUE(same_batch(batch, all[i]))
                        << "batch " << i << " after resuming at " << cut << " bucket " << bucket << " drop_last " << drop_last;
                }
            }
        }
    }
}

TEST(ExampleBatcher, StateErrors) {
    const Tokenizer vocab = make_vocab();
    const ExampleSet set = make_set(vocab, 60, 12);
    ExampleBatcher batcher = make_batcher(set, options(8));
    draw(batcher, 3);
    const std::string good = batcher.state().to_bytes();

    EXPECT_ERROR_MENTIONS(ExampleBatcherState::from_bytes(good.substr(0, 40), "run/state.bin"), "run/state.bin", "40 bytes", "56");
    EXPECT_ERROR_MENTIONS(ExampleBatcherState::from_bytes(good + "x", "run/state.bin"), "run/state.bin", "57 bytes");
    std::string flipped = good;
    flipped[30] ^= 1;
    EXPECT_ERROR_MENTIONS(ExampleBatcherState::from_bytes(flipped, "run/state.bin"), "run/state.bin", "checksum");
    std::string magic = good;
    magic[0] = 'X';
    EXPECT_ERROR_MENTIONS(ExampleBatcherState::from_bytes(magic, "run/state.bin"), "run/state.bin", "magic");
    std::string version = good;
    version[8] = 9;
    EXPECT_ERROR_MENTIONS(ExampleBatcherState::from_bytes(version, "run/state.bin"), "run/state.bin", "version");
    // An MLM batcher's state (same size, other magic) is refused.
    MlmBatcherState mlm;
    EXPECT_ERROR_MENTIONS(ExampleBatcherState::from_bytes(mlm.to_bytes(), "run/state.bin"), "run/state.bin", "magic");

    const ExampleBatcherState s = ExampleBatcherState::from_bytes(good, "run/state.bin");
    EXPECT_EQ(s.epoch, 0);
    EXPECT_EQ(s.position, 3);

    // Other batch size, other bucketing, other drop_last, other examples: the state does not fit.
    ExampleBatcher other_b = make_batcher(set, options(9));
    EXPECT_ERROR_MENTIONS(other_b.restore(s), "mem/train.bin", "other examples or batch options");
    ExampleBatcher other_bucket = make_batcher(set, options(8, 1, true));
    EXPECT_ERROR_MENTIONS(other_bucket.restore(s), "other examples or batch options");
    ExampleBatcher other_drop = make_batcher(set, options(8, 1, false, true));
    EXPECT_ERROR_MENTIONS(other_drop.restore(s), "other examples or batch options");
    ExampleSet changed = set;
    changed.examples[17].label = (changed.examples[17].label + 1) % 3;
    ExampleBatcher other_data = make_batcher(changed, options(8));
    EXPECT_ERROR_MENTIONS(other_data.restore(s), "other examples or batch options");
    changed = set;
    changed.examples[40].ids[1] = changed.examples[40].ids[1] == kFirstWord ? kFirstWord + 1 : kFirstWord;
    ExampleBatcher other_token = make_batcher(changed, options(8));
    EXPECT_ERROR_MENTIONS(other_token.restore(s), "other examples or batch options");

    // The evaluation batch size is not part of the setup.
    ExampleBatcherOptions eval_o = options(8);
    eval_o.eval_batch_size = 32;
    ExampleBatcher other_eval = make_batcher(set, eval_o);
    other_eval.restore(s);
    EXPECT_EQ(other_eval.position(), 3);

    ExampleBatcherState bad = s;
    bad.position = batcher.batches_per_epoch();
    EXPECT_ERROR_MENTIONS(batcher.restore(bad), "mem/train.bin", "out of range");
    bad = s;
    bad.epoch = -1;
    EXPECT_ERROR_MENTIONS(batcher.restore(bad), "out of range");
}

TEST(ExampleBatcher, InputErrors) {
    const Tokenizer vocab = make_vocab();
    const ExampleSet set = make_set(vocab, 30, 13, 3, 20);

    ExampleSet s = set;
    s.examples[7].label = 3;  // the model has 3 labels: 0, 1, 2
    EXPECT_ERROR_MENTIONS(make_batcher(s, options(4), 3), "mem/train.bin", "example 7", "label 3", "3 labels");
    s = set;
    s.examples[12].label = -1;  // a class set must label every example
    EXPECT_ERROR_MENTIONS(make_batcher(s, options(4), 3), "mem/train.bin", "example 12", "label -1");
    // Labels 0..2 do not fit a two-label model: the first example with label 2 is named.
    EXPECT_ERROR_MENTIONS(make_batcher(set, options(4), 2), "mem/train.bin", "example 2", "label 2", "2 labels");

    s = set;
    s.examples[5].ids.assign(40, kFirstWord);
    s.examples[5].ids.front() = vocab.cls_id;
    s.examples[5].ids.back() = vocab.sep_id;
    s.examples[5].second_start = 0;
    EXPECT_ERROR_MENTIONS(make_batcher(s, options(4), 3, 32), "mem/train.bin", "example 5", "length 40", "32 positions");
    EXPECT_ERROR_MENTIONS(make_batcher(s, options(4), 3, 39), "example 5", "length 40", "39 positions");
    make_batcher(s, options(4), 3, 40);  // exactly max_positions is fine

    const ExampleSet regression = make_set(vocab, 30, 13, 3, 20, 50, LabelKind::Regression);
    EXPECT_ERROR_MENTIONS(make_batcher(regression, options(4), 2), "mem/train.bin", "regression", "2 outputs");
    make_batcher(regression, options(4), 1);
    const ExampleSet unlabeled = make_set(vocab, 30, 13, 3, 20, 50, LabelKind::None);
    make_batcher(unlabeled, options(4), 5);  // a transfer set fits any number of labels

    s = set;
    s.examples[3].ids[2] = kVocabSize;
    EXPECT_ERROR_MENTIONS(make_batcher(s, options(4)), "mem/train.bin", "example 3", "token id 60");
    s = set;
    s.examples[4].second_start = (int32_t)s.examples[4].ids.size();
    EXPECT_ERROR_MENTIONS(make_batcher(s, options(4)), "mem/train.bin", "example 4", "second_start");
    s = set;
    s.examples[6].ids = {vocab.cls_id};
    EXPECT_ERROR_MENTIONS(make_batcher(s, options(4)), "mem/train.bin", "example 6", "1 tokens");
    s = set;
    s.examples.clear();
    EXPECT_ERROR_MENTIONS(make_batcher(s, options(4)), "mem/train.bin", "no examples");
    s = set;
    s.vocab_fingerprint ^= 1;
    EXPECT_ERROR_MENTIONS(make_batcher(s, options(4)), "mem/train.bin", "vocab");

    EXPECT_ERROR_MENTIONS(make_batcher(set, options(0)), "batch_size");
    EXPECT_ERROR_MENTIONS(make_batcher(set, options(31, 1, false, true)), "drop_last", "no batches");
    make_batcher(set, options(31));  // one short batch per epoch without drop_last
    ExampleBatcherOptions o = options(4, 1, true);
    o.bucket_window = 0;
    EXPECT_ERROR_MENTIONS(make_batcher(set, o), "bucket_window");
}

TEST(ExampleBatcher, FromShardFile) {
    ScratchDir dir;
    const Tokenizer vocab = make_vocab();
    const ExampleSet written = make_set(vocab, 45, 14, 3, 30, 50, LabelKind::Class, 3);
    const std::string path = dir / "sst_dev.bin";
    write_example_shard(path, written);
    ExampleSet read = read_example_shard(path, &vocab);
    const ExampleBatcher batcher(read, path, vocab, 3, 512, options(8));
    ExampleBatch batch;
    int64_t next = 0;
    for (int64_t k = 0; k < batcher.eval_batch_count(); k++) {
        batcher.eval_batch(k, batch);
        check_batch(batch, written);
        for (int64_t i : batch.example_index) EXPECT_EQ(i, next++);
    }
    EXPECT_EQ(next, 45);
    // A three-class shard with a two-label model: the error names the file and the example.
    EXPECT_ERROR_MENTIONS(ExampleBatcher(read, path, vocab, 2, 512, options(8)), path.c_str(), "example 2", "label 2");
}
