// data/synth.cpp: the built-in default corpus (interface in data/synth.h). Everything here -- the
// grammar, the lexicon, the sentiment rule -- was written for this project; there is no outside
// text. The output is plain printable ASCII.
//
// The lexicon (tables below) holds about 500 words: ten topics (cooking, sailing, music,
// astronomy, gardening, trains, chess, weather, hiking, painting), each with agents ("chef"),
// things ("soup"), transitive verbs ("stir"), intransitive verbs ("simmer") and adjectives
// ("spicy"); a generic set every topic borrows from; names; adverbs; prepositions; and the review
// vocabulary (items, aspects, positive/negative adjectives and verbs, intensifiers). Nouns are
// written singular and verbs in the base form; plurals, -s forms and past tenses come from the
// usual spelling rules ("box" -> "boxes", "carry" -> "carries"), with "knife:knives" marking the
// few irregular ones. Every surface form belongs to exactly one word class, so the tests can parse
// text back by lookup.
//
// MLM documents. Two kinds: topic documents and review documents (3-8 reviews as below, so that
// pretraining sees the review vocabulary). A topic document draws one topic and a "hero" (an agent of that topic, or a name).
// Three words in four come from the topic's tables, so the rest of a document predicts a masked
// noun or verb. Sentences (5-25 words) are built from
//   clause      = subject predicate
//   subject     = [det] [adj] noun [near NP | who/which VERB ...] | name | pronoun
//   predicate   = [often] VERB-tr object [PP] [adverb] | can/will VERB object | does not VERB ...
//               | VERB-in [adverb] [PP] | is/seems [very] ADJ
//   sentence    = clause. | clause, and/but/so clause. | When clause, clause. | clause because clause.
//               | In the morning, clause. | Does NP VERB NP? | Is NP ADJ? | NP says, "clause."
//               | "clause," NP says. | There is/are NP PP.
// What a model can learn from it:
//   - agreement: the subject's number picks the verb form ("the dog runs" / "the dogs run",
//     "does"/"do", "is"/"are"), also across a distracting phrase ("the sailor near the boats
//     steers ..."); determiners agree with their noun ("this boat", "these boats", "3 boats");
//     "a"/"an" follows the next word's first letter;
//   - reference: after the hero is introduced ("a captain"), it is "the captain" or "she", and a
//     pronoun agrees with the subject it refers back to ("the boats ... They drift");
//   - topic: the vocabulary of a document; selection: agents take transitive verbs and things
//     intransitive ones; syntax: punctuation, capitals, quotes, questions, numbers.
//
// Sentiment reviews (labeled train/dev, unlabeled transfer set). A review is one main sentence
// about an item (film, book, meal, concert, show, album, game), sometimes with a neutral sentence
// before or after it ("We watched it with 3 friends."). The main sentence has one or two polar
// clauses:
//   "the plot is [very] dull"      "the ending [never] drags"      "I [did not] enjoy the songs"
//   "it is [not] a truly wonderful film"
// A clause's sign is its polar word's sign, flipped by a negator ("not", "never"): "never boring"
// is positive, "not good" negative. Which clause decides the label:
//   A.                      -> A            A, and B.  -> A (= B: both have the same sign)
//   A, but B. / A, yet B.   -> B            Although A, B. / Though A, B. -> B
//   A, although B.          -> A            A. However, B.                -> B
// In the two-clause shapes other than "and" the clauses have opposite signs, so a bag of words
// sees one positive and one negative word; only word order and negation tell the label. The label
// is a function of the text (tests/test_synth.cpp re-derives it with a small parser), so a model
// can in principle reach 100%. Labels are exactly balanced.
//
// Determinism: our own PRNG (splitmix64) and integer-to-range mapping, one independent stream per
// document and per data set, so the bytes depend only on SynthOptions.
#include "data/synth.h"

#include <cctype>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "common/random.h"
#include "common/util.h"

