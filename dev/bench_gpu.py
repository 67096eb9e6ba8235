#!/usr/bin/env python3
"""dev/bench_gpu.py: MLM training throughput and MFU on one GPU, ./train_mlm against Hugging Face BertForMaskedLM.

    python3 dev/bench_gpu.py                                   # mini (B 64) and L12-H768 (B 32), T 128
    python3 dev/bench_gpu.py --steps 20 --warmup-steps 5       # dev/gpu_check.sh's short setting
    python3 dev/bench_gpu.py --presets mini --batches 128

Ours: `./train_mlm --device cuda --precision bf16 --preset P --seq-len T --batch B --steps W+N
--eval-every 0 --val '' --warmup 0 --seed 1` in a temporary folder; the median of log.jsonl's
tokens_per_second over the steps after the first W (warm-up: cuBLASLt plans, allocations).

PyTorch, in a fresh process per model: Hugging Face BertForMaskedLM's modules (same sizes, dropout
0.1, exact GELU, decoder tied to the word embeddings) as in dev/bench_train.py's worker: the encoder
on all B x T tokens, the MLM head on the gathered masked positions only, mean cross-entropy, under
bf16 autocast, with torch.compile (default mode, static shapes) of that forward + loss; backward,
clip_grad_norm_(1.0) (its default foreach implementation), AdamW with fused=True (foreach where fused is refused), decay on
matrices and embeddings only. No attention mask: every sequence is full length (as ours), which
leaves SDPA free to pick its flash kernel. Random ids over the same V, made on the GPU beforehand
(ours makes and uploads its batches inside its step time). The first W steps are untimed: they hold
the compilation. Each timed step is bracketed by torch.cuda.synchronize() and reads the loss
(ours reads its loss each step too); tokens/s = B x T / step time, the median of N steps. If
torch.compile fails, the step runs eagerly and the table says so; a worker that crashes or runs
past --torch-timeout is run again eagerly.

MFU = tokens/s x FLOPs per token / peak, with dev/bench_train.py's flops_per_token (DESIGN.md,
Measuring) and the H100 SXM dense bf16 peak, 989 TFLOP/s (--peak-tflops). Data: the built-in
corpus build/default (V ~2080: the GPU machine has no ../shared/data), so the decoder is small.

The table goes to stdout and to docs/benchmarks.md between this benchmark's markers; --tsv writes
the figures for dev/gpu_check.sh after each measurement, so a run cut short still leaves them.
"""
import argparse
import datetime
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train import (ROOT, build_info, flops_per_token, machine, masked_per_sequence, pick_data,  # noqa: E402
                         preset_sizes, write_markdown)

BEGIN, END = "<!-- bench_gpu: begin -->", "<!-- bench_gpu: end -->"


def gpu_name():
    """The first GPU nvidia-smi lists, or None."""
    try:
        r = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    names = [line.strip() for line in r.stdout.splitlines() if line.strip()]
    return names[0] if r.returncode == 0 and names else None


def last_line(text):
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "(no output)"


def run_ours(args, preset, batch, data):
    """{'rates', 'device'} or {'error'}."""
    train, vocab, _, _ = data
    with tempfile.TemporaryDirectory(prefix="bench_gpu_") as out:
        cmd = [args.ours, "--device", "cuda", "--precision", "bf16", "--preset", preset, "--seq-len", str(args.seq_len),
               "--batch", str(batch), "--steps", str(args.warmup_steps + args.steps), "--eval-every", "0", "--val", "",
               "--warmup", "0", "--out", out, "--overwrite", "--train", train, "--vocab", vocab, "--seed", "1"]
        print("  $ " + " ".join(c if c else "''" for c in cmd), flush=True)
        try:
            r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=args.ours_timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {args.ours_timeout} s"}
        if r.returncode != 0:
            return {"error": f"exit code {r.returncode}: {last_line(r.stderr or r.stdout)}"}
        with open(os.path.join(out, "log.jsonl")) as f:
            steps = [json.loads(line) for line in f if line.strip()]
    device = re.search(r"^device: (.*)$", r.stdout, re.M)
    steps = [s for s in steps if s["kind"] == "train" and s["step"] > args.warmup_steps]
    if not steps:
        return {"error": "no timed steps in log.jsonl"}
    tokens_per_step = statistics.median(s["tokens_per_second"] * s["ms"] / 1000 for s in steps)
    if abs(tokens_per_step - batch * args.seq_len) > 0.02 * batch * args.seq_len:
        print(f"  note: ours averaged {tokens_per_step:.0f} tokens per step, not B x T = {batch * args.seq_len}")
    return {"rates": [s["tokens_per_second"] for s in steps], "device": device.group(1) if device else "?"}


