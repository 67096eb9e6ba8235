// tests/test_prepare.cpp: the `prepare` tool end to end (it is built by `make test` before the
// suite runs): what it writes must decode to exactly what the tokenizer makes of the input, the
// train/validation split and shard bounds must hold, labels must map as documented, and bad input
// must fail with a message naming the file and line.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "data/shards.h"
#include "data/tokenizer.h"
#include "test_helpers.h"

using namespace wr;
using wr::testing::run_command;
using wr::testing::ScratchDir;
using wr::testing::write_text;

namespace {

// A small vocabulary: specials, letters with their ## forms, some whole words, punctuation.
std::string write_small_vocab(const ScratchDir& dir) {
    std::string v = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
    for (char c = 'a'; c <= 'z'; c++) v += std::string(1, c) + "\n##" + std::string(1, c) + "\n";
    for (const char* w : {"the", "cat", "dog", "sat", "on", "mat", "good", "bad", "movie", "##ing", ".", ",", "!"})
        v += std::string(w) + "\n";
    write_text(dir / "vocab.txt", v);
    return dir / "vocab.txt";
}

std::vector<std::string> make_documents(int n) {
    const char* words[] = {"the", "cat", "dogs", "sat", "on", "mats", "sitting", "good", "zebra", "Quickly", "naïve", "!", ","};
    std::vector<std::string> docs;
    for (int i = 0; i < n; i++) {
        std::string d;
        const int len = 1 + (i * 7) % 23;
        for (int j = 0; j < len; j++) d += std::string(j ? (j % 9 == 0 ? "\n" : " ") : "") + words[(i * 13 + j * 5) % 13];
        docs.push_back(d);
    }
    return docs;
}

// All documents of the shards matching a glob, in file order.
std::vector<std::vector<int32_t>> read_documents(const std::string& glob_pattern, const Tokenizer& vocab) {
    std::vector<std::vector<int32_t>> docs;
    for (const std::string& path : expand_globs({glob_pattern})) {
        TokenShard shard(path, &vocab);
        for (int64_t d = 0; d < shard.doc_count(); d++) {
            std::vector<int32_t> ids(shard.doc_end(d) - shard.doc_begin(d));
            shard.read(shard.doc_begin(d), (int64_t)ids.size(), ids.data());
            docs.push_back(ids);
        }
    }
    return docs;
}

}  // namespace

TEST(Prepare, MlmShardsHoldExactlyTheTokenizedDocuments) {
    ScratchDir dir;
    const std::string vocab_path = write_small_vocab(dir);
    const Tokenizer vocab = Tokenizer::load(vocab_path);
    const auto docs = make_documents(300);
    std::string part1, part2;
    for (size_t i = 0; i < docs.size(); i++) (i < 150 ? part1 : part2) += docs[i] + "\n\n\n";
    write_text(dir / "a.txt", part1);
    write_text(dir / "b.txt", part2);
    ASSERT_EQ(run_command("gzip " + dir / "b.txt").exit_code, 0);

    const auto r = run_command("./prepare mlm --vocab " + vocab_path + " --input " + dir / "a.txt," + dir / "b.txt.gz" +
                               " --out " + dir / "mlm --val-fraction 0.2 --shard-tokens 400 --threads 2");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("[UNK]"), std::string::npos) << "the summary reports the [UNK] rate";

    const auto train = read_documents(dir / "mlm/train_*.bin", vocab), val = read_documents(dir / "mlm/val_*.bin", vocab);
    EXPECT_EQ(train.size() + val.size(), docs.size());
    EXPECT_GT(val.size(), docs.size() / 10);
    EXPECT_LT(val.size(), docs.size() * 3 / 10);
    // Every input document appears once, in input order within its split.
    size_t t = 0, v = 0;
    for (const std::string& d : docs) {
        const std::vector<int32_t> expected = vocab.encode_words(d);
        if (t < train.size() && train[t] == expected) t++;
        else if (v < val.size() && val[v] == expected) v++;
        else FAIL() << "document '" << d << "' not found in order";
    }
    EXPECT_EQ(t, train.size());
    EXPECT_EQ(v, val.size());
    // Shards respect --shard-tokens (no single document here is longer than the bound).
    for (const std::string& path : expand_globs({dir / "mlm/*.bin"})) EXPECT_LE(TokenShard(path).token_count(), 400) << path;
    EXPECT_GT(expand_globs({dir / "mlm/train_*.bin"}).size(), 1u);

    // The same command again gives the same bytes (the split is a function of the seed).
    ASSERT_EQ(run_command("./prepare mlm --vocab " + vocab_path + " --input " + dir / "a.txt," + dir / "b.txt.gz" +
                          " --out " + dir / "again --val-fraction 0.2 --shard-tokens 400 --threads 1").exit_code, 0);
    EXPECT_EQ(run_command("cd " + dir.path + " && diff -r mlm again").exit_code, 0);
}

