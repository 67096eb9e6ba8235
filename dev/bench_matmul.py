#!/usr/bin/env python3
"""dev/bench_matmul.py: GFLOP/s of the CPU linear layer in fp32 and bf16, ours against PyTorch (a benchmark).

    python3 dev/bench_matmul.py                  # mini and base shapes, 1 and 2 threads, fp32 and bf16
    python3 dev/bench_matmul.py --preset mini --threads 2 --repeat 9 --no-write
    python3 dev/bench_matmul.py --precision bf16 --isa amx avx512bf16 avx512 --no-write   # each kernel path

What it measures: the time of one linear layer, forward and backward, on the shapes one training
step of the model runs, for ours (kernels/matmul*.cpp) and for PyTorch, reported as GFLOP/s and
as the ratio ours / PyTorch (above 1: ours is faster).
  fp32  ours: matmul_forward / matmul_backward (dinp, dweight, dbias), MatmulPrecision::fp32
        torch: F.linear(x, w, b) on fp32 tensors; backward: autograd.grad of its output w.r.t.
        (x, w, b), the forward not timed
  bf16  ours: the same with MatmulPrecision::bf16 (operands rounded to bf16, fp32 accumulation),
        called on fp32 tensors as the model holds them, so the rounding is in the time
        torch: F.linear and its backward on bf16 tensors (oneDNN; AMX where the CPU has it)
FLOPs: forward 2*N*IC*OC, backward 4*N*IC*OC (the bias terms are not counted).

How: ours is built by `make build/bench_matmul.so` (dev/bench_matmul.cpp, C entry points, linked
against build/libwellread.a) and called through ctypes on the same tensors as PyTorch, in the same
process with the same thread count (one OpenMP runtime: torch's). Per shape the two sides
alternate run by run, after one untimed warm-up each, and the median of --repeat runs is reported
(--min: the fastest), so that other load on the machine hits both alike. Before timing, one call of
each of ours is checked against PyTorch's fp32 results. --isa switches our kernels to an
instruction-set level (wr::set_cpu_isa: generic, avx2, avx512, avx512bf16, amx, auto = the best),
one table block per level; PyTorch always runs its own best path.
The "one step, ms" row of a preset weighs each shape by how often one training step of that model
runs it (per layer: the fused Q/K/V projection, the attention output, FFN in and FFN out; once:
the MLM head's dense layer and its decoder over the masked positions) and compares the summed times.

The CPU model, its ISA flags and the load average are printed and recorded. As with
dev/bench_train.py, a figure counts only from a quiet machine: above a 1-minute load average of
0.5 the markdown is not written unless --allow-load (then marked as taken under load). The table
goes to stdout and, unless --no-write, to this benchmark's section of docs/benchmarks.md (--out).
"""
import argparse
import ctypes
import datetime
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train import ROOT, isa_flags, load_gate, machine, write_markdown  # noqa: E402

SO = os.path.join(ROOT, "build", "bench_matmul.so")
PRECISIONS = {"fp32": 0, "bf16": 1}  # the int flag of dev/bench_matmul.cpp's entry points
TOLERANCE = {"fp32": 1e-5, "bf16": 1e-2}  # relative error against PyTorch's fp32 results

# name -> (L, C, F); shared: N = B*T = 32*128 tokens, M = 15% of them masked, V = 30522 (BERT's vocabulary).
PRESETS = {"mini": (4, 256, 1024), "base": (12, 768, 3072)}
N_TOKENS, N_MASKED, VOCAB = 4096, 614, 30522

BEGIN, END = "<!-- bench_matmul: begin -->", "<!-- bench_matmul: end -->"
TITLE = "The linear layer on the CPU: GEMM throughput, ours against PyTorch (fp32 and bf16)"
MADE_BY = "Made by `python3 dev/bench_matmul.py`, which rewrites this section."


def shapes(preset):
    """(label, N, IC, OC, uses per training step), as model/bert.cpp calls matmul_forward/backward."""
    L, C, F = PRESETS[preset]
    return [("attn qkv", N_TOKENS, C, 3 * C, L), ("attn out", N_TOKENS, C, C, L), ("ffn in", N_TOKENS, C, F, L),
            ("ffn out", N_TOKENS, F, C, L), ("mlm dense", N_MASKED, C, C, 1), ("mlm decoder", N_MASKED, C, VOCAB, 1)]


