// tests/test_mlm_batcher.cpp: MLM batches from token shards: the [CLS] window [SEP] cutting
// (the windows of an epoch give back the shards' streams exactly), the per-epoch shuffle,
// masking rates and the 80/10/10 split within statistical bounds, whole-word masking, seeds,
// exact resume from a saved state, fixed validation batches, and the errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "common/util.h"
#include "data/batch_prefetch.h"
#include "data/mlm_batcher.h"
#include "data/shards.h"
#include "data/tokenizer.h"
#include "test_helpers.h"

using namespace wr;
using wr::testing::ScratchDir;

namespace {

// Vocabulary: the five specials (ids 0-4), word starts "w5" .. "w99", continuations "##c100" .. "##c149".
constexpr int kFirstContinuation = 100, kVocabSize = 150;

Tokenizer make_vocab(const std::string& word_prefix = "w") {
    std::vector<std::string> tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    for (int i = 5; i < kFirstContinuation; i++) tokens.push_back(word_prefix + std::to_string(i));
    for (int i = kFirstContinuation; i < kVocabSize; i++) tokens.push_back("##c" + std::to_string(i));
    return Tokenizer(tokens);
}

// Documents of words: a start piece and 0-2 continuation pieces; now and then a literal [UNK]
// (a special token inside the text, which masking must skip).
std::vector<std::vector<int32_t>> make_docs(int count, int max_words, uint32_t seed, const Tokenizer& vocab) {
    std::mt19937 rng(seed);
    std::vector<std::vector<int32_t>> docs(count);
    for (auto& doc : docs) {
        const int words = 1 + (int)(rng() % max_words);
        for (int w = 0; w < words; w++) {
            if (rng() % 40 == 0) {
                doc.push_back(vocab.unk_id);
                continue;
            }
            doc.push_back(5 + (int32_t)(rng() % (kFirstContinuation - 5)));
            const int pieces = (int)(rng() % 3);
            for (int p = 0; p < pieces; p++)
                doc.push_back(kFirstContinuation + (int32_t)(rng() % (kVocabSize - kFirstContinuation)));
        }
    }
    return docs;
}

void write_shard(const std::string& path, const Tokenizer& vocab, const std::vector<std::vector<int32_t>>& docs) {
    TokenShardWriter w(path, vocab.vocab_size(), vocab.fingerprint());
    for (const auto& d : docs) w.add_document(d.data(), (int64_t)d.size());
    w.finish();
}

// A stream as the batcher defines it: documents joined by [SEP].
std::vector<int32_t> stream_of(const std::vector<std::vector<int32_t>>& docs, int32_t sep) {
    std::vector<int32_t> s;
    for (size_t d = 0; d < docs.size(); d++) {
        if (d > 0) s.push_back(sep);
        s.insert(s.end(), docs[d].begin(), docs[d].end());
    }
    return s;
}

// Two shards of different sizes in a scratch folder.
struct Corpus {
    ScratchDir dir;
    Tokenizer vocab = make_vocab();
    std::vector<std::vector<std::vector<int32_t>>> docs;  // [shard][document][token]
    std::vector<std::string> paths;
    explicit Corpus(int docs_a = 300, int docs_b = 170) {
        docs.push_back(make_docs(docs_a, 120, 11, vocab));
        docs.push_back(make_docs(docs_b, 60, 12, vocab));
        for (size_t s = 0; s < docs.size(); s++) {
            paths.push_back(dir / ("train_" + std::to_string(s) + ".bin"));
            write_shard(paths.back(), vocab, docs[s]);
        }
    }
    MlmBatcher batcher(MlmBatcherOptions o) const { return MlmBatcher(paths, vocab, o); }
};

MlmBatcherOptions options(int B, int T, uint64_t seed = 1, bool whole_word = false) {
    MlmBatcherOptions o;
    o.batch_size = B;
    o.seq_len = T;
    o.seed = seed;
    o.whole_word = whole_word;
    return o;
}

bool same_batch(const MlmBatch& a, const MlmBatch& b) {
    return a.B == b.B && a.T == b.T && a.input_ids == b.input_ids && a.token_types == b.token_types &&
           a.lengths == b.lengths && a.mlm_targets == b.mlm_targets && a.masked_positions == b.masked_positions &&
           a.masked_targets == b.masked_targets && a.sequence_index == b.sequence_index;
}

bool is_special(const Tokenizer& v, int32_t id) {
    return id == v.pad_id || id == v.unk_id || id == v.cls_id || id == v.sep_id || id == v.mask_id;
}

// Counts over many masked rows, checking on the way what must hold for every single row.
struct MaskStats {
    int64_t candidates = 0, selected = 0, to_mask = 0, to_random = 0, unchanged = 0, rows = 0;
};

void check_and_count(const MlmBatcher& batcher, const MlmBatch& batch, const Tokenizer& vocab, MaskStats& st) {
    const int T = batch.T;
    ASSERT_EQ((int)batch.input_ids.size(), batch.B * T);
    ASSERT_EQ(batch.masked_positions.size(), batch.masked_targets.size());
    int m = 0;  // walks masked_positions alongside the rows
    std::vector<int32_t> original;
    for (int b = 0; b < batch.B; b++) {
        batcher.sequence(batch.sequence_index[b], original);
        const int n = batch.lengths[b];
        ASSERT_EQ(n, (int)original.size());
        int row_candidates = 0, row_selected = 0;
        for (int t = 0; t < T; t++) {
            const int flat = b * T + t;
            const int32_t in = batch.input_ids[flat], target = batch.mlm_targets[flat];
            EXPECT_EQ(batch.token_types[flat], 0);
            if (t >= n) {  // padding
                ASSERT_EQ(in, vocab.pad_id);
                ASSERT_EQ(target, MlmBatch::kNoTarget);
                continue;
            }
            const bool special = is_special(vocab, original[t]);
            row_candidates += !special;
            if (target == MlmBatch::kNoTarget) {
                ASSERT_EQ(in, original[t]) << "an unselected token changed";
                continue;
            }
            ASSERT_FALSE(special) << "special token " << original[t] << " selected at " << t;
            ASSERT_EQ(target, original[t]);
            ASSERT_LT(m, batch.M());
            ASSERT_EQ(batch.masked_positions[m], flat) << "masked positions must be every target, ascending";
            ASSERT_EQ(batch.masked_targets[m], target);
            m++;
            row_selected++;
            if (in == vocab.mask_id) st.to_mask++;
            else if (in == original[t]) st.unchanged++;
            else {
                ASSERT_FALSE(is_special(vocab, in)) << "a random replacement must not be a special token";
                st.to_random++;
            }
        }
        if (row_candidates > 0) {
            ASSERT_GE(row_selected, 1) << "every sequence with a candidate has a masked token";
        }
        st.candidates += row_candidates;
        st.selected += row_selected;
        st.rows++;
    }
    ASSERT_EQ(m, batch.M());
}

// Within `sigmas` standard deviations of a binomial proportion p over n trials.
void expect_proportion(int64_t hits, int64_t n, double p, const char* what, double sigmas = 4.5) {
    const double observed = (double)hits / (double)n, sd = std::sqrt(p * (1 - p) / (double)n);
    std::printf("  %-22s %.4f (expected %.4f +- %.4f)\n", what, observed, p, sigmas * sd);
    EXPECT_NEAR(observed, p, sigmas * sd) << what;
}

}  // namespace