TEST(Prepare, MlmOnePerLineAndSeparateValidationFiles) {
    ScratchDir dir;
    const std::string vocab_path = write_small_vocab(dir);
    const Tokenizer vocab = Tokenizer::load(vocab_path);
    write_text(dir / "train.txt", "the cat sat\n\nthe dog sat\nthe mat\n");
    write_text(dir / "val.txt", "good movie\n");
    const auto r = run_command("./prepare mlm --one-per-line --vocab " + vocab_path + " --input " + dir / "train.txt --val-input " +
                               dir / "val.txt --out " + dir / "mlm");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(read_documents(dir / "mlm/train_*.bin", vocab).size(), 3u);
    const auto val = read_documents(dir / "mlm/val_*.bin", vocab);
    ASSERT_EQ(val.size(), 1u);
    EXPECT_EQ(val[0], vocab.encode_words("good movie"));
}

TEST(Prepare, ClassificationLabelsAndDevReuse) {
    ScratchDir dir;
    const std::string vocab_path = write_small_vocab(dir);
    const Tokenizer vocab = Tokenizer::load(vocab_path);
    write_text(dir / "train.tsv", "sentence\tlabel\nthe good movie\tpos\nthe bad movie\tneg\na cat , a dog\tneu\n");
    write_text(dir / "dev.tsv", "sentence\tlabel\ngood\tpos\nbad\tneg\n");
    write_text(dir / "test.tsv", "sentence\tlabel\ngood\tpos\nodd\tweird\n");
    auto r = run_command("./prepare cls --vocab " + vocab_path + " --input " + dir / "train.tsv --text sentence --label label --out " +
                         dir / "train.bin --max-len 6");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const ExampleSet train = read_example_shard(dir / "train.bin", &vocab);
    EXPECT_EQ(train.label_names, (std::vector<std::string>{"neg", "neu", "pos"}));  // sorted
    ASSERT_EQ(train.examples.size(), 3u);
    EXPECT_EQ(train.examples[0].label, 2);
    EXPECT_EQ(train.examples[1].label, 0);
    EXPECT_EQ(train.examples[0].ids, vocab.encode("the good movie", 6).ids);
    EXPECT_EQ(train.examples[2].ids.size(), 6u);  // truncated to --max-len
    EXPECT_EQ(train.examples[2].ids.back(), vocab.sep_id);

    r = run_command("./prepare cls --vocab " + vocab_path + " --input " + dir / "dev.tsv --text sentence --out " + dir / "dev.bin --labels-from " +
                    dir / "train.bin");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const ExampleSet dev = read_example_shard(dir / "dev.bin", &vocab);
    EXPECT_EQ(dev.label_names, train.label_names);
    EXPECT_EQ(dev.examples[0].label, 2);  // "pos" keeps the train shard's id, though dev has only two labels

    r = run_command("./prepare cls --vocab " + vocab_path + " --input " + dir / "test.tsv --text sentence --out " + dir / "test.bin --labels-from " +
                    dir / "train.bin");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("test.tsv: line 3: label 'weird'"), std::string::npos) << r.output;
    EXPECT_EQ(run_command("ls " + dir / "test.bin").exit_code, 2) << "nothing is written on error";
}

