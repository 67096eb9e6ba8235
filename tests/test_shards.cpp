// tests/test_shards.cpp: token shards and example shards: write/read round trips, and every
// kind of bad file (truncated, corrupted, wrong magic, wrong version, other vocabulary, ids out of
// range, broken offsets, bad labels) giving its own error that names the file and the field.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "data/shards.h"
#include "data/tokenizer.h"
#include "test_helpers.h"

using namespace wr;
using wr::testing::ScratchDir;

namespace {

// A vocabulary of n tokens: the five specials, then "w5", "w6", ...
Tokenizer make_vocab(int n, const std::string& prefix = "w") {
    std::vector<std::string> tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    for (int i = (int)tokens.size(); i < n; i++) tokens.push_back(prefix + std::to_string(i));
    return Tokenizer(tokens);
}

std::vector<std::vector<int32_t>> random_docs(int count, int vocab_size, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<std::vector<int32_t>> docs(count);
    for (auto& d : docs) {
        d.resize(rng() % 50);  // some documents are empty: the writer skips them
        for (int32_t& t : d) t = (int32_t)(rng() % vocab_size);
    }
    return docs;
}

void write_docs(const std::string& path, const Tokenizer& vocab, const std::vector<std::vector<int32_t>>& docs) {
    TokenShardWriter w(path, vocab.vocab_size(), vocab.fingerprint());
    for (const auto& d : docs) w.add_document(d.data(), (int64_t)d.size());
    w.finish();
}

// Overwrites bytes of a file in place.
void patch(const std::string& path, size_t offset, const void* bytes, size_t n) {
    std::string file = read_file(path);
    ASSERT_LE(offset + n, file.size());
    std::memcpy(&file[offset], bytes, n);
    write_file_atomic(path, file);
}

// Recomputes the stored checksum, so a test can make a file whose only fault is the one it planted.
void reseal(const std::string& path) {
    std::string file = read_file(path);
    Checksum c;
    c.update(file.data() + kHeaderBytes, file.size() - kHeaderBytes);
    const uint64_t sum = file_checksum(reinterpret_cast<const unsigned char*>(file.data()), c.digest());
    std::memcpy(&file[56], &sum, 8);
    write_file_atomic(path, file);
}

void truncate_by(const std::string& path, size_t n) {
    std::string file = read_file(path);
    file.resize(file.size() - n);
    write_file_atomic(path, file);
}

}  // namespace

TEST(Checksum, PiecewiseEqualsWhole) {
    std::string data(1000, '\0');
    for (size_t i = 0; i < data.size(); i++) data[i] = (char)(i * 7 + 3);
    Checksum whole;
    whole.update(data.data(), data.size());
    for (size_t piece : {1, 3, 7, 8, 13, 999}) {
        Checksum parts;
        for (size_t at = 0; at < data.size(); at += piece) parts.update(data.data() + at, std::min(piece, data.size() - at));
        EXPECT_EQ(parts.digest(), whole.digest()) << "piece size " << piece;
    }
    Checksum other;
    data[500] ^= 1;
    other.update(data.data(), data.size());
    EXPECT_NE(other.digest(), whole.digest());
}

TEST(TokenShard, RoundTripBothWidths) {
    ScratchDir dir;
    for (int vocab_size : {1000, 70000}) {
        const Tokenizer vocab = make_vocab(vocab_size);
        const auto docs = random_docs(200, vocab_size, 42);
        const std::string path = dir / ("shard_" + std::to_string(vocab_size) + ".bin");
        write_docs(path, vocab, docs);
        TokenShard shard(path, &vocab);
        EXPECT_EQ(shard.token_width(), vocab_size <= 65536 ? 2u : 4u);
        EXPECT_EQ(shard.vocab_size(), vocab_size);
        EXPECT_EQ(shard.vocab_fingerprint(), vocab.fingerprint());
        int64_t d = 0, total = 0;
        for (const auto& doc : docs) {
            if (doc.empty()) continue;
            ASSERT_LT(d, shard.doc_count());
            ASSERT_EQ(shard.doc_end(d) - shard.doc_begin(d), (int64_t)doc.size());
            std::vector<int32_t> got(doc.size());
            shard.read(shard.doc_begin(d), (int64_t)doc.size(), got.data());
            EXPECT_EQ(got, doc) << "document " << d;
            total += (int64_t)doc.size();
            d++;
        }
        EXPECT_EQ(shard.doc_count(), d);
        EXPECT_EQ(shard.token_count(), total);
    }
}