TEST(MlmBatcher, SequencesAreClsWindowSep) {
    const Corpus c;
    for (int T : {3, 4, 17, 64}) {
        const MlmBatcher batcher = c.batcher(options(8, T));
        std::vector<int32_t> ids;
        int64_t short_ones = 0;
        for (int64_t i = 0; i < batcher.sequence_count(); i++) {
            batcher.sequence(i, ids);
            ASSERT_GE(ids.size(), 3u);
            ASSERT_LE((int)ids.size(), T);
            EXPECT_EQ(ids.front(), c.vocab.cls_id);
            EXPECT_EQ(ids.back(), c.vocab.sep_id);
            EXPECT_EQ(std::count(ids.begin(), ids.end(), c.vocab.cls_id), 1);
            short_ones += (int)ids.size() < T;
        }
        EXPECT_LE(short_ones, 2) << "only each shard's last sequence may be shorter than T = " << T;
    }
}

TEST(MlmBatcher, WindowsReproduceTheStream) {
    const Corpus c;
    for (int T : {3, 10, 64, 513}) {
        const MlmBatcher batcher = c.batcher(options(4, T));
        int64_t index = 0;
        for (size_t s = 0; s < c.docs.size(); s++) {
            const std::vector<int32_t> stream = stream_of(c.docs[s], c.vocab.sep_id);
            const int64_t windows = ((int64_t)stream.size() + T - 3) / (T - 2);
            std::vector<int32_t> joined, ids;
            for (int64_t w = 0; w < windows; w++, index++) {  // sequences never span two shards
                batcher.sequence(index, ids);
                joined.insert(joined.end(), ids.begin() + 1, ids.end() - 1);
            }
            EXPECT_EQ(joined, stream) << "shard " << s << ", T = " << T;
        }
        EXPECT_EQ(index, batcher.sequence_count()) << "T = " << T;
    }
}

