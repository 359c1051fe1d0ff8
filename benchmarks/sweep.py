"""Sweep speed: variants per second for a 4,000-variant grid over mvit_b, in process (the base
parsed once; rows consumed as `--format jsonl` would write them) and end to end (a cold
`mvitdsl sweep ... --format jsonl > /dev/null`). Medians of wall time and of CPU time (the
process's own seconds, which a loaded, shared machine inflates far less), with the ratio to the
targets (> 1 means the target is met) and the load average at the start.

With `--rev REV`, the package at that git revision (read with `git archive` into a temporary
folder as `mvitdsl_rev`) runs too, alternating with the working tree's run by run, so that both
see the same machine; the ratio after / before is printed (> 1: the working tree is faster).

    .venv/bin/python benchmarks/sweep.py
    .venv/bin/python benchmarks/sweep.py --runs 5 --json
    .venv/bin/python benchmarks/sweep.py --runs 5 --rev ce8a91d
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import mvitdsl  # noqa: E402

TARGET_IN_PROCESS = 5_000.0
TARGET_END_TO_END = 3_000.0
# 4 x 10 x 20 x 5 = 4,000 variants; every one is checked and measured.
VARY = ["scale2.blocks=1..4", "scale3.blocks=1..10", "scale4.blocks=1..20", "scale5.blocks=1..5"]


ALIAS = "mvitdsl_rev"


def package_at(rev: str) -> tuple[ModuleType, Path]:
    """mvitdsl as of `rev`, imported as `mvitdsl_rev` (its absolute imports renamed), and the
    folder that holds it (for the end-to-end runs' PYTHONPATH)."""
    tar = subprocess.run(
        ["git", "archive", rev, "mvitdsl", "grammars"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    folder = Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(folder, filter="data")
    (folder / "mvitdsl").rename(folder / ALIAS)
    for path in (folder / ALIAS).rglob("*.py"):
        text = re.sub(r"\b(from|import) mvitdsl\b", rf"\1 {ALIAS}", path.read_text())
        path.write_text(text)
    sys.path.insert(0, str(folder))
    return importlib.import_module(ALIAS), folder


def in_process(pkg: Any, spec: Path) -> tuple[float, float, int]:
    """(variants/s wall, variants/s CPU, variants) of one run: a fresh sweep, rows written as
    JSON Lines into memory."""
    base = pkg.load_spec(spec)
    run = pkg.sweep(base, VARY)
    sink = io.StringIO()
    t, c = time.perf_counter(), time.process_time()
    for row in run:
        sink.write(json.dumps(row, separators=(",", ":")) + "\n")
    dt, dc = time.perf_counter() - t, time.process_time() - c
    n = run.summary.total
    return n / dt, n / dc, n


def end_to_end(
    module: str, spec: Path, pythonpath: Path, bytecode: bool = True
) -> tuple[float, float]:
    """(variants/s wall, variants/s CPU) of the whole command, import and output included;
    with `bytecode`, Python's compiled modules are written and read as an installed package's
    are (else every run compiles the sources, as under PYTHONDONTWRITEBYTECODE=1)."""
    cmd = [sys.executable, "-m", module, "sweep", str(spec), "--format", "jsonl"]
    for v in VARY:
        cmd += ["--vary", v]
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if not bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    before = os.times()
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    dt = time.perf_counter() - t
    after = os.times()
    dc = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return 4000 / dt, 4000 / dc


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Medians per tree ("after": the working tree; "before": --rev), runs alternating."""
    trees: dict[str, tuple[Any, str, Path]] = {"after": (mvitdsl, "mvitdsl", ROOT)}
    if args.rev:
        old, folder = package_at(args.rev)
        trees["before"] = (old, ALIAS, folder)
    runs: dict[str, dict[str, list[float]]] = {k: {} for k in trees}
    n = 0
    for _ in range(args.runs):
        for name, (pkg, _, _) in trees.items():
            wall, cpu, n = in_process(pkg, args.spec)
            runs[name].setdefault("in_process_per_s", []).append(wall)
            runs[name].setdefault("in_process_cpu_per_s", []).append(cpu)
    for _, module, path in trees.values():
        end_to_end(module, args.spec, path, args.bytecode)  # writes the bytecode: not timed
    for _ in range(args.runs):
        for name, (_, module, path) in trees.items():
            wall, cpu = end_to_end(module, args.spec, path, args.bytecode)
            runs[name].setdefault("end_to_end_per_s", []).append(wall)
            runs[name].setdefault("end_to_end_cpu_per_s", []).append(cpu)
    out: dict[str, Any] = {"variants": n}
    for name, series in runs.items():
        out[name] = {k: statistics.median(v) for k, v in series.items()}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spec", type=Path, default=ROOT / "specs" / "mvit_b.mv")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--rev", help="a git revision to run alternately with the working tree")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--no-bytecode",
        dest="bytecode",
        action="store_false",
        help="end to end without compiled modules (every run compiles the sources)",
    )
    args = p.parse_args()
    load = os.getloadavg()[0]
    got = measure(args)
    result = {
        "schema": 1,
        "kind": "bench_sweep",
        "variants": got["variants"],
        "load_average": load,
        "load_average_after": os.getloadavg()[0],
        "cpus": os.cpu_count(),
        "bytecode": args.bytecode,
        **got["after"],
    }
    if args.rev:
        result["rev"] = args.rev
        result["before"] = got["before"]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        report(result, args)
    return 0


def report(result: dict[str, Any], args: argparse.Namespace) -> None:
    """The figures as lines: each against its target, and against --rev's."""
    load = result["load_average"]
    print(
        f"{result['variants']:,} variants of {args.spec.name}, medians of {args.runs} runs, "
        f"load average {load:.1f} -> {result['load_average_after']:.1f} on {os.cpu_count()} CPUs"
        f"{'' if args.bytecode else ', no bytecode'}"
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
        if args.rev:
            bw, bc = result["before"][f"{key}_per_s"], result["before"][f"{key}_cpu_per_s"]
            print(
                f"  {'':<11} {bw:8,.0f} wall, {bc:8,.0f} per CPU-second at {args.rev}: "
                f"after / before {w / bw:.2f}x wall, {c / bc:.2f}x CPU"
            )


if __name__ == "__main__":
    raise SystemExit(main())