TEST(Prepare, PairsRegressionAndUnlabeled) {
    ScratchDir dir;
    const std::string vocab_path = write_small_vocab(dir);
    const Tokenizer vocab = Tokenizer::load(vocab_path);
    write_text(dir / "pairs.csv", "premise,hypothesis,score\n\"the cat, sat\",the dog sat,0.5\nthe mat,\"a good, good mat\",4\n");
    auto r = run_command("./prepare cls --vocab " + vocab_path + " --input " + dir / "pairs.csv --text premise --text-b hypothesis --label score --regression --out " +
                         dir / "pairs.bin");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const ExampleSet pairs = read_example_shard(dir / "pairs.bin", &vocab);
    EXPECT_EQ(pairs.label_kind, LabelKind::Regression);
    ASSERT_EQ(pairs.examples.size(), 2u);
    const Encoding e = vocab.encode_pair("the cat, sat", "the dog sat", 512);
    EXPECT_EQ(pairs.examples[0].ids, e.ids);
    EXPECT_EQ(pairs.examples[0].second_start, e.second_start);
    EXPECT_GT(pairs.examples[0].second_start, 0);
    EXPECT_FLOAT_EQ(pairs.examples[1].value, 4.0f);

    write_text(dir / "bad.csv", "premise,hypothesis,score\nthe cat,the dog,high\n");
    r = run_command("./prepare cls --vocab " + vocab_path + " --input " + dir / "bad.csv --text premise --label score --regression --out " + dir / "bad.bin");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("bad.csv: line 2: regression target 'high'"), std::string::npos) << r.output;

    write_text(dir / "lines.txt", "the good movie\n\nthe bad movie\tthe cat\n");
    r = run_command("./prepare unlabeled --vocab " + vocab_path + " --input " + dir / "lines.txt --out " + dir / "u.bin");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const ExampleSet u = read_example_shard(dir / "u.bin", &vocab);
    EXPECT_EQ(u.label_kind, LabelKind::None);
    EXPECT_EQ(u.num_labels(), 0);
    ASSERT_EQ(u.examples.size(), 2u);  // the blank line is skipped
    EXPECT_EQ(u.examples[0].label, -1);

    r = run_command("./prepare unlabeled --pairs --vocab " + vocab_path + " --input " + dir / "lines.txt --out " + dir / "p.bin");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("lines.txt:1: --pairs is set but the line has no tab"), std::string::npos) << r.output;

    write_text(dir / "t.tsv", "sentence\tlabel\nthe cat\t1\n");
    r = run_command("./prepare unlabeled --format tsv --text sentence --vocab " + vocab_path + " --input " + dir / "t.tsv --out " + dir / "t.bin");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(read_example_shard(dir / "t.bin", &vocab).examples[0].ids, vocab.encode("the cat").ids);
}