TEST(MlmBatcher, EachEpochIsAShuffledPermutation) {
    const Corpus c;
    MlmBatcher batcher = c.batcher(options(7, 64));  // 7 does not divide N: batches straddle epochs
    const int64_t N = batcher.sequence_count();
    std::vector<int64_t> drawn;
    MlmBatch batch;
    while ((int64_t)drawn.size() < 3 * N) {
        batcher.next_batch(batch);
        ASSERT_EQ(batch.B, 7);
        drawn.insert(drawn.end(), batch.sequence_index.begin(), batch.sequence_index.end());
    }
    std::vector<std::vector<int64_t>> epochs;
    for (int e = 0; e < 3; e++) {
        std::vector<int64_t> order(drawn.begin() + e * N, drawn.begin() + (e + 1) * N), sorted = order;
        std::sort(sorted.begin(), sorted.end());
        for (int64_t i = 0; i < N; i++) ASSERT_EQ(sorted[i], i) << "epoch " << e << " is not a permutation";
        int64_t in_place = 0;
        for (int64_t i = 0; i < N; i++) in_place += order[i] == i;
        EXPECT_LT(in_place, N / 10) << "epoch " << e << " looks unshuffled";
        epochs.push_back(order);
    }
    EXPECT_NE(epochs[0], epochs[1]);
    EXPECT_NE(epochs[1], epochs[2]);
    EXPECT_EQ(batcher.epoch(), (int64_t)drawn.size() / N);
    EXPECT_EQ(batcher.position(), (int64_t)drawn.size() % N);
}

TEST(MlmBatcher, MaskingRatesAndSplit) {
    const Corpus c;
    MlmBatcher batcher = c.batcher(options(16, 64, 5));
    MaskStats st;
    MlmBatch batch;
    while (st.rows < 2 * batcher.sequence_count()) {
        batcher.next_batch(batch);
        check_and_count(batcher, batch, c.vocab, st);
        if (HasFatalFailure()) return;
    }
    // The selected count per sequence is round(0.15 n), so the rate is 0.15 up to rounding.
    const double rate = (double)st.selected / (double)st.candidates;
    std::printf("  selected %ld of %ld candidates: %.4f\n", (long)st.selected, (long)st.candidates, rate);
    EXPECT_NEAR(rate, 0.15, 0.01);
    const int64_t R = kVocabSize - 5;  // non-special ids a random replacement is drawn from
    expect_proportion(st.to_mask, st.selected, 0.8, "[MASK]");
    expect_proportion(st.to_random, st.selected, 0.1 * (R - 1) / R, "random (changed)");
    expect_proportion(st.unchanged, st.selected, 0.1 + 0.1 / R, "unchanged");
}