namespace wr {
namespace {

// ---- Random numbers --------------------------------------------------------------------------

// splitmix64: the state advances by a constant; each output is a strong mix of the state.
struct Rng {
    uint64_t state;
    explicit Rng(uint64_t seed) : state(seed) {}
    uint64_t next() {
        return splitmix64_next(state);
    }
    // Integer in [0, n): the top 32 bits times n, high half kept (bias below n / 2^32).
    int below(int n) { return int(((next() >> 32) * uint64_t(n)) >> 32); }
    int range(int lo, int hi) { return lo + below(hi - lo + 1); }  // inclusive
    bool chance(int percent) { return below(100) < percent; }
    template <class T>
    const T& pick(const std::vector<T>& v) { return v[below(int(v.size()))]; }
};

// Seed of an independent stream: (corpus seed, purpose, index) hashed through splitmix steps.
uint64_t stream_seed(uint64_t seed, uint64_t purpose, uint64_t index = 0) {
    Rng a(seed);
    Rng b(a.next() ^ (purpose * 0xD1B54A32D192ED03ULL));
    Rng c(b.next() ^ index);
    return c.next();
}
enum Stream : uint64_t { kMlm = 1, kTrain, kDev, kTransfer, kDebug, kNegation, kReviewDocuments };

// ---- Lexicon tables --------------------------------------------------------------------------

// A topic: who acts, what is acted on, transitive verbs (agent -> thing), intransitive verbs
// (what things do), adjectives. "sg:pl" marks an irregular plural.
struct TopicTable {
    const char *name, *agents, *things, *verbs_tr, *verbs_in, *adjectives;
};
const TopicTable kTopics[] = {
    {"cooking", "chef baker butcher",
     "soup bread onion pan oven kitchen recipe knife:knives sauce dough lemon pot spoon cake pepper",
     "stir chop bake slice season knead peel roast", "simmer boil sizzle bubble",
     "spicy salty crisp tender sour golden creamy bitter"},
    {"sailing", "sailor captain fisherman:fishermen",
     "boat ship harbor wave mast deck rope island tide anchor cabin oar sail shore gull",
     "steer hoist tie mend load launch row coil", "drift sink float sway",
     "sturdy wooden coastal wet narrow rusty"},
    {"music", "pianist singer drummer violinist composer",
     "piano song melody violin drum guitar note chord orchestra rhythm trumpet choir",
     "play compose rehearse strum hum practice sing conduct", "echo ring fade swell",
     "loud soft gentle melodic lively rhythmic"},
    {"astronomy", "astronomer astronaut stargazer",
     "star planet moon comet telescope galaxy lens sky meteor satellite crater eclipse asteroid",
     "observe measure track photograph chart spot", "glow twinkle spin vanish",
     "faint distant icy remote dim vast"},
    {"gardening", "gardener farmer beekeeper",
     "rose tulip seed flower tree leaf:leaves root soil hedge garden fence shovel bee bush",
     "prune dig rake harvest trim sow fertilize", "bloom grow wilt sprout",
     "green leafy ripe thorny fragrant wild"},
    {"trains", "conductor driver passenger porter",
     "train station platform ticket rail carriage engine tunnel bridge timetable seat signal "
     "locomotive suitcase",
     "board punch inspect stamp unload repair", "depart rattle halt whistle",
     "late crowded punctual noisy empty"},
    {"chess", "player champion grandmaster rival",
     "pawn knight bishop rook queen king chessboard piece tournament clock puzzle",
     "capture defend attack sacrifice block threaten", "resign blunder hesitate",
     "tactical strategic cunning risky bold"},
    {"weather", "forecaster meteorologist pilot",
     "cloud storm wind breeze puddle umbrella rainbow raindrop snowflake forecast thermometer",
     "predict record announce", "blow pour rumble howl freeze",
     "cloudy stormy windy foggy humid chilly"},
    {"hiking", "hiker climber guide ranger",
     "mountain trail summit backpack map tent boot rock cliff valley river ridge lake",
     "climb cross follow reach explore", "wander hike camp stumble",
     "rocky steep muddy snowy alpine winding"},
    {"painting", "painter artist curator",
     "brush canvas easel portrait palette landscape frame gallery studio pencil drawing color",
     "sketch paint mix blend hang display", "dry drip smudge", "colorful abstract vivid pale glossy"},
};
// Words every topic borrows (one word in four). Generic intransitive verbs are things agents do.
const TopicTable kGeneric = {
    "generic", "friend neighbor teacher child:children woman:women man:men student visitor stranger",
    "box bag book door window table letter photo cup lamp basket bench house road",
    "watch find carry need want see hold bring keep clean open fix notice",
    "wait stay return laugh sleep arrive",
    "old new small large quiet busy heavy warm cold long tall famous strange simple"};
const char* kNamesShe = "Anna Maria Lucy Emma Sara";
const char* kNamesHe = "Tom David Peter Omar Leo";
const char* kMannerAdverbs = "slowly quickly carefully quietly gently patiently proudly calmly eagerly";
const char* kFrequencyAdverbs = "often always rarely sometimes usually seldom";
const char* kPrepositions = "in on near under behind beside across through over with without inside";
const char* kDistractors = "near behind beside with";  // "the sailor near the boats steers ..."
const char* kModals = "can will must should";
const char* kSubordinators = "when because after before while if";
const char* kDegree = "very quite rather";
const char* kDays = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday";
const char* kMonths = "January March April May June July August October November";

// Review items: the item, how one experienced it (past, participle), its aspects (singular ones,
// then plural ones).
struct ItemTable {
    const char *name, *past, *participle, *aspects, *plural_aspects;
};
const ItemTable kItems[] = {
    {"film", "watched", "watched", "plot acting ending script soundtrack dialogue", "actors scenes jokes"},
    {"book", "read", "read", "story prose ending writing", "characters chapters"},
    {"meal", "ate", "eaten", "soup dessert service sauce wine", "dishes portions"},
    {"concert", "attended", "attended", "singer band sound drummer encore", "songs lyrics"},
    {"show", "watched", "watched", "cast stage script", "costumes actors"},
    {"album", "heard", "heard", "production", "songs lyrics vocals melodies"},
    {"game", "played", "played", "story music", "graphics controls levels"},
};
const char* kGoodAdjectives =
    "good great wonderful excellent superb brilliant lovely delightful charming moving beautiful "
    "gripping stunning memorable fantastic enjoyable elegant witty";
const char* kBadAdjectives =
    "bad awful terrible dull boring weak flat clumsy tedious bland poor dreadful messy "
    "forgettable painful stale lifeless sloppy shallow";
const char* kGoodActs = "shine sparkle soar work impress succeed";  // "the ending shines"
const char* kBadActs = "drag fail disappoint falter";              // "the plot drags"
const char* kGoodFeelings = "love enjoy adore like admire";        // "I loved the songs"
const char* kBadFeelings = "hate dislike regret:regretted loathe despise";  // "sg:past" irregular
const char* kIntensifiers = "very really truly extremely incredibly remarkably";
const char* kRelatives = "sister brother mother father cousin";

// ---- Morphology ------------------------------------------------------------------------------

bool is_vowel(char c) { return std::strchr("aeiou", c) != nullptr; }
bool ends_with(const std::string& s, const char* suffix) {
    const size_t n = std::strlen(suffix);
    return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}
// Plural of a noun or -s form of a verb: "box" -> "boxes", "sky" -> "skies", "echo" -> "echoes".
std::string add_s(const std::string& w, bool verb) {
    if (w.size() > 1 && w.back() == 'y' && !is_vowel(w[w.size() - 2])) return w.substr(0, w.size() - 1) + "ies";
    if (ends_with(w, "s") || ends_with(w, "sh") || ends_with(w, "ch") || ends_with(w, "x") ||
        ends_with(w, "z") || (verb && ends_with(w, "o")))
        return w + "es";
    return w + "s";
}
std::string past_of(const std::string& w) {
    if (w.back() == 'e') return w + "d";
    if (w.size() > 1 && w.back() == 'y' && !is_vowel(w[w.size() - 2])) return w.substr(0, w.size() - 1) + "ied";
    return w + "ed";
}
// "a" or "an" before `next`, by its first letter (the lexicon avoids "hour"/"unique" cases).
const char* article(const std::string& next) { return is_vowel(char(std::tolower(next[0]))) ? "an" : "a"; }

// ---- The lexicon, parsed from the tables -----------------------------------------------------

struct Noun {
    std::string sg, pl;
    const std::string& form(bool plural) const { return plural ? pl : sg; }
};
struct Verb {
    std::string base, s, past;
    const std::string& form(bool plural) const { return plural ? base : s; }  // "run" / "runs"
};
struct Topic {
    std::vector<Noun> agents, things;
    std::vector<Verb> tr, in;
    std::vector<std::string> adj;
};
struct Aspect {
    std::string word;
    bool plural;
};
struct Item {
    std::string name, past, participle;
    std::vector<Aspect> aspects;
};

std::vector<std::string> words(const char* list) { return split(list, ' '); }
std::vector<Noun> nouns(const char* list) {
    std::vector<Noun> out;
    for (const std::string& w : words(list)) {
        const size_t colon = w.find(':');
        if (colon == std::string::npos) out.push_back({w, add_s(w, false)});
        else out.push_back({w.substr(0, colon), w.substr(colon + 1)});
    }
    return out;
}
std::vector<Verb> verbs(const char* list) {
    std::vector<Verb> out;
    for (const std::string& w : words(list)) {
        const size_t colon = w.find(':');
        const std::string base = w.substr(0, colon);
        out.push_back({base, add_s(base, true), colon == std::string::npos ? past_of(base) : w.substr(colon + 1)});
    }
    return out;
}
Topic topic(const TopicTable& t) {
    return {nouns(t.agents), nouns(t.things), verbs(t.verbs_tr), verbs(t.verbs_in), words(t.adjectives)};
}

struct Lexicon {
    std::vector<Topic> topics;
    Topic generic;
    std::vector<std::string> she, he, manner, frequency, preps, distractors, modals, subordinators, degree,
        days, months, intensifiers, relatives;
    std::vector<Item> items;
    std::vector<std::string> adjectives[2];  // [0] negative, [1] positive
    std::vector<Verb> acts[2], feelings[2];
    Verb be{"are", "is", "were"}, do_{"do", "does", "did"}, seem, say;
    std::unordered_map<std::string, SynthWord> classes;
    std::unordered_map<std::string, int> polarity;
    std::unordered_map<std::string, std::string> topic_of;
    std::vector<std::string> conflicts;

