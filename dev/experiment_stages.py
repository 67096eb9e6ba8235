"""dev/experiment_stages.py: what every experiment script's stages share (dev/dont_stop/,
dev/well_read/): run a program with its output in a log file and its wall time measured, and read
the records of a run folder's log.jsonl (which tell whether a stage is complete)."""
import json
import os
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def run_logged(cmd, log, program):
    """Runs CMD from the repository root with its output in LOG; returns the wall seconds, or exits
    naming PROGRAM, the command and the log when it fails."""
    t0 = time.time()
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "w") as f:
        r = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        sys.exit(f"{program}: {' '.join(cmd)} failed (exit {r.returncode}); see {log}")
    return time.time() - t0


def records(folder, kind):
    """The log.jsonl records of KIND ("train", "eval", "test") in a run folder; none when it has no log."""
    path = os.path.join(folder, "log.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if f'"kind":"{kind}"' in line]