TEST(MlmBatcher, WholeWordMaskingSelectsWholeWords) {
    const Corpus c;
    for (bool whole_word : {true, false}) {
        MlmBatcher batcher = c.batcher(options(16, 64, 9, whole_word));
        MaskStats st;
        MlmBatch batch;
        int64_t words = 0, split_words = 0;
        std::vector<int32_t> original;
        while (st.rows < batcher.sequence_count()) {
            batcher.next_batch(batch);
            check_and_count(batcher, batch, c.vocab, st);
            if (HasFatalFailure()) return;
            for (int b = 0; b < batch.B; b++) {
                batcher.sequence(batch.sequence_index[b], original);
                // A word: a non-special piece that is not '##', or a '##' piece right after a
                // special token, with every '##' piece that follows it.
                for (int t = 0; t < (int)original.size();) {
                    if (is_special(c.vocab, original[t])) {
                        t++;
                        continue;
                    }
                    int end = t + 1;
                    while (end < (int)original.size() && original[end] >= kFirstContinuation) end++;
                    int selected = 0;
                    for (int k = t; k < end; k++) selected += batch.mlm_targets[b * batch.T + k] != MlmBatch::kNoTarget;
                    words += end - t > 1;
                    split_words += selected > 0 && selected < end - t;
                    t = end;
                }
            }
        }
        const double rate = (double)st.selected / (double)st.candidates;
        std::printf("  whole_word %d: rate %.4f, %ld of %ld multi-piece words split\n", whole_word, rate,
                    (long)split_words, (long)words);
        if (whole_word) {
            EXPECT_EQ(split_words, 0) << "whole-word masking split a word";
            EXPECT_NEAR(rate, 0.145, 0.015);  // words that do not fit the count are skipped: a little under 15%
            expect_proportion(st.to_mask, st.selected, 0.8, "[MASK] (per token)");
        } else {
            EXPECT_GT(split_words, 100) << "token masking should split many words (the check above means something)";
        }
    }
}

TEST(MlmBatcher, SameSeedSameBatchesOtherSeedOthers) {
    const Corpus c;
    MlmBatcher a = c.batcher(options(8, 32, 42)), b = c.batcher(options(8, 32, 42)), other = c.batcher(options(8, 32, 43));
    MlmBatch ba, bb, bo;
    int differ = 0;
    for (int k = 0; k < 20; k++) {
        a.next_batch(ba);
        b.next_batch(bb);
        other.next_batch(bo);
        ASSERT_TRUE(same_batch(ba, bb)) << "batch " << k;
        differ += !same_batch(ba, bo);
    }
    EXPECT_EQ(differ, 20);
}

TEST(MlmBatcher, NewEpochNewMasksAndOrder) {
    const Corpus c;
    MlmBatcher batcher = c.batcher(options(1, 64, 3));  // B = 1: one row per draw, epochs line up
    const int64_t N = batcher.sequence_count();
    std::vector<std::vector<int32_t>> masks_by_epoch[2];  // [epoch][sequence] -> masked positions
    std::vector<int64_t> order[2];
    MlmBatch batch;
    for (int e = 0; e < 2; e++) {
        masks_by_epoch[e].resize(N);
        for (int64_t i = 0; i < N; i++) {
            batcher.next_batch(batch);
            masks_by_epoch[e][batch.sequence_index[0]] = batch.masked_positions;
            order[e].push_back(batch.sequence_index[0]);
        }
    }
    EXPECT_NE(order[0], order[1]);
    int64_t same = 0;
    for (int64_t i = 0; i < N; i++) same += masks_by_epoch[0][i] == masks_by_epoch[1][i];
    EXPECT_LT(same, N / 20) << "masks should be drawn afresh each epoch";
}

