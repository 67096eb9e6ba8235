#!/usr/bin/env python3
"""dev/overlap/domains.py: vocabulary overlap between the domains of ../shared/data.

Runs `prepare overlap` (top 10,000 words, scikit-learn's English stop words; rules in
data/vocab_overlap.h) on seven corpora: Wikipedia, Gutenberg books, IMDB reviews, SST-2 movie
sentences, PubMed abstracts (biomed_text), ChemProt and WikiText-2, each read up to --max-bytes of
text (default 20 MB: Wikipedia, Gutenberg and IMDB are cut there, the others are read whole).
Then it runs it again with every corpus cut to the same --equal-bytes (2 MB), to show how much of
the picture is corpus size. It draws docs/vocab_overlap.png (dev/plot_overlap.py) and rewrites the
`vocab_overlap` section of docs/results.md.

    python3 dev/overlap/domains.py                     # about 15 s on 2 cores
    python3 dev/overlap/domains.py --max-bytes 0       # every corpus whole

Two corpora are cleaned first, into out/overlap/ (git-ignored, with the JSON and logs): IMDB's
unlabeled reviews lose their `<br />` breaks (else "br" is IMDB's most frequent word), WikiText-2
(valid + test; its train split is not in ../shared/data) loses its `<unk>` marks. Needs
./prepare (make prepare).
"""
import argparse
import datetime
import gzip
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "dev"))
from markdown_section import markers, replace_section  # noqa: E402
from plot_overlap import draw  # noqa: E402

# name, --corpus value (DATA and OUT filled in), what it is
CORPORA = [
    ("Wikipedia", "{DATA}/wikipedia/enwiki_train.txt.gz", "English Wikipedia articles (train split)"),
    ("Gutenberg", "{DATA}/gutenberg/train.txt.gz", "Project Gutenberg books (train split)"),
    ("IMDB", "{OUT}/imdb_unsup.txt", "IMDB movie reviews, the 50,000 unlabeled ones, `<br />` removed"),
    ("SST-2", "{DATA}/sst2/train.tsv:sentence", "SST-2 train sentences (movie review snippets; the `sentence` column)"),
    ("PubMed", "{DATA}/biomed_text/biomed_sentences.txt", "PubMed abstract sentences (biomed_text)"),
    ("ChemProt", "{DATA}/chemprot/*.jsonl:text", "ChemProt train + dev + test texts (the `text` field; PubMed sentences about chemicals and proteins)"),
    ("WikiText-2", "{OUT}/wikitext2.txt", "WikiText-2 valid + test (Wikipedia good and featured articles), `<unk>` removed"),
]


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def clean_copies(data, out):
    """The cleaned IMDB and WikiText-2 texts, made once (delete them to remake)."""
    imdb = os.path.join(out, "imdb_unsup.txt")
    if not os.path.exists(imdb):
        breaks = re.compile(r"<br */?>", re.IGNORECASE)
        with gzip.open(os.path.join(data, "imdb/unsup.txt.gz"), "rt", encoding="utf-8") as f, open(imdb + ".part", "w", encoding="utf-8") as g:
            for line in f:
                g.write(breaks.sub(" ", line))
        os.replace(imdb + ".part", imdb)
    wikitext = os.path.join(out, "wikitext2.txt")
    if not os.path.exists(wikitext):
        with open(wikitext + ".part", "w", encoding="utf-8") as g:
            for split in ("valid", "test"):
                with open(os.path.join(data, f"wikitext2/wiki.{split}.tokens"), encoding="utf-8") as f:
                    for line in f:
                        g.write(line.replace("<unk>", ""))
        os.replace(wikitext + ".part", wikitext)


def run_overlap(corpora, top, max_bytes, threads, out_json, log):
    cmd = [os.path.join(ROOT, "prepare"), "overlap", "--top", str(top), "--max-bytes", str(max_bytes), "--threads", str(threads),
           "--out", out_json, "--overwrite"]
    for name, spec, _ in corpora:
        cmd += ["--corpus", f"{name}={spec}"]
    print(" ".join(cmd), flush=True)
    t0 = time.time()
    p = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.time() - t0
    with open(log, "w") as f:
        f.write(p.stdout)
    print(p.stdout, flush=True)
    if p.returncode != 0:
        sys.exit(f"domains: prepare overlap failed (exit {p.returncode}); its output is in {log}")
    return json.load(open(out_json)), seconds


