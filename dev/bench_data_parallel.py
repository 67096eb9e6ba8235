#!/usr/bin/env python3
"""dev/bench_data_parallel.py: data-parallel ranks against threads on one CPU machine.

    python3 dev/bench_data_parallel.py               # writes the data_parallel section of docs/benchmarks.md
    python3 dev/bench_data_parallel.py --no-write --steps 10

The same global batch (mini, L4-H256, 32 x 128 tokens a step) trained two ways on the machine's
cores: one process with all of them as OpenMP threads, and `mpirun -np R` ranks of cores / R
threads each, every rank training on its B / R rows and all-reducing the gradients (MPI). Tokens/s
are the global batch's tokens over rank 0's step time (which includes the all-reduce), median
over the timed steps of --rounds runs of each, the two alternating run by run.
"""
import argparse
import os
import shutil
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_train  # noqa: E402
from markdown_section import write_section  # noqa: E402

ROOT = bench_train.ROOT
MPIRUN = ["mpirun", "--bind-to", "none", "--oversubscribe"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ours", default=os.path.join(ROOT, "train_mlm"))
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--warmup-steps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--data", default="auto")
    ap.add_argument("--no-write", dest="write", action="store_false")
    ap.add_argument("--allow-load", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    args = ap.parse_args()
    if not shutil.which("mpirun"):
        sys.exit("bench_data_parallel: mpirun is missing (bash dev/prerequisites.sh mpi, then make)")
    args.cpu_isa = None
    cores = os.cpu_count()
    if cores % args.ranks:
        sys.exit(f"bench_data_parallel: {cores} cores do not split into {args.ranks} ranks")
    data = bench_train.pick_data(args.data)
    load, note = bench_train.load_gate(args, "bench_data_parallel")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    global_batch = bench_train.TOKENS_PER_STEP // 128
    ways = {
        f"1 process x {cores} threads, batch {global_batch}": dict(threads=cores, batch=global_batch, launcher=()),
        f"{args.ranks} ranks x {cores // args.ranks} thread(s), batch {global_batch // args.ranks} each":
            dict(threads=cores // args.ranks, batch=global_batch // args.ranks, launcher=(*MPIRUN, "-np", str(args.ranks))),
    }
    results = {name: [] for name in ways}
    devices = {}
    for r in range(args.rounds):
        for name in (list(ways) if r % 2 == 0 else list(reversed(ways))):
            way = ways[name]
            args.batch = way["batch"]
            rates, _, devices[name] = bench_train.run_ours(args, args.precision, "mini", 128, way["threads"], data, env=env,
                                                           launcher=way["launcher"])
            results[name] += rates
    rows = [f"| {name} | {statistics.median(v):,.0f} |" for name, v in results.items()]
    first, second = (statistics.median(v) for v in results.values())
    write_section(args.out, "data_parallel", [
        "## Data-parallel ranks against threads (CPU)", "",
        f"- machine: {bench_train.machine()}; ISA flags: {bench_train.isa_flags()}; load average before: {load:.2f}",
        f"- run: mini (L4-H256), T 128, a global batch of {global_batch} sequences a step, --precision {args.precision} "
        f"({devices[list(ways)[0]]}), data {data[3]}; {args.rounds} runs of each, {args.steps} timed steps each, median "
        "tokens/s (rank 0's step time, all-reduce included); `python3 dev/bench_data_parallel.py`",
        *([note] if note else []), "",
        "| how | tokens/s (median) |", "|---|---:|", *rows, "",
        f"Ranks / threads: {second / first:.2f}x."], write=args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
