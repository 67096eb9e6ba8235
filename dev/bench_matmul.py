#!/usr/bin/env python3
"""dev/bench_matmul.py: GFLOP/s of the CPU linear layer, ours against PyTorch (a benchmark, not a test).

    python3 dev/bench_matmul.py                       # mini and base shapes, 1 and 2 threads
    python3 dev/bench_matmul.py --preset mini --threads 2 --repeat 9

Ours is kernels/matmul.cpp, built here into build/bench_matmul.so (with dev/bench_matmul.cpp, a C
entry point) by g++ -O3 -march=native -fopenmp, and called through ctypes on the same tensors as
PyTorch, in the same process with the same thread count (one OpenMP runtime: torch's). Per shape
the two sides alternate run by run, after one untimed warm-up each, and the median of --repeat
runs is reported, so that other load on the machine hits both alike.
  forward   ours: matmul_forward (with bias)        torch: F.linear(x, w, b)
  backward  ours: matmul_backward (dinp, dweight, dbias)
            torch: autograd.grad of F.linear's output w.r.t. (x, w, b), the forward not timed
FLOPs: forward 2*N*IC*OC, backward 4*N*IC*OC (the bias terms are not counted).
The load average is printed: on a shared machine the absolute figures drop (with 2 threads on 2
busy cores, below the 1-thread figures for both sides); read the ratios, or rerun with --min.
The "step" row of a preset weighs each shape by how often one training step of that model runs
it (per layer: the fused Q/K/V projection, the attention output, FFN in and FFN out; once: the
MLM head's dense layer and its decoder over the masked positions) and compares the summed times.
"""
import argparse
import ctypes
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SO = os.path.join(ROOT, "build", "bench_matmul.so")
SOURCES = [os.path.join(ROOT, p) for p in ("dev/bench_matmul.cpp", "kernels/matmul.cpp", "kernels/matmul.h",
                                           "kernels/common.h")]

# name -> (L, C, F); shared: N = B*T = 32*128 tokens, M = 15% of them masked, V = 30522 (BERT's vocabulary).
PRESETS = {"mini": (4, 256, 1024), "base": (12, 768, 3072)}
N_TOKENS, N_MASKED, VOCAB = 4096, 614, 30522


def shapes(preset):
    """(label, N, IC, OC, uses per training step), as model/bert.cpp calls matmul_forward/backward."""
    L, C, F = PRESETS[preset]
    return [("attn qkv", N_TOKENS, C, 3 * C, L), ("attn out", N_TOKENS, C, C, L), ("ffn in", N_TOKENS, C, F, L),
            ("ffn out", N_TOKENS, F, C, L), ("mlm dense", N_MASKED, C, C, 1), ("mlm decoder", N_MASKED, C, VOCAB, 1)]


def build():
    if os.path.exists(SO) and os.path.getmtime(SO) > max(os.path.getmtime(p) for p in SOURCES):
        return
    os.makedirs(os.path.dirname(SO), exist_ok=True)
    cxx = os.environ.get("CXX", "g++")
    cmd = [cxx, "-O3", "-march=native", "-std=c++17", "-fopenmp", "-fPIC", "-shared", "-I" + ROOT,
           SOURCES[0], SOURCES[1], "-o", SO]
    print(" ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in cmd), flush=True)
    subprocess.run(cmd, check=True)


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


def bench_shape(lib, torch, N, IC, OC, repeat, stat):
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, IC, generator=g)
    w = torch.randn(OC, IC, generator=g) * 0.02
    b = torch.randn(OC, generator=g)
    dout = torch.randn(N, OC, generator=g)
    out = torch.empty(N, OC)
    dx, dw, db = torch.zeros(N, IC), torch.zeros(OC, IC), torch.zeros(OC)
    p = lambda t: ctypes.c_void_p(t.data_ptr())

    def ours_fwd():
        lib.bench_forward(p(out), p(x), p(w), p(b), N, IC, OC)

    def torch_fwd():
        F.linear(x, w, b)

    def ours_bwd():
        lib.bench_backward(p(dx), p(dw), p(db), p(dout), p(x), p(w), N, IC, OC)

    xr, wr, br = (t.clone().requires_grad_() for t in (x, w, b))
    y = F.linear(xr, wr, br)

    def torch_bwd():
        torch.autograd.grad(y, (xr, wr, br), dout, retain_graph=True)

    fwd = median_pair(repeat, ours_fwd, torch_fwd, stat)
    bwd = median_pair(repeat, ours_bwd, torch_bwd, stat)
    # Sanity: both sides computed the same forward.
    ref = F.linear(x, w, b)
    err = float((out - ref).norm() / ref.norm())
    if err > 1e-5:
        sys.exit(f"forward mismatch for {N}x{IC}x{OC}: relative error {err:.2e}")
    return fwd, bwd


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--min", action="store_true",
                    help="report the fastest run instead of the median (less disturbed by other load)")
    args = ap.parse_args()

    import torch  # before loading ours: the .so then binds to torch's libgomp, one OpenMP runtime

    build()
    lib = ctypes.CDLL(SO)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    stat = min if args.min else statistics.median
    print(f"{cpu}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; torch {torch.__version__}; "
          f"{'best' if args.min else 'median'} of {args.repeat} runs, GFLOP/s")
    print(f"{'threads':>7} {'preset':>6} {'shape (N x IC -> OC)':>24} {'':>14} | {'fwd ours':>8} {'torch':>7} "
          f"{'ratio':>6} | {'bwd ours':>8} {'torch':>7} {'ratio':>6}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        lib.bench_set_threads(threads)
        for preset in args.preset:
            step = [0.0, 0.0, 0.0, 0.0]  # seconds per training step: fwd ours, torch, bwd ours, torch
            for label, N, IC, OC, uses in shapes(preset):
                (fo, ft), (bo, bt) = bench_shape(lib, torch, N, IC, OC, args.repeat, stat)
                flops = 2.0 * N * IC * OC
                for i, t in enumerate((fo, ft, bo, bt)):
                    step[i] += uses * t
                print(f"{threads:>7} {preset:>6} {f'{N} x {IC} -> {OC}':>24} {label:>14} | "
                      f"{flops / fo / 1e9:>8.1f} {flops / ft / 1e9:>7.1f} {ft / fo:>5.2f}x | "
                      f"{2 * flops / bo / 1e9:>8.1f} {2 * flops / bt / 1e9:>7.1f} {bt / bo:>5.2f}x", flush=True)
            fo, ft, bo, bt = step
            print(f"{threads:>7} {preset:>6} {'one step, ms':>24} {'':>14} | {fo * 1e3:>8.1f} {ft * 1e3:>7.1f} "
                  f"{ft / fo:>5.2f}x | {bo * 1e3:>8.1f} {bt * 1e3:>7.1f} {bt / bo:>5.2f}x", flush=True)


if __name__ == "__main__":
    main()