def matrix_table(result):
    names = [c["name"] for c in result["corpora"]]
    rows = ["| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for i, name in enumerate(names):
        cells = [("**100**" if i == j else f"{p:.1f}") for j, p in enumerate(result["percent"][i])]
        rows.append(f"| **{name}** | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--top", type=int, default=10000)
    ap.add_argument("--max-bytes", type=int, default=20_000_000, help="bytes of text read per corpus (0 = all)")
    ap.add_argument("--equal-bytes", type=int, default=2_000_000, help="the second run: every corpus cut to this size (0 = no second run)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--figure", default=os.path.join(ROOT, "docs/vocab_overlap.png"))
    ap.add_argument("--results", default=os.path.join(ROOT, "docs/results.md"))
    args = ap.parse_args()

    data = os.path.abspath(os.environ.get("WELLREAD_DATA", os.path.join(ROOT, "../shared/data")))
    out = os.path.abspath(os.path.join(os.environ.get("WELLREAD_OUT", os.path.join(ROOT, "out")), "overlap"))
    if not os.path.isdir(data):
        sys.exit(f"domains: data folder {data} is missing (set WELLREAD_DATA)")
    if not os.access(os.path.join(ROOT, "prepare"), os.X_OK):
        sys.exit("domains: ./prepare is missing: run make prepare")
    os.makedirs(out, exist_ok=True)
    t_start = time.time()
    clean_copies(data, out)
    t_clean = time.time() - t_start
    corpora = [(n, s.format(DATA=data, OUT=out), d) for n, s, d in CORPORA]

    main_run, main_seconds = run_overlap(corpora, args.top, args.max_bytes, args.threads, os.path.join(out, "overlap.json"),
                                         os.path.join(out, "overlap.log"))
    equal_run = None
    if args.equal_bytes > 0:
        equal_run, equal_seconds = run_overlap(corpora, args.top, args.equal_bytes, args.threads, os.path.join(out, "overlap_equal.json"),
                                               os.path.join(out, "overlap_equal.log"))
    draw([c["name"] for c in main_run["corpora"]], main_run["percent"], args.figure,
         f"overlap of the top {args.top:,} words (%)")
    print(f"wrote {args.figure}")
    total = time.time() - t_start

    bound = f"{args.max_bytes / 1e6:g} MB" if args.max_bytes else "no bound"
    rows = ["| corpus | what | texts | MB read | words counted | distinct | read |", "|---|---|---:|---:|---:|---:|---|"]
    for (name, _, what), c in zip(corpora, main_run["corpora"]):
        rows.append(f"| {name} | {what} | {c['texts']:,} | {c['bytes'] / 1e6:.1f} | {c['words']:,} | {c['distinct']:,} | "
                    f"{'first ' + bound if c['bounded'] else 'whole'} |")
    frequent = "\n".join(f"- {c['name']}: {', '.join(c['most_frequent'])}" for c in main_run["corpora"])
    small = [c for c in main_run["corpora"] if c["top"] < args.top]
    small_note = ""
    if small:
        small_note = ("\n\nFewer than K distinct words (the pairs of these are over their whole list): " +
                      ", ".join(f"{c['name']} ({c['top']:,})" for c in small) + ".")
    equal = ""
    if equal_run:
        equal = f"""

**The same at equal size**: every corpus cut to its first {args.equal_bytes / 1e6:g} MB of text ({equal_seconds:.1f} s), so that no pair
compares a large sample with a small one (a smaller sample ranks rarer words into the top {args.top:,}).

""" + matrix_table(equal_run)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = f"""## Vocabulary overlap between the domains (top {args.top:,} words)

Made by `python3 dev/overlap/domains.py`, which rewrites this section and `docs/vocab_overlap.png`; {date},
{cpu_model()}, {os.cpu_count()} cores. As in "Don't Stop Pretraining" (figure 2): for each pair of corpora, the
percentage of their top-{args.top:,} words that they share. Words: BERT's uncased BasicTokenizer split (lowercased,
accents stripped, split at whitespace and punctuation), at least two characters and one letter (no numbers),
scikit-learn's 318 English stop words removed; ties at the boundary by the word's bytes (`prepare overlap`,
[data.md](data.md#vocabulary-overlap-prepare-overlap)). Each corpus is read up to {bound} of text.

{chr(10).join(rows)}{small_note}

{matrix_table(main_run)}

Most frequent words:

{frequent}

Wall time: {total:.1f} s for the whole script ({t_clean:.1f} s for the cleaned copies of IMDB and WikiText-2, made once;
{main_seconds:.1f} s for this `prepare overlap`).{equal}

![vocabulary overlap](vocab_overlap.png)
"""
    begin, end = markers("vocab_overlap")
    replace_section(args.results, begin, end, f"{begin}\n{body}{end}")
    print(body)


if __name__ == "__main__":
    main()