def torch_worker(args):
    """Runs in a child process: times PyTorch on one model, prints one JSON line."""
    import torch
    import torch.nn.functional as F
    import transformers
    from transformers import BertConfig, BertForMaskedLM

    device = torch.device(args.torch_device)
    torch.manual_seed(1)
    torch.set_float32_matmul_precision("high")
    L, H = preset_sizes(args.presets[0])
    B, T, V = args.batches[0], args.seq_len, args.vocab_size
    config = BertConfig(vocab_size=V, hidden_size=H, num_hidden_layers=L, num_attention_heads=max(1, H // 64),
                        intermediate_size=4 * H, hidden_act="gelu", hidden_dropout_prob=0.1,
                        attention_probs_dropout_prob=0.1, max_position_embeddings=512, type_vocab_size=2,
                        layer_norm_eps=1e-12, pad_token_id=0)
    model = BertForMaskedLM(config).to(device)  # bert (no pooler) + cls (BertOnlyMLMHead, decoder tied)
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    model.train()
    decay, no_decay = [], []
    for name, p in model.named_parameters():  # as dev/hf_bert.py decays(): matrices and embeddings
        (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}]
    try:
        opt, optimizer = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, fused=True), "fused"
    except (RuntimeError, ValueError, TypeError):
        opt, optimizer = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, foreach=True), "foreach"
    params = list(model.parameters())

    class MlmLoss(torch.nn.Module):
        """Forward and loss of one step: the part torch.compile gets."""

        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, ids, types, flat, targets):
            with torch.autocast(device.type, dtype=torch.bfloat16):
                hidden = self.m.bert(input_ids=ids, token_type_ids=types).last_hidden_state
                logits = self.m.cls(hidden.reshape(B * T, H).index_select(0, flat))
            return F.cross_entropy(logits.float(), targets)

    eager = MlmLoss(model)
    run = {"fn": eager if args.no_compile else torch.compile(eager, dynamic=False),
           "mode": "eager" if args.no_compile else "compiled"}

    k = masked_per_sequence(T)
    gen = torch.Generator().manual_seed(1)

    def batch():
        ids = torch.randint(1, V, (B, T), generator=gen)
        types = torch.zeros(B, T, dtype=torch.long)
        pos = torch.stack([torch.randperm(T - 2, generator=gen)[:k] + 1 for _ in range(B)])
        flat = (pos + torch.arange(B)[:, None] * T).reshape(-1)  # masked positions in [B*T]
        targets = torch.randint(1, V, (B * k,), generator=gen)
        return [t.to(device) for t in (ids, types, flat, targets)]

    batches = [batch() for _ in range(min(args.warmup_steps + args.steps, 16))]  # used in turn
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step(b):
        opt.zero_grad(set_to_none=True)
        loss = run["fn"](*b)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)  # foreach on the GPU by default
        opt.step()
        return loss.item()

    t0 = time.perf_counter()
    for i in range(args.warmup_steps):  # compilation happens here
        try:
            step(batches[i % len(batches)])
        except Exception as e:  # noqa: BLE001: any compile failure falls back to eager
            if run["fn"] is eager:
                raise
            first = (str(e).strip().splitlines() or [""])[0][:160]
            print(f"torch.compile failed ({type(e).__name__}: {first}); running eagerly", file=sys.stderr, flush=True)
            run["fn"], run["mode"] = eager, "eager: torch.compile failed"
            step(batches[i % len(batches)])
    sync()
    warmup_s = time.perf_counter() - t0
    rates, losses = [], []
    for i in range(args.steps):
        b = batches[(args.warmup_steps + i) % len(batches)]
        sync()
        t = time.perf_counter()
        losses.append(step(b))
        sync()
        rates.append(B * T / (time.perf_counter() - t))
    print(json.dumps({"rates": rates, "mode": run["mode"], "optimizer": optimizer, "warmup_s": warmup_s,
                      "last_loss": losses[-1], "attention": getattr(model.config, "_attn_implementation", "?"),
                      "torch": torch.__version__, "transformers": transformers.__version__,
                      "gpu": torch.cuda.get_device_name() if device.type == "cuda" else "cpu"}))


