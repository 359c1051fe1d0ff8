"""SAM2-T's trunk built from specs/sam2_hiera_t.mv against timm's sam2_hiera_tiny, side by side.

    .venv/bin/python benchmarks/sam2.py [--sizes 512 1024] [--rounds 7] [--threads 2]

Eval forward, fp32, CPU, batch 1, the same weights (timm's, loaded by their names); the two
modules alternate round by round on the same warm CPU (`backend.bench.time_alternating`).
Prints the wall-clock medians per size, the ratio timm / mvitdsl (>= 1: the spec's module is
as fast or faster; also of process CPU time) and the load (`os.getloadavg`) before and after,
since a shared machine skews both sides.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import mvitdsl  # noqa: E402
from mvitdsl.backend.bench import Timing, time_alternating  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 1024], help="square inputs")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args()


def compare(ours: Any, theirs: Any, side: int, rounds: int) -> dict[str, Timing]:
    """Wall and process-CPU seconds of ours and theirs at side x side, alternating (the one
    timing loop, backend/bench.py), after one warm-up each."""
    x = torch.randn(1, 3, side, side)

    def run(module: Any) -> Callable[[], object]:
        def call() -> object:
            with torch.inference_mode():
                return module(x)

        return call

    return time_alternating({"mvitdsl": run(ours), "timm": run(theirs)}, rounds)


def main() -> None:
    import timm

    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    theirs = timm.create_model("sam2_hiera_tiny", pretrained=False, num_classes=0).eval()
    spec = ROOT / "specs" / "sam2_hiera_t.mv"
    ours = mvitdsl.build(spec, weights=theirs.state_dict(), source="timm").eval()
    print(f"torch {torch.__version__}, {args.threads} threads, load {os.getloadavg()[0]:.2f}")
    for side in args.sizes:
        t = compare(ours, theirs, side, args.rounds)
        mine, ref = t["mvitdsl"], t["timm"]
        cpu = statistics.median(ref.cpu_seconds) / statistics.median(mine.cpu_seconds)
        print(
            f"{side}x{side}: mvitdsl {mine.median * 1e3:.1f} ms, timm {ref.median * 1e3:.1f} ms "
            f"(medians of {args.rounds}), ratio timm/mvitdsl {ref.median / mine.median:.3f} "
            f"(process CPU {cpu:.3f})"
        )
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