    void add(const std::string& word, SynthWord c) {
        std::string w = word;
        for (char& ch : w) ch = char(std::tolower(ch));
        auto [it, fresh] = classes.emplace(w, c);
        if (!fresh && it->second != c) conflicts.push_back(w);
    }
    void add(const std::vector<Noun>& ns) {
        for (const Noun& n : ns) add(n.sg, SynthWord::NounSingular), add(n.pl, SynthWord::NounPlural);
    }
    void add(const std::vector<Verb>& vs, int sign = 0) {
        for (const Verb& v : vs) {
            add(v.base, SynthWord::VerbBase), add(v.s, SynthWord::Verb3rd);
            if (sign) polarity[v.base] = polarity[v.s] = polarity[v.past] = sign;
        }
    }
    void add(const std::vector<std::string>& ws, SynthWord c, int sign = 0) {
        for (const std::string& w : ws) {
            add(w, c);
            if (sign) polarity[w] = sign;
        }
    }
};

Lexicon build_lexicon() {
    Lexicon L;
    for (const TopicTable& t : kTopics) L.topics.push_back(topic(t));
    L.generic = topic(kGeneric);
    L.she = words(kNamesShe), L.he = words(kNamesHe), L.manner = words(kMannerAdverbs);
    L.frequency = words(kFrequencyAdverbs), L.preps = words(kPrepositions), L.distractors = words(kDistractors);
    L.modals = words(kModals), L.subordinators = words(kSubordinators), L.degree = words(kDegree);
    L.days = words(kDays), L.months = words(kMonths), L.intensifiers = words(kIntensifiers);
    L.relatives = words(kRelatives);
    for (const ItemTable& t : kItems) {
        Item item{t.name, t.past, t.participle, {}};
        for (const std::string& w : words(t.aspects)) item.aspects.push_back({w, false});
        for (const std::string& w : words(t.plural_aspects)) item.aspects.push_back({w, true});
        L.items.push_back(item);
    }
    L.adjectives[1] = words(kGoodAdjectives), L.adjectives[0] = words(kBadAdjectives);
    L.acts[1] = verbs(kGoodActs), L.acts[0] = verbs(kBadActs);
    L.feelings[1] = verbs(kGoodFeelings), L.feelings[0] = verbs(kBadFeelings);
    L.seem = verbs("seem")[0], L.say = verbs("say")[0];

    // Word classes (and review polarity), with every clash between classes recorded.
    std::vector<const Topic*> all{&L.generic};
    for (const Topic& t : L.topics) all.push_back(&t);
    for (const Topic* t : all) {
        L.add(t->agents), L.add(t->things), L.add(t->tr), L.add(t->in);
        L.add(t->adj, SynthWord::Adjective);
    }
    for (size_t i = 0; i < L.topics.size(); i++) {  // which topic each word belongs to
        const Topic& t = L.topics[i];
        std::vector<std::string> forms = t.adj;
        for (const auto* ns : {&t.agents, &t.things})
            for (const Noun& n : *ns) forms.push_back(n.sg), forms.push_back(n.pl);
        for (const auto* vs : {&t.tr, &t.in})
            for (const Verb& v : *vs) forms.push_back(v.base), forms.push_back(v.s);
        for (const std::string& w : forms) {
            auto [it, fresh] = L.topic_of.emplace(w, kTopics[i].name);
            if (!fresh && it->second != kTopics[i].name) L.conflicts.push_back(w);
        }
    }
    for (const Item& item : L.items) {
        L.add(item.name, SynthWord::NounSingular);
        for (const Aspect& a : item.aspects) L.add(a.word, a.plural ? SynthWord::NounPlural : SynthWord::NounSingular);
    }
    L.add(L.she, SynthWord::Name), L.add(L.he, SynthWord::Name);
    L.add(L.manner, SynthWord::Adverb), L.add(L.frequency, SynthWord::Adverb);
    for (int sign : {0, 1}) {
        L.add(L.adjectives[sign], SynthWord::Adjective, sign ? 1 : -1);
        L.add(L.acts[sign], sign ? 1 : -1);
        L.add(L.feelings[sign], sign ? 1 : -1);
        for (const Verb& v : L.feelings[sign]) L.add(v.past, SynthWord::VerbPast);
    }
    L.add({L.be, L.do_, L.seem, L.say});
    return L;
}
const Lexicon& lexicon() {
    static const Lexicon L = build_lexicon();  // built once, thread-safe
    return L;
}

// ---- Sentence builder ------------------------------------------------------------------------

// Words joined by spaces, punctuation glued to the word before it, a capital letter at the start
// of a sentence and after an opening quote.
struct Text {
    std::string s;
    int words = 0;
    bool capital = true, glued = true;
    void w(const std::string& word) {
        if (!glued) s += ' ';
        s += word;
        if (capital) s[s.size() - word.size()] = char(std::toupper(word[0]));
        capital = glued = false;
        words++;
    }
    void phrase(const std::string& several) {  // several words at once
        for (const std::string& word : split(several, ' ')) w(word);
    }
    void punct(char c) { s += c; }
    void stop(char c) { s += c, capital = true; }  // end of a sentence; the next one follows
    void open_quote() {
        if (!glued) s += ' ';
        s += '"', glued = capital = true;
    }
};

// ---- MLM documents ---------------------------------------------------------------------------

// Someone or something a sentence talks about.
struct Entity {
    const Noun* noun = nullptr;  // null for a name
    std::string name;
    bool plural = false, agent = false, she = false, introduced = false;
    std::string pronoun() const { return plural ? "they" : !agent ? "it" : she ? "she" : "he"; }
    std::string head(bool as_pronoun) const { return as_pronoun ? pronoun() : noun ? noun->form(plural) : name; }
};

// Writes the sentences of one document about one topic; every finite verb it writes is logged in
// `agreements` (those of the last sentence).
class Writer {
  public:
    Writer(Rng& rng, const Topic& topic) : r_(rng), t_(topic) { hero_ = new_entity(true); }
    std::vector<SynthAgreement> agreements;

