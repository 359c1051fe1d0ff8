"""The emitter at a git revision vs the working tree's, same weights, alternating, medians.

    .venv/bin/python benchmarks/ab_emitter.py --rev fd6f534~1 [--spec mvit_b] [--train]

Measures whether an emitter change pays: eval forward (1, 3, 16, 224, 224), or with --train a
training step (2, 3, 8, 128, 128); prints wall and process-CPU medians and their ratios.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import mvitdsl  # noqa: E402
from mvitdsl.backend.emit import emit  # noqa: E402


def emitter_at(rev: str) -> ModuleType:
    """mvitdsl/emit.py as of `rev`, its relative imports made absolute, imported standalone."""
    source = subprocess.run(["git", "show", f"{rev}:mvitdsl/emit.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    source = re.sub(r"^from \.(\w*) import", lambda m: f"from mvitdsl{'.' + m[1] if m[1] else ''}"
                    " import", source, flags=re.M)
    path = Path(tempfile.mkdtemp()) / "emit_at_rev.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("emit_at_rev", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rev", required=True)
    p.add_argument("--spec", default="mvit_b")
    p.add_argument("--train", action="store_true")
    p.add_argument("--reps", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    size = (3, 8, 128, 128) if args.train else (3, 16, 224, 224)
    spec = mvitdsl.load_spec(ROOT / "specs" / f"{args.spec}.mv", input_size=size)
    before = emitter_at(args.rev).emit(spec.model)
    after = emit(spec.model)
    after.load_state_dict(before.state_dict(), strict=True)
    x = torch.randn(2 if args.train else 1, *size)

    def run(gm: torch.nn.Module) -> None:
        if args.train:
            gm.train().zero_grad(set_to_none=True)
            torch.manual_seed(0)
            gm(x).square().mean().backward()
        else:
            with torch.inference_mode():
                gm.eval()(x)

    wall: dict[str, list[float]] = {"before": [], "after": []}
    cpu: dict[str, list[float]] = {"before": [], "after": []}
    for rep in range(args.reps + 1):
        for key, gm in (("before", before), ("after", after)):
            t0, c0 = time.perf_counter(), time.process_time()
            run(gm)
            if rep:
                wall[key].append(time.perf_counter() - t0)
                cpu[key].append(time.process_time() - c0)
    w = {k: statistics.median(v) for k, v in wall.items()}
    c = {k: statistics.median(v) for k, v in cpu.items()}
    what = "train step" if args.train else "eval forward"
    print(f"{args.spec} {what} {size}, {args.threads} thread(s): before ({args.rev}) "
          f"{w['before']:.3f} s wall / {c['before']:.3f} s CPU; after {w['after']:.3f} / "
          f"{c['after']:.3f}; speed-up {w['before'] / w['after']:.2f}x wall, "
          f"{c['before'] / c['after']:.2f}x CPU")


if __name__ == "__main__":
    main()
