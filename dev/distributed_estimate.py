#!/usr/bin/env python3
"""dev/distributed_estimate.py: the data-parallel scaling estimate on paper (docs/distributed.md).

    python3 dev/distributed_estimate.py      # rewrites the scaling_estimate section of docs/distributed.md

For mini (L4-H256) and base (L12-H768) with the bert-base-uncased vocabulary (V = 30522): the
gradient bytes each step all-reduces (every parameter in fp32, one buffer), the time a ring
all-reduce takes for them, t = 2 (N-1)/N x bytes / bandwidth + 2 (N-1) x latency, over 100 Gb/s
links and over NVLink, and the step time it adds to. The programs all-reduce once per optimizer
step, after the last micro-batch's backward, without overlapping it with compute, so the
efficiency is t_step / (t_step + t_allreduce); gradient accumulation (A micro-batches a step)
divides the all-reduce's share by A.

Step times: the CPU's are measured (docs/benchmarks.md, bench_train: tokens/s of bf16 training on
this machine's 2 cores); the GPU's are estimates from the FLOP count (dev/bench_train.py's
flops_per_token) at an assumed sustained fraction of the H100's dense bf16 peak, since no GPU has
measured them yet: replace them with `make bench` figures from a lent GPU.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train import flops_per_token  # noqa: E402
from markdown_section import markers, replace_section  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
V, P, TYPES, T = 30522, 512, 2, 128
TOKENS = 32 * T  # a rank's micro-batch: 32 x 128
LINKS = {  # name -> (bytes/s of one link's ring bus bandwidth, latency per hop in s)
    "100 Gb/s": (100e9 / 8, 10e-6),
    "NVLink (H100, ~350 GB/s NCCL bus bandwidth)": (350e9, 5e-6),
}
H100_BF16_PEAK = 989e12
MODELS = {  # name -> (L, H, measured CPU tokens/s on 2 cores bf16, assumed GPU fraction of peak)
    "mini (L4-H256)": (4, 256, 11597, 0.10),
    "base (L12-H768)": (12, 768, None, 0.40),
}


def parameters(L, H):
    """BertForMaskedLM's parameters as the one buffer holds them (DESIGN.md)."""
    F = 4 * H
    embeddings = V * H + P * H + TYPES * H + 2 * H
    layer = 4 * H * H + 4 * H + 2 * H + H * F + F + F * H + H + 2 * H
    head = H * H + H + 2 * H + V  # transform, LayerNorm, decoder bias (the decoder is the word embeddings)
    pooler = H * H + H
    return embeddings + L * layer + head + pooler


def ring_seconds(nbytes, n, link):
    bandwidth, latency = LINKS[link]
    return 2 * (n - 1) / n * nbytes / bandwidth + 2 * (n - 1) * latency


def main():
    rows = []
    for name, (L, H, cpu_rate, gpu_fraction) in MODELS.items():
        n_params = parameters(L, H)
        nbytes = 4 * n_params
        steps = {"H100 (estimate)": TOKENS * flops_per_token(L, H, V, T) / (gpu_fraction * H100_BF16_PEAK)}
        if cpu_rate:
            steps["CPU, 2 cores (measured)"] = TOKENS / cpu_rate
        for where, t_step in steps.items():
            for link in (LINKS if where.startswith("H100") else ["100 Gb/s"]):
                cells = []
                for n in (2, 8, 64):
                    t = ring_seconds(nbytes, n, link)
                    cells.append(f"{1e3 * t:.1f} ms: {100 * t_step / (t_step + t):.0f}% / {100 * 8 * t_step / (8 * t_step + t):.0f}%")
                rows.append(f"| {name} | {n_params / 1e6:.1f}M, {nbytes / 1e6:.0f} MB | {where}: {1e3 * t_step:.1f} ms | {link} | "
                            + " | ".join(cells) + " |")
    begin, end = markers("scaling_estimate")
    text = "\n".join([
        begin,
        f"Per rank a micro-batch of 32 x {T} tokens; gradients in fp32. Each cell: the ring all-reduce's time, then the "
        "expected efficiency (step time over step time plus all-reduce) without accumulation / with 8 micro-batches a step. "
        "GPU step times assume a sustained "
        + ", ".join(f"{100 * f:.0f}% ({name.split()[0]})" for name, (_, _, _, f) in MODELS.items())
        + " of the H100's 989 TFLOP/s dense bf16 peak; latency per hop 10 µs (network), 5 µs (NVLink). "
        "Made by `python3 dev/distributed_estimate.py`.", "",
        "| model | gradient | step time (32 x 128 tokens) | link | 2 ranks | 8 ranks | 64 ranks |",
        "|---|---|---|---|---|---|---|", *rows, end])
    replace_section(os.path.join(ROOT, "docs", "distributed.md"), begin, end, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
