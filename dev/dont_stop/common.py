"""dev/dont_stop/common.py: the stages the "Don't Stop Pretraining" experiments share.

Every stage runs one of the programs with its output in runs/dont_stop/..., and is skipped when
that output is already complete, so a stopped experiment is rerun as it is. The wall time of each
stage that ran is recorded in `times` for the results section.

  adapt       continued MLM pretraining (train_mlm --init) for a fixed number of steps or epochs
  general     the control: the same MLM budget on general text (Wikipedia), shared by every experiment
  lm_loss     the masked-LM validation loss of a model on held-out text of a domain
  finetune    one fine-tuning run with --test; returns the test metrics

Each experiment starts from one of two models (--start):
  minilm  all-MiniLM-L6-v2 imported (L6-H384); its MLM head is new (normal(0, 0.02), LayerNorm 1/0,
          biases 0), so adaptation trains the head from scratch beside the encoder, warmed up
  own     the project's own general model: mini (L4-H256) pretrained from scratch on Wikipedia +
          Gutenberg by `python3 dev/well_read/sst2.py --students mini --stop-after pretrain`
"""
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from experiment_stages import records, run_logged  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "out", "bert-base-uncased")
RUNS = os.path.join(ROOT, "runs", "dont_stop")
BASE = os.path.join(ROOT, "out", "minilm", "model.bin")
# The held-out text of each domain the LM losses are measured on.
HELD_OUT = {
    "Wikipedia": f"{DATA}/wikipedia/val_*.bin",
    "PubMed": f"{DATA}/biomed/val_*.bin",
    "ChemProt": f"{DATA}/chemprot/mlm/val_*.bin",
    "IMDB": f"{DATA}/imdb/mlm/val_*.bin",
}
MLM_BATCH, MLM_SEQ = 32, 128
OWN = os.path.join(ROOT, "runs", "well_read", "pretrain_mini")
# --start: the model, its runs' folder suffix, and the default learning rates
# (the small model from scratch takes larger steps than the imported one).
STARTS = {
    "minilm": {"model": BASE, "suffix": "", "mlm_lr": 1e-4, "ft_lr": 1e-4},
    "own": {"model": os.path.join(OWN, "best.bin"), "suffix": "_own", "mlm_lr": 5e-4, "ft_lr": 3e-4},
}


def add_start_arguments(ap):
    ap.add_argument("--start", choices=list(STARTS), default="minilm", help="the starting model (see dev/dont_stop/common.py)")
    ap.add_argument("--mlm-lr", type=float, help="adaptation learning rate (default: minilm 1e-4, own 5e-4)")
    ap.add_argument("--ft-lr", type=float, help="fine-tuning learning rate (default: minilm 1e-4, own 3e-4)")


def start_tag(start, tag):
    """The name a model's cached LM losses go under: TAG, prefixed by the --start it came from (but minilm)."""
    return tag if start == "minilm" else f"{start}_{tag}"


def resolve_start(args):
    """Fills ARGS' learning-rate defaults for --start and returns (model, suffix, description)."""
    start = STARTS[args.start]
    args.mlm_lr = start["mlm_lr"] if args.mlm_lr is None else args.mlm_lr
    args.ft_lr = start["ft_lr"] if args.ft_lr is None else args.ft_lr
    if args.start == "minilm":
        return start["model"], "", "all-MiniLM-L6-v2 imported (L6-H384, bert-base-uncased vocabulary), its MLM head new"
    if not os.path.exists(start["model"]):
        sys.exit(f"{start['model']} is missing: pretrain it with python3 dev/well_read/sst2.py --students mini --stop-after pretrain")
    steps = records(OWN, "train")[-1]["step"]
    return start["model"], start["suffix"], (
        f"the project's own mini (L4-H256) pretrained from scratch on Wikipedia + Gutenberg, {steps:,} steps of 32 x 128 "
        f"({steps * 32 * 128 / 1e6:.1f}M tokens; validation loss {records(OWN, 'eval')[-1]['loss']:.2f})")