TEST(TokenShard, UnfinishedWriterLeavesNothingAndOldFileIntact) {
    ScratchDir dir;
    const Tokenizer vocab = make_vocab(100);
    const std::string path = dir / "s.bin";
    write_docs(path, vocab, {{5, 6, 7}});
    {
        TokenShardWriter w(path, vocab.vocab_size(), vocab.fingerprint());
        const int32_t ids[] = {8, 9};
        w.add_document(ids, 2);
    }  // destroyed without finish(): as if the program had died
    TokenShard shard(path, &vocab);
    EXPECT_EQ(shard.token_count(), 3);
    EXPECT_EQ(wr::testing::run_command("ls " + dir.path).output, "s.bin\n");
}

TEST(TokenShard, ErrorsNameFileAndField) {
    ScratchDir dir;
    const Tokenizer vocab = make_vocab(1000);
    const auto docs = random_docs(50, 1000, 7);
    const std::string good = dir / "good.bin";
    write_docs(good, vocab, docs);
    auto fresh = [&](const char* name) {
        const std::string p = dir / name;
        write_file_atomic(p, read_file(good));
        return p;
    };

    std::string p = fresh("missing_tail.bin");
    truncate_by(p, 5);
    EXPECT_ERROR_MENTIONS(TokenShard(p, &vocab), "missing_tail.bin", "file size", "truncated");

    p = fresh("short.bin");
    write_file_atomic(p, read_file(good).substr(0, 20));
    EXPECT_ERROR_MENTIONS(TokenShard(p, &vocab), "short.bin", "header", "truncated");

    p = fresh("flipped.bin");
    const char byte = (char)0x5a;
    patch(p, kHeaderBytes + 11, &byte, 1);
    EXPECT_ERROR_MENTIONS(TokenShard(p, &vocab), "flipped.bin", "checksum", "corrupted");

    p = fresh("magic.bin");
    patch(p, 0, "NOTASHRD", 8);
    EXPECT_ERROR_MENTIONS(TokenShard(p, &vocab), "magic.bin", "magic");

    p = fresh("version.bin");
    const uint32_t v = 9;
    patch(p, 8, &v, 4);
    reseal(p);
    EXPECT_ERROR_MENTIONS(TokenShard(p, &vocab), "version.bin", "version", "9");

    p = fresh("vocab.bin");
    const Tokenizer other = make_vocab(1000, "x");
    EXPECT_ERROR_MENTIONS(TokenShard(p, &other), "vocab.bin", "vocab_fingerprint", "another vocabulary");
    EXPECT_NO_THROW(TokenShard(p, nullptr));  // without a vocabulary to compare, the file itself is fine

    p = fresh("id.bin");
    const uint16_t big = 1000;
    patch(p, kHeaderBytes + 2 * 3, &big, 2);
    reseal(p);
    EXPECT_ERROR_MENTIONS(TokenShard(p, &vocab), "id.bin", "tokens", "token 3", "1000");

    p = fresh("offsets.bin");
    {
        TokenShard s(good);
        const size_t offsets_at = read_file(good).size() - (size_t)(s.doc_count() + 1) * 8;
        const uint64_t backwards = 0;
        patch(p, offsets_at + 8 * 2, &backwards, 8);  // offset 2 smaller than offset 1
    }
    reseal(p);
    EXPECT_ERROR_MENTIONS(TokenShard(p, &vocab), "offsets.bin", "doc_offsets");

    EXPECT_ERROR_MENTIONS(TokenShard(dir / "absent.bin"), "absent.bin", "cannot open");
}

