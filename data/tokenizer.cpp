// data/tokenizer.cpp: the BERT WordPiece tokenizer of tokenizer.h. It gives the same ids as Hugging
// Face tokenizers' BertWordPieceTokenizer(lowercase=True), i.e. BertNormalizer(clean_text,
// handle_chinese_chars, strip_accents, lowercase) + BertPreTokenizer + WordPiece("[UNK]", "##",
// 100 characters a word at most), checked line by line against it in tests/test_tokenizer.cpp.
//
// How the work is laid out, so that encoding is fast:
//   * Normalization is a per-character pipeline run in one pass over the UTF-8 bytes. ASCII bytes
//     (nearly all of English text) take a table-driven fast path; every other character goes
//     through utf8proc for its category, canonical decomposition (NFD) and lowercase form.
//   * The normalized characters stream straight into a WordSplitter (the pre-tokenizer), which
//     gathers the current word in a reused buffer and hands each finished word to a callback:
//     WordPiece when encoding, a vector of strings for bert_basic_tokenize. The normalized text
//     is never materialized and no allocation happens per character or per word.
//   * WordPiece looks pieces up in two open-addressing hash tables keyed by the piece's bytes,
//     by pointer and length: one for word-initial pieces, one for "##" continuations stored
//     without their prefix, so "##" + piece is never built.
//
// Where this can differ from HF (none of it occurs in the test corpora):
//   * Unicode versions. utf8proc 2.8 implements Unicode 15; HF's character categories come from
//     the unicode_categories crate, whose tables are older. A character assigned or
//     re-categorized since then (a recent punctuation mark, format character or nonspacing mark)
//     can be classified differently. Unassigned code points (Cn) are kept, as HF keeps them:
//     that crate's tables have no Cn entries, so its is_other() never sees them.
//   * Invalid UTF-8: each bad byte is read as U+FFFD and dropped like HF drops U+FFFD (HF cannot
//     be given invalid UTF-8 at all; Python decoding with errors="replace" gives the same ids).
#include "data/tokenizer.h"

#include <omp.h>
#include <utf8proc.h>

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "common/utf8.h"
#include "common/util.h"

