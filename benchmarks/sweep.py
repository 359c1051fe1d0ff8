"""Sweep speed: variants per second for a 4,000-variant grid over mvit_b, in process (the base
parsed once; rows consumed as `--format jsonl` would write them) and end to end (a cold
`mvitdsl sweep ... --format jsonl > /dev/null`). Medians of wall time and of CPU time (the
process's own seconds, which a loaded, shared machine inflates far less), with the ratio to the
targets (> 1 means the target is met) and the load average at the start.

    .venv/bin/python benchmarks/sweep.py
    .venv/bin/python benchmarks/sweep.py --runs 5 --json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import mvitdsl  # noqa: E402
from mvitdsl.explore.output import write_jsonl  # noqa: E402

TARGET_IN_PROCESS = 5_000.0
TARGET_END_TO_END = 3_000.0
# 4 x 10 x 20 x 5 = 4,000 variants; every one is checked and measured.
VARY = ["scale2.blocks=1..4", "scale3.blocks=1..10", "scale4.blocks=1..20", "scale5.blocks=1..5"]


def in_process(spec: Path, runs: int) -> tuple[list[float], list[float], int]:
    """(variants/s wall, variants/s CPU, variants) per run; each run a fresh SweepRun."""
    base = mvitdsl.load_spec(spec)
    wall, cpu, n = [], [], 0
    for _ in range(runs):
        run = mvitdsl.sweep(base, VARY)
        t, c = time.perf_counter(), time.process_time()
        write_jsonl(run, io.StringIO())
        dt, dc = time.perf_counter() - t, time.process_time() - c
        n = run.summary.total
        wall.append(n / dt)
        cpu.append(n / dc)
    return wall, cpu, n


def end_to_end(spec: Path, runs: int) -> tuple[list[float], list[float]]:
    """(variants/s wall, variants/s CPU) of the whole command, import and output included."""
    cmd = [sys.executable, "-m", "mvitdsl", "sweep", str(spec), "--format", "jsonl"]
    for v in VARY:
        cmd += ["--vary", v]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    wall, cpu = [], []
    for _ in range(runs):
        before = os.times()
        t = time.perf_counter()
        subprocess.run(
            cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )
        dt = time.perf_counter() - t
        after = os.times()
        dc = (after.children_user - before.children_user) + (
            after.children_system - before.children_system
        )
        wall.append(4000 / dt)
        cpu.append(4000 / dc)
    return wall, cpu


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spec", type=Path, default=ROOT / "specs" / "mvit_b.mv")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    load = os.getloadavg()[0]
    wall, cpu, n = in_process(args.spec, args.runs)
    e_wall, e_cpu = end_to_end(args.spec, args.runs)
    result = {
        "schema": 1,
        "kind": "bench_sweep",
        "variants": n,
        "load_average": load,
        "cpus": os.cpu_count(),
        "in_process_per_s": statistics.median(wall),
        "in_process_cpu_per_s": statistics.median(cpu),
        "end_to_end_per_s": statistics.median(e_wall),
        "end_to_end_cpu_per_s": statistics.median(e_cpu),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"{n:,} variants of {args.spec.name}, medians of {args.runs} runs, "
        f"load average {load:.1f} on {os.cpu_count()} CPUs"
    )
    for name, key, target in (
        ("in process", "in_process", TARGET_IN_PROCESS),
        ("end to end", "end_to_end", TARGET_END_TO_END),
    ):
        w, c = result[f"{key}_per_s"], result[f"{key}_cpu_per_s"]
        print(
            f"  {name:<11} {w:8,.0f} variants/s wall ({w / target:.2f}x target {target:,.0f}),"
            f" {c:8,.0f} per CPU-second ({c / target:.2f}x)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