    std::string sentence() {
        const Entity hero = hero_, prev = prev_;
        const bool has_prev = has_prev_;
        for (;;) {  // draw until the length is within 5..25 words; a rejected draw leaves no trace
            hero_ = hero, prev_ = prev, has_prev_ = has_prev;
            agreements.clear();
            Text t;
            const int roll = r_.below(100);
            if (roll < 42) {
                clause(t);
                if (r_.chance(12)) time_phrase(t);
            } else if (roll < 54) {
                clause(t), t.punct(','), t.w(pick("and but so")), clause(t);
            } else if (roll < 64) {
                t.w(r_.pick(L_.subordinators)), clause(t), t.punct(','), clause(t);
            } else if (roll < 69) {
                clause(t), t.w(pick("because when while")), clause(t);
            } else if (roll < 77) {
                time_phrase(t), t.punct(','), clause(t);
            } else if (roll < 84) {
                question(t);
            } else if (roll < 92) {
                quote(t);
            } else {
                there_is(t);
            }
            if (t.s.back() != '?' && t.s.back() != '"') t.punct('.');
            if (t.words >= 5 && t.words <= 25) return t.s;
        }
    }

  private:
    Rng& r_;
    const Topic& t_;
    const Lexicon& L_ = lexicon();
    Entity hero_, prev_;
    bool has_prev_ = false;

