"""The built module at a git revision vs the working tree's, same weights, alternating, medians.

    .venv/bin/python benchmarks/ab_emitter.py --rev 1efb6db [--spec mvit_b] [--train]

Measures whether an emitter change pays: eval forward, fp32, CPU, at the spec's own input
(batch 1), or with --train a training step at a small input; prints wall and process-CPU
medians and the ratio before / after (>= 1: the working tree is as fast or faster).
The revision's package is read with `git archive` into a temporary folder under another name
(`mvitdsl_rev`), so both builds live in one process and alternate on the same warm CPU.
"""

from __future__ import annotations

import argparse
import importlib
import io
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

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import mvitdsl  # noqa: E402

ALIAS = "mvitdsl_rev"


def package_at(rev: str) -> ModuleType:
    """mvitdsl as of `rev`, imported as `mvitdsl_rev` (its absolute imports renamed)."""
    tar = subprocess.run(
        ["git", "archive", rev, "mvitdsl", "grammars"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    folder = Path(tempfile.mkdtemp(prefix="ab_emitter_"))
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(folder, filter="data")
    (folder / "mvitdsl").rename(folder / ALIAS)
    for path in (folder / ALIAS).rglob("*.py"):
        text = path.read_text()
        text = re.sub(r"\b(from|import) mvitdsl\b", rf"\1 {ALIAS}", text)
        path.write_text(text)
    sys.path.insert(0, str(folder))
    return importlib.import_module(ALIAS)


def timed(fn: Any) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rev", required=True, help="the git revision to compare against")
    p.add_argument("--spec", default="mvit_b")
    p.add_argument("--train", action="store_true")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    old = package_at(args.rev)
    path = ROOT / "specs" / f"{args.spec}.mv"
    spec = mvitdsl.load_spec(path)
    size = spec.model.input.size if spec.model.video else spec.model.input.size[1:]
    shape = (spec.model.input.channels, *size)
    if args.train:
        shape = (shape[0], *(max(8, n // 2) for n in shape[1:]))
        spec = mvitdsl.load_spec(path, input_size=shape)
    torch.manual_seed(0)
    after = mvitdsl.build(spec)
    before = old.build(old.load_spec(path, input_size=shape if args.train else None))
    before.load_state_dict(after.state_dict(), strict=True)
    x = torch.randn(2 if args.train else 1, *shape)
    runs = {"before": before, "after": after}
    for gm in runs.values():
        gm.train(args.train)
    with torch.no_grad():
        torch.testing.assert_close(before.eval()(x), after.eval()(x), rtol=1e-4, atol=1e-4)
    for gm in runs.values():
        gm.train(args.train)

    def step(gm: Any) -> None:
        if args.train:
            gm(x).sum().backward()
        else:
            with torch.inference_mode():
                gm(x)

    for gm in runs.values():
        step(gm)  # warm up
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in runs}
    for _ in range(args.reps):
        for name, gm in runs.items():
            times[name].append(timed(lambda gm=gm: step(gm)))
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
           for k, v in times.items()}
    mode = "train step" if args.train else "eval forward"
    print(f"{args.spec} {mode} {tuple(x.shape)}, {args.threads} thread(s), {args.reps} reps")
    for name, (wall, cpu) in med.items():
        print(f"  {name:7s} wall {wall * 1e3:9.1f} ms   cpu {cpu * 1e3:9.1f} ms")
    ratio_wall = med["before"][0] / med["after"][0]
    ratio_cpu = med["before"][1] / med["after"][1]
    print(f"  ratio before/after: wall {ratio_wall:.3f}x, cpu {ratio_cpu:.3f}x")


if __name__ == "__main__":
    main()