namespace wr {

namespace {

constexpr size_t kMaxWordChars = 100;  // WordPiece's max_input_chars_per_word: longer words are [UNK]
const char* const kSpecialTokens[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};

// ---------------------------------------------------------------------------------------------
// Character classes

// What the normalizer does with an ASCII byte, and how the pre-tokenizer sees an ASCII character.
enum AsciiClass : uint8_t {
    kWordChar,  // letter or digit: part of a word
    kSpace,     // whitespace: ends a word
    kPunct,     // punctuation (all printable ASCII that is not alphanumeric): a word of its own
    kControl,   // control character: dropped by the normalizer (\t \n \r excepted: they are kSpace)
};

struct AsciiTables {
    AsciiClass normalize[128];  // BertNormalizer: \x0b \x0c are controls, removed before the whitespace map
    AsciiClass split[128];      // BertPreTokenizer on already-normalized text: Rust's is_whitespace
    char lower[128];
    bool alnum[256];            // ASCII letter or digit (false for every byte >= 0x80)
};

AsciiTables make_ascii_tables() {
    AsciiTables t{};
    for (int c = 0; c < 128; c++) {
        const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        AsciiClass cls = kWordChar;
        if (c == '\t' || c == '\n' || c == '\r' || c == ' ') cls = kSpace;
        else if (c < 0x20 || c == 0x7f) cls = kControl;
        else if (!alnum) cls = kPunct;
        t.normalize[c] = cls;
        // The pre-tokenizer splits at Rust's char::is_whitespace (\t..\r and ' ') and keeps
        // control characters inside words (the normalizer has removed them already).
        t.split[c] = (c >= '\t' && c <= '\r') ? kSpace : cls == kControl ? kWordChar : cls;
        t.lower[c] = (c >= 'A' && c <= 'Z') ? char(c + 32) : char(c);
        t.alnum[c] = alnum;
    }
    return t;
}
const AsciiTables kAscii = make_ascii_tables();

utf8proc_category_t category(uint32_t c) { return utf8proc_category((utf8proc_int32_t)c); }

// HF's is_control: Unicode "Other" (Cc Cf Co Cs) except \t \n \r. Not Cn: see the top comment.
bool is_control(uint32_t c) {
    if (c == '\t' || c == '\n' || c == '\r') return false;
    const utf8proc_category_t cat = category(c);
    return cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF || cat == UTF8PROC_CATEGORY_CO ||
           cat == UTF8PROC_CATEGORY_CS;
}

// Rust's char::is_whitespace, the Unicode White_Space property: \t..\r, U+0085 and the Z*
// categories (Zs Zl Zp hold exactly the other White_Space characters).
bool is_whitespace(uint32_t c) {
    if ((c >= '\t' && c <= '\r') || c == ' ' || c == 0x85) return true;
    const utf8proc_category_t cat = category(c);
    return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

// BertPreTokenizer's punctuation: ASCII punctuation (which includes symbols such as $ + < = > ^ ` | ~)
// or any Unicode punctuation category P*.
bool is_punct(uint32_t c) {
    if (c < 128) return kAscii.normalize[c] == kPunct;
    const utf8proc_category_t cat = category(c);
    return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

// BertNormalizer's "Chinese character": the CJK Unified Ideographs blocks and their extensions,
// and the CJK Compatibility Ideographs (the ranges of HF's and Google's BERT code).
bool is_chinese(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// ---------------------------------------------------------------------------------------------
// UTF-8

// The character at p (*p >= 0x80), decoded by common/utf8.h; an invalid sequence is U+FFFD.
uint32_t decode_utf8(const unsigned char*& p, const unsigned char* end) {
    uint32_t c;
    return wr::decode_utf8(p, end, c) ? c : 0xFFFD;
}

// Writes c as UTF-8 to out (room for 4 bytes); returns the byte count.
size_t encode_utf8(uint32_t c, char* out) {
    if (c < 0x80) return out[0] = (char)c, 1;
    if (c < 0x800) return out[0] = char(0xC0 | (c >> 6)), out[1] = char(0x80 | (c & 0x3F)), 2;
    if (c < 0x10000) {
        out[0] = char(0xE0 | (c >> 12)), out[1] = char(0x80 | ((c >> 6) & 0x3F)), out[2] = char(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = char(0xF0 | (c >> 18)), out[1] = char(0x80 | ((c >> 12) & 0x3F));
    out[2] = char(0x80 | ((c >> 6) & 0x3F)), out[3] = char(0x80 | (c & 0x3F));
    return 4;
}

bool is_continuation_byte(char b) { return ((unsigned char)b & 0xC0) == 0x80; }

bool valid_utf8(std::string_view s) { return invalid_utf8_bytes(s) == 0; }

// ---------------------------------------------------------------------------------------------
// Normalization (BertNormalizer), streamed into a sink
//
// A sink takes normalized characters: put_ascii(c) for an ASCII character, put(c) for any code
// point, put_alnum_run(s, n) for n ASCII letters and digits still to be lowercased. Per input
// character, in HF's order:
//   1. clean_text: drop U+0000, U+FFFD and control characters; whitespace becomes ' '.
//   2. handle_chinese_chars: a CJK ideograph becomes ' ' ideograph ' '.
//   3. strip_accents: canonical decomposition (NFD), then drop nonspacing marks (Mn).
//   4. lowercase (Rust's char::to_lowercase).
// Steps 1, 2 and 4 are per character; NFD also reorders each run of combining marks by their
// combining class (canonical ordering), which the Normalizer below does with a small buffer.

template <class Sink>
class Normalizer {
  public:
    explicit Normalizer(Sink& sink) : sink_(sink) {}

    void run(std::string_view text) {
        const auto* p = reinterpret_cast<const unsigned char*>(text.data());
        const auto* end = p + text.size();
        while (p < end) {
            const unsigned char b = *p;
            if (b < 0x80) {  // ASCII fast path: starters that NFD leaves alone
                const AsciiClass cls = kAscii.normalize[b];
                if (cls == kControl) {  // U+0000 is a control too
                    p++;
                    continue;
                }
                if (!marks_.empty()) flush_marks();
                if (cls == kWordChar) {  // a run of letters and digits, handed over in one call
                    const unsigned char* q = p + 1;
                    while (q < end && kAscii.alnum[*q]) q++;
                    sink_.put_alnum_run(reinterpret_cast<const char*>(p), size_t(q - p));
                    p = q;
                } else {
                    sink_.put_ascii(cls == kSpace ? ' ' : char(b));
                    p++;
                }
                continue;
            }
            uint32_t c = decode_utf8(p, end);
            if (c == 0xFFFD || is_control(c)) continue;  // step 1
            if (is_whitespace(c)) c = ' ';
            if (is_chinese(c)) {  // step 2
                decompose(' ');
                decompose(c);
                decompose(' ');
            } else {
                decompose(c);
            }
        }
        flush_marks();
    }

  private:
    // Step 3 for one character, then step 4 for what survives.
    void decompose(uint32_t c) {
        utf8proc_int32_t parts[32];
        int last_boundclass = 0;
        const utf8proc_ssize_t n = utf8proc_decompose_char((utf8proc_int32_t)c, parts, 32, UTF8PROC_DECOMPOSE, &last_boundclass);
        for (utf8proc_ssize_t i = 0; i < std::min<utf8proc_ssize_t>(n, 32); i++) {
            const utf8proc_property_t* prop = utf8proc_get_property(parts[i]);
            const uint8_t ccc = (uint8_t)prop->combining_class;
            // A starter (class 0) ends the run of combining marks before it. Nonspacing marks are
            // dropped; dropping before or after the stable sort gives the same order.
            if (ccc == 0) flush_marks();
            if (prop->category == UTF8PROC_CATEGORY_MN) continue;
            if (ccc == 0) lower((uint32_t)parts[i]);
            else marks_.push_back({ccc, (uint32_t)parts[i]});  // rare: spacing marks with a class
        }
    }

    // Canonical ordering of the pending combining marks (a stable sort by class), then step 4.
    void flush_marks() {
        if (marks_.empty()) return;
        std::stable_sort(marks_.begin(), marks_.end(), [](const Mark& a, const Mark& b) { return a.ccc < b.ccc; });
        for (const Mark& m : marks_) lower(m.c);
        marks_.clear();
    }

    // Step 4. utf8proc_tolower is Unicode's simple (one character) lowercase mapping; Rust's
    // to_lowercase uses the full mapping, which differs only for U+0130 (I with dot above ->
    // "i" + U+0307). NFD has already decomposed U+0130, so this is for completeness.
    void lower(uint32_t c) {
        if (c == 0x130) {
            sink_.put('i');
            sink_.put(0x307);
        } else {
            sink_.put((uint32_t)utf8proc_tolower((utf8proc_int32_t)c));
        }
    }

    struct Mark {
        uint8_t ccc;
        uint32_t c;
    };
    Sink& sink_;
    std::vector<Mark> marks_;  // allocates only if a spacing combining mark ever shows up
};

// Collects normalized text as UTF-8 (bert_normalize).
struct StringSink {
    std::string& out;
    void put_ascii(char c) { out.push_back(c); }
    void put_alnum_run(const char* s, size_t n) {
        for (size_t i = 0; i < n; i++) out.push_back(kAscii.lower[(unsigned char)s[i]]);
    }
    void put(uint32_t c) {
        char buf[4];
        out.append(buf, encode_utf8(c, buf));
    }
};

// ---------------------------------------------------------------------------------------------
// Pre-tokenization (BertPreTokenizer): split at whitespace (dropped), then isolate every
// punctuation character. A sink for the Normalizer, or fed directly with normalized text.
// on_word(word, chars) receives each word and its length in characters; at most `keep_chars`
// characters of a word are kept in the buffer (WordPiece only needs to know that a word is too
// long), so the buffer stays small whatever the input.

template <class OnWord>
class WordSplitter {
  public:
    WordSplitter(OnWord& on_word, size_t keep_chars) : on_word_(on_word), keep_chars_(keep_chars), buf_(128, '\0') {}

    void put_ascii(char c) {
        switch (kAscii.split[(unsigned char)c]) {
            case kSpace: end_word(); break;
            case kPunct:
                end_word();
                on_word_(std::string_view(&c, 1), 1);
                break;
            default:
                if (chars_++ < keep_chars_) *room(1) = c, len_++;
        }
    }

    // ASCII letters and digits (lowercased here): the hot path for English text.
    void put_alnum_run(const char* s, size_t n) {
        const size_t keep = chars_ < keep_chars_ ? std::min(n, keep_chars_ - chars_) : 0;
        char* out = room(keep);
        for (size_t i = 0; i < keep; i++) out[i] = kAscii.lower[(unsigned char)s[i]];
        len_ += keep;
        chars_ += n;
    }

    void put(uint32_t c) {
        if (c < 0x80) return put_ascii((char)c);
        char utf8[4];
        const size_t n = encode_utf8(c, utf8);
        if (is_whitespace(c)) {
            end_word();
        } else if (is_punct(c)) {
            end_word();
            on_word_(std::string_view(utf8, n), 1);
        } else if (chars_++ < keep_chars_) {
            std::memcpy(room(n), utf8, n);
            len_ += n;
        }
    }

    void end_word() {
        if (chars_ == 0) return;
        on_word_(std::string_view(buf_.data(), len_), chars_);
        len_ = chars_ = 0;
    }

  private:
    // Where the next n bytes of the word go; grows the buffer (rarely: only for long words).
    char* room(size_t n) {
        if (len_ + n > buf_.size()) buf_.resize(std::max(2 * buf_.size(), len_ + n));
        return &buf_[len_];
    }

    OnWord& on_word_;
    size_t keep_chars_;
    std::string buf_;  // the current word is buf_[0, len_)
    size_t len_ = 0;
    size_t chars_ = 0;  // its length in characters (may exceed what is kept)
};

// Feeds already-normalized UTF-8 text to a WordSplitter (bert_pre_tokenize).
template <class Splitter>
void split_normalized(std::string_view text, Splitter& splitter) {
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const auto* end = p + text.size();
    while (p < end) {
        if (*p < 0x80) splitter.put_ascii((char)*p++);
        else splitter.put(decode_utf8(p, end));
    }
    splitter.end_word();
}

// ---------------------------------------------------------------------------------------------
// Piece-table keys: the first 8 bytes as an integer (zero-padded), and a hash of the whole key.

uint64_t load_head(const char* s, size_t n) {
    const auto* p = reinterpret_cast<const unsigned char*>(s);
    uint64_t v = 0;
    if (n >= 8) {
        std::memcpy(&v, p, 8);
    } else if (n >= 4) {  // two overlapping 4-byte loads
        uint32_t lo, hi;
        std::memcpy(&lo, p, 4);
        std::memcpy(&hi, p + n - 4, 4);
        v = lo | (uint64_t(hi) << (8 * (n - 4)));
    } else if (n > 0) {
        v = p[0] | (uint64_t(p[n / 2]) << (8 * (n / 2))) | (uint64_t(p[n - 1]) << (8 * (n - 1)));
    }
    return v;
}

uint64_t hash_key(uint64_t head, const char* s, size_t n) {
    uint64_t h = (head ^ (n * 0x9E3779B97F4A7C15ULL)) * 0xFF51AFD7ED558CCDULL;
    for (size_t i = 8; i < n; i += 8) {  // the rest, 8 bytes at a time
        h ^= h >> 32;
        h = (h ^ load_head(s + i, std::min<size_t>(8, n - i))) * 0xC4CEB9FE1A85EC53ULL;
    }
    return h ^ (h >> 29);
}

// HF's WordPiece decoder clean-up (tokenizers decoders/wordpiece.rs `cleanup`), applied to each
// token after its joining space was added: remove the space before punctuation and contractions.
void cleanup_tokenization_spaces(std::string& s) {
    static const std::pair<std::string_view, std::string_view> kReplacements[] = {
        {" .", "."},     {" ?", "?"},     {" !", "!"},           {" ,", ","},     {" ' ", "'"},     {" n't", "n't"},
        {" 'm", "'m"},   {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
    };
    if (s.find(' ') == std::string::npos) return;
    for (const auto& [from, to] : kReplacements) {
        for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
            s.replace(pos, from.size(), to);
    }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Free functions: normalization and pre-tokenization on their own

std::string bert_normalize(std::string_view text) {
    std::string out;
    out.reserve(text.size() + text.size() / 8);
    StringSink sink{out};
    Normalizer<StringSink>(sink).run(text);
    return out;
}

void bert_pre_tokenize(std::string_view normalized, std::vector<std::string>& words) {
    words.clear();
    auto collect = [&](std::string_view w, size_t) { words.emplace_back(w); };
    WordSplitter<decltype(collect)> splitter(collect, SIZE_MAX);
    split_normalized(normalized, splitter);
}

std::vector<std::string> bert_basic_tokenize(std::string_view text) {
    std::vector<std::string> words;
    auto collect = [&](std::string_view w, size_t) { words.emplace_back(w); };
    WordSplitter<decltype(collect)> splitter(collect, SIZE_MAX);
    Normalizer<decltype(splitter)>(splitter).run(text);
    splitter.end_word();
    return words;
}

// ---------------------------------------------------------------------------------------------
// PieceTable: linear probing in a power-of-two table kept at most 3/4 full. A key of up to 8
// bytes (most pieces and most English words) is compared inside its slot, with no second memory
// access; only longer keys compare their remaining bytes in bytes_.

void Tokenizer::PieceTable::build(const std::vector<std::pair<std::string_view, int32_t>>& entries) {
    size_t capacity = 16;
    while (capacity * 3 < 4 * entries.size()) capacity *= 2;
    slots_.assign(capacity, Slot{});
    tails_.assign(capacity, 0);
    bytes_.clear();
    max_len_ = 0;
    for (const auto& [key, id] : entries) {
        const uint64_t head = load_head(key.data(), key.size());
        size_t i = hash_key(head, key.data(), key.size()) & (capacity - 1);
        while (slots_[i].id >= 0) i = (i + 1) & (capacity - 1);
        slots_[i] = Slot{head, id, (uint32_t)key.size()};
        tails_[i] = (uint32_t)bytes_.size();
        if (key.size() > 8) bytes_.append(key.substr(8));
        max_len_ = std::max(max_len_, key.size());
    }
}

int32_t Tokenizer::PieceTable::find(const char* s, size_t n) const {
    if (n > max_len_ || slots_.empty()) return -1;
    const uint64_t head = load_head(s, n);
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash_key(head, s, n) & mask;; i = (i + 1) & mask) {
        const Slot& slot = slots_[i];
        if (slot.id < 0) return -1;
        if (slot.head == head && slot.len == n && (n <= 8 || std::memcmp(bytes_.data() + tails_[i], s + 8, n - 8) == 0))
            return slot.id;
    }
}

// ---------------------------------------------------------------------------------------------
// Tokenizer: vocabulary

Tokenizer::Tokenizer(std::vector<std::string> tokens, std::string source)
    : tokens_(std::move(tokens)), source_(std::move(source)) {
    if (tokens_.empty()) fail(source_, "tokens", "the vocabulary is empty");
    // Check every token, split the vocabulary into word-initial and "##" continuation pieces.
    std::unordered_map<std::string_view, int32_t> seen;
    seen.reserve(tokens_.size());
    std::vector<std::pair<std::string_view, int32_t>> starts, conts;
    for (int32_t id = 0; id < (int32_t)tokens_.size(); id++) {
        const std::string& t = tokens_[id];
        const std::string line = "line " + std::to_string(id + 1);
        if (t.empty()) fail(source_, line, "empty token");
        if (!valid_utf8(t)) fail(source_, line, "token is not valid UTF-8");
        const auto [it, inserted] = seen.emplace(t, id);
        if (!inserted)
            fail(source_, line, "duplicate token '" + t + "' (first on line " + std::to_string(it->second + 1) + ")");
        if (t.size() > 2 && t.compare(0, 2, "##") == 0) conts.emplace_back(std::string_view(t).substr(2), id);
        else starts.emplace_back(t, id);
    }
    starts_.build(starts);
    conts_.build(conts);
    // The special tokens are found by name, wherever the vocabulary puts them.
    int* const ids[] = {&pad_id, &unk_id, &cls_id, &sep_id, &mask_id};
    for (int k = 0; k < 5; k++) {
        *ids[k] = id_of(kSpecialTokens[k]);
        if (*ids[k] < 0)
            fail(source_, kSpecialTokens[k], "special token missing from the vocabulary (BERT needs [PAD] [UNK] [CLS] [SEP] [MASK])");
    }
    fingerprint_ = vocab_fingerprint(tokens_);
}

Tokenizer Tokenizer::load(const std::string& vocab_path) {
    const std::string bytes = read_file(vocab_path);  // names the file if it cannot be read
    std::vector<std::string> tokens;
    for (size_t pos = 0; pos < bytes.size();) {
        size_t nl = bytes.find('\n', pos);
        if (nl == std::string::npos) nl = bytes.size();
        size_t len = nl - pos;
        if (len > 0 && bytes[pos + len - 1] == '\r') len--;  // Windows line ends
        tokens.emplace_back(bytes, pos, len);
        pos = nl + 1;
    }
    return Tokenizer(std::move(tokens), vocab_path);
}

int Tokenizer::id_of(std::string_view token) const {
    if (token.size() > 2 && token.substr(0, 2) == "##") return conts_.find(token.data() + 2, token.size() - 2);
    return starts_.find(token.data(), token.size());
}

bool Tokenizer::is_special(int32_t id) const {
    return id == pad_id || id == unk_id || id == cls_id || id == sep_id || id == mask_id;
}

// ---------------------------------------------------------------------------------------------
// Tokenizer: encoding

// WordPiece on one pre-tokenized word: the whole word if it is a piece (the common case), else
// greedy longest-match-first from the left, continuations looked up without their "##". If some
// position cannot be matched, the whole word is [UNK].
void Tokenizer::wordpiece(std::string_view word, std::vector<int32_t>& out) const {
    int32_t id = starts_.find(word.data(), word.size());
    if (id >= 0) {
        out.push_back(id);
        return;
    }
    const size_t first = out.size();
    for (size_t start = 0; start < word.size();) {
        const PieceTable& table = start == 0 ? starts_ : conts_;
        // Longest candidate first; the whole word was tried above. Pieces end on character boundaries.
        size_t end = std::min(word.size() - (start == 0 ? 1 : 0), start + table.max_len());
        id = -1;
        for (; end > start; end--) {
            if (end < word.size() && is_continuation_byte(word[end])) continue;
            if ((id = table.find(word.data() + start, end - start)) >= 0) break;
        }
        if (id < 0) {
            out.resize(first);
            out.push_back(unk_id);
            return;
        }
        out.push_back(id);
        start = end;
    }
}

// Normalize, pre-tokenize and WordPiece a text that holds no special token.
void Tokenizer::encode_segment(std::string_view text, std::vector<int32_t>& out) const {
    auto on_word = [&](std::string_view word, size_t chars) {
        if (chars > kMaxWordChars) out.push_back(unk_id);
        else wordpiece(word, out);
    };
    WordSplitter<decltype(on_word)> splitter(on_word, kMaxWordChars + 1);
    Normalizer<decltype(splitter)>(splitter).run(text);
    splitter.end_word();
}

void Tokenizer::encode_words(std::string_view text, std::vector<int32_t>& out) const {
    // HF registers the special tokens as "added tokens": they are cut out of the raw text before
    // normalization (exact, case-sensitive match), and the pieces between them are encoded apart.
    size_t segment = 0;
    for (size_t pos = text.find('['); pos != std::string_view::npos; pos = text.find('[', pos)) {
        int32_t special = -1;
        size_t len = 0;
        for (const char* name : kSpecialTokens) {
            len = std::strlen(name);
            if (text.compare(pos, len, name) == 0) {
                special = id_of(name);
                break;
            }
        }
        if (special < 0) {
            pos++;
            continue;
        }
        encode_segment(text.substr(segment, pos - segment), out);
        out.push_back(special);
        pos += len;
        segment = pos;
    }
    encode_segment(text.substr(segment), out);
}

std::vector<int32_t> Tokenizer::encode_words(std::string_view text) const {
    std::vector<int32_t> ids;
    encode_words(text, ids);
    return ids;
}

Encoding Tokenizer::encode(std::string_view a, int max_len) const {
    if (max_len < 2) fail("<encode>", "max_len", "is " + std::to_string(max_len) + ", must be at least 2");
    Encoding e;
    e.ids.push_back(cls_id);
    encode_words(a, e.ids);
    if ((int)e.ids.size() > max_len - 1) e.ids.resize(max_len - 1);
    e.ids.push_back(sep_id);
    return e;
}

Encoding Tokenizer::encode_pair(std::string_view a, std::string_view b, int max_len) const {
    if (max_len < 3) fail("<encode_pair>", "max_len", "is " + std::to_string(max_len) + ", must be at least 3");
    std::vector<int32_t> wa = encode_words(a), wb = encode_words(b);
    // HF's longest_first truncation (tokenizers utils/truncation.rs) of the room left after the
    // three special tokens: if the shorter sequence fits in half the room it is kept whole and the
    // longer one gets the rest; otherwise both get half, the odd token going to the longer one
    // (to b on a tie).
    const size_t room = (size_t)max_len - 3;
    if (wa.size() + wb.size() > room) {
        const bool swap = wa.size() > wb.size();
        size_t n1 = std::min(wa.size(), wb.size()), n2 = std::max(wa.size(), wb.size());
        n2 = n1 > room ? n1 : std::max(n1, room - n1);
        if (n1 + n2 > room) {
            n1 = room / 2;
            n2 = n1 + room % 2;
        }
        if (swap) std::swap(n1, n2);
        wa.resize(std::min(wa.size(), n1));
        wb.resize(std::min(wb.size(), n2));
    }
    Encoding e;
    e.ids.reserve(wa.size() + wb.size() + 3);
    e.ids.push_back(cls_id);
    e.ids.insert(e.ids.end(), wa.begin(), wa.end());
    e.ids.push_back(sep_id);
    e.second_start = (int32_t)e.ids.size();
    e.ids.insert(e.ids.end(), wb.begin(), wb.end());
    e.ids.push_back(sep_id);
    return e;
}

std::vector<std::vector<int32_t>> Tokenizer::encode_batch(const std::vector<std::string>& texts, int threads) const {
    std::vector<std::vector<int32_t>> out(texts.size());
    const int nt = threads > 0 ? threads : omp_get_max_threads();
#pragma omp parallel for num_threads(nt) schedule(dynamic, 64)
    for (int64_t i = 0; i < (int64_t)texts.size(); i++) encode_words(texts[i], out[i]);
    return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding, as HF's WordPiece decoder: every token but the first gets a joining space unless it
// is a "##" continuation (whose prefix is removed instead), then the clean-up per token.

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
    std::string text, piece;
    bool first = true;
    for (const int32_t id : ids) {
        if (id < 0 || id >= vocab_size()) continue;  // HF skips ids it has no token for
        if (skip_special && is_special(id)) continue;
        const std::string& token = tokens_[id];
        if (first) piece = token;
        else if (token.compare(0, 2, "##") == 0) piece.assign(token, 2);
        else piece.assign(" ").append(token);
        first = false;
        cleanup_tokenization_spaces(piece);
        text += piece;
    }
    return text;
}

}  // namespace wr
