// data/synth.h: the built-in default corpus. A deterministic generator of English-like text from
// a small grammar and lexicon written for this project (no third-party text), with structure a
// model can learn: subject-verb agreement, topics that keep their vocabulary within a document,
// and a sentiment whose sign depends on negation ("not good") and contrast ("good, but dull").
// The grammar, the lexicon and the sentiment rule are described at the top of data/synth.cpp.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace wr {

// The defaults give about 1.1M words of topic documents and about 0.25M words of review documents
// (the MLM text), plus 29k single reviews for the sentiment task and the transfer set, generated in
// a fraction of a second.
struct SynthOptions {
    uint64_t seed = 1234;
    int mlm_documents = 16000;       // documents of 3-12 sentences, one topic each
    int review_documents = 4000;     // MLM documents of 3-8 unlabeled reviews (pretraining text that
                                     // holds the review vocabulary; none copies a dev example)
    int transfer_examples = 20000;   // unlabeled review sentences (distillation transfer set)
    int sentiment_train = 8000;      // labeled review sentences
    int sentiment_dev = 1000;        // never a verbatim copy of a train example
};

struct SynthLabeled {
    std::string text;
    int label;  // 0 = negative, 1 = positive
};

struct SynthCorpus {
    std::vector<std::string> mlm_documents;   // each a document: sentences joined by ' '
    std::vector<std::string> review_documents;  // more MLM text: reviews joined by ' '
    std::vector<std::string> transfer;        // unlabeled sentences (none copies a dev example)
    std::vector<SynthLabeled> sentiment_train, sentiment_dev;
};

// Same options, same corpus, byte for byte, on every machine (own PRNG, no std:: distributions).
SynthCorpus generate_synth_corpus(const SynthOptions& options);

// ---- Inspection helpers, for tests/test_synth.cpp and for anyone reading the generator. ----

// The class a lowercase word has in the lexicon tables. Every surface form belongs to one class
// (synth_lexicon_conflicts() lists any that does not), so text can be parsed back by lookup.
enum class SynthWord { Other, NounSingular, NounPlural, Name, VerbBase, Verb3rd, VerbPast, Adjective, Adverb };
SynthWord synth_word_class(const std::string& lowercase_word);
std::vector<std::string> synth_lexicon_conflicts();

// The topic table ("cooking", "sailing", ...) a lowercase word comes from ("soup", "stirs",
// "spicy" -> "cooking"); "" for generic words, review words and words of no table. No word is in
// two topics (that would be a conflict too).
std::string synth_topic_of(const std::string& lowercase_word);

// Sentiment of a lowercase review word: +1 ("superb", "shines", "loved"), -1 ("dull", "drags"),
// 0 for everything else (negators and connectives included).
int synth_polarity(const std::string& lowercase_word);

// MLM-style sentences with, for every finite verb, the head of its subject as written ("chef",
// "sailors", "it", "Anna"), the agreeing verb form ("stirs", "are", "does") and the number.
struct SynthAgreement {
    std::string subject, verb;
    bool plural;
};
struct SynthSentence {
    std::string text;
    std::vector<SynthAgreement> agreements;
};
std::vector<SynthSentence> synth_debug_sentences(uint64_t seed, int count);

// One review written twice: as drawn but with its deciding clause plain, and with that clause
// negated ("the plot is dull" / "the plot is never dull"). The two labels are opposite.
struct SynthNegationPair {
    SynthLabeled plain, negated;
};
SynthNegationPair synth_negation_pair(uint64_t seed);

}  // namespace wr