def run_torch(args, preset, batch, vocab_size):
    """The worker's result, or {'error'}; a failed or timed-out torch.compile run is redone eagerly."""
    def attempt(compile_):
        cmd = [sys.executable, os.path.abspath(__file__), "--torch-worker", "--presets", preset, "--batches", str(batch),
               "--steps", str(args.steps), "--warmup-steps", str(max(1, args.warmup_steps)), "--seq-len", str(args.seq_len),
               "--vocab-size", str(vocab_size), "--torch-device", args.torch_device] + ([] if compile_ else ["--no-compile"])
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.torch_timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {args.torch_timeout} s"}
        if r.stderr.strip():
            sys.stdout.write("".join(f"  | {line}\n" for line in r.stderr.strip().splitlines()[-15:]))
        if r.returncode != 0:
            return {"error": f"exit code {r.returncode}: {last_line(r.stderr)}"}
        try:
            return json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {"error": f"unreadable worker output: {last_line(r.stdout)}"}

    result = attempt(not args.no_compile)
    if "error" in result and not args.no_compile:
        print(f"  PyTorch with torch.compile: {result['error']}; again without it", flush=True)
        eager = attempt(False)
        if "error" not in eager:
            eager["mode"] = "eager: torch.compile " + ("timed out" if "timed out" in result["error"] else "crashed")
        else:
            eager["error"] = f"compiled: {result['error']}; eager: {eager['error']}"
        result = eager
    return result


def write_tsv(path, rows):
    """dev/gpu_check.sh reads this (dev/gpu_check_lib.sh, bench_rows)."""
    if not path:
        return
    fmt = lambda x, f: "-" if x is None else f % x  # noqa: E731
    with open(path, "w") as out:
        out.write("preset\tlayers\thidden\tbatch\tours_tps\tours_mfu\ttorch_tps\ttorch_mfu\ttorch_mode\n")
        for r in rows:
            out.write("\t".join([r["preset"], str(r["L"]), str(r["H"]), str(r["B"]), fmt(r["ours"], "%.1f"),
                                 fmt(r["ours_mfu"], "%.4f"), fmt(r["torch"], "%.1f"), fmt(r["torch_mfu"], "%.4f"),
                                 r["torch_mode"]]) + "\n")