def load_library():
    """Builds build/bench_matmul.so with the project's Makefile (a no-op when up to date) and loads it."""
    cmd = ["make", "--no-print-directory", f"-j{os.cpu_count()}", os.path.relpath(SO, ROOT)]
    if subprocess.run(cmd, cwd=ROOT).returncode != 0:
        raise SystemExit(f"bench_matmul: `{' '.join(cmd)}` failed")
    lib = ctypes.CDLL(SO)
    p, i = ctypes.c_void_p, ctypes.c_int
    lib.bench_set_threads.argtypes = [i]
    lib.bench_set_isa.argtypes, lib.bench_set_isa.restype = [ctypes.c_char_p, ctypes.c_char_p, i], i
    lib.bench_isa_name.argtypes = [ctypes.c_char_p, i]
    lib.bench_forward.argtypes = [p, p, p, p, i, i, i, i]
    lib.bench_backward.argtypes = [p, p, p, p, p, p, i, i, i, i]
    return lib


def set_isa(lib, name):
    """Switches our kernels to `name`; returns the level now in use, or None when this CPU cannot run it."""
    err = ctypes.create_string_buffer(512)
    status = lib.bench_set_isa(name.encode(), err, len(err))
    if status < 0:
        raise SystemExit(f"bench_matmul: --isa {name}: {err.value.decode()}")
    if status == 0:
        return None
    buf = ctypes.create_string_buffer(64)
    lib.bench_isa_name(buf, len(buf))
    return buf.value.decode()


def median_pair(repeat, ours, theirs, stat=statistics.median):
    """Median (or stat) seconds of each, the two alternating run by run after a warm-up each."""
    ours(), theirs()
    a, b = [], []
    for _ in range(repeat):
        for fn, times in ((ours, a), (theirs, b)):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return stat(a), stat(b)


