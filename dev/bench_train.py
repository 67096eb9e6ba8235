#!/usr/bin/env python3
"""dev/bench_train.py: MLM training throughput on the CPU, ./train_mlm against PyTorch.

    python3 dev/bench_train.py                  # `make bench`: every side, tiny/mini/small, T 128 and 512
    python3 dev/bench_train.py --presets mini --seq-lens 128 --threads 1 2 --steps 20
    python3 dev/bench_train.py --sides ours-bf16 torch-bf16 --no-write

What it measures: tokens per second of one full training step (forward, loss, backward, gradient
clipping, AdamW) of the same BERT on the same machine in the same run, for these sides (--sides):

  ours-fp32    ./train_mlm --device cpu --precision fp32
  ours-bf16    ./train_mlm --device cpu --precision bf16: GEMM operands rounded to bf16, fp32
               accumulation, fp32 master weights (AMX or AVX512-BF16 where the CPU has them)
  torch-fp32   eager PyTorch, fp32, our algorithm: the MLM head on the masked positions only
  torch-bf16   the same under torch.autocast("cpu", dtype=torch.bfloat16)
  hf           Hugging Face BertForMaskedLM as people run it: model(..., labels=labels) with labels
               -100 except at the masked positions, so the full-vocabulary head runs on every
               token; fp32, eager

How: each run of a side is a fresh process with K threads (--threads), and the sides alternate run
by run (--rounds runs of each, the order reversed every other round), so that other load on the
machine hits them alike. Each run makes W untimed warm-up steps (--warmup-steps) and N timed ones
(--steps); a side's figure is the median tokens/s over the timed steps of all its runs.
  Ours: `./train_mlm --device cpu --precision P --preset X --seq-len T --batch B --steps W+N
  --eval-every 0 --val '' --threads K --warmup 0` in a temporary folder; tokens/s per step from
  its log.jsonl. Data: out/wr30k/wikipedia shards with out/wr30k/vocab.txt when they exist
  (V = 30522, made by dev/data/all.sh), else the built-in corpus build/default (V ~2080).
  PyTorch: torch.set_num_threads(K); Hugging Face BertForMaskedLM's modules with our sizes
  (dropout 0.1, exact GELU, decoder tied to the word embeddings); random ids over the same V, every
  sequence full length, max(1, round(0.15 (T-2))) masked positions per sequence as our batcher;
  mean cross-entropy, clip_grad_norm_(1.0), AdamW (decay on matrices and embeddings only);
  tokens/s = B x T / step time.

GFLOP/s = tokens/s x DESIGN.md's FLOPs per token (the same count for every side, the hf side's
extra head work included in its time but not in the count). Each is also given as a fraction of
the machine's peak at the same thread count, measured here before the runs: the best of a few
torch.matmul products of n x n matrices (n = 4096, or smaller so that one takes about 0.5 s),
in fp32 for the fp32 sides and in bf16 for the bf16 ones.

The CPU model and its ISA flags (avx2, avx512*, amx* from /proc/cpuinfo) are printed and recorded.
A CPU figure counts only from a quiet machine: when the 1-minute load average before the run is
above 0.5 the script will not write the markdown unless --allow-load is given, and then marks the
table as taken under load. The table goes to stdout and, unless --no-write, to this benchmark's
section of docs/benchmarks.md (--out for another file).
"""
import argparse
import contextlib
import datetime
import glob
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

from markdown_section import replace_section

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRESETS = {"tiny": (2, 128), "mini": (4, 256), "small": (4, 512), "medium": (8, 512), "base": (12, 768)}
# Each side: (column label, precision of the peak it is measured against). Column order.
SIDES = {"ours-fp32": ("ours fp32", "fp32"), "torch-fp32": ("PyTorch fp32", "fp32"),
         "ours-bf16": ("ours bf16", "bf16"), "torch-bf16": ("PyTorch bf16 autocast", "bf16"),
         "hf": ("HF BertForMaskedLM fp32", "fp32")}