def write_section(path, header_lines, table_lines, notes):
    """This benchmark's section of PATH, written by bench_train.write_markdown with its own markers."""
    write_markdown(path, header_lines, table_lines, notes, markers=(BEGIN, END),
                   title="Training throughput on the GPU: train_mlm against PyTorch (bf16, torch.compile)",
                   made_by="Made by `python3 dev/bench_gpu.py` (also run, shorter, by dev/gpu_check.sh), which rewrites this section.")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ours", default=os.path.join(ROOT, "train_mlm"), help="the train_mlm binary")
    ap.add_argument("--presets", nargs="+", default=["mini", "L12-H768"], help="model sizes (mini, base, L12-H768, ...)")
    ap.add_argument("--batches", type=int, nargs="+", default=[64, 32], help="batch per preset (one value: all)")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--steps", type=int, default=50, help="timed steps on each side")
    ap.add_argument("--warmup-steps", type=int, default=10, help="untimed steps first (PyTorch compiles here; at least 1)")
    ap.add_argument("--no-compile", action="store_true", help="PyTorch eager, without torch.compile")
    ap.add_argument("--torch-timeout", type=int, default=300, help="seconds for one PyTorch worker (compilation included)")
    ap.add_argument("--ours-timeout", type=int, default=300, help="seconds for one train_mlm run")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="the GPU's dense bf16 peak (H100 SXM: 989)")
    ap.add_argument("--markdown", default=os.path.join(ROOT, "docs", "benchmarks.md"), help="'' to skip writing it")
    ap.add_argument("--tsv", default="", help="also write the figures here, as tab-separated values")
    ap.add_argument("--torch-device", default="cuda", help=argparse.SUPPRESS)  # cpu: tries the worker without a GPU
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--vocab-size", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_worker:
        return torch_worker(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # subprocess.run then kills the child it waits for
    if args.steps < 1 or args.warmup_steps < 0:
        raise SystemExit("bench_gpu: --steps must be at least 1 and --warmup-steps at least 0")
    if len(args.batches) == 1:
        args.batches *= len(args.presets)
    if len(args.batches) != len(args.presets):
        raise SystemExit("bench_gpu: give one --batches value, or one per preset")
    gpu = gpu_name()
    if gpu is None and args.torch_device == "cuda":
        raise SystemExit("bench_gpu: no GPU (nvidia-smi lists none); nothing to measure")
    if not os.path.exists(args.ours):
        raise SystemExit(f"bench_gpu: {args.ours} does not exist (run make)")

    data = pick_data("default")
    T, V = args.seq_len, data[2]
    k = masked_per_sequence(T)
    print(f"GPU: {gpu}; data: {data[3]}; T {T}, {k} masked per sequence; median tokens/s of {args.steps} steps after "
          f"{args.warmup_steps} warm-up steps; MFU against {args.peak_tflops:g} TFLOP/s", flush=True)
    rows, info, ours_device = [], {}, "?"
    for preset, B in zip(args.presets, args.batches):
        L, H = preset_sizes(preset)
        row = {"preset": preset, "L": L, "H": H, "B": B, "ours": None, "ours_mfu": None, "torch": None, "torch_mfu": None,
               "torch_mode": "not run", "ours_note": ""}
        rows.append(row)
        per_token = flops_per_token(L, H, V, T)
        mfu = lambda tps: tps * per_token / (args.peak_tflops * 1e12)  # noqa: E731
        t0 = time.time()
        ours = run_ours(args, preset, B, data)
        if "error" in ours:
            row["ours_note"] = ours["error"]
            print(f"  {preset} B {B}: ours failed: {ours['error']}", flush=True)
        else:
            ours_device = ours["device"]
            row["ours"] = statistics.median(ours["rates"])
            row["ours_mfu"] = mfu(row["ours"])
            print(f"  {preset} B {B}: ours {row['ours']:.0f} tok/s, MFU {100 * row['ours_mfu']:.1f}% "
                  f"({time.time() - t0:.0f} s)", flush=True)
        write_tsv(args.tsv, rows)
        t0 = time.time()
        pt = run_torch(args, preset, B, V)
        if "error" in pt:
            row["torch_mode"] = "failed: " + pt["error"]
            print(f"  {preset} B {B}: PyTorch failed: {pt['error']}", flush=True)
        else:
            info = pt
            row["torch"] = statistics.median(pt["rates"])
            row["torch_mfu"] = mfu(row["torch"])
            row["torch_mode"] = pt["mode"]
            print(f"  {preset} B {B}: PyTorch ({pt['mode']}) {row['torch']:.0f} tok/s, MFU {100 * row['torch_mfu']:.1f}%; "
                  f"warm-up (compilation) {pt['warmup_s']:.0f} s, last loss {pt['last_loss']:.3f} ({time.time() - t0:.0f} s)",
                  flush=True)
        write_tsv(args.tsv, rows)

    show = lambda x, f: "-" if x is None else f % x  # noqa: E731
    pct = lambda x: "-" if x is None else f"{100 * x:.1f}%"  # noqa: E731
    table = ["| model | batch | ours tok/s | ours MFU | PyTorch tok/s | PyTorch MFU | ours / PyTorch | PyTorch run |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        ratio = r["ours"] / r["torch"] if r["ours"] and r["torch"] else None
        ours = show(r["ours"], "%.0f") if r["ours"] is not None else "failed: " + r["ours_note"]
        table.append(f"| {r['preset']} (L{r['L']}-H{r['H']}) | {r['B']} | {ours} | {pct(r['ours_mfu'])} "
                     f"| {show(r['torch'], '%.0f')} | {pct(r['torch_mfu'])} "
                     f"| {show(ratio, '%.2fx')} | {r['torch_mode']} |")
    header = [f"GPU: {gpu or info.get('gpu', '?')}; host: {machine()}",
              f"date: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}",
              f"ours: {os.path.basename(args.ours)}, {build_info(args.ours)}; device line: `{ours_device}`",
              f"PyTorch {info.get('torch', '?')}, transformers {info.get('transformers', '?')}: BertForMaskedLM, bf16 autocast, "
              f"torch.compile (default mode) of forward + loss unless the last column says otherwise, attention "
              f"`{info.get('attention', '?')}`, AdamW {info.get('optimizer', '?')}",
              f"data: {data[3]}; T {T}, {k} masked per sequence, dropout 0.1",
              f"median tokens/s over {args.steps} steps after {args.warmup_steps} untimed warm-up steps, each side; "
              f"MFU against {args.peak_tflops:g} TFLOP/s (H100 SXM dense bf16)"]
    print()
    print("\n".join(table))
    if args.markdown:
        notes = ("One step on both sides: forward on B x T tokens, the MLM head on the masked positions only, cross-entropy, "
                 "backward, global gradient-norm clipping, AdamW, and reading the loss. Ours makes its batches (masking, "
                 "upload) inside its step time; PyTorch's batches are made on the GPU beforehand. FLOPs per token: "
                 "6 x (non-embedding parameters + decoder parameters x masked fraction) + 12 x L x T x H (DESIGN.md, "
                 "Measuring). The goals on an H100: L12-H768 at least 50% MFU, mini at least 1.5x PyTorch.\n")
        write_section(args.markdown, header, table, notes)
        print(f"written to {os.path.relpath(os.path.abspath(args.markdown), ROOT)}")
    return 0 if all(r["ours"] is not None for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
