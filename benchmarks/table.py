"""Issue 22's table in one run: each spec against its reference (torchvision or timm, the same
weights converted), eval and a training step, the two models alternating
(`mvitdsl.backend.bench.time_alternating`), medians and spread.

    .venv/bin/python benchmarks/table.py        # the whole table: >= 7 reps, >= 20 s a row
    .venv/bin/python benchmarks/table.py --reps 9 --only hiera_t_image mvitv2_t_image
    .venv/bin/python benchmarks/table.py --seconds 0      # exactly --reps timed calls a row
    .venv/bin/python benchmarks/table.py --quick          # smoke test: small inputs, 1 rep

Eval: batch 1 at the spec's size (video) or 3x224x224 (images); training step: SGD, batch 2 at
3x8x128x128 (video) or 3x224x224 (images). Ratio = reference median / mvitdsl median (> 1:
mvitdsl is faster); "paired" = the median of the per-rep ratios (each rep times the two models
back to back, so a slow spell of the machine slows both of that rep's calls: the steadier figure
on a shared machine). A row times at least --reps calls of each model, and more until the row
has run for --seconds (the cheap image rows get 20-60 reps, the video rows --reps). Rows: issue
22's five, then the families' (swin_t, pvt_v2_b2 against timm).
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ROWS = (
    "mvit_b", "mvitv2_s", "mvitv2_t_image", "hiera_t_image", "hiera_b_image", "swin_t", "pvt_v2_b2"
)  # fmt: skip
QUICK_SIZES = {4: (3, 4, 64, 64), 3: (3, 64, 64)}  # by input rank: video, image
TRAIN_VIDEO = (3, 8, 128, 128)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The options; argparse's exit 2 with a message for a bad one."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument(
        "--reps", type=int, default=7, help="timed calls of each model (after 1 warm-up)"
    )
    p.add_argument("--seconds", type=float, default=20.0, help="time a row for at least this long")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", nargs="+", choices=ROWS, default=list(ROWS), metavar="SPEC")
    p.add_argument("--modes", nargs="+", choices=("eval", "train"), default=["eval", "train"])
    p.add_argument("--quick", action="store_true", help="small inputs, 1 rep: a smoke test")
    args = p.parse_args(argv)
    if args.reps < 1 or args.threads < 1:
        p.error("--reps and --threads take a whole number >= 1")
    if not args.seconds >= 0 or args.seconds == float("inf"):
        p.error("--seconds takes a finite number >= 0")
    if args.quick:
        args.reps, args.seconds = 1, 0.0
    return args


def input_for(spec: Any, train: bool, quick: bool) -> tuple[int, ...]:
    """The input size (without batch) of a row: see the module's doc."""
    from mvitdsl.backend.export import input_shape

    size = tuple(input_shape(spec.model))
    if quick:
        return QUICK_SIZES[len(size)]
    return TRAIN_VIDEO if train and len(size) == 4 else size


def measure(name: str, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    """One cell pair: mvitdsl and its reference, alternating; seconds per call."""
    import torch

    import mvitdsl
    from mvitdsl.backend import bench

    train = mode == "train"
    spec = mvitdsl.load_spec(ROOT / "specs" / f"{name}.mv")
    assert spec.reference is not None, f"{name} states no reference"  # ROWS name such specs
    source, ref_name = spec.reference.source, spec.reference.name
    size = input_for(spec, train, args.quick)
    spec = mvitdsl.load_spec(ROOT / "specs" / f"{name}.mv", input_size=size)
    opts = bench.BenchOptions(train=train)
    torch.manual_seed(0)
    ours = bench.build_model(spec, opts)
    ref = bench.reference_model(spec, source, opts)
    bench.load_reference_weights(ours, ref, spec, source)
    x = torch.randn(2 if train else 1, *size)
    fns = {"mvitdsl": bench.step(ours, x, opts), "reference": bench.step(ref, x, opts)}
    t = bench.time_alternating(fns, reps_for(fns, args))
    return {"ref": f"{source} {ref_name}", "input": size, "batch": x.shape[0], **t}


def reps_for(fns: dict[str, Any], args: argparse.Namespace) -> int:
    """--reps, or more: as many as fill --seconds at the speed of one call of each model
    (which is also the warm-up of each)."""
    if args.seconds <= 0:
        return int(args.reps)
    start = time.perf_counter()
    for fn in fns.values():
        fn()
    pair = max(time.perf_counter() - start, 1e-6)
    return max(int(args.reps), math.ceil(args.seconds / pair))


def paired(ours: Any, theirs: Any) -> float:
    """The median of the per-rep ratios reference / mvitdsl."""
    return statistics.median(r / o for r, o in zip(theirs.seconds, ours.seconds))


def cell(t: Any) -> str:
    return f"{t.median * 1e3:8.1f} ms [{min(t.seconds) * 1e3:.0f}-{max(t.seconds) * 1e3:.0f}]"


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    import torch

    torch.set_num_threads(args.threads)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(
        f"benchmarks/table.py {' '.join(sys.argv[1:] if argv is None else argv)}: CPU fp32, "
        f"{args.threads} threads, >= {args.reps} reps and >= {args.seconds:g} s a row, medians "
        f"[min-max]; load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        flush=True,
    )
    print(
        "| model | mode | input | reps | mvitdsl | reference | ratio | paired |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    for name in args.only:
        for mode in args.modes:
            r = measure(name, mode, args)
            ours, theirs = r["mvitdsl"], r["reference"]
            shape = "x".join(map(str, (r["batch"], *r["input"])))
            print(
                f"| {name} vs {r['ref']} | {mode} | {shape} | {len(ours.seconds)} | {cell(ours)} "
                f"| {cell(theirs)} | {theirs.median / ours.median:.2f}x "
                f"| {paired(ours, theirs):.2f}x |",
                flush=True,
            )
            gc.collect()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
