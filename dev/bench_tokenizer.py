#!/usr/bin/env python3
"""dev/bench_tokenizer.py: tokenizer throughput, ours against Hugging Face `tokenizers`.

    python3 dev/bench_tokenizer.py --ours ./build/bench_tokenizer      # (what `make bench` runs)

Both sides read the same lines (the first --max-mb MB of the input files, split at '\\n'), use
the same vocab, encode every line without special tokens with the same number of threads, and
report the median MB/s (1 MB = 1e6 bytes of input text) over --repeat runs. HF runs
BertWordPieceTokenizer(vocab, lowercase=True).encode_batch (and encode_batch_fast, which skips
the offsets, where this version has it) in a fresh Python process per thread count, because
its Rayon thread pool is sized once per process from RAYON_NUM_THREADS.
"""
import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data")
DEFAULT_INPUTS = [os.path.join(DATA, "wikipedia", "enwiki_valid.txt.gz"), os.path.join(DATA, "imdb", "unsup.txt.gz")]
DEFAULT_VOCAB = os.path.join(ROOT, "tests", "fixtures", "tokenizer", "bert_base_uncased_vocab.txt")


def read_lines(paths, max_mb):
    """Lines as the C++ LineReader gives them, until max_mb MB of text (0 = all)."""
    lines, total = [], 0
    for path in paths:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            for raw in f:
                if max_mb > 0 and total >= max_mb * 1e6:
                    return lines, total
                raw = raw[:-1] if raw.endswith(b"\n") else raw
                raw = raw[:-1] if raw.endswith(b"\r") else raw
                total += len(raw)
                lines.append(raw.decode("utf-8", errors="replace"))
    return lines, total


def hf_worker(args):
    """Runs in a child process whose RAYON_NUM_THREADS is set: times HF, prints one JSON line."""
    from tokenizers import BertWordPieceTokenizer

    lines, total = read_lines(args.input, args.max_mb)
    tok = BertWordPieceTokenizer(args.vocab, lowercase=True)
    result = {}
    methods = [("encode_batch", tok._tokenizer.encode_batch)]
    if hasattr(tok._tokenizer, "encode_batch_fast"):
        methods.append(("encode_batch_fast", tok._tokenizer.encode_batch_fast))
    for name, fn in methods:
        rates = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fn(lines, add_special_tokens=False)
            rates.append(total / 1e6 / (time.perf_counter() - t0))
        result[name] = statistics.median(rates)
    print(json.dumps(result))


def run_hf(args, threads):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="true")
    cmd = [sys.executable, __file__, "--hf-worker", "--threads", str(threads), "--repeat", str(args.repeat),
           "--max-mb", str(args.max_mb), "--vocab", args.vocab, "--input", *args.input]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_ours(args, threads):
    cmd = [args.ours, "--input", ",".join(args.input), "--vocab", args.vocab, "--threads", str(threads),
           "--repeat", str(args.repeat), "--max-mb", str(args.max_mb)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    last = out.strip().splitlines()[-1]  # "ours threads=N MB/s=X"
    return float(last.split("MB/s=")[1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ours", default=os.path.join(ROOT, "build", "bench_tokenizer"), help="the C++ benchmark binary")
    ap.add_argument("--input", nargs="+", default=DEFAULT_INPUTS, help="text files (plain or .gz), one text a line")
    ap.add_argument("--vocab", default=DEFAULT_VOCAB)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--max-mb", type=float, default=30)
    ap.add_argument("--hf-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.hf_worker:
        return hf_worker(args)

    import tokenizers

    _, total = read_lines(args.input, args.max_mb)
    print(f"{total / 1e6:.1f} MB of text from {', '.join(os.path.relpath(p, ROOT) for p in args.input)}")
    print(f"vocab {os.path.relpath(args.vocab, ROOT)}, median of {args.repeat} runs, MB/s of input text, "
          f"HF tokenizers {tokenizers.__version__}, {os.cpu_count()} CPUs\n")
    rows = []
    for threads in args.threads:
        hf = run_hf(args, threads)
        ours = run_ours(args, threads)
        rows.append((threads, hf, ours))
    fast = all("encode_batch_fast" in hf for _, hf, _ in rows)
    print(f"{'threads':>7}  {'HF encode_batch':>15}" + (f"  {'HF encode_batch_fast':>20}" if fast else "") +
          f"  {'ours':>8}  {'ours / HF':>9}")
    for threads, hf, ours in rows:
        print(f"{threads:>7}  {hf['encode_batch']:>15.1f}" + (f"  {hf['encode_batch_fast']:>20.1f}" if fast else "") +
              f"  {ours:>8.1f}  {ours / hf['encode_batch']:>8.2f}x")


if __name__ == "__main__":
    main()
