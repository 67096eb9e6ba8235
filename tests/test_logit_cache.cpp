// tests/test_logit_cache.cpp: the teacher-logit cache of `distill cache`: float <-> binary16 against
// known bit patterns, fp32/fp16 round trips, the transfer-set fingerprint, resuming after a kill
// (with a torn chunk, and during finish), refusing a .partial of another run or one whose complete
// chunks were changed, and every reader error naming the file and the field.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "data/logit_cache.h"
#include "test_helpers.h"

using namespace wr;
using wr::testing::ScratchDir;

namespace {

// Deterministic logits with a spread of signs and magnitudes, none of them special.
std::vector<float> sample_logits(int64_t n, int k) {
    std::vector<float> v((size_t)(n * k));
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < k; j++) {
            float x = std::sin(0.7f * (float)i + 1.3f * (float)j) * (float)(1 + (i + j) % 7) * 3.0f;
            if ((i + j) % 11 == 0) x *= 1e-5f;  // a few tiny ones
            v[(size_t)(i * k + j)] = x;
        }
    return v;
}

LogitCacheHeader sample_header(int k, int64_t n, int64_t chunk, LogitValueType type = LogitValueType::F32) {
    LogitCacheHeader h;
    h.value_type = type;
    h.num_labels = k;
    h.example_count = n;
    h.chunk_size = chunk;
    h.teacher_fingerprint = 0x1111222233334444ULL;
    h.transfer_fingerprint = 0xaaaabbbbccccddddULL;
    return h;
}

// Writes the rows in pieces of the given sizes (cycled), then finishes.
void write_cache(const std::string& path, const LogitCacheHeader& h, const std::vector<float>& logits,
                 std::vector<int64_t> pieces = {1}) {
    LogitCacheWriter w(path, h);
    int64_t done = 0;
    for (size_t p = 0; done < h.example_count; p++) {
        const int64_t rows = std::min(pieces[p % pieces.size()], h.example_count - done);
        w.append(logits.data() + done * h.num_labels, rows);
        done += rows;
    }
    w.finish();
}

void append_bytes(const std::string& path, const std::string& bytes) {
    FILE* f = std::fopen(path.c_str(), "ab");
    ASSERT_NE(f, nullptr);
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
}

template <typename T>
void patch(const std::string& path, size_t offset, T value) {
    std::string file = read_file(path);
    ASSERT_LE(offset + sizeof(T), file.size());
    std::memcpy(&file[offset], &value, sizeof(T));
    write_file_atomic(path, file);
}

// Recomputes both checksums as docs/formats.md defines them (data: wr::Checksum of bytes 72..end,
// stored at 56; header: wr::Checksum of bytes 0..63, stored at 64), so a test can plant one fault.
void reseal(const std::string& path) {
    std::string file = read_file(path);
    Checksum data;
    data.update(file.data() + 72, file.size() - 72);
    const uint64_t d = data.digest();
    std::memcpy(&file[56], &d, 8);
    Checksum header;
    header.update(file.data(), 64);
    const uint64_t h = header.digest();
    std::memcpy(&file[64], &h, 8);
    write_file_atomic(path, file);
}

