#!/usr/bin/env python3
"""dev/precision/bf16_vs_fp32.py: does CPU bf16 mixed precision train like fp32?

For each seed, runs train_mlm twice on the same data, --precision fp32 and --precision bf16 (bf16
matmul operands, fp32 weights, sums, LayerNorm, softmax and loss), side by side (one thread each,
so both see the same machine); then draws the loss curves in one figure and rewrites the
`bf16_vs_fp32` section of docs/results.md with the validation losses and the speed of each.

    python3 dev/precision/bf16_vs_fp32.py                       # mini, 500 steps, seeds 1 and 2
    python3 dev/precision/bf16_vs_fp32.py --steps 2000 --preset small --seeds 1 2 3

Data: out/wr30k (dev/data/all.sh vocab wikipedia gutenberg). Runs go to
runs/precision/seedS/{fp32,bf16}; a finished run is not run again (delete its folder to redo it),
an interrupted one is resumed. The figure is docs/precision_bf16_fp32.png.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "dev"))
from markdown_section import cpu_model, markers, replace_section  # noqa: E402


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
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
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
             "--train", train, "--val", val, "--vocab", f"{data}/vocab.txt", "--device", "cpu", "--threads", "1"]
    for seed in args.seeds:
        procs = {}
        for precision in ("fp32", "bf16"):
            run = os.path.join(args.runs, f"seed{seed}", precision)
            if finished(run, args.steps):
                print(f"{run}: finished earlier")
                continue
            started = os.path.exists(os.path.join(run, "log.jsonl"))
            os.makedirs(os.path.dirname(run), exist_ok=True)
            log = open(run + ".txt", "a")
            cmd = [binary] + (["--resume", run] if started else
                              flags + ["--seed", str(seed), "--precision", precision, "--out", run, "--overwrite"])
            print(" ".join(cmd))
            procs[precision] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        for precision, p in procs.items():
            if p.wait() != 0:
                sys.exit(f"bf16_vs_fp32: the {precision} run of seed {seed} failed: see {args.runs}/seed{seed}/{precision}.txt")
    shutil.rmtree(bindir, ignore_errors=True)

    logs = {(seed, p): read_log(os.path.join(args.runs, f"seed{seed}", p)) for seed in args.seeds for p in ("fp32", "bf16")}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for (seed, precision), (train_log, eval_log) in logs.items():
        color = "tab:blue" if precision == "fp32" else "tab:orange"
        style = ["-", "--", ":", "-."][args.seeds.index(seed) % 4]
        steps = sorted(train_log)
        losses = [train_log[s]["loss"] for s in steps]
        window = max(1, len(steps) // 25)
        smooth = [sum(losses[max(0, i - window + 1):i + 1]) / len(losses[max(0, i - window + 1):i + 1]) for i in range(len(losses))]
        ax.plot(steps, smooth, color=color, linestyle=style, linewidth=1, label=f"{precision} seed {seed} training (moving average)")
        es = sorted(eval_log)
        ax.plot(es, [eval_log[s]["loss"] for s in es], "o", linestyle=style, color=color, label=f"{precision} seed {seed} validation")
    ax.set_xlabel("step (32 x 128 tokens)")
    ax.set_ylabel("MLM loss")
    ax.set_ylim(top=8)
    ax.set_title(f"{args.preset} on Wikipedia + Gutenberg: CPU bf16 mixed precision against fp32")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.figure, dpi=110)

    header = "| step | " + " | ".join(f"fp32 seed {s} | bf16 seed {s}" for s in args.seeds) + " | mean bf16 - fp32 |"
    rows = [header, "|---:|" + "---:|" * (2 * len(args.seeds) + 1)]
    evals = sorted(set.intersection(*(set(v[1]) for v in logs.values())))
    for step in evals:
        cells, diffs = [], []
        for seed in args.seeds:
            a, b = logs[(seed, "fp32")][1][step]["loss"], logs[(seed, "bf16")][1][step]["loss"]
            cells += [f"{a:.4f}", f"{b:.4f}"]
            diffs.append(b - a)
        rows.append(f"| {step} | " + " | ".join(cells) + f" | {sum(diffs) / len(diffs):+.4f} |")
    last = evals[-1]
    fp32_last = [logs[(seed, "fp32")][1][last]["loss"] for seed in args.seeds]
    diff_last = [logs[(seed, "bf16")][1][last]["loss"] - logs[(seed, "fp32")][1][last]["loss"] for seed in args.seeds]
    speed = {}
    for p in ("fp32", "bf16"):
        tps = sorted(r["tokens_per_second"] for seed in args.seeds for s, r in logs[(seed, p)][0].items() if s > 5)
        speed[p] = tps[len(tps) // 2]
    machine = f"Machine: {cpu_model()}, {os.cpu_count()} cores."
    body = f"""## CPU bf16 mixed precision against fp32 (train_mlm, {args.preset})

Made by `python3 dev/precision/bf16_vs_fp32.py`, which rewrites this section. The same run twice
for each of the seeds {", ".join(map(str, args.seeds))}: {args.preset} on Wikipedia + Gutenberg (`out/wr30k`), {args.steps} steps of 32 x 128 tokens,
lr 1e-3 with {max(1, args.steps // 10)} warmup steps, validation on 20 batches every {args.eval_every} steps;
`--precision fp32` against `--precision bf16` (bf16 matmul operands, fp32 weights, sums,
LayerNorm, softmax and loss), one thread each, run side by side. {machine}

Validation loss:

""" + "\n".join(rows) + f"""

At step {last} the bf16 - fp32 differences per seed are {", ".join(f"{d:+.4f}" for d in diff_last)}; fp32's own
validation losses differ by {max(fp32_last) - min(fp32_last):.4f} from one seed to another.

Median training speed over the run (one thread each, both runs sharing the machine): fp32
{speed['fp32']:.0f} tokens/s, bf16 {speed['bf16']:.0f} tokens/s.

![bf16 against fp32](precision_bf16_fp32.png)
"""
    begin, end = markers("bf16_vs_fp32")
    replace_section(args.results, begin, end, f"{begin}\n{body}{end}")
    print(body)


if __name__ == "__main__":
    main()