TEST(Prepare, BadInputIsAClearError) {
    ScratchDir dir;
    write_text(dir / "vocab.txt", "[PAD]\n[CLS]\n[SEP]\n[MASK]\nhello\n");  // no [UNK]
    auto r = run_command("./prepare mlm --vocab " + dir / "vocab.txt --input " + dir / "x.txt --out " + dir / "o");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find(dir / "vocab.txt"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("[UNK]"), std::string::npos) << r.output;

    const std::string vocab_path = write_small_vocab(dir);
    r = run_command("./prepare mlm --vocab " + vocab_path + " --input " + dir / "missing*.txt --out " + dir / "o");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("missing*.txt: no such file"), std::string::npos) << r.output;

    r = run_command("./prepare mlm --vocab " + vocab_path + " --inptu x");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("unknown flag --inptu"), std::string::npos) << r.output;

    write_text(dir / "empty.txt", "\n\n  \n");
    r = run_command("./prepare mlm --vocab " + vocab_path + " --input " + dir / "empty.txt --out " + dir / "o");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("empty.txt: no documents found in --input"), std::string::npos) << r.output;

    r = run_command("./prepare mlm --vocab " + vocab_path + " --input " + dir / "vocab.txt --val-fraction 1.5 --out " + dir / "o");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("--val-fraction: must be in [0, 1]"), std::string::npos) << r.output;

    // A folder that already holds shards is not silently mixed with new ones.
    write_text(dir / "doc.txt", "the cat sat\n");
    const std::string mlm = "./prepare mlm --vocab " + vocab_path + " --input " + dir / "doc.txt --out " + dir / "o";
    ASSERT_EQ(run_command(mlm).exit_code, 0);
    write_text(dir / "o/train_007.bin", "stale");
    r = run_command(mlm);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("already holds shards"), std::string::npos) << r.output;
    EXPECT_EQ(read_file(dir / "o/train_007.bin"), "stale") << "nothing is lost without --overwrite";
    r = run_command("./prepare mlm --vocab " + vocab_path + " --input " + dir / "typo.txt --out " + dir / "o --overwrite");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(read_file(dir / "o/train_007.bin"), "stale") << "a bad --input is found before old shards are removed";
    r = run_command(mlm + " --overwrite");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(expand_globs({dir / "o/*.bin"}).size(), 1u);

    r = run_command("./prepare mlm --vocab " + vocab_path + " --input " + dir / "doc.txt " + dir / "empty.txt --out " + dir / "o2");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("unexpected argument '" + dir / "empty.txt'"), std::string::npos) << "an unquoted glob loses no file silently";

    write_text(dir / "l.tsv", "sentence\tlabel\ngood\t1e999\nbad\tnan\nok\t1\n");
    const std::string cls = "./prepare cls --vocab " + vocab_path + " --input " + dir / "l.tsv --text sentence --out " + dir / "l.bin";
    r = run_command(cls);
    EXPECT_EQ(r.exit_code, 0) << "labels that look like huge numbers are names, sorted as text: " << r.output;
    EXPECT_EQ(read_example_shard(dir / "l.bin").label_names, (std::vector<std::string>{"1", "1e999", "nan"}));
    r = run_command(cls + " --labels 1,nan,1");
    EXPECT_NE(r.output.find("'1' is given twice"), std::string::npos) << r.output;
    r = run_command(cls + " --regression --labels a,b");
    EXPECT_NE(r.output.find("--regression has a single real-valued target"), std::string::npos) << r.output;
    r = run_command("./prepare unlabeled --format tsv --vocab " + vocab_path + " --input " + dir / "l.tsv --out " + dir / "u.bin");
    EXPECT_NE(r.output.find("needs --text COLUMN"), std::string::npos) << r.output;
    r = run_command("./prepare default --max-len 1 --out " + dir / "d");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("--max-len: must be at least 3"), std::string::npos) << r.output;

    r = run_command("./prepare frobnicate");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.output.find("unknown command 'frobnicate'"), std::string::npos) << r.output;
}

TEST(Prepare, DefaultCorpusIsDeterministicAndLoads) {
    ScratchDir dir;
    ASSERT_EQ(run_command("./prepare default --out " + dir / "a").exit_code, 0);
    ASSERT_EQ(run_command("./prepare default --out " + dir / "b").exit_code, 0);
    EXPECT_EQ(run_command("cd " + dir.path + " && diff -r a b").exit_code, 0) << "same seed, same bytes";
    const auto r = run_command("./prepare default --seed 99 --out " + dir / "c");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(run_command("cmp -s " + dir / "a/mlm/train_000.bin " + dir / "c/mlm/train_000.bin").exit_code, 0);

    const Tokenizer vocab = Tokenizer::load(dir / "a/vocab.txt");
    const TokenShard train(dir / "a/mlm/train_000.bin", &vocab), val(dir / "a/mlm/val_000.bin", &vocab);
    EXPECT_GT(train.token_count(), 500000);
    EXPECT_GT(val.doc_count(), 0);
    const ExampleSet st = read_example_shard(dir / "a/sentiment_train.bin", &vocab);
    const ExampleSet sd = read_example_shard(dir / "a/sentiment_dev.bin", &vocab);
    const ExampleSet tr = read_example_shard(dir / "a/transfer.bin", &vocab);
    EXPECT_EQ(st.label_names, (std::vector<std::string>{"negative", "positive"}));
    EXPECT_EQ(sd.label_names, st.label_names);
    EXPECT_EQ(tr.label_kind, LabelKind::None);
    // The generated vocabulary covers the generated text.
    int64_t unknown = 0, total = 0;
    for (int64_t i = 0; i < train.token_count(); i++) unknown += train.token(i) == vocab.unk_id, total++;
    EXPECT_EQ(unknown, 0) << "of " << total << " tokens";
}

