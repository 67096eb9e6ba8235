#!/usr/bin/env python3
"""dev/precision/bf16_vs_fp32.py: does CPU bf16 mixed precision train like fp32?

Runs train_mlm twice from the same seed on the same data, --precision fp32 and --precision bf16
(bf16 matmul operands, fp32 weights, sums, LayerNorm, softmax and loss), side by side (one thread
each, so both see the same machine), then draws both loss curves in one figure and rewrites the
`bf16_vs_fp32` section of docs/results.md with the validation losses and the speed of each.

    python3 dev/precision/bf16_vs_fp32.py                       # mini, 500 steps, Wikipedia + Gutenberg
    python3 dev/precision/bf16_vs_fp32.py --steps 2000 --preset small

Data: out/wr30k (dev/data/all.sh vocab wikipedia gutenberg). Runs go to runs/precision/{fp32,bf16};
a finished run is not run again (delete its folder to redo it). The figure is
docs/precision_bf16_fp32.png.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write_section(path, name, body):
    """Replaces the text between <!-- NAME: begin --> and <!-- NAME: end --> in PATH (appends it)."""
    begin, end = f"<!-- {name}: begin -->", f"<!-- {name}: end -->"
    text = open(path).read()
    section = f"{begin}\n{body}{end}"
    if begin in text and end in text:
        text = text[:text.index(begin)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with open(path, "w") as f:
        f.write(text)


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def read_log(run):
    train, evals = {}, {}
    with open(os.path.join(run, "log.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            (train if r["kind"] == "train" else evals if r["kind"] == "eval" else {})[r.get("step")] = r
    return train, evals


def finished(run, steps):
    if not os.path.exists(os.path.join(run, "log.jsonl")):
        return False
    train, _ = read_log(run)
    return steps in train


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="mini")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--runs", default=os.path.join(ROOT, "runs/precision"))
    ap.add_argument("--figure", default=os.path.join(ROOT, "docs/precision_bf16_fp32.png"))
    ap.add_argument("--results", default=os.path.join(ROOT, "docs/results.md"))
    args = ap.parse_args()

    data = os.path.join(ROOT, "out/wr30k")
    train = f"{data}/wikipedia/train_*.bin,{data}/gutenberg/train_*.bin"
    val = f"{data}/wikipedia/val_*.bin,{data}/gutenberg/val_*.bin"
    if not os.path.exists(f"{data}/vocab.txt"):
        sys.exit("bf16_vs_fp32: out/wr30k is missing (dev/data/all.sh vocab wikipedia gutenberg)")
    # A copy of the program, so that a rebuild during the runs changes nothing.
    bindir = tempfile.mkdtemp(prefix="wellread_precision_")
    binary = shutil.copy(os.path.join(ROOT, "train_mlm"), bindir)
    flags = ["--preset", args.preset, "--steps", str(args.steps), "--warmup", str(max(1, args.steps // 10)), "--lr", "1e-3",
             "--batch", "32", "--seq-len", "128", "--eval-every", str(args.eval_every), "--eval-batches", "20",
             "--train", train, "--val", val, "--vocab", f"{data}/vocab.txt", "--seed", "1", "--device", "cpu",
             "--threads", "1"]
    procs = {}
    for precision in ("fp32", "bf16"):
        run = os.path.join(args.runs, precision)
        if finished(run, args.steps):
            print(f"{run}: finished earlier")
            continue
        resume = ["--resume", run] if os.path.exists(os.path.join(run, "log.jsonl")) else ["--out", run, "--overwrite"]
        os.makedirs(args.runs, exist_ok=True)
        log = open(os.path.join(args.runs, f"{precision}.txt"), "a")
        cmd = [binary] + (flags + ["--precision", precision] if resume[0] == "--out" else []) + resume
        print(" ".join(cmd))
        procs[precision] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    for precision, p in procs.items():
        if p.wait() != 0:
            sys.exit(f"bf16_vs_fp32: the {precision} run failed: see {args.runs}/{precision}.txt")
    shutil.rmtree(bindir, ignore_errors=True)

    logs = {p: read_log(os.path.join(args.runs, p)) for p in ("fp32", "bf16")}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for precision, color in (("fp32", "tab:blue"), ("bf16", "tab:orange")):
        train_log, eval_log = logs[precision]
        steps = sorted(train_log)
        losses = [train_log[s]["loss"] for s in steps]
        window = max(1, len(steps) // 25)
        smooth = [sum(losses[max(0, i - window + 1):i + 1]) / len(losses[max(0, i - window + 1):i + 1]) for i in range(len(losses))]
        ax.plot(steps, losses, color=color, alpha=0.2, linewidth=0.8)
        ax.plot(steps, smooth, color=color, label=f"{precision} training (moving average)")
        es = sorted(eval_log)
        ax.plot(es, [eval_log[s]["loss"] for s in es], "o--", color=color, label=f"{precision} validation")
    ax.set_xlabel("step (32 x 128 tokens)")
    ax.set_ylabel("MLM loss")
    ax.set_title(f"{args.preset} on Wikipedia + Gutenberg: CPU bf16 mixed precision against fp32")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.figure, dpi=110)

    rows = []
    evals = sorted(set(logs["fp32"][1]) & set(logs["bf16"][1]))
    for s in evals:
        a, b = logs["fp32"][1][s]["loss"], logs["bf16"][1][s]["loss"]
        rows.append(f"| {s} | {a:.4f} | {b:.4f} | {b - a:+.4f} |")
    speed = {}
    for p in ("fp32", "bf16"):
        tps = sorted(r["tokens_per_second"] for s, r in logs[p][0].items() if s > 5)
        speed[p] = tps[len(tps) // 2]
    machine = f"Machine: {cpu_model()}, {os.cpu_count()} cores."
    body = f"""## CPU bf16 mixed precision against fp32 (train_mlm, {args.preset})

Made by `python3 dev/precision/bf16_vs_fp32.py`, which rewrites this section. The same run twice
from seed 1: {args.preset} on Wikipedia + Gutenberg (`out/wr30k`), {args.steps} steps of 32 x 128 tokens,
lr 1e-3 with {max(1, args.steps // 10)} warmup steps, validation on 20 batches every {args.eval_every} steps;
`--precision fp32` against `--precision bf16` (bf16 matmul operands, fp32 weights, sums,
LayerNorm, softmax and loss), one thread each, run side by side. {machine}

| step | validation loss fp32 | validation loss bf16 | bf16 - fp32 |
|---:|---:|---:|---:|
""" + "\n".join(rows) + f"""

Median training speed over the run (one thread each, both runs sharing the machine): fp32
{speed['fp32']:.0f} tokens/s, bf16 {speed['bf16']:.0f} tokens/s.

![bf16 against fp32](precision_bf16_fp32.png)
"""
    write_section(args.results, "bf16_vs_fp32", body)
    print(body)


if __name__ == "__main__":
    main()
