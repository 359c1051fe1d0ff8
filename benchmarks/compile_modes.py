"""First call and steady speed of `build(compile=)`'s modes (none, regional, whole), each
compiled mode in a fresh process with an empty inductor cache, timed against eager in that
process (alternating, `mvitdsl.backend.bench.time_alternating`).

    .venv/bin/python benchmarks/compile_modes.py mvit_b --input 3x8x128x128
    .venv/bin/python benchmarks/compile_modes.py mvit_b --input 3x8x128x128 --train --batch 2

Prints, per mode: the first call (compiling included), the steady median and spread, and
eager's median measured beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def one(args: argparse.Namespace) -> None:
    """The child: build eager and `args.one`, time the first call, then both alternating."""
    import torch

    sys.path.insert(0, str(ROOT))
    import mvitdsl
    from mvitdsl.backend.bench import BenchOptions, step, time_alternating

    torch.set_num_threads(args.threads)
    size = tuple(int(v) for v in args.input.split("x"))
    spec = mvitdsl.load_spec(ROOT / "specs" / f"{args.spec}.mv", input_size=size)
    torch.manual_seed(0)
    eager = mvitdsl.build(spec)
    torch.manual_seed(0)
    compiled = mvitdsl.build(spec, compile=args.one)
    x = torch.randn(args.batch, *size)
    opts = BenchOptions(train=args.train)
    fns = {"eager": step(eager, x, opts), args.one: step(compiled, x, opts)}
    out: dict[str, object] = {}
    for key, fn in fns.items():
        start = time.perf_counter()
        fn()
        out[f"{key}_first_s"] = time.perf_counter() - start
    timings = time_alternating(fns, args.reps)
    for key, t in timings.items():
        out[key] = {"median_s": t.median, "min_s": min(t.seconds), "max_s": max(t.seconds)}
    print("RESULT " + json.dumps(out), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("spec")
    p.add_argument("--input", required=True, help="e.g. 3x8x128x128")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--train", action="store_true")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--modes", nargs="+", default=["regional", "whole"])
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        one(args)
        return
    mode = "training step" if args.train else "eval"
    print(f"{args.spec} {mode}, input {args.batch}x{args.input}, {args.threads} threads")
    for m in args.modes:
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache)
            argv = [sys.executable, __file__, *sys.argv[1:], "--one", m]
            r = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        line = next((s for s in r.stdout.splitlines() if s.startswith("RESULT ")), None)
        if line is None:
            print(f"  {m}: failed\n{r.stderr[-2000:]}")
            continue
        res = json.loads(line[len("RESULT ") :])
        e, c = res["eager"], res[m]
        print(
            f"  {m:<9} first call {res[m + '_first_s']:7.1f} s (eager "
            f"{res['eager_first_s']:.2f} s); steady {c['median_s']:.3f} s "
            f"(min {c['min_s']:.3f}, max {c['max_s']:.3f}); eager beside it "
            f"{e['median_s']:.3f} s (min {e['min_s']:.3f}, max {e['max_s']:.3f}); "
            f"eager/compiled {e['median_s'] / c['median_s']:.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
