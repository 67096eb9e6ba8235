// fuzz/vocab.cpp: fuzz target of the vocabulary loader (Tokenizer::load, data/tokenizer.cpp): the
// input is a vocab.txt. An accepted vocabulary must find every token at its own id and encode and
// decode a few texts (special tokens, accents, CJK, a long word, invalid UTF-8) into ids it has.
#include "fuzz/fuzz.h"

namespace {

using namespace wr;

const char* const kTexts[] = {
    "[CLS] The quick brown fox, isn't it? [SEP] [MASK]ed [PAD][UNK]",
    "Caf\xc3\xa9 na\xc3\xafve \xe4\xb8\xad\xe6\x96\x87 emoji \xf0\x9f\x98\x80 tab\tnew\nline",
    "unaffable playing ##ing ## # [ [CLS",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "bad \xff\xfe utf8 \xc3",
};

void load_vocab(const std::string& bytes) {
    const std::string path = fuzz::input_file("vocab.txt", bytes);
    fuzz::accepts([&] {
        const Tokenizer vocab = Tokenizer::load(path);
        const int n = vocab.vocab_size();
        FUZZ_CHECK(n >= 5);
        for (int id = 0; id < n; id++) FUZZ_CHECK(vocab.id_of(vocab.token(id)) == id);
        for (int id : {vocab.pad_id, vocab.unk_id, vocab.cls_id, vocab.sep_id, vocab.mask_id}) FUZZ_CHECK(id >= 0 && id < n);
        for (const char* text : kTexts) {
            const std::vector<int32_t> words = vocab.encode_words(text);
            for (int32_t id : words) FUZZ_CHECK(id >= 0 && id < n);
            const Encoding pair = vocab.encode_pair(text, kTexts[0], 16);
            FUZZ_CHECK(pair.ids.size() <= 16 && pair.ids.front() == vocab.cls_id && pair.ids.back() == vocab.sep_id);
            vocab.decode(words, false);
            vocab.decode(pair.ids, true);
        }
    });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    load_vocab({reinterpret_cast<const char*>(data), size});
    return 0;
}
