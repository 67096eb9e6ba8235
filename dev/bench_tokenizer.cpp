// dev/bench_tokenizer.cpp: throughput of Tokenizer::encode_batch (a benchmark, not a test).
//
//   build/bench_tokenizer --input FILE[,FILE...] --vocab VOCAB [--threads N] [--repeat R] [--max-mb M]
//
// Reads the lines of the input files (plain or .gz; the first M MB of text if --max-mb is given)
// into memory, then encodes them all R times with N threads and prints MB/s (of input text,
// 1 MB = 1e6 bytes) per run and, last, the median as one line `ours threads=N MB/s=X` that
// dev/bench_tokenizer.py reads (it runs Hugging Face's tokenizer on the same lines).
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "common/flags.h"
#include "common/util.h"
#include "data/text_reader.h"
#include "data/tokenizer.h"

using namespace wr;

int main(int argc, char** argv) {
    std::vector<std::string> inputs;
    std::string vocab = "tests/fixtures/tokenizer/bert_base_uncased_vocab.txt";
    int threads = 1, repeat = 5;
    double max_mb = 0;
    Flags flags("bench_tokenizer", "Times Tokenizer::encode_batch over the lines of text files.");
    flags.add("input", &inputs, "text files (plain or .gz), one text a line");
    flags.add("vocab", &vocab, "vocab.txt");
    flags.add("threads", &threads, "OpenMP threads");
    flags.add("repeat", &repeat, "timed runs; the median is reported");
    flags.add("max-mb", &max_mb, "read at most this many MB of text (0 = all)");
    try {
        flags.parse(argc, argv);
        for (const std::string& p : flags.positional()) inputs.push_back(p);  // "--input a b" works too
        if (inputs.empty()) throw Error("<flag>: --input: give at least one file");

        // Lines into memory, up to the byte budget (the Python side reads the same lines).
        std::vector<std::string> lines;
        double bytes = 0;
        std::string line;
        for (const std::string& path : inputs) {
            LineReader reader(path);
            while ((max_mb <= 0 || bytes < max_mb * 1e6) && reader.next(line)) {
                bytes += (double)line.size();
                lines.push_back(line);
            }
        }
        const Tokenizer tok = Tokenizer::load(vocab);
        std::printf("%zu lines, %.1f MB, vocab %s (%d tokens), %d threads\n", lines.size(), bytes / 1e6, vocab.c_str(),
                    tok.vocab_size(), threads);

        std::vector<double> rates;
        for (int r = 0; r < repeat; r++) {
            const double t0 = now_seconds();
            const auto ids = tok.encode_batch(lines, threads);
            const double seconds = now_seconds() - t0;
            size_t n_ids = 0;
            for (const auto& v : ids) n_ids += v.size();
            rates.push_back(bytes / 1e6 / seconds);
            std::printf("run %d: %.3f s, %zu ids, %.1f MB/s\n", r + 1, seconds, n_ids, rates.back());
        }
        std::sort(rates.begin(), rates.end());
        std::printf("ours threads=%d MB/s=%.1f\n", threads, rates[rates.size() / 2]);
    } catch (const Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
