// data/synth.h: the built-in default corpus. A deterministic generator of English-like text from
// a small grammar and lexicon written for this project (no third-party text), with structure a
// model can learn: subject-verb agreement, topics that keep their vocabulary within a document,
// and a sentiment whose sign depends on negation ("not good") and contrast ("good, but dull").
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace wr {

struct SynthOptions {
    uint64_t seed = 1234;
    int mlm_documents = 4000;        // documents of several sentences, one topic each
    int transfer_examples = 20000;   // unlabeled review sentences (distillation transfer set)
    int sentiment_train = 8000;      // labeled review sentences
    int sentiment_dev = 1000;
};

struct SynthLabeled {
    std::string text;
    int label;  // 0 = negative, 1 = positive
};

struct SynthCorpus {
    std::vector<std::string> mlm_documents;   // each a document: sentences joined by ' '
    std::vector<std::string> transfer;        // unlabeled sentences
    std::vector<SynthLabeled> sentiment_train, sentiment_dev;
};

// Same options, same corpus, byte for byte, on every machine (own PRNG, no std:: distributions).
SynthCorpus generate_synth_corpus(const SynthOptions& options);

}  // namespace wr