namespace {

ExampleSet sample_examples(const Tokenizer& vocab, LabelKind kind) {
    ExampleSet set;
    set.label_kind = kind;
    if (kind == LabelKind::Class) set.label_names = {"negative", "neutral", "positive"};
    if (kind == LabelKind::Regression) set.label_names = {"score"};
    set.vocab_size = vocab.vocab_size();
    set.vocab_fingerprint = vocab.fingerprint();
    set.max_len = 64;
    std::mt19937 rng(3);
    for (int i = 0; i < 100; i++) {
        Example e;
        const int a = 1 + (int)(rng() % 20), b = i % 3 == 0 ? 1 + (int)(rng() % 10) : 0;
        e.ids.push_back(vocab.cls_id);
        for (int j = 0; j < a; j++) e.ids.push_back(5 + (int32_t)(rng() % (vocab.vocab_size() - 5)));
        e.ids.push_back(vocab.sep_id);
        if (b > 0) {
            e.second_start = (int32_t)e.ids.size();
            for (int j = 0; j < b; j++) e.ids.push_back(5 + (int32_t)(rng() % (vocab.vocab_size() - 5)));
            e.ids.push_back(vocab.sep_id);
        }
        if (kind == LabelKind::Class) e.label = (int32_t)(rng() % 3);
        if (kind == LabelKind::Regression) e.value = (float)(rng() % 1000) / 100.0f;
        set.examples.push_back(e);
    }
    return set;
}

}  // namespace

TEST(ExampleShard, RoundTripEveryLabelKind) {
    ScratchDir dir;
    for (int vocab_size : {500, 70000})
        for (LabelKind kind : {LabelKind::None, LabelKind::Class, LabelKind::Regression}) {
            const Tokenizer vocab = make_vocab(vocab_size);
            const ExampleSet set = sample_examples(vocab, kind);
            const std::string path = dir / "ex.bin";
            write_example_shard(path, set);
            const ExampleSet back = read_example_shard(path, &vocab);
            EXPECT_EQ(back.label_kind, kind);
            EXPECT_EQ(back.label_names, set.label_names);
            EXPECT_EQ(back.max_len, 64);
            EXPECT_EQ(back.vocab_fingerprint, vocab.fingerprint());
            ASSERT_EQ(back.examples.size(), set.examples.size());
            for (size_t i = 0; i < set.examples.size(); i++) {
                EXPECT_EQ(back.examples[i].ids, set.examples[i].ids);
                EXPECT_EQ(back.examples[i].second_start, set.examples[i].second_start);
                if (kind == LabelKind::Regression) EXPECT_EQ(back.examples[i].value, set.examples[i].value);
                else EXPECT_EQ(back.examples[i].label, set.examples[i].label);
            }
            const ExampleSet header = read_example_shard_header(path);
            EXPECT_EQ(header.label_names, set.label_names);
            EXPECT_TRUE(header.examples.empty());
        }
}

