"""Profile one CPU call of a spec's model and its reference's (torchvision or timm), same weights:
torch.profiler's top ops by self CPU time, eval forward or a training step.

    .venv/bin/python benchmarks/profile_cpu.py [SPEC] [--train] [--threads N] [--input 3x224x224]
    .venv/bin/python benchmarks/profile_cpu.py mvit_b                  # eval, 1x3x16x224x224
    .venv/bin/python benchmarks/profile_cpu.py hiera_t_image --train   # batch 2 SGD step
    .venv/bin/python benchmarks/profile_cpu.py hiera_t_image --semantic  # without the CPU layer
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import mvitdsl  # noqa: E402
from mvitdsl.backend import bench  # noqa: E402
from mvitdsl.backend.export import input_shape  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("spec", nargs="?", default="mvit_b", help="a shipped spec with a reference")
    p.add_argument("--train", action="store_true", help="a training step (batch 2), not eval")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--input", default=None, help="CxTxHxW or CxHxW (default: the spec's)")
    p.add_argument("--semantic", action="store_true", help="ours without the CPU layer")
    p.add_argument("--rows", type=int, default=14)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    spec = mvitdsl.load_spec(ROOT / "specs" / f"{args.spec}.mv")
    if args.input:
        size = tuple(int(v) for v in args.input.split("x"))
        spec = mvitdsl.load_spec(ROOT / "specs" / f"{args.spec}.mv", input_size=size)
    if spec.reference is None:
        p.error(f"{args.spec} states no reference (a 'reference SOURCE MODEL' line)")
    source, ref_name = spec.reference.source, spec.reference.name
    opts = bench.BenchOptions(train=args.train)
    torch.manual_seed(0)
    ours = mvitdsl.build(spec, optimize=not args.semantic)
    ref = bench.reference_model(spec, source, opts)
    bench.load_reference_weights(ours, ref, spec, source)
    x = torch.randn(2 if args.train else 1, *input_shape(spec.model))
    for label, model in ((f"{source} {ref_name}", ref), ("mvitdsl", ours)):
        step = bench.step(model.train(args.train), x, opts)
        step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        print(f"==== {label}")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
