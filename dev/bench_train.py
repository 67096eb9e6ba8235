#!/usr/bin/env python3
"""dev/bench_train.py: MLM training throughput on the CPU, ./train_mlm against eager PyTorch.

    python3 dev/bench_train.py                          # mini (L4-H256), T 128, B 32, 2 threads (`make bench`)
    python3 dev/bench_train.py --presets tiny mini --threads 1 2 --steps 20

Ours: `./train_mlm --preset P --seq-len T --batch B --steps W+N --eval-every 0 --val '' --threads K
--warmup 0` in a temporary folder; the median of log.jsonl's tokens_per_second over the steps after
the first W (warm-up). Data: out/wr30k/wikipedia shards with out/wr30k/vocab.txt when they exist
(V = 30522, made by dev/data/all.sh), else the built-in corpus build/default (V ~2080); the output
says which.

PyTorch: the same model and step, in a fresh process with torch.set_num_threads(K), eager (no
torch.compile): Hugging Face BertForMaskedLM's modules (same sizes, dropout 0.1, exact GELU,
decoder tied to the word embeddings), the encoder on all B x T tokens, the MLM head only on the
gathered masked positions (max(1, round(0.15 (T-2))) per sequence, as our batcher), mean
cross-entropy, backward, clip_grad_norm_(1.0), AdamW (decay on matrices and embeddings only).
Random ids over V, every sequence full length. tokens/s = B x T / step time; the median of N steps
after W warm-up steps. Ours counts the tokens of its batches (full sequences from packed
documents, also B x T: checked below).

The table goes to stdout and to docs/benchmarks.md (with the machine, date and versions). Other
processes on the machine slow both sides; the load average is printed with the table.
"""
import argparse
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRESETS = {"tiny": (2, 128), "mini": (4, 256), "small": (4, 512), "medium": (8, 512), "base": (12, 768)}


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


def run_ours(args, preset, threads, data):
    train, vocab, _, _ = data
    with tempfile.TemporaryDirectory(prefix="bench_train_") as out:
        cmd = [args.ours, "--preset", preset, "--seq-len", str(args.seq_len), "--batch", str(args.batch),
               "--steps", str(args.warmup_steps + args.steps), "--eval-every", "0", "--val", "", "--threads", str(threads),
               "--out", out, "--overwrite", "--warmup", "0", "--train", train, "--vocab", vocab, "--seed", "1"]
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"bench_train: {' '.join(cmd)} failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
        with open(os.path.join(out, "log.jsonl")) as f:
            steps = [json.loads(line) for line in f if line.strip()]
    steps = [s for s in steps if s["kind"] == "train" and s["step"] > args.warmup_steps]
    tokens_per_step = statistics.median(s["tokens_per_second"] * s["ms"] / 1000 for s in steps)
    return [s["tokens_per_second"] for s in steps], tokens_per_step


def torch_worker(args):
    """Runs in a child process: times PyTorch on one preset and thread count, prints one JSON line."""
    import torch
    import torch.nn.functional as F
    from transformers import BertConfig, BertForMaskedLM

    torch.set_num_threads(args.threads[0])
    torch.manual_seed(1)
    L, H = preset_sizes(args.presets[0])
    B, T, V = args.batch, args.seq_len, args.vocab_size
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
    params = [p for p in model.parameters()]
    k = masked_per_sequence(T)
    gen = torch.Generator().manual_seed(1)

    def batch():
        ids = torch.randint(1, V, (B, T), generator=gen)
        types = torch.zeros(B, T, dtype=torch.long)
        mask = torch.ones(B, T, dtype=torch.long)
        pos = torch.stack([torch.randperm(T - 2, generator=gen)[:k] + 1 for _ in range(B)])
        flat = (pos + torch.arange(B)[:, None] * T).reshape(-1)  # masked positions in [B*T]
        targets = torch.randint(1, V, (B * k,), generator=gen)
        return ids, types, mask, flat, targets

    def step(ids, types, mask, flat, targets):
        opt.zero_grad(set_to_none=True)
        hidden = model.bert(input_ids=ids, token_type_ids=types, attention_mask=mask).last_hidden_state
        logits = model.cls(hidden.reshape(B * T, H).index_select(0, flat))
        loss = F.cross_entropy(logits, targets)
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