TEST(ExampleShard, ErrorsNameFileAndField) {
    ScratchDir dir;
    const Tokenizer vocab = make_vocab(500);
    const std::string good = dir / "good.bin";
    write_example_shard(good, sample_examples(vocab, LabelKind::Class));
    auto fresh = [&](const char* name) {
        const std::string p = dir / name;
        write_file_atomic(p, read_file(good));
        return p;
    };
    std::string p = fresh("tail.bin");
    truncate_by(p, 3);
    EXPECT_ERROR_MENTIONS(read_example_shard(p, &vocab), "tail.bin", "file size", "truncated");

    p = fresh("names.bin");
    write_file_atomic(p, read_file(good).substr(0, kHeaderBytes + 6));  // cut inside the first label name
    EXPECT_ERROR_MENTIONS(read_example_shard(p, &vocab), "names.bin", "label_names", "truncated");

    p = fresh("flip.bin");
    const char byte = 0x33;
    patch(p, read_file(good).size() - 2, &byte, 1);
    EXPECT_ERROR_MENTIONS(read_example_shard(p, &vocab), "flip.bin", "checksum");

    p = fresh("magic.bin");
    patch(p, 0, "WRTOKENS", 8);  // a token shard's magic is not an example shard's
    EXPECT_ERROR_MENTIONS(read_example_shard(p, &vocab), "magic.bin", "magic", "example shard");

    p = fresh("version.bin");
    const uint32_t v = 2;
    patch(p, 8, &v, 4);
    reseal(p);
    EXPECT_ERROR_MENTIONS(read_example_shard(p, &vocab), "version.bin", "version");

    const Tokenizer other = make_vocab(500, "y");
    EXPECT_ERROR_MENTIONS(read_example_shard(good, &other), "good.bin", "vocab_fingerprint");

    p = fresh("label.bin");
    {
        // The labels follow the names, the offsets and the second_start table.
        const ExampleSet set = sample_examples(vocab, LabelKind::Class);
        size_t names = 0;
        for (const auto& n : set.label_names) names += 4 + n.size();
        const size_t table = (kHeaderBytes + names + 7) / 8 * 8;
        const size_t labels_at = table + (set.examples.size() + 1) * 8 + set.examples.size() * 4;
        const int32_t bad = 3;
        patch(p, labels_at + 4 * 5, &bad, 4);
    }
    reseal(p);
    EXPECT_ERROR_MENTIONS(read_example_shard(p, &vocab), "label.bin", "labels", "example 5", "label 3");
}

// Files whose header and checksum are fine but whose examples break the promises the trainers
// rely on: length within max_len, B after [CLS] A [SEP], [CLS]/[SEP] in place, no label on an
// unlabeled example.
TEST(ExampleShard, StructureIsValidated) {
    ScratchDir dir;
    const Tokenizer vocab = make_vocab(500);
    ExampleSet base = sample_examples(vocab, LabelKind::Class);
    auto write_and_read = [&](const ExampleSet& set, const char* name) {
        write_example_shard(dir / name, set);
        return read_example_shard(dir / name, &vocab);
    };
    EXPECT_NO_THROW(write_and_read(base, "ok.bin"));

    ExampleSet s = base;
    s.max_len = 10;  // some examples are longer
    EXPECT_ERROR_MENTIONS(write_and_read(s, "long.bin"), "long.bin", "example_offsets", "max_len = 10");
    s.max_len = 1;
    EXPECT_ERROR_MENTIONS(write_and_read(s, "maxlen.bin"), "maxlen.bin", "max_len");

    s = base;
    s.examples[4].second_start = 1;
    EXPECT_ERROR_MENTIONS(write_and_read(s, "second.bin"), "second.bin", "second_start", "example 4");
    s.examples[4].second_start = (int32_t)s.examples[4].ids.size();
    EXPECT_ERROR_MENTIONS(write_and_read(s, "second2.bin"), "second2.bin", "second_start", "example 4");

    s = base;
    s.examples[7].ids[0] = 9;  // no [CLS]
    EXPECT_ERROR_MENTIONS(write_and_read(s, "cls.bin"), "cls.bin", "tokens", "example 7", "[CLS]");
    EXPECT_NO_THROW(read_example_shard(dir / "cls.bin")) << "without a vocabulary the special ids are unknown";

    s = base;
    s.examples[2].ids.resize(1);
    EXPECT_ERROR_MENTIONS(write_and_read(s, "short.bin"), "short.bin", "example 2", "1 tokens");

    s = sample_examples(vocab, LabelKind::None);
    s.examples[3].label = 0;
    EXPECT_ERROR_MENTIONS(write_and_read(s, "unlabeled.bin"), "unlabeled.bin", "labels", "example 3");

    s = base;
    s.label_names = {"a", "b", "a"};
    EXPECT_ERROR_MENTIONS(write_and_read(s, "dup.bin"), "dup.bin", "label_names", "'a' appears twice");

    // The header reader (--labels-from) validates the whole file too.
    write_file_atomic(dir / "cut.bin", read_file(dir / "ok.bin").substr(0, 200));
    EXPECT_ERROR_MENTIONS(read_example_shard_header(dir / "cut.bin"), "cut.bin", "truncated");
}