def bench_shape(lib, torch, precision, N, IC, OC, repeat, stat):
    """((forward ours, torch), (backward ours, torch)) seconds for one shape and precision."""
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, IC, generator=g)
    w = torch.randn(OC, IC, generator=g) * 0.02
    b = torch.randn(OC, generator=g)
    dout = torch.randn(N, OC, generator=g)
    out = torch.empty(N, OC)
    dx, dw, db = torch.zeros(N, IC), torch.zeros(OC, IC), torch.zeros(OC)
    flag = PRECISIONS[precision]
    p = lambda t: ctypes.c_void_p(t.data_ptr())  # noqa: E731

    def ours_fwd():
        lib.bench_forward(p(out), p(x), p(w), p(b), N, IC, OC, flag)

    def ours_bwd():  # accumulates into dx, dw, db: fine for timing
        lib.bench_backward(p(dx), p(dw), p(db), p(dout), p(x), p(w), N, IC, OC, flag)

    # Both sides compute the same thing: one call of each of ours against PyTorch in fp32.
    xr, wr, br = (t.clone().requires_grad_() for t in (x, w, b))
    ref = F.linear(xr, wr, br)
    refs = (ref.detach(), *torch.autograd.grad(ref, (xr, wr, br), dout))
    ours_fwd()
    ours_bwd()
    for name, got, want in zip(("forward", "dinp", "dweight", "dbias"), (out, dx, dw, db), refs):
        err = float((got - want).norm() / want.norm())
        if err > TOLERANCE[precision]:
            sys.exit(f"bench_matmul: {precision} {name} mismatch for {N} x {IC} -> {OC}: relative error {err:.2e}")

    dtype = torch.float32 if precision == "fp32" else torch.bfloat16
    xt, wt, bt, dt = (t.to(dtype) for t in (x, w, b, dout))
    xg, wg, bg = (t.clone().requires_grad_() for t in (xt, wt, bt))
    y = F.linear(xg, wg, bg)

    def torch_fwd():
        F.linear(xt, wt, bt)

    def torch_bwd():
        torch.autograd.grad(y, (xg, wg, bg), dt, retain_graph=True)

    return median_pair(repeat, ours_fwd, torch_fwd, stat), median_pair(repeat, ours_bwd, torch_bwd, stat)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--precision", nargs="+", default=list(PRECISIONS), choices=list(PRECISIONS))
    ap.add_argument("--isa", nargs="+", default=["auto"],
                    help="our kernels' instruction-set levels to run, each in turn (generic, avx2, avx512, avx512bf16, "
                         "amx; auto = the best; default auto); one this CPU lacks is skipped")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--min", action="store_true",
                    help="report the fastest run instead of the median (less disturbed by other load)")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"),
                    help="the markdown file whose section is rewritten (default: docs/benchmarks.md)")
    ap.add_argument("--no-write", dest="write", action="store_false", help="print only; write no markdown")
    ap.add_argument("--allow-load", action="store_true",
                    help="write the markdown even when the load average is above 0.5, marked as invalid")
    args = ap.parse_args()

    _, under_load = load_gate(args, "bench_matmul")
    load_before = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    import torch  # before loading ours: the .so then binds to torch's libgomp, one OpenMP runtime

    lib = load_library()
    cpu, flags = machine(), isa_flags()
    stat = min if args.min else statistics.median
    print(f"CPU: {cpu}\nISA flags: {flags}")
    runnable = [wanted for wanted in args.isa if set_isa(lib, wanted)]  # every name checked before any timing
    for wanted in args.isa:
        if wanted not in runnable:
            print(f"(--isa {wanted}: this CPU cannot run it; skipped)")
    print(f"load average {load_before}; torch {torch.__version__}; {'best' if args.min else 'median'} of "
          f"{args.repeat} runs, GFLOP/s; ratio = ours / PyTorch")
    print(f"{'prec':>4} {'isa':>10} {'threads':>7} {'preset':>6} {'shape (N x IC -> OC)':>24} {'':>11} | "
          f"{'fwd ours':>8} {'torch':>7} {'ratio':>6} | {'bwd ours':>8} {'torch':>7} {'ratio':>6}")
    table = ["| precision | our ISA | threads | preset | shape (N x IC -> OC) | layer | forward ours | PyTorch | "
             "ours / PyTorch | backward ours | PyTorch | ours / PyTorch |",
             "|---|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|"]
    isas_run = []  # the levels in use, as the library names them

    def row(precision, isa, threads, preset, shape, label, cells):
        print(f"{precision:>4} {isa:>10} {threads:>7} {preset:>6} {shape:>24} {label:>11} | {cells[0]:>8} {cells[1]:>7} "
              f"{cells[2]:>6} | {cells[3]:>8} {cells[4]:>7} {cells[5]:>6}", flush=True)
        table.append(f"| {precision} | {isa} | {threads} | {preset} | {shape} | {label} | " + " | ".join(cells) + " |")

    for wanted in runnable:
        isa = set_isa(lib, wanted)
        isas_run.append(isa)
        for precision in args.precision:
            for threads in args.threads:
                torch.set_num_threads(threads)
                lib.bench_set_threads(threads)
                for preset in args.preset:
                    step = [0.0, 0.0, 0.0, 0.0]  # seconds per training step: fwd ours, torch, bwd ours, torch
                    for label, N, IC, OC, uses in shapes(preset):
                        (fo, ft), (bo, bt) = bench_shape(lib, torch, precision, N, IC, OC, args.repeat, stat)
                        flops = 2.0 * N * IC * OC
                        for i, t in enumerate((fo, ft, bo, bt)):
                            step[i] += uses * t
                        row(precision, isa, threads, preset, f"{N} x {IC} -> {OC}", label,
                            [f"{flops / fo / 1e9:.1f}", f"{flops / ft / 1e9:.1f}", f"{ft / fo:.2f}x",
                             f"{2 * flops / bo / 1e9:.1f}", f"{2 * flops / bt / 1e9:.1f}", f"{bt / bo:.2f}x"])
                    fo, ft, bo, bt = step
                    row(precision, isa, threads, preset, "one step, ms", "",
                        [f"{fo * 1e3:.1f}", f"{ft * 1e3:.1f}", f"{ft / fo:.2f}x",
                         f"{bo * 1e3:.1f}", f"{bt * 1e3:.1f}", f"{bt / bo:.2f}x"])

    load_after = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"(load average 1/5/15 min: before {load_before}, after {load_after})")
    if under_load:
        print(under_load)
    if args.write and isas_run:
        header = [f"machine: {cpu}", f"ISA flags: {flags}",
                  f"date: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}; load average (1/5/15 min) before the "
                  f"run {load_before}, after {load_after}",
                  f"ours: build/bench_matmul.so (kernels/matmul*.cpp), instruction-set levels {', '.join(isas_run)}; "
                  f"PyTorch {torch.__version__}",
                  f"GFLOP/s, {'the best' if args.min else 'the median'} of {args.repeat} runs of each side, alternating"]
        notes = ("Forward: ours matmul_forward against F.linear; backward: ours matmul_backward (dinp, dweight, dbias) "
                 "against autograd.grad of F.linear's output, the forward not timed. FLOPs: forward 2 N IC OC, backward "
                 "4 N IC OC. fp32: fp32 tensors on both sides. bf16: ours is called on fp32 tensors with "
                 "MatmulPrecision::bf16 (operands rounded to bf16 inside the call, fp32 accumulation), PyTorch on bf16 "
                 "tensors. The 'one step, ms' rows sum each shape's time times its uses in one training step "
                 "(per layer: Q/K/V, attention output, FFN in and out; once: the MLM head's dense layer and the decoder "
                 "over 614 masked positions).\n")
        write_markdown(args.out, header, ([under_load, ""] if under_load else []) + table, notes,
                       markers=(BEGIN, END), title=TITLE, made_by=MADE_BY)
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