    std::string pick(const char* list) { return r_.pick(words(list)); }
    const Topic& source() { return r_.chance(75) ? t_ : L_.generic; }  // the topic dominates
    const std::string& adjective() { return r_.pick(source().adj); }

    Entity new_entity(bool agent) {
        Entity e;
        e.agent = agent, e.she = r_.chance(50);
        if (agent && r_.chance(20)) {
            e.name = r_.pick(e.she ? L_.she : L_.he);
        } else {
            e.noun = &r_.pick(agent ? source().agents : source().things);
            e.plural = r_.chance(35);
        }
        return e;
    }

    void verb(Text& t, const Verb& v, const Entity& subject, bool pronoun) {
        t.w(v.form(subject.plural));
        agreements.push_back({subject.head(pronoun), v.form(subject.plural), subject.plural});
    }

    // Determiner, optional adjective, noun: the determiner agrees in number, "a"/"an" with the
    // word after it.
    void noun_phrase(Text& t, const Noun& n, bool plural, int adj_percent) {
        std::string det;
        const int roll = r_.below(100);
        if (!plural) {
            det = roll < 55 ? "the" : roll < 75 ? "a" : roll < 83 ? pick("this that") : roll < 87 ? "every"
                                                                               : pick("my his her our their");
        } else {
            det = roll < 55 ? "the" : roll < 63 ? "these" : roll < 68 ? "those" : roll < 76 ? "some"
                : roll < 82 ? "many" : roll < 87 ? "several" : roll < 97 ? std::to_string(r_.range(2, 12)) : "";
        }
        const std::string adj = r_.chance(adj_percent) ? adjective() : "";
        const std::string& next = adj.empty() ? n.form(plural) : adj;
        if (det == "a") det = article(next);
        if (!det.empty()) t.w(det);
        if (!adj.empty()) t.w(adj);
        t.w(n.form(plural));
    }
    void object(Text& t) {
        const Noun& n = r_.pick(source().things);  // one draw a statement (see time_phrase)
        noun_phrase(t, n, r_.chance(35), 25);
    }
    void pp(Text& t) { t.w(r_.pick(L_.preps)), object(t); }

    // The subject: a pronoun for the previous subject, the document's hero, or someone new.
    void subject(Text& t, Entity& e, bool pronoun) {
        if (pronoun) return t.w(e.pronoun());
        if (!e.noun) return t.w(e.name);
        if (&e == &hero_ && !e.introduced) {  // first mention: indefinite
            e.introduced = true;
            const std::string adj = r_.chance(30) ? adjective() : "";
            const std::string& n = e.noun->form(e.plural);
            if (e.plural) t.w(r_.chance(50) ? std::string("some") : std::to_string(r_.range(2, 9)));
            else t.w(article(adj.empty() ? n : adj));
            if (!adj.empty()) t.w(adj);
            t.w(n);
        } else if (&e == &hero_) {
            t.w("the"), t.w(e.noun->form(e.plural));
        } else {
            noun_phrase(t, *e.noun, e.plural, 30);
        }
        const int roll = r_.below(100);
        if (roll < 8) {  // a distractor of either number between subject and verb
            t.w(r_.pick(L_.distractors)), t.w("the");
            const Noun& n = r_.pick(source().things);
            t.w(n.form(r_.chance(50)));
        } else if (roll < 15) {  // relative clause, agreeing with the same head
            t.w(e.agent ? "who" : "which");
            if (e.agent) verb(t, r_.pick(source().tr), e, false), object(t);
            else verb(t, r_.pick(t_.in), e, false);
        }
    }
    Entity& choose_subject(bool& pronoun) {
        pronoun = has_prev_ && r_.chance(22);
        if (pronoun) return prev_;
        if (r_.chance(40)) return hero_;
        prev_ = new_entity(r_.chance(45));
        return prev_;
    }

    void predicate(Text& t, const Entity& e, bool pronoun) {
        const int roll = r_.below(100);
        auto be = [&] {
            verb(t, r_.chance(15) ? L_.seem : L_.be, e, pronoun);
            if (r_.chance(25)) t.w(r_.pick(L_.degree));
            t.w(adjective());
        };
        if (e.agent) {
            if (roll < 50) {
                if (r_.chance(15)) t.w(r_.pick(L_.frequency));
                verb(t, r_.pick(source().tr), e, pronoun), object(t);
                if (r_.chance(35)) pp(t);
                if (r_.chance(25)) t.w(r_.pick(L_.manner));
            } else if (roll < 60) {
                t.w(r_.pick(L_.modals)), t.w(r_.pick(source().tr).base), object(t);
            } else if (roll < 70) {
                verb(t, L_.do_, e, pronoun), t.w("not"), t.w(r_.pick(source().tr).base), object(t);
            } else if (roll < 85) {
                verb(t, r_.pick(L_.generic.in), e, pronoun);
                if (r_.chance(40)) t.w(r_.pick(L_.manner));
                if (r_.chance(50)) pp(t);
            } else {
                be();
            }
        } else {
            if (roll < 45) {
                if (r_.chance(15)) t.w(r_.pick(L_.frequency));
                verb(t, r_.pick(t_.in), e, pronoun);
                if (r_.chance(30)) t.w(r_.pick(L_.manner));
                if (r_.chance(40)) pp(t);
            } else if (roll < 85) {
                be();
                if (r_.chance(20)) pp(t);
            } else {
                verb(t, L_.do_, e, pronoun), t.w("not"), t.w(r_.pick(t_.in).base);
            }
        }
    }