Example make_example(std::vector<int32_t> ids, int32_t second_start, int32_t label) {
    Example e;
    e.ids = std::move(ids);
    e.second_start = second_start;
    e.label = label;
    return e;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// binary16

TEST(LogitCacheHalf, FloatToHalfKnownBitPatterns) {
    EXPECT_EQ(float_to_half(1.0f), 0x3C00);
    EXPECT_EQ(float_to_half(-2.0f), 0xC000);
    EXPECT_EQ(float_to_half(0.0f), 0x0000);
    EXPECT_EQ(float_to_half(-0.0f), 0x8000);
    EXPECT_EQ(float_to_half(0.333333f), 0x3555);
    EXPECT_EQ(float_to_half(0.1f), 0x2E66);
    EXPECT_EQ(float_to_half(65504.0f), 0x7BFF);            // largest finite half
    EXPECT_EQ(float_to_half(65519.0f), 0x7BFF);            // below the halfway point to 65536
    EXPECT_EQ(float_to_half(65520.0f), 0x7C00);            // halfway: to even, which is inf
    EXPECT_EQ(float_to_half(1e6f), 0x7C00);                // overflow
    EXPECT_EQ(float_to_half(-1e6f), 0xFC00);
    EXPECT_EQ(float_to_half(std::numeric_limits<float>::infinity()), 0x7C00);
    EXPECT_EQ(float_to_half(-std::numeric_limits<float>::infinity()), 0xFC00);
    EXPECT_EQ(float_to_half(1e-8f), 0x0000);               // underflow
    EXPECT_EQ(float_to_half(-1e-8f), 0x8000);
    EXPECT_EQ(float_to_half(1e-40f), 0x0000);              // a float subnormal
    EXPECT_EQ(float_to_half(std::ldexp(1.0f, -14)), 0x0400);     // smallest normal
    EXPECT_EQ(float_to_half(std::ldexp(1.0f, -24)), 0x0001);     // smallest subnormal
    EXPECT_EQ(float_to_half(std::ldexp(1023.0f, -24)), 0x03FF);  // largest subnormal
    EXPECT_EQ(float_to_half(std::ldexp(1.0f, -25)), 0x0000);     // half a unit: to even (0)
    EXPECT_EQ(float_to_half(std::ldexp(3.0f, -26)), 0x0001);     // 0.75 units: up
    EXPECT_EQ(float_to_half(std::ldexp(2047.0f, -25)), 0x0400);  // 1023.5 units: to even, a normal
    // Ties to even among normals: 1 + 2^-11 lies halfway between 0x3C00 and 0x3C01.
    EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11)), 0x3C00);
    EXPECT_EQ(float_to_half(1.0f + std::ldexp(3.0f, -11)), 0x3C02);
    EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), 0x3C01);
    const uint16_t nan = float_to_half(std::numeric_limits<float>::quiet_NaN());
    EXPECT_EQ(nan & 0x7C00, 0x7C00);
    EXPECT_NE(nan & 0x03FF, 0);
}