# (ours, reference, column label): the ratios of tokens/s that get a column.
RATIOS = [("ours-fp32", "torch-fp32", "ours / PyTorch, fp32"), ("ours-bf16", "torch-bf16", "ours / PyTorch, bf16"),
          ("ours-fp32", "hf", "ours fp32 / HF")]
QUIET_LOAD = 0.5
TOKENS_PER_STEP = 4096


def preset_sizes(name):
    """(layers, hidden) of a preset name or L{n}-H{h}."""
    if name in PRESETS:
        return PRESETS[name]
    m = re.fullmatch(r"L(\d+)-H(\d+)", name)
    if not m:
        raise SystemExit(f"bench_train: unknown preset {name!r}")
    return int(m.group(1)), int(m.group(2))


def pick_data(choice):
    """(train glob, vocab, description): the realistic 30k vocabulary when it is there."""
    wr30k = (os.path.join(ROOT, "out/wr30k/wikipedia/train_*.bin"), os.path.join(ROOT, "out/wr30k/vocab.txt"))
    default = (os.path.join(ROOT, "build/default/mlm/train_*.bin"), os.path.join(ROOT, "build/default/vocab.txt"))
    have30k = glob.glob(wr30k[0]) and os.path.exists(wr30k[1])
    if choice == "wr30k" and not have30k:
        raise SystemExit("bench_train: out/wr30k is missing (make it with dev/data/all.sh)")
    train, vocab = wr30k if (choice == "wr30k" or (choice == "auto" and have30k)) else default
    if not glob.glob(train):
        raise SystemExit(f"bench_train: no shards match {train} (run make)")
    with open(vocab, encoding="utf-8") as f:
        v = sum(1 for _ in f)
    return train, vocab, v, f"{os.path.relpath(os.path.dirname(train), ROOT)} (V = {v})"


def masked_per_sequence(T):
    return max(1, round(0.15 * (T - 2)))


def flops_per_token(L, H, V, T):
    """DESIGN.md: 6 x (non-embedding parameters + decoder parameters x masked fraction) + 12 L T H."""
    F = 4 * H
    layer = 3 * H * H + 3 * H + H * H + H + 2 * H + H * F + F + F * H + H + 2 * H
    head = H * H + H + 2 * H
    non_embedding = L * layer + head + 2 * H  # + the embedding LayerNorm
    decoder = V * H + V
    return 6 * (non_embedding + decoder * masked_per_sequence(T) / T) + 12 * L * T * H


