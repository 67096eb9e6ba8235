#!/usr/bin/env python3
"""dev/bench_wait_policy.py: how OpenMP's wait policy changes ./train_mlm's speed on the CPU, on a
quiet machine and on one whose cores are taken by other work.

    python3 dev/bench_wait_policy.py                 # writes the wait_policy section of docs/benchmarks.md
    python3 dev/bench_wait_policy.py --no-write --steps 10

The programs make OpenMP threads wait passively between parallel regions (they sleep) unless the
environment says otherwise (common/util.h, run_program). This measures that choice against the
runtime's own default (a spin of about GOMP_SPINCOUNT iterations, then sleep) and OMP_WAIT_POLICY=active
(spin without end): tokens/s of mini (L4-H256) training steps, 2 threads, bf16 where the CPU has
AMX (else fp32), median over the timed steps of --rounds runs per policy, the policies alternating
run by run. Then the same with --busy processes spinning on the CPU beside the run (the situation
where spinning threads hurt: each barrier waits for a thread the scheduler has not run).
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_train  # noqa: E402
from markdown_section import write_section  # noqa: E402

ROOT = bench_train.ROOT
POLICIES = {  # name -> environment changes (None: remove the variable)
    "passive (the programs' default)": {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": None},
    "runtime default (spin, then sleep)": {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": "300000"},
    "active (spin)": {"OMP_WAIT_POLICY": "active", "GOMP_SPINCOUNT": None},
}


def run(args, env_changes, data):
    env = {k: v for k, v in os.environ.items() if k not in env_changes}
    env.update({k: v for k, v in env_changes.items() if v is not None})
    return bench_train.run_ours(args, args.precision, "mini", 128, 2, data, env=env)[0]


def measure(args, data, label):
    results = {name: [] for name in POLICIES}
    for r in range(args.rounds):
        names = list(POLICIES) if r % 2 == 0 else list(reversed(POLICIES))
        for name in names:
            results[name] += run(args, POLICIES[name], data)
    rows = []
    for name, values in results.items():
        rows.append(f"| {label} | {name} | {statistics.median(values):,.0f} |")
        print(rows[-1], flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ours", default=os.path.join(ROOT, "train_mlm"))
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--warmup-steps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--busy", type=int, default=2, help="spinning processes beside the run in the busy part")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--data", default="auto")
    ap.add_argument("--no-write", dest="write", action="store_false")
    ap.add_argument("--allow-load", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    args = ap.parse_args()
    args.batch, args.cpu_isa = 0, None
    data = bench_train.pick_data(args.data)
    load, note = bench_train.load_gate(args, "bench_wait_policy")
    rows = measure(args, data, "quiet")
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        time.sleep(1)
        rows += measure(args, data, f"{args.busy} spinning processes beside it")
    finally:
        for p in spinners:
            p.kill()
    write_section(args.out, "wait_policy", [
        "## OpenMP wait policy (CPU)", "",
        f"- machine: {bench_train.machine()}; ISA flags: {bench_train.isa_flags()}; load average before: {load:.2f}",
        f"- run: mini (L4-H256), T 128, {bench_train.TOKENS_PER_STEP // 128} sequences a step, 2 threads, --precision "
        f"{args.precision}, data {data[3]}; {args.rounds} runs per policy, {args.steps} timed steps each; "
        "`python3 dev/bench_wait_policy.py`",
        *([note] if note else []), "",
        "| machine | OpenMP wait | tokens/s (median) |", "|---|---|---:|", *rows], write=args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