// Every output file's folder is created (prepare cls --out a/b/x.bin failed when a/b was missing,
// after the work was done): classification, unlabeled and vocabulary outputs in new folders.
TEST(Prepare, OutputFoldersAreCreated) {
    ScratchDir dir;
    const std::string vocab_path = write_small_vocab(dir);
    write_text(dir / "train.tsv", "sentence\tlabel\nthe good movie\tpos\nthe bad movie\tneg\n");
    auto r = run_command("./prepare cls --vocab " + vocab_path + " --input " + dir / "train.tsv --text sentence --label label --out " +
                         dir / "new/deeper/train.bin");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(read_example_shard(dir / "new/deeper/train.bin", nullptr).examples.size(), 2u);
    write_text(dir / "lines.txt", "the good movie\nthe bad movie\n");
    r = run_command("./prepare unlabeled --vocab " + vocab_path + " --input " + dir / "lines.txt --out " + dir / "u/v/transfer.bin");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(file_exists(dir / "u/v/transfer.bin"));
    r = run_command("./prepare vocab --input " + dir / "lines.txt --size 120 --out " + dir / "w/x/vocab.txt");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(file_exists(dir / "w/x/vocab.txt"));
}

// Nothing already written is lost: an existing output is replaced only with --overwrite, and an
// output that is one of the inputs (the same file under another name too) is refused always,
// leaving the input as it was.
TEST(Prepare, ExistingOutputsAndInputsAreNotOverwritten) {
    ScratchDir dir;
    const std::string vocab_path = write_small_vocab(dir);
    write_text(dir / "train.tsv", "sentence\tlabel\nthe good movie\tpos\nthe bad movie\tneg\n");
    const std::string cls = "./prepare cls --vocab " + vocab_path + " --input " + dir / "train.tsv --text sentence --label label --out ";
    ASSERT_EQ(run_command(cls + dir / "train.bin").exit_code, 0);
    const std::string first = read_file(dir / "train.bin");
    auto r = run_command(cls + dir / "train.bin");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("train.bin: exists; pass --overwrite"), std::string::npos) << r.output;
    EXPECT_EQ(read_file(dir / "train.bin"), first);
    r = run_command(cls + dir / "train.bin --overwrite");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    // --out equal to --input, by another spelling of the same path: refused even with --overwrite.
    write_text(dir / "lines.txt", "the good movie\nthe bad movie\n");
    r = run_command("./prepare unlabeled --vocab " + vocab_path + " --input " + dir / "lines.txt --out " + dir / "./lines.txt --overwrite");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("names an input of this command"), std::string::npos) << r.output;
    EXPECT_EQ(read_file(dir / "lines.txt"), "the good movie\nthe bad movie\n");
    // The vocabulary: an existing one is kept without --overwrite, and --out may not be the input.
    r = run_command("./prepare vocab --input " + dir / "lines.txt --size 120 --out " + vocab_path);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("exists; pass --overwrite"), std::string::npos) << r.output;
    r = run_command("./prepare vocab --input " + dir / "lines.txt --size 120 --overwrite --out " + dir / "lines.txt");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(read_file(dir / "lines.txt"), "the good movie\nthe bad movie\n");
}