def run_torch(args, preset, threads, vocab_size):
    cmd = [sys.executable, os.path.abspath(__file__), "--torch-worker", "--presets", preset, "--threads", str(threads),
           "--steps", str(args.steps), "--warmup-steps", str(args.warmup_steps), "--seq-len", str(args.seq_len),
           "--batch", str(args.batch), "--vocab-size", str(vocab_size)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"bench_train: the PyTorch worker failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


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


BEGIN, END = "<!-- bench_train: begin -->", "<!-- bench_train: end -->"
TITLE = "Training throughput on the CPU: train_mlm against eager PyTorch"
MADE_BY = "Made by `python3 dev/bench_train.py` (part of `make bench`), which rewrites this section."


def write_markdown(path, header_lines, table_lines, notes, markers=(BEGIN, END), title=TITLE, made_by=MADE_BY):
    """Replaces one benchmark's section of PATH (between its markers), keeping the rest; also used
    by dev/bench_gpu.py with its own markers and title."""
    begin, end = markers
    section = (f"{begin}\n## {title}\n\n{made_by}\n\n" +
               "".join(f"- {line}\n" for line in header_lines) + "\n" + "\n".join(table_lines) + "\n\n" + notes + end)
    text = open(path).read() if os.path.exists(path) else (
        "# Benchmarks\n\n`make bench` runs the benchmarks in dev/, each against a reference implementation on the "
        "same machine in the same run (DESIGN.md, section Measuring).\n")
    if begin in text and end in text:
        text = text[:text.index(begin)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ours", default=os.path.join(ROOT, "train_mlm"), help="the train_mlm binary")
    ap.add_argument("--presets", nargs="+", default=["mini"], help="model sizes (tiny, mini, ... or L4-H256)")
    ap.add_argument("--threads", type=int, nargs="+", default=[os.cpu_count()])
    ap.add_argument("--steps", type=int, default=10, help="timed steps on each side")
    ap.add_argument("--warmup-steps", type=int, default=2, help="untimed steps first")
    ap.add_argument("--rounds", type=int, default=1, help="runs of each side, alternating; the median pools their steps")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--data", choices=["auto", "wr30k", "default"], default="auto")
    ap.add_argument("--markdown", default=os.path.join(ROOT, "docs", "benchmarks.md"), help="'' to skip writing it")
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--vocab-size", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_worker:
        return torch_worker(args)
    if not os.path.exists(args.ours):
        raise SystemExit(f"bench_train: {args.ours} does not exist (run make)")

    data = pick_data(args.data)
    B, T, V = args.batch, args.seq_len, data[2]
    k = masked_per_sequence(T)
    print(f"data: {data[3]}; B {B} x T {T}, {k} masked per sequence ({B * k} per step); "
          f"median tokens/s of {args.steps} steps after {args.warmup_steps} warm-up steps; {machine()}")
    load_before = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    rows, versions = [], {}
    for preset in args.presets:
        L, H = preset_sizes(preset)
        for threads in args.threads:
            ours_rates, pt_rates = [], []
            for _ in range(args.rounds):  # alternating, so that both sides see the same background load
                rates, tokens_per_step = run_ours(args, preset, threads, data)
                ours_rates += rates
                if abs(tokens_per_step - B * T) > 0.02 * B * T:
                    print(f"note: ours averaged {tokens_per_step:.0f} tokens per step, not B x T = {B * T}")
                versions = run_torch(args, preset, threads, V)
                pt_rates += versions["rates"]
            ours, pt = statistics.median(ours_rates), {"tokens_per_second": statistics.median(pt_rates)}
            gflop = flops_per_token(L, H, V, T) / 1e9
            rows.append((f"{preset} (L{L}-H{H})", threads, ours, pt["tokens_per_second"], gflop))
            print(f"  {preset} threads {threads}: ours {ours:.0f} tok/s, PyTorch {pt['tokens_per_second']:.0f} tok/s",
                  flush=True)

    table = ["| model | threads | ours tok/s | PyTorch tok/s | ours / PyTorch | ours GFLOP/s | PyTorch GFLOP/s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for model, threads, ours, pt, gflop in rows:
        table.append(f"| {model} | {threads} | {ours:.0f} | {pt:.0f} | {ours / pt:.2f}x | {ours * gflop:.1f} | {pt * gflop:.1f} |")
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    header = [f"machine: {machine()}",
              f"date: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}; load average (1/5/15 min) before the run "
              f"{load_before}, after {load}",
              f"ours: {os.path.basename(args.ours)}, {build_info(args.ours)}",
              f"PyTorch {versions.get('torch', '?')} eager (no torch.compile), attention implementation "
              f"`{versions.get('attention', '?')}`, fp32",
              f"data: {data[3]}; batch {B} x {T} tokens, {k} masked per sequence ({B * k} per step), dropout 0.1",
              f"median tokens/s over {args.steps} steps after {args.warmup_steps} warm-up steps, each side" +
              (f", {args.rounds} alternating runs of each pooled" if args.rounds > 1 else "")]
    print()
    print("\n".join(table))
    print(f"(load average 1/5/15 min: before {load_before}, after {load})")
    if args.markdown:
        notes = ("One step on both sides: forward on B x T tokens, the MLM head on the masked positions only, "
                 "cross-entropy, backward, global gradient-norm clipping, AdamW. Ours also counts making the batch "
                 "(masking, in a background thread) in its step time. GFLOP/s uses DESIGN.md's count: "
                 "6 x (non-embedding parameters + decoder parameters x masked fraction) + 12 x L x T x H per token. "
                 "Other processes running on the machine at the same time lower both sides' figures, most of all "
                 "with as many threads as cores (each parallel region waits for its slowest, descheduled thread); "
                 "the load averages above say whether the machine was quiet. The ratio, measured in the same run "
                 "with the two sides alternating, is the number to compare.\n")
        write_markdown(args.markdown, header, table, notes)
        print(f"written to {os.path.relpath(args.markdown, ROOT)}")


if __name__ == "__main__":
    main()