    void clause(Text& t) {
        bool pronoun;
        Entity& e = choose_subject(pronoun);
        subject(t, e, pronoun), predicate(t, e, pronoun);
        if (&e != &prev_) prev_ = e;
        has_prev_ = true;
    }

    // At most one draw per expression: the order in which `a + b` or a call's arguments are
    // evaluated is unspecified (g++ and clang differ), and would make the bytes compiler-dependent.
    void time_phrase(Text& t) {
        switch (r_.below(7)) {
            case 0: t.phrase("in the " + pick("morning afternoon evening")); break;
            case 1: t.w(pick("every each")), t.w(pick("day week summer winter")); break;
            case 2: t.phrase("on " + r_.pick(L_.days)); break;
            case 3: t.phrase("in " + r_.pick(L_.months)); break;
            case 4: t.phrase("in " + std::to_string(r_.range(1890, 2024))); break;
            case 5: t.phrase("at " + std::to_string(r_.range(1, 12)) + " o'clock"); break;
            default: t.phrase("for " + std::to_string(r_.range(2, 9)) + " hours"); break;
        }
    }

    // "Does the chef stir the soup?", "Are the boats wooden?" (the auxiliary agrees).
    void question(Text& t) {
        bool pronoun;
        Entity& e = choose_subject(pronoun);
        if (e.agent && r_.chance(70)) {
            verb(t, L_.do_, e, pronoun), subject(t, e, pronoun), t.w(r_.pick(source().tr).base), object(t);
        } else if (!e.agent && r_.chance(40)) {
            verb(t, L_.do_, e, pronoun), subject(t, e, pronoun), t.w(r_.pick(t_.in).base);
        } else {
            verb(t, L_.be, e, pronoun), subject(t, e, pronoun), t.w(adjective());
        }
        t.punct('?');
        if (&e != &prev_) prev_ = e;
        has_prev_ = true;
    }

    // The hero (or a new agent) says a clause, before or after it.
    void quote(Text& t) {
        Entity other;
        Entity& speaker = r_.chance(60) ? hero_ : (other = new_entity(true));
        if (r_.chance(60)) {
            subject(t, speaker, false), verb(t, L_.say, speaker, false), t.punct(','), t.open_quote();
            clause(t), t.punct('.'), t.punct('"');
        } else {
            t.open_quote(), clause(t), t.punct(','), t.punct('"');
            subject(t, speaker, false), verb(t, L_.say, speaker, false);
        }
    }

