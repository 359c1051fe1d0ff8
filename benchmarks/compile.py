"""torch.compile vs eager, with the CPU optimisation layer on and off, alternating (one
process, same weights, `mvitdsl.backend.bench.time_alternating`).

    .venv/bin/python benchmarks/compile.py mvit_b                       # eval, (1,3,16,224,224)
    .venv/bin/python benchmarks/compile.py mvit_b --train --input 3x8x128x128 --batch 2

Prints the median seconds of each variant and its ratio to eager with the layer on; the
compile time (first call) is printed separately and not counted.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import mvitdsl  # noqa: E402
from mvitdsl.backend.bench import BenchOptions, step, time_alternating  # noqa: E402
from mvitdsl.backend.export import input_shape  # noqa: E402
from mvitdsl.backend.passes import optimize as layer  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("spec")
    p.add_argument("--input", default=None, help="e.g. 3x8x128x128")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--train", action="store_true")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--variants", nargs="+",
                   default=["eager", "eager-semantic", "compile-eager", "compile-inductor",
                            "compile-inductor-semantic"])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    size = tuple(int(v) for v in args.input.split("x")) if args.input else None
    spec = mvitdsl.load_spec(ROOT / "specs" / f"{args.spec}.mv", input_size=size)
    torch.manual_seed(0)
    base = mvitdsl.build(spec)
    x = torch.randn(args.batch, *(size or input_shape(spec.model)))
    opts = BenchOptions(train=args.train)
    fns = {}
    for name in args.variants:
        model = copy.deepcopy(base)
        if name.endswith("-semantic"):
            layer.semantic(model)
        if name.startswith("compile-"):
            backend = name.split("-")[1]
            model = torch.compile(model, backend=backend, fullgraph=True)
        fn = step(model, x, opts)
        start = time.perf_counter()
        fn()
        print(f"{name}: first call {time.perf_counter() - start:.1f} s", flush=True)
        fns[name] = fn
    med = {k: t.median for k, t in time_alternating(fns, args.reps).items()}
    mode = "train step" if args.train else "eval"
    print(f"{args.spec} {mode} batch {args.batch} {args.threads} threads, reps {args.reps}:")
    for name, t in med.items():
        print(f"  {name:<28} {t:8.4f} s   eager/this {med['eager'] / t:5.2f}x"
              if "eager" in med else f"  {name:<28} {t:8.4f} s")


if __name__ == "__main__":
    main()