TEST(LogitCacheHalf, HalfToFloatKnownValuesAndEveryPatternRoundTrips) {
    EXPECT_EQ(half_to_float(0x3C00), 1.0f);
    EXPECT_EQ(half_to_float(0xC000), -2.0f);
    EXPECT_EQ(half_to_float(0x3555), 0.333251953125f);
    EXPECT_EQ(half_to_float(0x7BFF), 65504.0f);
    EXPECT_EQ(half_to_float(0x0400), 6.103515625e-05f);
    EXPECT_EQ(half_to_float(0x0001), 5.9604644775390625e-08f);
    EXPECT_EQ(half_to_float(0x03FF), 6.097555160522461e-05f);
    EXPECT_EQ(half_to_float(0x8000), 0.0f);
    EXPECT_TRUE(std::signbit(half_to_float(0x8000)));
    EXPECT_EQ(half_to_float(0x7C00), std::numeric_limits<float>::infinity());
    EXPECT_EQ(half_to_float(0xFC00), -std::numeric_limits<float>::infinity());
    EXPECT_TRUE(std::isnan(half_to_float(0x7E00)));
    for (uint32_t h = 0; h < 0x10000; h++) {
        const bool is_nan = (h & 0x7C00) == 0x7C00 && (h & 0x03FF) != 0;
        if (is_nan) {
            ASSERT_TRUE(std::isnan(half_to_float((uint16_t)h))) << std::hex << h;
        } else {
            ASSERT_EQ(float_to_half(half_to_float((uint16_t)h)), h) << std::hex << h;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Round trips

TEST(LogitCache, RoundTripFp32IsExact) {
    ScratchDir dir;
    const std::string path = dir / "cache.bin";
    const LogitCacheHeader h = sample_header(3, 10, 4);
    const std::vector<float> logits = sample_logits(10, 3);
    write_cache(path, h, logits, {1, 5, 0, 4});
    EXPECT_FALSE(file_exists(path + ".partial"));
    EXPECT_EQ(read_file(path).size(), 72u + 10 * 3 * 4);

    const LogitCache c = read_logit_cache(path);
    EXPECT_EQ(c.path, path);
    EXPECT_EQ(c.header.kind, LogitCacheKind::Class);
    EXPECT_EQ(c.header.value_type, LogitValueType::F32);
    EXPECT_EQ(c.header.num_labels, 3);
    EXPECT_EQ(c.header.example_count, 10);
    EXPECT_EQ(c.header.chunk_size, 4);
    EXPECT_EQ(c.header.teacher_fingerprint, 0x1111222233334444ULL);
    EXPECT_EQ(c.header.transfer_fingerprint, 0xaaaabbbbccccddddULL);
    ASSERT_EQ(c.logits.size(), logits.size());
    EXPECT_EQ(std::memcmp(c.logits.data(), logits.data(), logits.size() * 4), 0);
    EXPECT_EQ(c.row(7)[2], logits[7 * 3 + 2]);
    // The values sit right after the 72-byte header, example-major, as float32.
    float fifth;
    std::memcpy(&fifth, read_file(path).data() + 72 + 5 * 4, 4);
    EXPECT_EQ(fifth, logits[5]);
}

TEST(LogitCache, UpToDateWhenEveryFieldButTheChunkSizeMatches) {
    ScratchDir dir;
    const std::string path = dir / "cache.bin";
    const LogitCacheHeader h = sample_header(3, 10, 4);
    write_cache(path, h, sample_logits(10, 3));
    EXPECT_TRUE(logit_cache_up_to_date(path, h));
    LogitCacheHeader other = h;
    other.chunk_size = 7;  // only how the file was written, not what it holds
    EXPECT_TRUE(logit_cache_up_to_date(path, other));
    const std::vector<void (*)(LogitCacheHeader&)> changes = {
        [](LogitCacheHeader& x) { x.value_type = LogitValueType::F16; },
        [](LogitCacheHeader& x) { x.num_labels = 2; },
        [](LogitCacheHeader& x) { x.example_count = 11; },
        [](LogitCacheHeader& x) { x.teacher_fingerprint ^= 1; },
        [](LogitCacheHeader& x) { x.transfer_fingerprint ^= 1; },
    };
    for (size_t i = 0; i < changes.size(); i++) {
        other = h;
        changes[i](other);
        EXPECT_FALSE(logit_cache_up_to_date(path, other)) << "change " << i;
    }
    // A damaged file is an error, not "out of date".
    patch<float>(path, 72 + 4, 1.0f);
    EXPECT_THROW(logit_cache_up_to_date(path, h), Error);
}

TEST(LogitCache, RoundTripFp16WithinHalfPrecision) {
    ScratchDir dir;
    const std::string path = dir / "cache16.bin";
    const LogitCacheHeader h = sample_header(5, 37, 8, LogitValueType::F16);
    const std::vector<float> logits = sample_logits(37, 5);
    write_cache(path, h, logits, {3, 20});
    EXPECT_EQ(read_file(path).size(), 72u + 37 * 5 * 2);
    const LogitCache c = read_logit_cache(path);
    EXPECT_EQ(c.header.value_type, LogitValueType::F16);
    ASSERT_EQ(c.logits.size(), logits.size());
    int tiny = 0;
    for (size_t i = 0; i < logits.size(); i++) {
        const float want = logits[i], got = c.logits[i];
        if (std::fabs(want) >= 6.2e-5f) {  // normal halves: relative error at most 2^-11
            EXPECT_LE(std::fabs(got - want), 1e-3f * std::fabs(want)) << i;
        } else {  // subnormal halves: absolute error at most half a unit, 2^-25
            EXPECT_LE(std::fabs(got - want), 3e-8f) << i;
            tiny++;
        }
    }
    EXPECT_GT(tiny, 0);  // the tiny branch was exercised
}

TEST(LogitCache, EmptyTransferSet) {
    ScratchDir dir;
    const std::string path = dir / "empty.bin";
    write_cache(path, sample_header(2, 0, 4), {});
    EXPECT_EQ(read_file(path).size(), 72u);
    const LogitCache c = read_logit_cache(path);
    EXPECT_EQ(c.header.example_count, 0);
    EXPECT_TRUE(c.logits.empty());
}

// ---------------------------------------------------------------------------------------------
// The transfer-set fingerprint

TEST(LogitCache, ExamplesFingerprintCoversTokensNotLabels) {
    ExampleSet set;
    set.label_kind = LabelKind::Class;
    set.label_names = {"neg", "pos"};
    set.vocab_size = 100;
    set.max_len = 16;
    set.examples = {make_example({2, 10, 11, 3}, 0, 0), make_example({2, 12, 3, 13, 14, 3}, 3, 1),
                    make_example({2, 15, 16, 17, 3}, 0, 1)};
    const uint64_t base = examples_fingerprint(set);
    EXPECT_EQ(examples_fingerprint(set), base);  // deterministic

    ExampleSet s = set;
    s.examples[1].ids[1] = 20;
    EXPECT_NE(examples_fingerprint(s), base) << "one token id";
    s = set;
    s.examples[1].second_start = 4;
    EXPECT_NE(examples_fingerprint(s), base) << "second_start";
    s = set;
    std::swap(s.examples[0], s.examples[2]);
    EXPECT_NE(examples_fingerprint(s), base) << "order";
    s = set;
    s.examples.pop_back();
    EXPECT_NE(examples_fingerprint(s), base) << "one example fewer";
    // The same int32 stream (ids, second_start, ids, second_start) cut into examples differently:
    // only the per-example token counts tell these apart (not valid examples; no matter here).
    ExampleSet cut_a, cut_b;
    cut_a.examples = {make_example({2, 5, 3}, 0, -1), make_example({2, 6, 3}, 0, -1)};
    cut_b.examples = {make_example({2, 5, 3, 0, 2}, 6, -1), make_example({3}, 0, -1)};
    EXPECT_NE(examples_fingerprint(cut_a), examples_fingerprint(cut_b)) << "example boundaries";

    s = set;
    for (Example& e : s.examples) e.label = 1 - e.label;
    s.examples[0].value = 4.5f;
    s.label_names = {"a", "b"};
    s.label_kind = LabelKind::None;
    EXPECT_EQ(examples_fingerprint(s), base) << "labels must not count";
}

// ---------------------------------------------------------------------------------------------
// Resuming

TEST(LogitCache, ResumesAfterKillAndTornChunkByteIdentical) {
    ScratchDir dir;
    const int K = 3;
    const int64_t N = 17, chunk = 4;  // chunks of 4, 4, 4, 4, 1
    const LogitCacheHeader h = sample_header(K, N, chunk);
    const std::vector<float> logits = sample_logits(N, K);
    const std::string reference = dir / "reference.bin", path = dir / "cache.bin", partial = path + ".partial";
    write_cache(reference, h, logits, {N});

    {
        LogitCacheWriter w(path, h);
        EXPECT_EQ(w.examples_done(), 0);
        EXPECT_EQ(w.partial_path(), partial);
        w.append(logits.data(), 3);
        w.append(logits.data() + 3 * K, 7);  // 10 examples: 2.5 chunks
        EXPECT_EQ(w.examples_done(), 10);
    }  // destroyed without finish(): killed
    EXPECT_FALSE(file_exists(path));
    ASSERT_TRUE(file_exists(partial));
    const size_t values_end = 72u + N * K * 4;
    EXPECT_EQ(read_file(partial).size(), values_end + 2 * 8);  // the table lists the two complete chunks, not the half one
    {
        // A torn write: half of chunk 2 written as garbage, and half of its table entry.
        std::string torn = read_file(partial);
        std::memset(&torn[72 + 8 * K * 4], 0x7f, 2 * K * 4);
        write_file_atomic(partial, torn + "torn");
    }

    {
        LogitCacheWriter w(path, h);
        EXPECT_EQ(w.examples_resumed(), 8);
        ASSERT_EQ(w.examples_done(), 8);
        EXPECT_EQ(read_file(partial).size(), values_end + 2 * 8);  // the torn entry is gone
        w.append(logits.data() + 8 * K, 5);
        w.append(logits.data() + 13 * K, 4);
        EXPECT_EQ(w.examples_done(), N);
        w.finish();
    }
    EXPECT_FALSE(file_exists(partial));
    EXPECT_EQ(read_file(path), read_file(reference));
    const LogitCache c = read_logit_cache(path);
    EXPECT_EQ(std::memcmp(c.logits.data(), logits.data(), logits.size() * 4), 0);
}

TEST(LogitCache, ResumesAfterKillInsideFinishOrBeforeAnyChunk) {
    ScratchDir dir;
    const LogitCacheHeader h = sample_header(2, 9, 4, LogitValueType::F16);
    const std::vector<float> logits = sample_logits(9, 2);
    const std::string reference = dir / "reference.bin";
    write_cache(reference, h, logits, {2});

    // Killed after finish() rewrote the header but before the rename: every value is there.
    const std::string a = dir / "a.bin";
    write_file_atomic(a + ".partial", read_file(reference));
    {
        LogitCacheWriter w(a, h);
        EXPECT_EQ(w.examples_done(), 9);
        w.finish();
    }
    EXPECT_EQ(read_file(a), read_file(reference));

    // Killed before the first chunk was complete: only the header is there.
    const std::string b = dir / "b.bin";
    { LogitCacheWriter w(b, h); }
    EXPECT_EQ(read_file(b + ".partial").size(), 72u);
    {
        LogitCacheWriter w(b, h);
        EXPECT_EQ(w.examples_done(), 0);
        w.append(logits.data(), 9);
        w.finish();
    }
    EXPECT_EQ(read_file(b), read_file(reference));

    // Killed while the header itself was being written: a prefix of the header starts over.
    const std::string c = dir / "c.bin";
    write_file_atomic(c + ".partial", read_file(reference).substr(0, 30));
    {
        LogitCacheWriter w(c, h);
        EXPECT_EQ(w.examples_done(), 0);
        w.append(logits.data(), 9);
        w.finish();
    }
    EXPECT_EQ(read_file(c), read_file(reference));
}

// A value changed in a complete chunk of PATH.partial (or in its checksum) would otherwise end up
// in the finished cache under a valid data_checksum: resuming refuses it, naming the file and the
// chunk, and leaves the file as it is.
TEST(LogitCache, ResumeRefusesAChangedCompleteChunk) {
    ScratchDir dir;
    const int K = 2;
    const int64_t N = 14, chunk = 4;  // chunks 0..3 hold examples 0-3, 4-7, 8-11, 12-13
    const LogitCacheHeader h = sample_header(K, N, chunk);
    const std::vector<float> logits = sample_logits(N, K);
    const std::string path = dir / "cache.bin", partial = path + ".partial";
    {
        LogitCacheWriter w(path, h);
        w.append(logits.data(), 10);  // chunks 0 and 1 complete
    }
    const std::string good = read_file(partial);

    std::string changed = good;
    changed[72 + 5 * K * 4 + 1] ^= 0x01;  // example 5, in chunk 1
    write_file_atomic(partial, changed);
    EXPECT_ERROR_MENTIONS(LogitCacheWriter(path, h), "cache.bin.partial", "chunk 1", "examples 4..7", "delete");
    EXPECT_EQ(read_file(partial), changed);
    EXPECT_FALSE(file_exists(path));

    changed = good;
    changed[72 + N * K * 4] ^= 0x80;  // chunk 0's entry in the table
    write_file_atomic(partial, changed);
    EXPECT_ERROR_MENTIONS(LogitCacheWriter(path, h), "cache.bin.partial", "chunk 0", "examples 0..3");
    EXPECT_EQ(read_file(partial), changed);

    // A partial sealed by a killed finish() (every value there, the table cut off): checked
    // against data_checksum.
    const std::string reference = dir / "reference.bin";
    write_cache(reference, h, logits, {3});
    changed = read_file(reference);
    changed[72 + 13 * K * 4] ^= 0x04;  // example 13
    write_file_atomic(partial, changed);
    EXPECT_ERROR_MENTIONS(LogitCacheWriter(path, h), "cache.bin.partial", "data_checksum", "delete");
    EXPECT_EQ(read_file(partial), changed);

    // Unchanged, it resumes at example 8.
    write_file_atomic(partial, good);
    LogitCacheWriter w(path, h);
    EXPECT_EQ(w.examples_resumed(), 8);
}

TEST(LogitCache, PartialOfAnotherRunIsRefusedAndKept) {
    ScratchDir dir;
    const std::string path = dir / "cache.bin", partial = path + ".partial";
    const LogitCacheHeader h = sample_header(3, 20, 4);
    const std::vector<float> logits = sample_logits(20, 3);
    {
        LogitCacheWriter w(path, h);
        w.append(logits.data(), 6);
    }
    const std::string before = read_file(partial);
    ASSERT_EQ(before.size(), 72u + 20 * 3 * 4 + 8);  // the values' length, then one chunk's table entry

    LogitCacheHeader other = h;
    other.teacher_fingerprint ^= 1;
    EXPECT_ERROR_MENTIONS(LogitCacheWriter(path, other), "cache.bin.partial", "teacher_fingerprint", "0x1111222233334444",
                          "0x1111222233334445", "delete");
    other = h;
    other.transfer_fingerprint = 7;
    EXPECT_ERROR_MENTIONS(LogitCacheWriter(path, other), "cache.bin.partial", "transfer_fingerprint", "transfer set");
    other = h;
    other.num_labels = 2;
    EXPECT_ERROR_MENTIONS(LogitCacheWriter(path, other), "cache.bin.partial", "num_labels", "3", "2");
    other = h;
    other.value_type = LogitValueType::F16;
    EXPECT_ERROR_MENTIONS(LogitCacheWriter(path, other), "cache.bin.partial", "value_type");
    other = h;
    other.example_count = 21;
    EXPECT_ERROR_MENTIONS(LogitCacheWriter(path, other), "cache.bin.partial", "example_count", "20", "21");
    other = h;
    other.chunk_size = 5;
    EXPECT_ERROR_MENTIONS(LogitCacheWriter(path, other), "cache.bin.partial", "chunk_size");
    // Two fields differ: the first in header order is named.
    other = h;
    other.num_labels = 2;
    other.teacher_fingerprint = 5;
    EXPECT_ERROR_MENTIONS(LogitCacheWriter(path, other), "num_labels");
    EXPECT_EQ(read_file(partial), before);
    EXPECT_FALSE(file_exists(path));

    // Not a cache at all, long or short: refused, untouched.
    const std::string stranger = dir / "notes.txt";
    write_file_atomic(stranger + ".partial", std::string(200, 'x'));
    EXPECT_ERROR_MENTIONS(LogitCacheWriter(stranger, h), "notes.txt.partial", "magic");
    EXPECT_EQ(read_file(stranger + ".partial"), std::string(200, 'x'));
    const std::string shorter = dir / "short.bin";
    write_file_atomic(shorter + ".partial", "hello");
    EXPECT_ERROR_MENTIONS(LogitCacheWriter(shorter, h), "short.bin.partial", "header", "delete");
    EXPECT_EQ(read_file(shorter + ".partial"), "hello");
    // A corrupted header: refused, untouched.
    std::string corrupt = before;
    corrupt[20] ^= 0x40;  // num_labels
    write_file_atomic(partial, corrupt);
    EXPECT_ERROR_MENTIONS(LogitCacheWriter(path, h), "cache.bin.partial", "header_checksum");
    EXPECT_EQ(read_file(partial), corrupt);
}

TEST(LogitCache, WriterRefusesBadInput) {
    ScratchDir dir;
    const std::vector<float> logits = sample_logits(8, 2);
    {
        LogitCacheWriter w(dir / "a.bin", sample_header(2, 8, 4));
        w.append(logits.data(), 6);
        EXPECT_ERROR_MENTIONS(w.append(logits.data(), 3), "a.bin.partial", "example_count", "8");
        EXPECT_ERROR_MENTIONS(w.finish(), "a.bin.partial", "example_count", "6 of the 8");
        float bad[2] = {1.0f, std::numeric_limits<float>::quiet_NaN()};
        EXPECT_ERROR_MENTIONS(w.append(bad, 1), "a.bin.partial", "logits", "example 6", "non-finite");
    }
    {
        LogitCacheWriter w(dir / "b.bin", sample_header(2, 8, 4, LogitValueType::F16));
        float big[2] = {1.0f, 70000.0f};
        EXPECT_ERROR_MENTIONS(w.append(big, 1), "b.bin.partial", "logits", "example 0", "fp16", "fp32");
    }
    LogitCacheHeader h = sample_header(2, 8, 4);
    h.kind = LogitCacheKind::MlmTopK;
    EXPECT_ERROR_MENTIONS(LogitCacheWriter(dir / "c.bin", h), "c.bin", "kind", "MLM");  // needs the MLM block
    h = sample_header(0, 8, 4);
    EXPECT_ERROR_MENTIONS(LogitCacheWriter(dir / "d.bin", h), "d.bin", "num_labels");
    h = sample_header(2, 8, 0);
    EXPECT_ERROR_MENTIONS(LogitCacheWriter(dir / "e.bin", h), "e.bin", "chunk_size");
    EXPECT_FALSE(file_exists(dir / "c.bin.partial"));
}

// ---------------------------------------------------------------------------------------------
// Reader errors

TEST(LogitCache, ReaderErrorsNameFileAndField) {
    ScratchDir dir;
    const std::string good = dir / "good.bin";
    write_cache(good, sample_header(3, 10, 4), sample_logits(10, 3), {10});
    ASSERT_NO_THROW(read_logit_cache(good));
    const size_t size = 72 + 10 * 3 * 4;  // 192
    ASSERT_EQ(read_file(good).size(), size);
    auto fresh = [&](const char* name) {
        const std::string p = dir / name;
        write_file_atomic(p, read_file(good));
        return p;
    };

    std::string p = fresh("magic.bin");
    std::string file = read_file(p);
    std::memcpy(&file[0], "WRLOGITZ", 8);
    write_file_atomic(p, file);
    EXPECT_ERROR_MENTIONS(read_logit_cache(p), "magic.bin", "magic");

    p = fresh("short.bin");
    write_file_atomic(p, read_file(good).substr(0, 40));
    EXPECT_ERROR_MENTIONS(read_logit_cache(p), "short.bin", "header", "truncated");

    p = fresh("version.bin");
    patch<uint32_t>(p, 8, 2);
    reseal(p);
    EXPECT_ERROR_MENTIONS(read_logit_cache(p), "version.bin", "version", "2");

    p = fresh("header_flip.bin");
    patch<int32_t>(p, 20, 4);  // num_labels, checksums left as they were
    EXPECT_ERROR_MENTIONS(read_logit_cache(p), "header_flip.bin", "header_checksum", "corrupted");

    p = fresh("kind2.bin");
    patch<uint32_t>(p, 12, 2);
    reseal(p);
    EXPECT_ERROR_MENTIONS(read_logit_cache(p), "kind2.bin", "kind", "MLM top-k", "distill train --mlm");
    p = fresh("kind9.bin");
    patch<uint32_t>(p, 12, 9);
    reseal(p);
    EXPECT_ERROR_MENTIONS(read_logit_cache(p), "kind9.bin", "kind", "9", "unknown");

    p = fresh("type.bin");
    patch<uint32_t>(p, 16, 3);
    reseal(p);
    EXPECT_ERROR_MENTIONS(read_logit_cache(p), "type.bin", "value_type", "3");

    p = fresh("k0.bin");
    patch<int32_t>(p, 20, 0);
    reseal(p);
    EXPECT_ERROR_MENTIONS(read_logit_cache(p), "k0.bin", "num_labels", "0");

    p = fresh("nneg.bin");
    patch<int64_t>(p, 24, -1);
    reseal(p);
    EXPECT_ERROR_MENTIONS(read_logit_cache(p), "nneg.bin", "example_count", "-1");

    p = fresh("chunk0.bin");
    patch<int64_t>(p, 32, 0);
    reseal(p);
    EXPECT_ERROR_MENTIONS(read_logit_cache(p), "chunk0.bin", "chunk_size");

    p = fresh("huge.bin");
    patch<int64_t>(p, 24, (int64_t)1 << 62);  // N x K x 4 far beyond 2^64: must not wrap around
    reseal(p);
    EXPECT_ERROR_MENTIONS(read_logit_cache(p), "huge.bin", "file size", "truncated");

    p = fresh("truncated.bin");
    write_file_atomic(p, read_file(good).substr(0, size - 1));
    EXPECT_ERROR_MENTIONS(read_logit_cache(p), "truncated.bin", "file size", "truncated", "191", "192");

    p = fresh("trailing.bin");
    append_bytes(p, std::string(1, '\0'));
    EXPECT_ERROR_MENTIONS(read_logit_cache(p), "trailing.bin", "file size", "193", "192");

    p = fresh("data_flip.bin");
    file = read_file(p);
    file[72 + 17] ^= 0x01;
    write_file_atomic(p, file);
    EXPECT_ERROR_MENTIONS(read_logit_cache(p), "data_flip.bin", "data_checksum", "corrupted");

    p = fresh("nan.bin");
    patch<float>(p, 72 + 4 * 7, std::numeric_limits<float>::quiet_NaN());  // example 2, label 1
    reseal(p);
    EXPECT_ERROR_MENTIONS(read_logit_cache(p), "nan.bin", "logits", "example 2");

    EXPECT_ERROR_MENTIONS(read_logit_cache(dir / "absent.bin"), "absent.bin", "cannot open");
}

TEST(LogitCache, CheckMatchesNamesTheMismatch) {
    ScratchDir dir;
    const std::string path = dir / "cache.bin";
    const LogitCacheHeader h = sample_header(3, 10, 4);
    write_cache(path, h, sample_logits(10, 3), {4});
    const LogitCache c = read_logit_cache(path);
    const uint64_t teacher = h.teacher_fingerprint, transfer = h.transfer_fingerprint;

    EXPECT_NO_THROW(check_logit_cache_matches(c, "out/transfer.bin", teacher, transfer, 10, 3));
    EXPECT_NO_THROW(check_logit_cache_matches(c, "out/transfer.bin", 0, transfer, 10, 3));  // 0: teacher not checked
    EXPECT_ERROR_MENTIONS(check_logit_cache_matches(c, "out/transfer.bin", teacher, 0x1234, 10, 3), "cache.bin",
                          "field 'transfer_fingerprint'", "other examples", "0xaaaabbbbccccdddd", "out/transfer.bin",
                          "0x0000000000001234", "run distill cache for this transfer set");
    EXPECT_ERROR_MENTIONS(check_logit_cache_matches(c, "out/transfer.bin", 0x99, transfer, 10, 3), "cache.bin",
                          "field 'teacher_fingerprint'", "0x1111222233334444", "0x0000000000000099");
    EXPECT_ERROR_MENTIONS(check_logit_cache_matches(c, "out/transfer.bin", teacher, transfer, 12, 3), "cache.bin",
                          "field 'example_count'", "10", "12", "out/transfer.bin");
    EXPECT_ERROR_MENTIONS(check_logit_cache_matches(c, "out/transfer.bin", teacher, transfer, 10, 2), "cache.bin",
                          "field 'num_labels'", "the cache holds 3 logits per example, the student has 2 labels");
}
