// dev/train_vocab_main.cpp: a small development tool around the vocabulary trainer: counts the
// words of some text files, trains a WordPiece vocabulary, writes it, prints the time of each
// phase and, optionally, the [UNK] rate of the new vocabulary on other files. It makes the
// vocabulary that dev/vocab_fixture.py turns into the test fixture, and measures the trainer.
// Not part of the Makefile; build it by hand after `make build/libwellread.a`:
//
//   g++ -O3 -march=native -std=c++17 -fopenmp -I. dev/train_vocab_main.cpp build/libwellread.a
//       -o build/train_vocab -lutf8proc -lz -fopenmp      (one command line)
//
// Usage:
//   build/train_vocab [--vocab-size N] [--min-frequency N] [--limit-alphabet N] [--threads N]
//                     [--eval FILE[:MAXLINES]]... --out VOCAB.txt FILE[:MAXLINES]...
// FILE:N reads only the first N lines of FILE (plain or .gz).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/util.h"
#include "data/text_reader.h"
#include "data/tokenizer.h"
#include "data/vocab_trainer.h"

namespace {

struct Input {
    std::string path;
    int64_t max_lines = 0;  // 0 = all
};

Input parse_input(const std::string& arg) {
    Input in{arg, 0};
    const size_t colon = arg.rfind(':');
    if (colon != std::string::npos && colon + 1 < arg.size() &&
        arg.find_first_not_of("0123456789", colon + 1) == std::string::npos) {
        in.path = arg.substr(0, colon);
        in.max_lines = std::stoll(arg.substr(colon + 1));
    }
    return in;
}

// Calls fn(batch) for batches of up to 20,000 lines of `in`.
template <class Fn>
void for_batches(const Input& in, Fn fn) {
    wr::LineReader reader(in.path);
    std::vector<std::string> batch;
    std::string line;
    while ((in.max_lines == 0 || reader.line_number() < in.max_lines) && reader.next(line)) {
        batch.push_back(line);
        if (batch.size() == 20000) {
            fn(batch);
            batch.clear();
        }
    }
    if (!batch.empty()) fn(batch);
}

}  // namespace

int main(int argc, char** argv) {
    wr::VocabTrainOptions options;
    std::string out;
    std::vector<Input> inputs, evals;
    for (int i = 1; i < argc; i++) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "<flag>: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--vocab-size") options.vocab_size = std::stoi(value());
        else if (a == "--min-frequency") options.min_frequency = std::stoi(value());
        else if (a == "--limit-alphabet") options.limit_alphabet = std::stoi(value());
        else if (a == "--threads") options.threads = std::stoi(value());
        else if (a == "--out") out = value();
        else if (a == "--eval") evals.push_back(parse_input(value()));
        else if (a.rfind("--", 0) == 0) {
            std::fprintf(stderr, "<flag>: unknown flag %s\n", a.c_str());
            return 2;
        } else inputs.push_back(parse_input(a));
    }
    if (out.empty() || inputs.empty()) {
        std::fprintf(stderr, "usage: %s [options] --out VOCAB.txt FILE[:MAXLINES]...\n", argv[0]);
        return 2;
    }
    try {
        double t0 = wr::now_seconds();
        wr::WordCounter counter;
        for (const Input& in : inputs)
            for_batches(in, [&](const std::vector<std::string>& b) { counter.add_batch(b, options.threads); });
        const double t_count = wr::now_seconds() - t0;
        std::printf("counted %llu words, %zu distinct, in %.2f s\n", (unsigned long long)counter.total_words(),
                    counter.counts().size(), t_count);

        t0 = wr::now_seconds();
        const std::vector<std::string> vocab = wr::train_wordpiece_vocab(counter.counts(), options);
        const double t_train = wr::now_seconds() - t0;
        std::printf("trained %zu tokens in %.2f s\n", vocab.size(), t_train);
        wr::write_vocab(out, vocab);
        std::printf("wrote %s (fingerprint %016llx)\n", out.c_str(),
                    (unsigned long long)wr::vocab_fingerprint(vocab));

        if (!evals.empty()) {
            const wr::Tokenizer tok(vocab, out);
            for (const Input& in : evals) {
                uint64_t n = 0, unk = 0, words = 0;
                for_batches(in, [&](const std::vector<std::string>& b) {
                    for (const auto& ids : tok.encode_batch(b, options.threads))
                        for (int32_t id : ids) n++, unk += id == tok.unk_id;
                    for (const auto& line : b) words += wr::bert_basic_tokenize(line).size();
                });
                std::printf("eval %s: %llu tokens for %llu words (%.3f tokens/word), [UNK] %llu = %.4f%%\n",
                            in.path.c_str(), (unsigned long long)n, (unsigned long long)words,
                            words ? (double)n / words : 0.0, (unsigned long long)unk, n ? 100.0 * unk / n : 0.0);
            }
        }
    } catch (const wr::Error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    return 0;
}
