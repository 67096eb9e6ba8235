#!/usr/bin/env python3
r"""dev/vocab_fixture.py: makes the fixture of tests/test_vocab_trainer.cpp.

The test trains a small WordPiece vocabulary itself and checks it against this fixture:
  tests/fixtures/vocab_trainer/vocab.txt     the vocabulary our trainer made (4000 tokens)
  tests/fixtures/vocab_trainer/expected.tsv  how Hugging Face's BertWordPieceTokenizer, loading
                                             that vocab.txt, tokenizes ~1,500 held-out lines
So the fixture proves two things: training is deterministic (the test retrains and must get
vocab.txt again, token for token), and the vocabulary is usable by HF unchanged (our Tokenizer
and HF give the same ids on text the trainer never saw).

The training side is C++, not Python (HF's own trainer breaks ties differently, so it would not
give the same vocabulary). To regenerate, from the repository root:

  make build/libwellread.a
  g++ -O3 -march=native -std=c++17 -fopenmp -I. dev/train_vocab_main.cpp build/libwellread.a \
      -o build/train_vocab -lutf8proc -lz -fopenmp
  D=../shared/data
  build/train_vocab --vocab-size 4000 --min-frequency 2 --limit-alphabet 1000 \
      --out build/vocab_fixture.txt \
      $D/wikipedia/enwiki_train.txt.gz:5000 $D/gutenberg/train.txt.gz:5000 $D/imdb/unsup.txt.gz:1500
  python3 dev/vocab_fixture.py build/vocab_fixture.txt

The slice (first 5000 / 5000 / 1500 lines of those files, ~5 MB) and the options must stay equal
to kSlice and slice_options() in tests/test_vocab_trainer.cpp.

expected.tsv holds, after '#' comment lines:
  fingerprint<TAB>hex     wr::vocab_fingerprint of the vocabulary (FNV-1a over "token\n"...)
  size<TAB>N              number of tokens
  unk_rate<TAB>x          HF's fraction of [UNK] among all ids of the held-out lines
  SOURCE<TAB>LINE<TAB>ids one held-out line: SOURCE is a path under ../shared/data, LINE its
                          1-based line number, ids HF's encode(line, add_special_tokens=False)
The held-out lines come from files (or, for IMDB, lines) outside the training slice: 300 lines
from each of five sources, non-empty and at most 300 bytes long (to keep the fixture small),
spread evenly over the file. Lines holding the text of a special token ("[UNK]", ...) are left
out: HF matches those in raw text as special tokens, which is not what this test is about.
Only ids and tokens are stored, never the text.
"""
import argparse
import os
import shutil
import sys

from tokenizers import BertWordPieceTokenizer
from textdata import read_lines, vocab_fingerprint

DATA = "../shared/data"
FIXTURE_DIR = "tests/fixtures/vocab_trainer"
# (path under DATA, first line number that may be used): all of these are outside the slice.
HELD_OUT = [
    ("wikipedia/enwiki_valid.txt.gz", 1),
    ("gutenberg/valid.txt.gz", 1),
    ("imdb/unsup.txt.gz", 1501),  # the training slice uses lines 1..1500
    ("biomed_text/biomed_sentences.txt", 1),
    ("wikitext2/wiki.valid.tokens", 1),
]
LINES_PER_SOURCE = 300
MAX_LINE_BYTES = 300
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]




def pick(lines, first):
    """LINES_PER_SOURCE usable (line number, text) pairs spread evenly over lines[first-1:]."""
    usable = []
    for no in range(first, len(lines) + 1):
        raw = lines[no - 1]
        if not raw.strip() or len(raw) > MAX_LINE_BYTES:
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if any(s.lower() in text.lower() for s in SPECIALS):
            continue
        usable.append((no, text))
    if len(usable) < LINES_PER_SOURCE:
        sys.exit(f"only {len(usable)} usable lines")
    step = len(usable) / LINES_PER_SOURCE
    return [usable[int(i * step)] for i in range(LINES_PER_SOURCE)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("vocab", help="vocab.txt made by build/train_vocab (see above)")
    args = ap.parse_args()

    os.makedirs(FIXTURE_DIR, exist_ok=True)
    vocab_out = os.path.join(FIXTURE_DIR, "vocab.txt")
    if os.path.abspath(args.vocab) != os.path.abspath(vocab_out):
        shutil.copyfile(args.vocab, vocab_out)
    with open(vocab_out, encoding="utf-8") as f:
        tokens = f.read().split("\n")[:-1]

    tok = BertWordPieceTokenizer(vocab_out, lowercase=True)
    assert tok.get_vocab_size() == len(tokens)
    unk = tok.token_to_id("[UNK]")

    rows, n_ids, n_unk = [], 0, 0
    for source, first in HELD_OUT:
        for no, text in pick(read_lines(os.path.join(DATA, source)), first):
            ids = tok.encode(text, add_special_tokens=False).ids
            n_ids += len(ids)
            n_unk += sum(i == unk for i in ids)
            rows.append(f"{source}\t{no}\t{' '.join(map(str, ids))}")

    out = os.path.join(FIXTURE_DIR, "expected.tsv")
    with open(out, "w", encoding="utf-8") as f:
        f.write("# made by dev/vocab_fixture.py from vocab.txt (our trainer) and HF tokenizers "
                f"{__import__('tokenizers').__version__}; see that script\n")
        f.write(f"fingerprint\t{vocab_fingerprint(tokens):016x}\n")
        f.write(f"size\t{len(tokens)}\n")
        f.write(f"unk_rate\t{n_unk / n_ids:.6f}\n")
        f.write("\n".join(rows) + "\n")
    print(f"{out}: {len(rows)} lines, {n_ids} ids, [UNK] {n_unk} = {100 * n_unk / n_ids:.4f}%, "
          f"fingerprint {vocab_fingerprint(tokens):016x}")


if __name__ == "__main__":
    main()