TEST(MlmBatcher, ResumeFromSavedStateIsExact) {
    const Corpus c;
    const MlmBatcherOptions o = options(9, 48, 77, true);
    MlmBatcher original = c.batcher(o);
    MlmBatch batch, resumed_batch;
    const int64_t per_epoch = (original.sequence_count() + 8) / 9;
    for (int64_t k = 0; k < per_epoch - 2; k++) original.next_batch(batch);  // stop just before an epoch boundary
    const std::string saved = original.state().to_bytes();

    // A fresh batcher with another seed in its options: the state's seed wins.
    MlmBatcherOptions fresh_options = o;
    fresh_options.seed = 1;
    MlmBatcher resumed = c.batcher(fresh_options);
    resumed.restore(MlmBatcherState::from_bytes(saved, "state.bin"));
    for (int k = 0; k < 6; k++) {  // across the boundary into the next epoch
        original.next_batch(batch);
        resumed.next_batch(resumed_batch);
        ASSERT_TRUE(same_batch(batch, resumed_batch)) << "batch " << k << " after resuming";
    }
    EXPECT_EQ(original.state().to_bytes(), resumed.state().to_bytes());

    // Another batch size after resuming: the same sequences with the same masks, in the same order.
    MlmBatcherOptions wide = o;
    wide.batch_size = 27;
    MlmBatcher a = c.batcher(o), b = c.batcher(wide);
    b.restore(a.state());
    MlmBatch big, small;
    b.next_batch(big);
    for (int k = 0; k < 3; k++) {
        a.next_batch(small);
        for (int r = 0; r < 9; r++) {
            const int R = k * 9 + r;
            ASSERT_EQ(small.sequence_index[r], big.sequence_index[R]);
            ASSERT_TRUE(std::equal(small.input_ids.begin() + r * 48, small.input_ids.begin() + (r + 1) * 48,
                                   big.input_ids.begin() + R * 48));
        }
    }
}

TEST(MlmBatcher, StateErrors) {
    const Corpus c;
    MlmBatcher batcher = c.batcher(options(4, 32));
    const std::string good = batcher.state().to_bytes();
    EXPECT_EQ(good.size(), 56u);
    EXPECT_ERROR_MENTIONS(MlmBatcherState::from_bytes(good.substr(0, 50), "ckpt/state.bin"), "ckpt/state.bin", "50 bytes");
    std::string flipped = good;
    flipped[30] ^= 1;
    EXPECT_ERROR_MENTIONS(MlmBatcherState::from_bytes(flipped, "ckpt/state.bin"), "ckpt/state.bin", "checksum");
    std::string magic = good;
    magic[0] = 'X';
    EXPECT_ERROR_MENTIONS(MlmBatcherState::from_bytes(magic, "s"), "magic");

    // A state of another setup (other T; other masking) is refused; so is a position out of range.
    MlmBatcher other_T = c.batcher(options(4, 33));
    EXPECT_ERROR_MENTIONS(other_T.restore(batcher.state()), "other shards, sequence length or masking options");
    MlmBatcher other_masking = c.batcher(options(4, 32, 1, true));
    EXPECT_ERROR_MENTIONS(other_masking.restore(batcher.state()), "masking options");
    MlmBatcherState s = batcher.state();
    s.position = batcher.sequence_count();
    EXPECT_ERROR_MENTIONS(batcher.restore(s), "out of range");
}

TEST(MlmBatcher, ValidationBatchesAreFixed) {
    const Corpus c;
    MlmBatcher a = c.batcher(options(16, 64, 1)), b = c.batcher(options(16, 64, 999));
    MlmBatch batch;
    for (int k = 0; k < 25; k++) b.next_batch(batch);  // training draws before validating must not matter
    ASSERT_EQ(a.validation_batch_count(), (a.sequence_count() + 15) / 16);
    MlmBatch va, vb;
    MaskStats st;
    int64_t next_index = 0;
    for (int64_t k = 0; k < a.validation_batch_count(); k++) {
        a.validation_batch(k, va);
        b.validation_batch(k, vb);
        ASSERT_TRUE(same_batch(va, vb)) << "validation batch " << k;
        for (int r = 0; r < va.B; r++) ASSERT_EQ(va.sequence_index[r], next_index++) << "validation reads in index order";
        check_and_count(a, va, c.vocab, st);
        if (HasFatalFailure()) return;
    }
    EXPECT_EQ(next_index, a.sequence_count());
    EXPECT_EQ(va.B, (int)(a.sequence_count() - 16 * (a.validation_batch_count() - 1))) << "the last batch is short";
    EXPECT_NEAR((double)st.selected / (double)st.candidates, 0.15, 0.01);
    // Asking again gives the same batch; the training position is untouched.
    const int64_t position = b.position();
    b.validation_batch(0, vb);
    a.validation_batch(0, va);
    EXPECT_TRUE(same_batch(va, vb));
    EXPECT_EQ(b.position(), position);
    EXPECT_ERROR_MENTIONS(a.validation_batch(a.validation_batch_count(), va), "out of range");
}

