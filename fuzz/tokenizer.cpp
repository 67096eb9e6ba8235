// fuzz/tokenizer.cpp: fuzz target of the WordPiece tokenizer (data/tokenizer.cpp) on any text,
// with a small fixed vocabulary (whole words, "##" continuations, single characters, CJK, emoji).
// Input: the first byte sets max_len, the rest is the text; a tab splits it into a sentence pair.
// Every path is checked against what the model relies on: ids in the vocabulary, [CLS] first,
// [SEP] last, at most max_len tokens, truncation keeping a prefix, batch equal to one by one.
#include "fuzz/fuzz.h"

namespace {

using namespace wr;

const Tokenizer& vocabulary() {
    static const Tokenizer vocab = [] {
        std::vector<std::string> tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
        for (char c = 'a'; c <= 'z'; c++) {
            tokens.push_back(std::string(1, c));
            tokens.push_back("##" + std::string(1, c));
        }
        for (char c = '0'; c <= '9'; c++) tokens.push_back(std::string(1, c));
        for (const char* t : {"!", "\"", "#", "$", "%", "&", "'", "(", ")", "*", "+", ",", "-", ".", "/", ":", ";", "<", "=", ">", "?",
                              "@", "[", "\\", "]", "^", "_", "`", "{", "|", "}", "~", "the", "quick", "brown", "fox", "un", "##aff",
                              "##able", "play", "##ing", "cafe", "naive", "##\xe6\x96\x87", "\xe4\xb8\xad", "\xe6\x96\x87",
                              "\xf0\x9f\x98\x80", "\xc2\xbf", "##\xc3\x9f", "stra", "##\xc3\x9f\x65"})
            tokens.push_back(t);
        return Tokenizer(std::move(tokens), "<fuzz vocabulary>");
    }();
    return vocab;
}

void check_ids(const std::vector<int32_t>& ids, const Tokenizer& vocab) {
    for (int32_t id : ids) FUZZ_CHECK(id >= 0 && id < vocab.vocab_size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const Tokenizer& vocab = vocabulary();
    const int max_len = 3 + data[0];
    const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
    fuzz::accepts([&] {
        bert_basic_tokenize(text);
        const std::vector<int32_t> words = vocab.encode_words(text);
        check_ids(words, vocab);
        vocab.decode(words, false);

        const Encoding one = vocab.encode(text, max_len);
        check_ids(one.ids, vocab);
        const size_t kept = std::min(words.size(), (size_t)max_len - 2);
        FUZZ_CHECK(one.ids.size() == kept + 2 && one.ids.front() == vocab.cls_id && one.ids.back() == vocab.sep_id);
        FUZZ_CHECK(std::equal(words.begin(), words.begin() + kept, one.ids.begin() + 1));
        FUZZ_CHECK(one.second_start == 0);

        const size_t tab = text.find('\t');
        if (tab != std::string::npos) {
            const std::string_view a = std::string_view(text).substr(0, tab), b = std::string_view(text).substr(tab + 1);
            const Encoding pair = vocab.encode_pair(a, b, max_len);
            check_ids(pair.ids, vocab);
            const int n = (int)pair.ids.size();
            FUZZ_CHECK(n >= 3 && n <= max_len && pair.ids.front() == vocab.cls_id && pair.ids.back() == vocab.sep_id);
            FUZZ_CHECK(pair.second_start >= 2 && pair.second_start <= n - 1 && pair.ids[pair.second_start - 1] == vocab.sep_id);
            vocab.decode(pair.ids, true);
        }

        const auto batch = vocab.encode_batch({text, text}, 1);
        FUZZ_CHECK(batch.size() == 2 && batch[0] == words && batch[1] == words);
    });
    return 0;
}