    // "There is a rusty anchor on the deck." / "There are 3 boats near the shore."
    void there_is(Text& t) {
        Entity e;
        e.noun = &r_.pick(source().things), e.plural = r_.chance(45);
        t.w("there"), verb(t, L_.be, e, false);
        const std::string adj = r_.chance(30) ? adjective() : "";
        const std::string& n = e.noun->form(e.plural);
        if (e.plural) t.w(r_.chance(60) ? std::to_string(r_.range(2, 12)) : pick("some many several"));
        else t.w(article(adj.empty() ? n : adj));
        if (!adj.empty()) t.w(adj);
        t.w(n), pp(t);
    }
};

std::string mlm_document(uint64_t seed) {
    Rng r(seed);
    Writer writer(r, r.pick(lexicon().topics));
    std::string doc;
    for (int i = 0, n = r.range(3, 12); i < n; i++) doc += (i ? " " : "") + writer.sentence();
    return doc;
}

// ---- Sentiment reviews -----------------------------------------------------------------------

// A polar clause, fully decided before it is written; its sign follows from the choices.
struct Polar {
    int form = 0;          // 0 "X is [not] [very] ADJ"   1 "X [never] VERBs"   2 "I [did not] VERB X"
                           // 3 "it is [not] a [very] ADJ ITEM"
    int aspect = -1;       // index into the item's aspects; -1: the item itself ("this film")
    int word = 0;          // index into the adjective / verb table of the word's polarity
    bool positive = true;  // the polar word's own sign
    int negator = -1;      // -1 none, 0 "not" (or "does not", "did not"), 1 "never"
    int intensifier = -1;  // index into kIntensifiers (forms 1 and 2: only "really"/"truly")
    bool we = false, this_item = false;
    int sign() const { return (positive ? 1 : -1) * (negator >= 0 ? -1 : 1); }
};

// Shapes of the main sentence; `deciding()` names the clause that sets the label.
enum Shape { kSingle, kAnd, kBut, kAlthoughFirst, kAlthoughSecond, kHowever };
struct Review {
    int item = 0;
    Shape shape = kSingle;
    int connective = 0;
    Polar a, b;
    std::string aside;  // a neutral sentence, or empty
    bool aside_first = true;
    Polar& deciding() { return shape == kSingle || shape == kAnd || shape == kAlthoughSecond ? a : b; }
    int label() { return deciding().sign() > 0; }
};

Polar draw_polar(Rng& r, const Item& item, int sign) {
    const Lexicon& L = lexicon();
    Polar p;
    const int roll = r.below(100);
    p.form = roll < 45 ? 0 : roll < 65 ? 1 : roll < 90 ? 2 : 3;
    p.aspect = r.chance(80) ? r.below(int(item.aspects.size())) : -1;
    if (r.chance(35)) p.negator = p.form == 3 ? 0 : r.below(2);
    p.positive = (sign > 0) == (p.negator < 0);
    const int n = p.form == 1 ? int(L.acts[p.positive].size())
                : p.form == 2 ? int(L.feelings[p.positive].size()) : int(L.adjectives[p.positive].size());
    p.word = r.below(n);
    if (p.form == 0 || p.form == 3) {  // with a negator only "very": "is not very good"
        if (r.chance(35)) p.intensifier = p.negator >= 0 ? 0 : r.below(int(L.intensifiers.size()));
    }
    else if (p.negator < 0 && r.chance(25)) p.intensifier = 1 + r.below(2);  // "really", "truly"
    p.we = r.chance(30), p.this_item = r.chance(40);
    return p;
}

void write_polar(Text& t, const Polar& p, const Item& item) {
    const Lexicon& L = lexicon();
    const bool pl = p.aspect >= 0 && item.aspects[size_t(p.aspect)].plural;
    auto noun_phrase = [&] {
        t.w(p.aspect >= 0 || !p.this_item ? "the" : "this");
        t.w(p.aspect >= 0 ? item.aspects[size_t(p.aspect)].word : item.name);
    };
    auto intensifier = [&] { if (p.intensifier >= 0) t.w(L.intensifiers[size_t(p.intensifier)]); };
    const char* negator = p.negator == 0 ? "not" : "never";
    if (p.form == 0) {
        noun_phrase(), t.w(L.be.form(pl));
        if (p.negator >= 0) t.w(negator);
        intensifier(), t.w(L.adjectives[p.positive][size_t(p.word)]);
    } else if (p.form == 1) {
        const Verb& v = L.acts[p.positive][size_t(p.word)];
        noun_phrase();
        if (p.negator == 0) {
            t.w(L.do_.form(pl)), t.w("not"), t.w(v.base);
        } else {
            if (p.negator == 1) t.w("never");
            intensifier(), t.w(v.form(pl));
        }
    } else if (p.form == 2) {
        const Verb& v = L.feelings[p.positive][size_t(p.word)];
        t.w(p.we ? "we" : "I");
        if (p.negator == 0) {
            t.w("did"), t.w("not"), t.w(v.base);
        } else {
            if (p.negator == 1) t.w("never");
            intensifier(), t.w(v.past);
        }
        noun_phrase();
    } else {
        t.w(p.this_item ? "this" : "it"), t.w("is");
        if (p.negator >= 0) t.w("not");
        const std::string& adj = L.adjectives[p.positive][size_t(p.word)];
        t.w(article(p.intensifier >= 0 ? L.intensifiers[size_t(p.intensifier)] : adj));
        intensifier(), t.w(adj), t.w(item.name);
    }
}

// A neutral sentence about the item: no polar words, no negators, no contrast connectives.
std::string aside(Rng& r, const Item& item) {
    const Lexicon& L = lexicon();
    const std::string& it = item.name;
    switch (r.below(7)) {
        case 0: return "I " + item.past + " the " + it + " on " + r.pick(L.days) + ".";
        case 1: return "We " + item.past + " it with " + std::to_string(r.range(2, 9)) + " friends.";
        case 2: {
            const std::string relative = r.pick(L.relatives);
            return "My " + relative + " and I " + item.past + " the " + it + " in " + std::to_string(r.range(1995, 2024)) + ".";
        }
        case 3: return "Have you " + item.participle + " this " + it + "?";
        case 4: return "We paid " + std::to_string(r.range(5, 60)) + " dollars for it.";
        case 5: return "I " + item.past + " it last " + r.pick(L.days) + ".";
        default: return "It was my first " + it + " since " + r.pick(L.months) + ".";
    }
}

const char* const kConnectives[][3] = {
    {"", "", ""}, {"and", "and", "and"}, {"but", "yet", "but"},
    {"although", "though", "even though"}, {"although", "though", "even though"}, {"however", "however", "however"}};

Review draw_review(Rng& r, int label) {
    const Lexicon& L = lexicon();
    Review rv;
    rv.item = r.below(int(L.items.size()));
    const Item& item = L.items[size_t(rv.item)];
    const int roll = r.below(100);
    rv.shape = roll < 28 ? kSingle : roll < 40 ? kAnd : roll < 62 ? kBut : roll < 78 ? kAlthoughFirst
             : roll < 90 ? kAlthoughSecond : kHowever;
    rv.connective = r.below(3);
    const int sign = label ? 1 : -1;
    const bool a_decides = rv.shape == kSingle || rv.shape == kAnd || rv.shape == kAlthoughSecond;
    const int other = rv.shape == kAnd ? sign : -sign;  // "and" joins agreeing clauses, the rest contrast
    rv.a = draw_polar(r, item, a_decides ? sign : other);
    rv.b = draw_polar(r, item, a_decides ? other : sign);
    while (rv.b.aspect == rv.a.aspect) rv.b.aspect = r.below(int(item.aspects.size()));  // two subjects
    if (r.chance(40)) rv.aside = aside(r, item), rv.aside_first = r.chance(65);
    return rv;
}

std::string write_review(Review& rv) {
    const Item& item = lexicon().items[size_t(rv.item)];
    Text t;
    const std::string conn = kConnectives[rv.shape][rv.connective];
    auto connective = [&] {
        for (const std::string& w : split(conn, ' ')) t.w(w);
    };
    if (rv.shape == kAlthoughFirst) connective();
    write_polar(t, rv.a, item);
    if (rv.shape == kHowever) t.stop('.'), connective();
    if (rv.shape != kSingle) {
        t.punct(',');
        if (rv.shape != kAlthoughFirst && rv.shape != kHowever) connective();
        write_polar(t, rv.b, item);
    }
    t.punct('.');
    if (rv.aside.empty()) return t.s;
    return rv.aside_first ? rv.aside + " " + t.s : t.s + " " + rv.aside;
}

// `count` labeled reviews from one stream, exactly balanced (each consecutive pair holds both
// labels, in random order); with `avoid`, no text in it is drawn, and none twice.
std::vector<SynthLabeled> reviews(uint64_t seed, int count, const std::unordered_set<std::string>* avoid) {
    Rng r(seed);
    std::vector<SynthLabeled> out;
    std::unordered_set<std::string> seen;
    int coin = 0;
    for (int i = 0; i < count; i++) {
        if (i % 2 == 0) coin = r.below(2);
        const int label = (i % 2) ^ coin;
        for (int attempt = 0;; attempt++) {
            Review rv = draw_review(r, label);
            std::string text = write_review(rv);
            if (avoid && (avoid->count(text) || seen.count(text))) {
                if (attempt == 10000) fail("<synth>", "reviews", "cannot draw enough distinct reviews");
                continue;
            }
            if (avoid) seen.insert(text);
            out.push_back({std::move(text), rv.label()});  // == label, by construction
            break;
        }
    }
    return out;
}

std::unordered_set<std::string> texts(const std::vector<SynthLabeled>& v) {
    std::unordered_set<std::string> s;
    for (const SynthLabeled& x : v) s.insert(x.text);
    return s;
}

}  // namespace

SynthCorpus generate_synth_corpus(const SynthOptions& o) {
    const std::pair<const char*, int> counts[] = {{"mlm_documents", o.mlm_documents},
                                                  {"review_documents", o.review_documents},
                                                  {"transfer_examples", o.transfer_examples},
                                                  {"sentiment_train", o.sentiment_train},
                                                  {"sentiment_dev", o.sentiment_dev}};
    for (const auto& [field, n] : counts)
        if (n < 0) fail("<synth options>", field, "is " + std::to_string(n) + ", must be >= 0");
    lexicon();  // build the tables before the parallel loop

    SynthCorpus c;
    c.mlm_documents.resize(size_t(o.mlm_documents));
    // Each document has its own stream, so the parallel loop gives the same bytes as a serial one.
#pragma omp parallel for schedule(dynamic, 64)
    for (int d = 0; d < o.mlm_documents; d++) c.mlm_documents[size_t(d)] = mlm_document(stream_seed(o.seed, kMlm, uint64_t(d)));

    c.sentiment_train = reviews(stream_seed(o.seed, kTrain), o.sentiment_train, nullptr);
    const std::unordered_set<std::string> train = texts(c.sentiment_train);
    c.sentiment_dev = reviews(stream_seed(o.seed, kDev), o.sentiment_dev, &train);
    const std::unordered_set<std::string> dev = texts(c.sentiment_dev);
    for (SynthLabeled& x : reviews(stream_seed(o.seed, kTransfer), o.transfer_examples, &dev))
        c.transfer.push_back(std::move(x.text));
    // Review documents: pretraining text must hold the words of the task (else their embeddings
    // are trained only to be unlikely, and collapse together; docs/decisions.md). Each document
    // is 3-8 reviews from its own stream, skipping any that is a dev example.
    for (int d = 0; d < o.review_documents; d++) {
        Rng r(stream_seed(o.seed, kReviewDocuments, uint64_t(d)));
        std::string doc;
        for (int i = 0, n = r.range(3, 8); i < n;) {
            Review rv = draw_review(r, r.below(2));
            const std::string text = write_review(rv);
            if (dev.count(text)) continue;
            doc += (i++ ? " " : "") + text;
        }
        c.review_documents.push_back(std::move(doc));
    }
    return c;
}

SynthWord synth_word_class(const std::string& word) {
    const auto& classes = lexicon().classes;
    const auto it = classes.find(word);
    return it == classes.end() ? SynthWord::Other : it->second;
}

std::vector<std::string> synth_lexicon_conflicts() { return lexicon().conflicts; }

std::string synth_topic_of(const std::string& word) {
    const auto& topic_of = lexicon().topic_of;
    const auto it = topic_of.find(word);
    return it == topic_of.end() ? "" : it->second;
}

int synth_polarity(const std::string& word) {
    const auto& polarity = lexicon().polarity;
    const auto it = polarity.find(word);
    return it == polarity.end() ? 0 : it->second;
}

std::vector<SynthSentence> synth_debug_sentences(uint64_t seed, int count) {
    Rng r(stream_seed(seed, kDebug));
    std::vector<SynthSentence> out;
    while (int(out.size()) < count) {
        Writer writer(r, r.pick(lexicon().topics));  // five sentences a "document"
        for (int i = 0; i < 5 && int(out.size()) < count; i++) {
            std::string text = writer.sentence();
            out.push_back({std::move(text), writer.agreements});
        }
    }
    return out;
}

SynthNegationPair synth_negation_pair(uint64_t seed) {
    Rng r(stream_seed(seed, kNegation));
    Review rv = draw_review(r, r.below(2));
    if (rv.shape == kAnd) rv.shape = kSingle;  // "and" joins clauses of one sign; keep it that way
    Polar& d = rv.deciding();
    if (d.form == 1 || d.form == 2) d.intensifier = -1;  // "did not really enjoy" is a different claim
    d.negator = -1;
    SynthNegationPair pair;
    pair.plain = {write_review(rv), rv.label()};
    d.negator = d.form == 3 ? 0 : r.below(2);
    pair.negated = {write_review(rv), rv.label()};
    return pair;
}

}  // namespace wr