TEST(MlmBatcher, Errors) {
    const Corpus c;
    EXPECT_ERROR_MENTIONS(MlmBatcher({}, c.vocab, options(4, 32)), "no token shards");
    EXPECT_ERROR_MENTIONS(c.batcher(options(4, 2)), "seq_len", "is 2", "at least 3");
    EXPECT_ERROR_MENTIONS(c.batcher(options(0, 32)), "batch_size");
    MlmBatcherOptions bad = options(4, 32);
    bad.mask_fraction = 0;
    EXPECT_ERROR_MENTIONS(c.batcher(bad), "mask_fraction");
    bad = options(4, 32);
    bad.mask_token_fraction = 0.95;
    EXPECT_ERROR_MENTIONS(c.batcher(bad), "at most 1");

    // A shard with no tokens, named.
    const std::string empty = c.dir / "empty.bin";
    write_shard(empty, c.vocab, {});
    EXPECT_ERROR_MENTIONS(MlmBatcher({c.paths[0], empty}, c.vocab, options(4, 32)), "empty.bin", "no tokens");
    // A shard of another vocabulary, named (TokenShard checks the fingerprint).
    const Tokenizer other = make_vocab("v");
    const std::string foreign = c.dir / "foreign.bin";
    write_shard(foreign, other, make_docs(5, 10, 3, other));
    EXPECT_ERROR_MENTIONS(MlmBatcher({c.paths[0], foreign}, c.vocab, options(4, 32)), "foreign.bin", "vocab_fingerprint");
    EXPECT_ERROR_MENTIONS(MlmBatcher({c.dir / "missing.bin"}, c.vocab, options(4, 32)), "missing.bin");
}

// Batches made on a second thread (a GPU run) or on demand (the CPU): each the batch the batcher
// gives directly, with the state just after it, across an epoch boundary; a batcher restored
// from a batch's state continues with the next batch.
TEST(MlmBatcher, PrefetchedBatchesAndStatesAreTheDirectOnes) {
    const Corpus c;
    const MlmBatcherOptions o = options(9, 48, 77, true);
    for (const bool background : {true, false}) {
        MlmBatcher direct = c.batcher(o), prefetched = c.batcher(o);
        const int64_t per_epoch = (direct.sequence_count() + 8) / 9;
        MlmBatch expected, got;
        MlmBatcherState state_after;
        std::string middle_state;
        {
            BatchPrefetcher<MlmBatcher, MlmBatch> batches(prefetched, background);
            for (int64_t k = 0; k < per_epoch + 3; k++) {
                direct.next_batch(expected);
                batches.next(got, state_after);
                ASSERT_TRUE(same_batch(expected, got)) << "batch " << k << (background ? " (background)" : " (on demand)");
                ASSERT_EQ(state_after.to_bytes(), direct.state().to_bytes()) << "batch " << k;
                if (k == per_epoch / 2) middle_state = state_after.to_bytes();
            }
        }
        MlmBatcher resumed = c.batcher(o), again = c.batcher(o);
        resumed.restore(MlmBatcherState::from_bytes(middle_state, "state"));
        for (int64_t k = 0; k <= per_epoch / 2; k++) again.next_batch(expected);
        again.next_batch(expected);
        resumed.next_batch(got);
        EXPECT_TRUE(same_batch(expected, got)) << "the batch after a saved state";
    }
}
