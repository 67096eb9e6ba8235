#!/usr/bin/env python3
"""dev/plot_overlap.py: the vocabulary-overlap heatmap, as "Don't Stop Pretraining" draws it.

Reads the JSON (or TSV) that `prepare overlap --out` writes and draws one PNG: the corpora on both
axes, in the order they were given, and each cell's percentage overlap of the two top-K word lists
(blue, darker for more overlap, one decimal in the cell, no colour bar).

    ./prepare overlap --corpus a=A.txt --corpus b=B.tsv:text --out out/overlap.json
    python3 dev/plot_overlap.py out/overlap.json --out docs/vocab_overlap.png [--overwrite] [--title T]

An existing PNG is replaced only with --overwrite.
"""
import argparse
import json
import os
import sys


def read_overlap(path):
    """(names, percent matrix, K or None) from prepare overlap's JSON or TSV output."""
    try:
        text = open(path, encoding="utf-8").read()
    except OSError as e:
        sys.exit(f"plot_overlap: {path}: {e.strerror}")
    if path.endswith(".json"):
        try:
            data = json.loads(text)
            names = [c["name"] for c in data["corpora"]]
            percent = data["percent"]
            top = data.get("top")
        except (ValueError, KeyError, TypeError) as e:
            sys.exit(f"plot_overlap: {path}: not the JSON of prepare overlap ({e})")
    else:
        rows = [line.split("\t") for line in text.splitlines() if line]
        if not rows or rows[0][0] != "corpus":
            sys.exit(f"plot_overlap: {path}: not the TSV of prepare overlap (the first cell should be 'corpus')")
        names = rows[0][1:]
        try:
            percent = [[float(x) for x in r[1:]] for r in rows[1:]]
        except ValueError as e:
            sys.exit(f"plot_overlap: {path}: {e}")
        top = None
    if len(percent) != len(names) or any(len(r) != len(names) for r in percent):
        sys.exit(f"plot_overlap: {path}: the matrix is not {len(names)} x {len(names)}")
    return names, percent, top


def draw(names, percent, out, title=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(names)
    off_diagonal = [percent[i][j] for i in range(n) for j in range(n) if i != j]
    low = min(off_diagonal) if off_diagonal else 0.0
    vmin = max(0.0, low - 10.0)  # the palest cell is still visibly blue, as in the paper's figure
    size = 1.0 + 0.9 * n
    fig, ax = plt.subplots(figsize=(size + 0.6, size))
    ax.imshow(percent, cmap="Blues", vmin=vmin, vmax=100.0)
    for i in range(n):
        for j in range(n):
            shade = (percent[i][j] - vmin) / max(100.0 - vmin, 1e-9)
            ax.text(j, i, f"{percent[i][j]:.1f}", ha="center", va="center", fontsize=10,
                    color="white" if shade > 0.55 else "black")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticklabels(names)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=130)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", help="prepare overlap's --out file (.json or .tsv)")
    ap.add_argument("--out", required=True, help="the PNG to write")
    ap.add_argument("--title", help="a title above the heatmap (default: the K of the input, when it says)")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = ap.parse_args()
    if not args.out.endswith(".png"):
        sys.exit(f"plot_overlap: --out {args.out}: must end in .png")
    if os.path.exists(args.out) and not args.overwrite:
        sys.exit(f"plot_overlap: {args.out}: exists; pass --overwrite to replace it")
    names, percent, top = read_overlap(args.input)
    title = args.title if args.title is not None else (f"overlap of the top {top:,} words (%)" if top else None)
    draw(names, percent, args.out, title)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