def batch_size(args, T):
    return args.batch or max(1, TOKENS_PER_STEP // T)


# ---------------------------------------------------------------------------------------------
# The sides, each run in a fresh process.

def run_ours(args, precision, preset, T, threads, data, env=None, launcher=()):
    """(tokens/s of each timed step, median tokens per step, the 'device:' line ours printed).
    env: the process's environment (None: this one's); launcher: what starts it (mpirun ...)."""
    train, vocab, _, _ = data
    B = batch_size(args, T)
    with tempfile.TemporaryDirectory(prefix="bench_train_") as out:
        cmd = [*launcher, args.ours, "--device", "cpu", "--precision", precision, "--preset", preset, "--seq-len", str(T),
               "--batch", str(B), "--steps", str(args.warmup_steps + args.steps), "--eval-every", "0", "--val", "",
               "--threads", str(threads), "--out", out, "--overwrite", "--warmup", "0", "--train", train,
               "--vocab", vocab, "--seed", "1"]
        if args.cpu_isa:
            cmd += ["--cpu-isa", args.cpu_isa]
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise SystemExit(f"bench_train: {' '.join(cmd)} failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
        with open(os.path.join(out, "log.jsonl")) as f:
            steps = [json.loads(line) for line in f if line.strip()]
    steps = [s for s in steps if s["kind"] == "train" and s["step"] > args.warmup_steps]
    tokens_per_step = statistics.median(s["tokens_per_second"] * s["ms"] / 1000 for s in steps)
    device = next((line.strip() for line in r.stdout.splitlines() if line.startswith("device:")), "")
    return [s["tokens_per_second"] for s in steps], tokens_per_step, device


def torch_worker(args):
    """In a child process: times one PyTorch side on one preset, T and thread count; prints one JSON line."""
    import torch
    import torch.nn.functional as F
    from transformers import BertConfig, BertForMaskedLM

    side = args.worker
    torch.set_num_threads(args.threads[0])
    torch.manual_seed(1)
    L, H = preset_sizes(args.presets[0])
    T, V = args.seq_lens[0], args.vocab_size
    B = batch_size(args, T)
    config = BertConfig(vocab_size=V, hidden_size=H, num_hidden_layers=L, num_attention_heads=max(1, H // 64),
                        intermediate_size=4 * H, hidden_act="gelu", hidden_dropout_prob=0.1,
                        attention_probs_dropout_prob=0.1, max_position_embeddings=512, type_vocab_size=2,
                        layer_norm_eps=1e-12, pad_token_id=0)
    model = BertForMaskedLM(config)  # bert (no pooler) + cls (BertOnlyMLMHead, decoder tied)
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    model.train()
    decay, no_decay = [], []
    for name, p in model.named_parameters():  # as dev/hf_bert.py decays(): matrices and embeddings
        (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.999), eps=1e-6)
    params = list(model.parameters())
    k = masked_per_sequence(T)
    gen = torch.Generator().manual_seed(1)

    def batch():
        ids = torch.randint(1, V, (B, T), generator=gen)
        types = torch.zeros(B, T, dtype=torch.long)
        mask = torch.ones(B, T, dtype=torch.long)
        pos = torch.stack([torch.randperm(T - 2, generator=gen)[:k] + 1 for _ in range(B)])
        flat = (pos + torch.arange(B)[:, None] * T).reshape(-1)  # masked positions in [B*T]
        targets = torch.randint(1, V, (B * k,), generator=gen)
        labels = torch.full((B * T,), -100, dtype=torch.long).index_put_((flat,), targets).view(B, T)
        return ids, types, mask, flat, targets, labels

    def loss_masked_only(ids, types, mask, flat, targets, labels):
        hidden = model.bert(input_ids=ids, token_type_ids=types, attention_mask=mask).last_hidden_state
        logits = model.cls(hidden.reshape(B * T, H).index_select(0, flat))
        return F.cross_entropy(logits, targets)

    def loss_hf(ids, types, mask, flat, targets, labels):
        return model(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels).loss

    loss_fn = loss_hf if side == "hf" else loss_masked_only
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if side == "torch-bf16" else contextlib.nullcontext

    def step(*b):
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss = loss_fn(*b)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()

    batches = [batch() for _ in range(args.warmup_steps + args.steps)]
    rates = []
    for i, b in enumerate(batches):
        t0 = time.perf_counter()
        step(*b)
        if i >= args.warmup_steps:
            rates.append(B * T / (time.perf_counter() - t0))
    attn = getattr(model.config, "_attn_implementation", "?")
    print(json.dumps({"rates": rates, "attention": attn, "torch": torch.__version__}))


def peak_worker(args):
    """In a child process: the best GFLOP/s of torch.matmul on n x n matrices, fp32 and bf16, at K threads.
    n is 4096, or smaller so that one product takes about 0.5 s."""
    import torch

    torch.set_num_threads(args.threads[0])
    peaks = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        def best_seconds(n, tries):
            a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
            c = torch.empty(n, n, dtype=dtype)
            torch.matmul(a, b, out=c)  # warm-up
            best = float("inf")
            for _ in range(tries):
                t0 = time.perf_counter()
                torch.matmul(a, b, out=c)
                best = min(best, time.perf_counter() - t0)
            return best

        probe = best_seconds(1024, 2)
        n = max(1024, min(4096, 256 * round(1024 * (0.5 / probe) ** (1 / 3) / 256)))
        peaks[name] = {"n": n, "gflops": 2.0 * n ** 3 / best_seconds(n, args.peak_tries) / 1e9}
    print(json.dumps(peaks))


def run_worker(args, side, preset, T, threads, vocab_size=0):
    """Runs this script as a worker (a PyTorch side or the peak measurement) in a fresh process."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", side, "--presets", preset, "--seq-lens", str(T),
           "--threads", str(threads), "--steps", str(args.steps), "--warmup-steps", str(args.warmup_steps),
           "--batch", str(args.batch), "--vocab-size", str(vocab_size), "--peak-tries", str(args.peak_tries)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"bench_train: the {side} worker failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# The machine and the build.

def build_info(binary):
    """When the binary was built and from which tree, so a figure can be tied to the code it measured."""
    built = datetime.datetime.fromtimestamp(os.path.getmtime(binary)).strftime("%Y-%m-%d %H:%M")
    try:
        git = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()  # noqa: E731
        changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
                   if line[3:].endswith((".cpp", ".h", ".cu", ".cuh"))]
        return f"built {built} from commit {git('rev-parse', '--short', 'HEAD')}" + (
            f" with uncommitted changes to {', '.join(changed)}" if changed else "")
    except OSError:
        return f"built {built}"


def machine():
    name = platform.processor() or "?"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        name = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        pass
    return f"{name}, {os.cpu_count()} CPUs (nproc)"


def isa_flags():
    """The CPU's vector ISA flags that matter to the GEMMs: avx2, avx512*, amx* from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as f:
            line = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return "?"
    flags = sorted(f for f in line.split(":", 1)[-1].split() if f == "avx2" or f.startswith(("avx512", "amx")))
    return " ".join(flags) or "none of avx2, avx512*, amx*"


def load_gate(args, what):
    """The 1-minute load average now, and the line that marks figures taken under load ('' when
    quiet). Exits when the markdown would be written from a busy machine without --allow-load."""
    load = os.getloadavg()[0]
    if load <= QUIET_LOAD:
        return load, ""
    if args.write and not args.allow_load:
        raise SystemExit(f"{what}: the 1-minute load average is {load:.2f} (above {QUIET_LOAD}): a CPU figure counts "
                         "only from a quiet machine. Wait for one, or pass --no-write (stdout only) or --allow-load "
                         "(the table is then marked as taken under load).")
    print(f"warning: load average {load:.2f} is above {QUIET_LOAD}: these figures are not valid", flush=True)
    return load, f"**TAKEN UNDER LOAD (load average {load:.2f}): not a valid figure.**"


# ---------------------------------------------------------------------------------------------
# The markdown.

BEGIN, END = "<!-- bench_train: begin -->", "<!-- bench_train: end -->"
TITLE = "Training throughput on the CPU: train_mlm against PyTorch"
MADE_BY = "Made by `python3 dev/bench_train.py` (part of `make bench`), which rewrites this section."


def write_markdown(path, header_lines, table_lines, notes, markers=(BEGIN, END), title=TITLE, made_by=MADE_BY):
    """Replaces one benchmark's section of PATH (between its markers), keeping the rest; also used
    by dev/bench_gpu.py and dev/bench_matmul.py with their own markers and titles."""
    begin, end = markers
    section = (f"{begin}\n## {title}\n\n{made_by}\n\n" +
               "".join(f"- {line}\n" for line in header_lines) + "\n" + "\n".join(table_lines) + "\n\n" + notes + end)
    replace_section(path, begin, end, section,
                    "# Benchmarks\n\n`make bench` runs the benchmarks in dev/, each against a reference implementation on "
                    "the same machine in the same run (DESIGN.md, section Measuring).\n")


def tables(rows, sides, peaks):
    """Two markdown tables: tokens/s with the ratios, and GFLOP/s with the fraction of the peak."""
    key = ["model", "T", "B", "threads"]
    ratios = [(a, b, label) for a, b, label in RATIOS if a in sides and b in sides]
    throughput = ["| " + " | ".join(key + [f"{SIDES[s][0]} tok/s" for s in sides] +
                                    [label for _, _, label in ratios]) + " |",
                  "|---|" + "---:|" * (len(key) - 1 + len(sides) + len(ratios))]
    compute = ["| " + " | ".join(key + [f"{SIDES[s][0]}" for s in sides]) + " |",
               "|---|" + "---:|" * (len(key) - 1 + len(sides))]
    for r in rows:
        cells = [r["model"], str(r["T"]), str(r["B"]), str(r["threads"])]
        tok = r["tokens_per_second"]
        throughput.append("| " + " | ".join(cells + [f"{tok[s]:.0f}" for s in sides] +
                                            [f"{tok[a] / tok[b]:.2f}x" for a, b, _ in ratios]) + " |")
        peak = peaks[r["threads"]]
        gflops = {s: tok[s] * r["gflop_per_token"] for s in sides}
        compute.append("| " + " | ".join(cells + [f"{gflops[s]:.1f} ({gflops[s] / peak[SIDES[s][1]]['gflops']:.2f})"
                                                  for s in sides]) + " |")
    return throughput, compute


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ours", default=os.path.join(ROOT, "train_mlm"), help="the train_mlm binary")
    ap.add_argument("--sides", nargs="+", choices=list(SIDES), default=list(SIDES), metavar="SIDE",
                    help=f"which columns to run, of {', '.join(SIDES)} (default: all)")
    ap.add_argument("--presets", nargs="+", default=["tiny", "mini", "small"],
                    help="model sizes (tiny, mini, small, ... or L4-H256)")
    ap.add_argument("--seq-lens", type=int, nargs="+", default=[128, 512], help="sequence lengths T")
    ap.add_argument("--batch", type=int, default=0,
                    help=f"sequences per step (default: {TOKENS_PER_STEP} tokens, i.e. 32 at T 128, 8 at T 512)")
    ap.add_argument("--threads", type=int, nargs="+", default=[os.cpu_count()],
                    help="thread counts, each side the same (default: every core)")
    ap.add_argument("--steps", type=int, default=10, help="timed steps in each run")
    ap.add_argument("--warmup-steps", type=int, default=2, help="untimed steps first")
    ap.add_argument("--rounds", type=int, default=1,
                    help="runs of each side, alternating; the median pools their steps")
    ap.add_argument("--peak-tries", type=int, default=5, help="products timed for each peak; the best counts")
    ap.add_argument("--cpu-isa", default="", help="passed to ours as --cpu-isa (default: ours picks the best)")
    ap.add_argument("--data", choices=["auto", "wr30k", "default"], default="auto")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"),
                    help="the markdown file whose section is rewritten (default: docs/benchmarks.md)")
    ap.add_argument("--no-write", dest="write", action="store_false", help="print only; write no markdown")
    ap.add_argument("--allow-load", action="store_true",
                    help=f"write the markdown even when the load average is above {QUIET_LOAD}, marked as invalid")
    ap.add_argument("--worker", choices=["torch-fp32", "torch-bf16", "hf", "peak"], help=argparse.SUPPRESS)
    ap.add_argument("--vocab-size", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker == "peak":
        return peak_worker(args)
    if args.worker:
        return torch_worker(args)

    sides = [s for s in SIDES if s in args.sides]  # column order
    if any(s.startswith("ours") for s in sides) and not os.path.exists(args.ours):
        raise SystemExit(f"bench_train: {args.ours} does not exist (run make)")
    _, under_load = load_gate(args, "bench_train")
    load_before_all = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    cpu, flags = machine(), isa_flags()
    data = pick_data(args.data)
    V = data[2]
    print(f"CPU: {cpu}\nISA flags: {flags}")
    print(f"data: {data[3]}; sides: {', '.join(sides)}; median tokens/s of {args.steps} steps after "
          f"{args.warmup_steps} warm-up steps; load average {load_before_all}", flush=True)

    peaks = {}
    for threads in args.threads:
        peaks[threads] = run_worker(args, "peak", args.presets[0], args.seq_lens[0], threads)
        print(f"peak, threads {threads}: " + ", ".join(
            f"{p} {v['gflops']:.1f} GFLOP/s (torch.matmul {v['n']}^3)" for p, v in peaks[threads].items()), flush=True)

    rows, versions, devices = [], {}, {}
    for preset in args.presets:
        L, H = preset_sizes(preset)
        for T in args.seq_lens:
            B = batch_size(args, T)
            for threads in args.threads:
                rates = {s: [] for s in sides}
                for rnd in range(args.rounds):  # alternating, so that every side sees the same background load
                    for side in (sides if rnd % 2 == 0 else sides[::-1]):
                        if side.startswith("ours"):
                            side_rates, per_step, devices[side] = run_ours(args, SIDES[side][1], preset, T, threads, data)
                            if abs(per_step - B * T) > 0.02 * B * T:
                                print(f"note: {side} averaged {per_step:.0f} tokens per step, not B x T = {B * T}")
                        else:
                            versions = run_worker(args, side, preset, T, threads, V)
                            side_rates = versions["rates"]
                        rates[side] += side_rates
                row = {"model": f"{preset} (L{L}-H{H})", "T": T, "B": B, "threads": threads,
                       "tokens_per_second": {s: statistics.median(rates[s]) for s in sides},
                       "gflop_per_token": flops_per_token(L, H, V, T) / 1e9}
                rows.append(row)
                print(f"  {preset} T {T} B {B} threads {threads}: " + ", ".join(
                    f"{s} {row['tokens_per_second'][s]:.0f}" for s in sides) + " tok/s", flush=True)

    throughput, compute = tables(rows, sides, peaks)
    load_after = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    peak_text = "; ".join(f"threads {threads}: " + ", ".join(
        f"{p} {v['gflops']:.1f} GFLOP/s ({v['n']}^3)" for p, v in peaks[threads].items()) for threads in args.threads)
    header = [f"machine: {cpu}", f"ISA flags: {flags}",
              f"date: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}; load average (1/5/15 min) before the run "
              f"{load_before_all}, after {load_after}",
              f"peak, the best of {args.peak_tries} torch.matmul products of n x n matrices (n^3): {peak_text}"]
    if any(s.startswith("ours") for s in sides):
        reported = "; ".join(f"{s} printed `{d}`" for s, d in devices.items() if d)
        isa = f" --cpu-isa {args.cpu_isa}" if args.cpu_isa else ""
        header.append(f"ours: {os.path.basename(args.ours)} --device cpu{isa}, {build_info(args.ours)}"
                      + (f"; {reported}" if reported else ""))
    if versions:
        header.append(f"PyTorch {versions.get('torch', '?')} eager (no torch.compile), attention implementation "
                      f"`{versions.get('attention', '?')}`")
    shapes = ", ".join(f"B {batch_size(args, T)} x T {T} ({masked_per_sequence(T)} masked per sequence)"
                       for T in args.seq_lens)
    header += [f"data: {data[3]}; {shapes}; dropout 0.1",
               f"median tokens/s over {args.steps} steps after {args.warmup_steps} warm-up steps, each side" +
               (f", {args.rounds} alternating runs of each pooled" if args.rounds > 1 else "")]

    print("\n" + "\n".join(header) + "\n")
    if under_load:
        print(under_load + "\n")
    print("\n".join(throughput) + "\n")
    print("GFLOP/s (fraction of the peak):")
    print("\n".join(compute))
    if args.write:
        table = ([under_load, ""] if under_load else []) + throughput + [
            "", "GFLOP/s by DESIGN.md's count (in brackets: the fraction of the fp32 or bf16 peak):", ""] + compute
        notes = ("One step on every side: forward on B x T tokens, cross-entropy, backward, global gradient-norm "
                 "clipping, AdamW. Ours and the two PyTorch columns run the same algorithm (the MLM head on the masked "
                 "positions only); the Hugging Face column runs BertForMaskedLM(labels=...) as usually done, the "
                 "full-vocabulary head on every token. Ours also counts making the batch (masking, in a background "
                 "thread) in its step time. GFLOP/s uses DESIGN.md's count for every side: 6 x (non-embedding "
                 "parameters + decoder parameters x masked fraction) + 12 x L x T x H per token. Other processes "
                 "running on the machine lower every side's figures, most of all with as many threads as cores (each "
                 "parallel region waits for its slowest, descheduled thread); a figure counts only from a quiet "
                 "machine (load average under 0.5). The ratios, measured in the same run with the sides alternating, "
                 "are the numbers to compare.\n")
        write_markdown(args.out, header, table, notes)
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
