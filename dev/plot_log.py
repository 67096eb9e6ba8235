#!/usr/bin/env python3
"""dev/plot_log.py: draws the curves of one or more training runs from their log.jsonl.

    python3 dev/plot_log.py runs/mini                     # -> runs/mini/curves.png
    python3 dev/plot_log.py runs/a runs/b --out cmp.png   # several runs in one figure
    python3 dev/plot_log.py runs/mini --lr --smooth 100

log.jsonl (model/training.cpp RunLog) holds one JSON object a line:
    {"kind":"train","step","loss","accuracy","lr","grad_norm","ms","tokens_per_second"}
    {"kind":"eval","step","loss","accuracy","perplexity"}
Panels: loss (training raw and smoothed, validation), masked-token accuracy (training smoothed,
validation), and with --lr the learning rate. A resumed run appends to the same log, so a step can
appear twice (the steps after the last checkpoint were done again): the last occurrence wins.
Smoothing is a centred moving average over --smooth steps (default: about 1/50 of the run).
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def read_log(run_dir):
    """{'train': {step: record}, 'eval': {step: record}}; later lines replace earlier ones."""
    path = os.path.join(run_dir, "log.jsonl") if os.path.isdir(run_dir) else run_dir
    logs = {"train": {}, "eval": {}}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a kill: skip it
                print(f"plot_log: {path}:{n}: not JSON, skipped", file=sys.stderr)
                continue
            if rec.get("kind") in logs:
                logs[rec["kind"]][int(rec["step"])] = rec
    return {k: [v[s] for s in sorted(v)] for k, v in logs.items()}


def series(records, key):
    pairs = [(r["step"], r[key]) for r in records if r.get(key) is not None]
    return np.array([p[0] for p in pairs], dtype=float), np.array([p[1] for p in pairs], dtype=float)


def smooth(y, window):
    """Centred moving average; the window shrinks at the ends (no edge droop). NaNs are ignored."""
    if window <= 1 or len(y) < 3:
        return y
    ok = np.isfinite(y)
    c_val = np.concatenate([[0.0], np.cumsum(np.where(ok, y, 0.0))])
    c_cnt = np.concatenate([[0], np.cumsum(ok)])
    idx = np.arange(len(y))
    lo = np.clip(idx - window // 2, 0, len(y))
    hi = np.clip(idx + window - window // 2, 0, len(y))
    cnt = c_cnt[hi] - c_cnt[lo]
    return np.where(cnt > 0, (c_val[hi] - c_val[lo]) / np.maximum(cnt, 1), np.nan)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", help="run folders (or log.jsonl files)")
    ap.add_argument("--out", help="PNG to write (default: FIRST_RUN/curves.png)")
    ap.add_argument("--lr", action="store_true", help="add a learning-rate panel")
    ap.add_argument("--smooth", type=int, default=0, help="moving-average window in steps (0: about 1/50 of the run)")
    ap.add_argument("--title", help="figure title (default: the run names)")
    args = ap.parse_args()

    runs = [(os.path.basename(os.path.normpath(r if os.path.isdir(r) else os.path.dirname(r) or ".")), read_log(r))
            for r in args.runs]
    panels = 3 if args.lr else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    many = len(runs) > 1

    for i, (name, log) in enumerate(runs):
        color = colors[i % len(colors)]
        label = f"{name}: " if many else ""
        train, evals = log["train"], log["eval"]
        window = args.smooth or max(1, len(train) // 50)
        if train:
            x, loss = series(train, "loss")
            axes[0].plot(x, loss, color=color, alpha=0.25, lw=0.8, label=f"{label}train (raw)")
            axes[0].plot(x, smooth(loss, window), color=color, lw=1.6, label=f"{label}train (avg {window})")
            x, acc = series(train, "accuracy")
            axes[1].plot(x, smooth(acc, window), color=color, lw=1.6, label=f"{label}train (avg {window})")
            if args.lr:
                x, lr = series(train, "lr")
                axes[2].plot(x, lr, color=color, lw=1.4, label=name if many else None)
        if evals:
            x, loss = series(evals, "loss")
            axes[0].plot(x, loss, color=color, ls="--", marker="o", ms=3.5, lw=1.4, label=f"{label}validation")
            x, acc = series(evals, "accuracy")
            axes[1].plot(x, acc, color=color, ls="--", marker="o", ms=3.5, lw=1.4, label=f"{label}validation")
            last = evals[-1]
            print(f"{name}: last evaluation at step {last['step']}: loss {last['loss']:.4f}, "
                  f"accuracy {last['accuracy']:.4f}, perplexity {last.get('perplexity', float('nan')):.2f}")
        if not train and not evals:
            print(f"plot_log: {name}: the log has no records", file=sys.stderr)

    axes[0].set_ylabel("MLM loss (cross-entropy, nats)")
    axes[1].set_ylabel("masked-token accuracy")
    if args.lr:
        axes[2].set_ylabel("learning rate")
        axes[2].ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle(args.title or ", ".join(name for name, _ in runs))
    fig.tight_layout()
    out = args.out or os.path.join(args.runs[0] if os.path.isdir(args.runs[0]) else os.path.dirname(args.runs[0]) or ".",
                                   "curves.png")
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