def run(cmd, log):
    return run_logged(cmd, log, "dont_stop")


def adapt(out, init, train, val, budget, args, times, name):
    """Continued MLM pretraining from INIT; BUDGET is ("steps", N) or ("epochs", E). Returns the
    run's best.bin (validation only at the end, so the last weights)."""
    done = os.path.join(out, "best.bin")
    if not os.path.exists(done):
        times[name] = run(["./train_mlm", "--init", init, "--train", train, "--val", val, f"--{budget[0]}", f"{budget[1]:g}",
                           "--batch", str(MLM_BATCH), "--seq-len", str(MLM_SEQ), "--lr", str(args.mlm_lr),
                           "--warmup", str(args.mlm_warmup), "--eval-every", "0", "--threads", str(args.threads),
                           "--out", out, "--overwrite"], out + ".log")
    return done


def steps_of(folder):
    """How many optimizer steps an MLM run in FOLDER took (its last evaluation's step)."""
    return records(folder, "eval")[-1]["step"]


def general(args, times, steps):
    """The control model: the base after STEPS MLM steps on Wikipedia (the same budget as an
    adaptation, on text of no particular domain). One model shared by every experiment."""
    return adapt(os.path.join(RUNS, "general"), BASE, f"{DATA}/wikipedia/train_*.bin", HELD_OUT["Wikipedia"],
                 ("steps", steps), args, times, "general MLM (Wikipedia)")


def lm_loss(model, domain, tag, threads):
    """The masked-LM validation loss of MODEL on DOMAIN's held-out text: one step at learning rate
    0 (weights unchanged) evaluated on every validation batch. Cached under runs/dont_stop/lm_loss/."""
    out = os.path.join(RUNS, "lm_loss", f"{tag}_{domain}")
    if not records(out, "eval"):
        run(["./train_mlm", "--init", model, "--train", HELD_OUT[domain], "--val", HELD_OUT[domain], "--steps", "1",
             "--lr", "0", "--warmup", "0", "--batch", "8", "--seq-len", str(MLM_SEQ), "--threads", str(threads),
             "--out", out, "--overwrite"], out + ".log")
    return records(out, "eval")[-1]["loss"]


def finetune(out, model, task, args, seed, times, name, extra=()):
    """Fine-tunes MODEL on TASK (DATA/TASK/{train,dev,test}.bin, or a dict of those three paths)
    with --test; returns the test record's metrics."""
    shards = task if isinstance(task, dict) else {s: f"{DATA}/{task}/{s}.bin" for s in ("train", "dev", "test")}
    if not records(out, "test"):
        times[name] = run(["./finetune", "--init", model, "--train", shards["train"], "--dev", shards["dev"],
                           "--test", shards["test"], "--batch", "32", "--bucket", "--seed", str(seed),
                           "--threads", str(args.threads), "--out", out, "--overwrite", *extra], out + ".log")
    return records(out, "test")[-1]["metrics"]


def mean_sd(values, scale=100):
    """'mean ± sd' of VALUES (times SCALE), with one decimal."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{scale * statistics.mean(values):.1f} ± {scale * sd:.1f}"


def stage_times(times, folder):
    """Every stage's wall time, as text: those of this run (TIMES, seconds) merged into the ones
    kept in FOLDER/stage_times.json by earlier runs, so a section rewritten by a rerun that reused
    stages still says what each took when it ran."""
    path = os.path.join(folder, "stage_times.json")
    kept = json.load(open(path)) if os.path.exists(path) else {}
    kept.update({k: round(v, 1) for k, v in times.items()})
    with open(path, "w") as f:
        json.dump(kept, f, indent=1)
    return "; ".join(f"{k} {v / 60:.1f} min" for k, v in kept.items()) or "(no stage has run)"
