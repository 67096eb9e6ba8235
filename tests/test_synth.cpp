// tests/test_synth.cpp: the built-in default corpus (data/synth.h). Determinism, sizes, the
// sentiment rule (re-derived here from the text by a small parser, independent of the generator's
// bookkeeping), agreement (parsed back through the lexicon's word classes), disjoint splits.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "common/util.h"
#include "data/synth.h"

namespace wr {
void PrintTo(SynthWord c, std::ostream* os) {  // readable failures
    static const char* names[] = {"Other", "NounSingular", "NounPlural", "Name", "VerbBase",
                                  "Verb3rd", "VerbPast", "Adjective", "Adverb"};
    *os << names[int(c)];
}
}  // namespace wr

namespace {

using wr::SynthWord;

wr::SynthOptions small_options(uint64_t seed = 7) {
    wr::SynthOptions o;
    o.seed = seed, o.mlm_documents = 300, o.transfer_examples = 400, o.sentiment_train = 600, o.sentiment_dev = 200;
    return o;
}

uint64_t corpus_hash(const wr::SynthCorpus& c) {
    uint64_t h = wr::fnv1a64("", 0);
    auto add = [&](const std::string& s) { h = wr::fnv1a64(s.data(), s.size() + 1, h); };  // with the '\0'
    for (const std::string& d : c.mlm_documents) add(d);
    for (const std::string& t : c.transfer) add(t);
    for (const auto* set : {&c.sentiment_train, &c.sentiment_dev})
        for (const wr::SynthLabeled& x : *set) add(x.text), add(std::to_string(x.label));
    return h;
}

std::string lower(std::string s) {
    for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// Lowercase words with the surrounding punctuation (.,?!") stripped; "o'clock" stays whole.
std::vector<std::string> words_of(const std::string& text) {
    std::vector<std::string> out;
    for (std::string w : wr::split(lower(text), ' ')) {
        while (!w.empty() && std::strchr(".,?!\"", w.back())) w.pop_back();
        while (!w.empty() && w.front() == '"') w.erase(0, 1);
        if (!w.empty()) out.push_back(w);
    }
    return out;
}

// Sentences end at . ? or ! (optionally followed by a closing quote) before a space or the end.
std::vector<std::string> sentences_of(const std::string& text) {
    std::vector<std::string> out;
    size_t start = 0;
    for (size_t i = 0; i < text.size(); i++) {
        if (!std::strchr(".?!", text[i])) continue;
        size_t end = i + 1;
        if (end < text.size() && text[end] == '"') end++;
        if (end == text.size() || text[end] == ' ') {
            out.push_back(text.substr(start, end - start));
            start = end + 1, i = end;
        }
    }
    if (start < text.size()) out.push_back(text.substr(start));  // unterminated tail: a failure below
    return out;
}

bool is_noun(SynthWord c) { return c == SynthWord::NounSingular || c == SynthWord::NounPlural; }
bool is_verb(SynthWord c) { return c == SynthWord::VerbBase || c == SynthWord::Verb3rd; }
bool is_number(const std::string& w) {
    return !w.empty() && w.find_first_not_of("0123456789") == std::string::npos;
}

// ---- The sentiment rule, as documented at the top of data/synth.cpp ----

// Sign of one clause: its single polar word's sign, flipped by each "not"/"never"; 0 when the
// clause does not have exactly one polar word.
int clause_sign(const std::string& clause) {
    int polar = 0, sign = 1;
    for (const std::string& w : words_of(clause)) {
        if (const int p = wr::synth_polarity(w)) polar++, sign *= p;
        if (w == "not" || w == "never") sign = -sign;
    }
    return polar == 1 ? sign : 0;
}
bool has_polar_word(const std::string& s) {
    for (const std::string& w : words_of(s))
        if (wr::synth_polarity(w)) return true;
    return false;
}
bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// A review parsed by the rule: the sign of the clause that decides, of the other clause (0 when
// there is one clause), and whether a contrast connective joins them.
struct Parsed {
    int decisive = 0, other = 0;
    bool contrast = false;
};
Parsed parse_review(const std::string& text) {
    std::vector<std::string> polar;
    for (const std::string& s : sentences_of(text))
        if (has_polar_word(s)) polar.push_back(lower(s));
    Parsed p;
    auto split_at = [&](const std::string& s, size_t at, size_t skip, bool second_decides) {
        const int a = clause_sign(s.substr(0, at)), b = clause_sign(s.substr(at + skip));
        p.decisive = second_decides ? b : a, p.other = second_decides ? a : b;
    };
    if (polar.size() == 2 && starts_with(polar[1], "however, ")) {
        p.decisive = clause_sign(polar[1]), p.other = clause_sign(polar[0]), p.contrast = true;  // "A. However, B."
    } else if (polar.size() == 1) {
        const std::string& s = polar[0];
        size_t at;
        p.contrast = true;
        if (starts_with(s, "although ") || starts_with(s, "though ") || starts_with(s, "even though ")) {
            split_at(s, s.find(", "), 2, true);  // "Although A, B." -> B
        } else if ((at = s.find(", but ")) != std::string::npos || (at = s.find(", yet ")) != std::string::npos) {
            split_at(s, at, 2, true);  // "A, but B." -> B
        } else if ((at = s.find(", although ")) != std::string::npos || (at = s.find(", though ")) != std::string::npos ||
                   (at = s.find(", even though ")) != std::string::npos) {
            split_at(s, at, 2, false);  // "A, although B." -> A
        } else if ((at = s.find(", and ")) != std::string::npos) {
            split_at(s, at, 2, false), p.contrast = false;  // "A, and B." -> both, which must agree
            if (p.decisive != p.other) p.decisive = 0;
        } else {
            p.decisive = clause_sign(s), p.contrast = false;
        }
    }
    return p;
}
// 1 / 0 by the rule; -1 when the text does not parse as a review.
int rule_label(const std::string& text) {
    const int sign = parse_review(text).decisive;
    return sign > 0 ? 1 : sign < 0 ? 0 : -1;
}

int count_word(const std::string& text, const std::string& word) {
    int n = 0;
    for (const std::string& w : words_of(text)) n += w == word;
    return n;
}

}  // namespace

// ---- Determinism and sizes ----

TEST(SynthCorpus, SameSeedSameBytesAnyThreadCount) {
    const uint64_t a = corpus_hash(wr::generate_synth_corpus(small_options()));
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const uint64_t serial = corpus_hash(wr::generate_synth_corpus(small_options()));
    omp_set_num_threads(threads);
    EXPECT_EQ(a, corpus_hash(wr::generate_synth_corpus(small_options())));
    EXPECT_EQ(a, serial);
}

TEST(SynthCorpus, DifferentSeedDifferentText) {
    const wr::SynthCorpus a = wr::generate_synth_corpus(small_options(7));
    const wr::SynthCorpus b = wr::generate_synth_corpus(small_options(8));
    EXPECT_NE(corpus_hash(a), corpus_hash(b));
    int same_docs = 0;
    for (size_t i = 0; i < a.mlm_documents.size(); i++) same_docs += a.mlm_documents[i] == b.mlm_documents[i];
    EXPECT_EQ(same_docs, 0);
}

TEST(SynthCorpus, SizesAndShapeAsRequested) {
    const wr::SynthCorpus c = wr::generate_synth_corpus(small_options());
    EXPECT_EQ(c.mlm_documents.size(), 300u);
    EXPECT_EQ(c.transfer.size(), 400u);
    EXPECT_EQ(c.sentiment_train.size(), 600u);
    EXPECT_EQ(c.sentiment_dev.size(), 200u);
    std::set<size_t> lengths;
    for (const std::string& doc : c.mlm_documents) {
        const std::vector<std::string> sentences = sentences_of(doc);
        EXPECT_GE(sentences.size(), 3u) << doc;
        EXPECT_LE(sentences.size(), 12u) << doc;
        for (const std::string& s : sentences) {
            const size_t n = wr::split(s, ' ').size();
            lengths.insert(n);
            EXPECT_TRUE(n >= 5 && n <= 25) << n << " words: " << s;
            const char first = s[0] == '"' ? s[1] : s[0];
            EXPECT_TRUE(std::isupper(static_cast<unsigned char>(first)) || std::isdigit(static_cast<unsigned char>(first))) << s;
        }
    }
    EXPECT_GE(lengths.size(), 15u);  // a spread of lengths, not one template
    const wr::SynthCorpus empty = wr::generate_synth_corpus({1, 0, 0, 0, 0, 0});
    EXPECT_TRUE(empty.mlm_documents.empty() && empty.transfer.empty() && empty.sentiment_dev.empty());
    EXPECT_THROW(wr::generate_synth_corpus({1, -1, 0, 0, 0, 0}), wr::Error);
    EXPECT_THROW(wr::generate_synth_corpus({1, 0, -1, 0, 0, 0}), wr::Error);
}

TEST(SynthCorpus, DefaultsGiveAboutAMillionWords) {
    const double t0 = wr::now_seconds();
    const wr::SynthCorpus c = wr::generate_synth_corpus(wr::SynthOptions{});
    const double seconds = wr::now_seconds() - t0;
    size_t words = 0;
    for (const std::string& d : c.mlm_documents) words += wr::split(d, ' ').size();
    EXPECT_GE(words, 1000000u);
    EXPECT_LE(words, 2000000u);
    EXPECT_LT(seconds, 5.0);
    EXPECT_EQ(c.sentiment_train.size(), 8000u);
}

TEST(SynthCorpus, PrintableAsciiSingleSpaced) {
    const wr::SynthCorpus c = wr::generate_synth_corpus(small_options());
    std::vector<std::string> all = c.mlm_documents;
    all.insert(all.end(), c.transfer.begin(), c.transfer.end());
    for (const wr::SynthLabeled& x : c.sentiment_train) all.push_back(x.text);
    for (const std::string& s : all) {
        ASSERT_FALSE(s.empty());
        EXPECT_NE(s.front(), ' ');
        EXPECT_NE(s.back(), ' ');
        EXPECT_EQ(s.find("  "), std::string::npos) << s;
        for (char ch : s) ASSERT_TRUE(ch >= 0x20 && ch <= 0x7e) << int(ch) << " in " << s;
    }
}

// ---- Topics ----

// A document's topic words come from one topic, and they are most of its nouns; across documents
// every topic occurs.
TEST(SynthCorpus, DocumentsStayOnTopic) {
    const wr::SynthCorpus c = wr::generate_synth_corpus(small_options());
    double one_topic = 0, topical_nouns = 0;
    std::set<std::string> topics;
    for (const std::string& doc : c.mlm_documents) {
        std::map<std::string, int> counts;
        int tagged = 0, nouns = 0, topical = 0;
        for (const std::string& w : words_of(doc)) {
            const std::string topic = wr::synth_topic_of(w);
            if (!topic.empty()) counts[topic]++, tagged++;
            if (is_noun(wr::synth_word_class(w))) nouns++, topical += !topic.empty();
        }
        int top = 0;
        for (const auto& [topic, n] : counts) top = std::max(top, n);
        for (const auto& [topic, n] : counts)
            if (n == top) topics.insert(topic);
        one_topic += tagged ? double(top) / tagged : 0;
        topical_nouns += nouns ? double(topical) / nouns : 0;
    }
    const double docs = double(c.mlm_documents.size());
    EXPECT_GT(one_topic / docs, 0.95);
    EXPECT_GT(topical_nouns / docs, 0.6);
    EXPECT_EQ(topics.size(), 10u);
}

// ---- Grammar ----

TEST(SynthLexicon, EveryWordHasOneClass) {
    EXPECT_TRUE(wr::synth_lexicon_conflicts().empty()) << wr::synth_lexicon_conflicts()[0];
    EXPECT_EQ(wr::synth_word_class("knife"), SynthWord::NounSingular);
    EXPECT_EQ(wr::synth_word_class("knives"), SynthWord::NounPlural);
    EXPECT_EQ(wr::synth_word_class("skies"), SynthWord::NounPlural);
    EXPECT_EQ(wr::synth_word_class("carries"), SynthWord::Verb3rd);
    EXPECT_EQ(wr::synth_word_class("echoes"), SynthWord::Verb3rd);
    EXPECT_EQ(wr::synth_word_class("stir"), SynthWord::VerbBase);
    EXPECT_EQ(wr::synth_word_class("regretted"), SynthWord::VerbPast);
    EXPECT_EQ(wr::synth_word_class("anna"), SynthWord::Name);
    EXPECT_EQ(wr::synth_word_class("the"), SynthWord::Other);
    EXPECT_EQ(wr::synth_polarity("dull"), -1);
    EXPECT_EQ(wr::synth_polarity("shines"), 1);
    EXPECT_EQ(wr::synth_polarity("not"), 0);
    EXPECT_EQ(wr::synth_topic_of("stirs"), "cooking");
    EXPECT_EQ(wr::synth_topic_of("knives"), "cooking");
    EXPECT_EQ(wr::synth_topic_of("box"), "");
}

TEST(SynthGrammar, SubjectVerbAgreement) {
    const std::set<std::string> singular_pronouns{"it", "he", "she"};
    int plural = 0, singular = 0;
    for (const wr::SynthSentence& s : wr::synth_debug_sentences(11, 3000)) {
        const std::vector<std::string> ws = words_of(s.text);
        const std::set<std::string> present(ws.begin(), ws.end());
        for (const wr::SynthAgreement& a : s.agreements) {
            const std::string subject = lower(a.subject);
            const SynthWord sc = wr::synth_word_class(subject), vc = wr::synth_word_class(a.verb);
            const bool subject_singular = sc == SynthWord::NounSingular || sc == SynthWord::Name ||
                                          singular_pronouns.count(subject);
            const bool subject_plural = sc == SynthWord::NounPlural || subject == "they";
            ASSERT_TRUE(subject_singular != subject_plural) << subject << " in " << s.text;
            EXPECT_EQ(subject_plural, a.plural) << s.text;
            EXPECT_EQ(vc, subject_plural ? SynthWord::VerbBase : SynthWord::Verb3rd) << a.verb << " in " << s.text;
            EXPECT_TRUE(present.count(subject) && present.count(a.verb)) << s.text;
            (subject_plural ? plural : singular)++;
        }
    }
    EXPECT_GT(plural, 1000);
    EXPECT_GT(singular, 1000);
}

// Agreement parsed from the text alone: "a"/"an", determiner/number, pronoun/verb, "there is/are".
TEST(SynthGrammar, AgreementVisibleInText) {
    const wr::SynthCorpus c = wr::generate_synth_corpus(small_options());
    const std::set<std::string> det_singular{"a", "an", "this", "that", "every"}, det_plural{"these", "those", "several", "many"};
    int articles = 0, determiners = 0, pronouns = 0, there = 0;
    for (const std::string& doc : c.mlm_documents) {
        const std::vector<std::string> ws = words_of(doc);
        auto cls = [&](size_t i) { return i < ws.size() ? wr::synth_word_class(ws[i]) : SynthWord::Other; };
        for (size_t i = 0; i + 1 < ws.size(); i++) {
            const std::string& w = ws[i];
            if (w == "a" || w == "an") {
                const bool vowel = std::strchr("aeiou", ws[i + 1][0]) != nullptr;
                EXPECT_EQ(w == "an", vowel) << w << " " << ws[i + 1] << " in " << doc;
                articles++;
            }
            if (det_singular.count(w) || det_plural.count(w) || is_number(w)) {
                const size_t j = cls(i + 1) == SynthWord::Adjective ? i + 2 : i + 1;
                if (is_noun(cls(j))) {
                    const bool plural = !det_singular.count(w);
                    EXPECT_EQ(cls(j), plural ? SynthWord::NounPlural : SynthWord::NounSingular) << w << " " << ws[j];
                    determiners++;
                }
            }
            const bool question = i > 0 && (ws[i - 1] == "does" || ws[i - 1] == "do");  // "Does she stir"
            if ((w == "it" || w == "he" || w == "she" || w == "they") && !question) {
                const size_t j = cls(i + 1) == SynthWord::Adverb ? i + 2 : i + 1;
                if (is_verb(cls(j))) {
                    EXPECT_EQ(cls(j), w == "they" ? SynthWord::VerbBase : SynthWord::Verb3rd) << w << " " << ws[j];
                    pronouns++;
                }
            }
            if (w == "there" && (ws[i + 1] == "is" || ws[i + 1] == "are")) {
                size_t j = i + 2;
                while (j < ws.size() && !is_noun(cls(j))) j++;
                ASSERT_LT(j, ws.size());
                EXPECT_EQ(cls(j), ws[i + 1] == "are" ? SynthWord::NounPlural : SynthWord::NounSingular) << ws[j];
                there++;
            }
        }
    }
    EXPECT_GT(articles, 500);
    EXPECT_GT(determiners, 1000);
    EXPECT_GT(pronouns, 200);
    EXPECT_GT(there, 100);
}

// ---- Sentiment ----

TEST(SynthSentiment, LabelsBalanced) {
    const wr::SynthCorpus c = wr::generate_synth_corpus(small_options());
    for (const auto* set : {&c.sentiment_train, &c.sentiment_dev}) {
        double positive = 0;
        for (const wr::SynthLabeled& x : *set) {
            ASSERT_TRUE(x.label == 0 || x.label == 1);
            positive += x.label;
        }
        EXPECT_GE(positive / set->size(), 0.4);
        EXPECT_LE(positive / set->size(), 0.6);
    }
}

TEST(SynthSentiment, LabelFollowsTheRule) {
    const wr::SynthCorpus c = wr::generate_synth_corpus(small_options());
    for (const auto* set : {&c.sentiment_train, &c.sentiment_dev})
        for (const wr::SynthLabeled& x : *set) EXPECT_EQ(rule_label(x.text), x.label) << x.text;
    for (const std::string& t : c.transfer) EXPECT_NE(rule_label(t), -1) << t;
}

// Negation and contrast matter: both are frequent, contrasted clauses have opposite signs, and
// ignoring both (summing word polarities) gets few more labels right than a coin.
TEST(SynthSentiment, BagOfWordsIsNotEnough) {
    const wr::SynthCorpus c = wr::generate_synth_corpus(small_options());
    double naive = 0;
    int negated = 0, contrast = 0;
    for (const wr::SynthLabeled& x : c.sentiment_train) {
        int sum = 0;
        for (const std::string& w : words_of(x.text)) sum += wr::synth_polarity(w);
        naive += sum == 0 ? 0.5 : (sum > 0) == (x.label == 1);
        negated += count_word(x.text, "not") + count_word(x.text, "never") > 0;
        const Parsed p = parse_review(x.text);
        if (p.contrast) {
            EXPECT_EQ(p.other, -p.decisive) << x.text;
            contrast++;
        }
    }
    const double n = double(c.sentiment_train.size());
    EXPECT_LT(naive / n, 0.7);
    EXPECT_GT(negated / n, 0.3);
    EXPECT_GT(contrast / n, 0.4);
}

TEST(SynthSentiment, NegationFlipsTheLabel) {
    std::set<std::string> distinct;
    for (uint64_t seed = 0; seed < 500; seed++) {
        const wr::SynthNegationPair p = wr::synth_negation_pair(seed);
        EXPECT_NE(p.plain.label, p.negated.label) << p.plain.text;
        EXPECT_EQ(rule_label(p.plain.text), p.plain.label) << p.plain.text;
        EXPECT_EQ(rule_label(p.negated.text), p.negated.label) << p.negated.text;
        const int plain_neg = count_word(p.plain.text, "not") + count_word(p.plain.text, "never");
        const int neg_neg = count_word(p.negated.text, "not") + count_word(p.negated.text, "never");
        EXPECT_EQ(neg_neg, plain_neg + 1) << p.plain.text << " | " << p.negated.text;
        distinct.insert(p.plain.text);
    }
    EXPECT_GT(distinct.size(), 450u);
}

TEST(SynthSentiment, DevDisjointFromTrainTransferFromDev) {
    wr::SynthOptions o;  // the default sizes: short reviews do repeat among 8000, so this bites
    o.mlm_documents = 0;
    const wr::SynthCorpus c = wr::generate_synth_corpus(o);
    std::set<std::string> train, dev;
    for (const wr::SynthLabeled& x : c.sentiment_train) train.insert(x.text);
    for (const wr::SynthLabeled& x : c.sentiment_dev) {
        EXPECT_FALSE(train.count(x.text)) << x.text;
        EXPECT_TRUE(dev.insert(x.text).second) << "twice in dev: " << x.text;
    }
    for (const std::string& t : c.transfer) EXPECT_FALSE(dev.count(t)) << t;
    // The review documents of the MLM text (3-8 reviews each, at least 3 sentences) hold between
    // them nearly every word of the dev reviews: pretraining sees the task's vocabulary.
    ASSERT_EQ(c.review_documents.size(), (size_t)o.review_documents);
    std::set<std::string> pretraining_words;
    for (const std::string& doc : c.review_documents) {
        EXPECT_GE(sentences_of(doc).size(), 3u) << doc;
        for (const std::string& w : wr::split(doc, ' ')) pretraining_words.insert(w);
    }
    size_t dev_words = 0, missing = 0;
    for (const wr::SynthLabeled& x : c.sentiment_dev)
        for (const std::string& w : wr::split(x.text, ' ')) dev_words++, missing += !pretraining_words.count(w);
    EXPECT_LT(missing, dev_words / 100) << missing << " of " << dev_words << " dev words never occur in the review documents";
    // Different streams, not the same sequence shifted: no long run of equal texts.
    size_t same = 0;
    for (size_t i = 0; i < c.sentiment_dev.size(); i++) same += c.sentiment_dev[i].text == c.transfer[i];
    EXPECT_LT(same, 5u);
}
