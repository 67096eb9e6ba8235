#!/usr/bin/env python3
r"""dev/vocab_fixture.py: makes the fixture of tests/test_vocab_trainer.cpp.

The test trains a small WordPiece vocabulary itself and checks it against this fixture:
  tests/fixtures/vocab_trainer/vocab.txt     the vocabulary `prepare vocab` made (4000 tokens)
  tests/fixtures/vocab_trainer/expected.tsv  how Hugging Face's BertWordPieceTokenizer, loading
                                             that vocab.txt, tokenizes ~1,500 held-out lines
So the fixture proves two things: training is deterministic (the test retrains and must get
vocab.txt again, token for token), and the vocabulary is usable by HF unchanged (our Tokenizer
and HF give the same ids on text the trainer never saw).

The vocabulary is made by the user-facing tool, `prepare vocab` (data/prepare.cpp), not by
Python (HF's own trainer breaks ties differently, so it would not give the same vocabulary).
To regenerate, from the repository root:

  make prepare && python3 dev/vocab_fixture.py

The script writes the training slice, the first 5000 / 5000 / 1500 lines (~5 MB) of
../shared/data/wikipedia/enwiki_train.txt.gz, gutenberg/train.txt.gz and imdb/unsup.txt.gz, to
build/vocab_slice.txt (one text a line, bytes exactly as wr::LineReader reads them from the
original files), runs
  ./prepare vocab --input build/vocab_slice.txt --size 4000 --min-freq 2 --limit-alphabet 1000 \
      --out tests/fixtures/vocab_trainer/vocab.txt
and then tokenizes the held-out lines with HF. (`prepare vocab` counts the words of each line;
the counts do not depend on how lines are batched, and blank lines have no words.) The slice and the options must stay equal to
kSlice and slice_options() in tests/test_vocab_trainer.cpp.

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
import subprocess
import sys

from tokenizers import BertWordPieceTokenizer
from textdata import read_lines, vocab_fingerprint

DATA = "../shared/data"
FIXTURE_DIR = "tests/fixtures/vocab_trainer"
# The training slice (path under DATA, number of lines from the start) and the training options:
# the same as kSlice and slice_options() in tests/test_vocab_trainer.cpp.
SLICE = [("wikipedia/enwiki_train.txt.gz", 5000), ("gutenberg/train.txt.gz", 5000), ("imdb/unsup.txt.gz", 1500)]
TRAIN_FLAGS = ["--size", "4000", "--min-freq", "2", "--limit-alphabet", "1000"]
SLICE_FILE = "build/vocab_slice.txt"  # build/ is git-ignored
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


def write_slice():
    """SLICE as one file that wr::LineReader reads back line for line, byte for byte."""
    os.makedirs(os.path.dirname(SLICE_FILE), exist_ok=True)
    n = 0
    with open(SLICE_FILE, "wb") as f:
        for source, max_lines in SLICE:
            lines = read_lines(os.path.join(DATA, source))[:max_lines]
            if len(lines) < max_lines:
                sys.exit(f"{source}: only {len(lines)} lines")
            for line in lines:
                # LineReader drops one trailing '\r', so a line that still ends with one gets
                # another to lose.
                f.write(line + (b"\r\n" if line.endswith(b"\r") else b"\n"))
            n += len(lines)
    print(f"{SLICE_FILE}: {n} lines, {os.path.getsize(SLICE_FILE)} bytes")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.parse_args()
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # the repository root
    if not os.path.exists("prepare"):
        sys.exit("./prepare is missing: run `make prepare` first")

    write_slice()
    os.makedirs(FIXTURE_DIR, exist_ok=True)
    vocab_out = os.path.join(FIXTURE_DIR, "vocab.txt")
    subprocess.run(["./prepare", "vocab", "--input", SLICE_FILE, *TRAIN_FLAGS, "--out", vocab_out], check=True)
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
