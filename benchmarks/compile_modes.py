"""First call and steady speed of `build(compile=)`'s modes (none, regional, whole), each
compiled mode in a fresh process with an empty inductor cache, timed against eager in that
process (alternating, `mvitdsl.backend.bench.time_alternating`).

    .venv/bin/python benchmarks/compile_modes.py mvit_b --input 3x8x128x128 --together
    .venv/bin/python benchmarks/compile_modes.py mvit_b --input 3x4x64x64 --train --batch 2 \
        --together

Prints, per mode: the first call (compiling included), the steady median and spread, eager's
median measured beside it, where the compile time went (`torch._dynamo.utils.compile_times()`:
dynamo's tracing, inductor's code generation, the wait for the C++ compiler) and how many C++
kernels were compiled (shared objects in the mode's cache). `--together` runs the modes at the
same time, so that on a shared machine their first calls see the same load (the ratio is fair);
the 1-minute load average is printed at the start and at the end.
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
# compile_times() rows worth reading (seconds summed over the graphs; compile_file over workers)
PARTS = {
    "bytecode_tracing": "dynamo tracing",
    "Scheduler.codegen": "inductor codegen",
    "async_compile.wait": "waiting for C++",
    "compile_file": "g++ (all workers)",
}


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
    out["parts"] = compile_parts()
    timings = time_alternating(fns, args.reps)
    for key, t in timings.items():
        out[key] = {"median_s": t.median, "min_s": min(t.seconds), "max_s": max(t.seconds)}
    print("RESULT " + json.dumps(out), flush=True)


def compile_parts() -> dict[str, float]:
    """The PARTS rows of dynamo's compile-time table (seconds)."""
    from torch._dynamo.utils import compile_times

    names, values = compile_times(repr="csv", aggregate=True)
    return {str(k): float(str(v)) for k, v in zip(names, values, strict=True) if k in PARTS}


def load() -> str:
    """The 1-minute load average, as `uptime` gives it."""
    return f"{os.getloadavg()[0]:.1f}"


def launch(m: str, cache: Path) -> subprocess.Popen[bytes]:
    """The child process for mode `m`, with its own empty inductor cache; its output goes to
    files there (pipes could fill while another child is waited for)."""
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(cache))
    argv = [sys.executable, __file__, *sys.argv[1:], "--one", m]
    with (cache / "out.txt").open("wb") as out, (cache / "err.txt").open("wb") as err:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=err)


def report(m: str, proc: subprocess.Popen[bytes], cache: Path) -> None:
    """Wait for mode `m`'s child and print its line."""
    proc.wait()
    kernels = sum(1 for _ in cache.rglob("*.so"))
    stdout = (cache / "out.txt").read_text(errors="replace")
    line = next((s for s in stdout.splitlines() if s.startswith("RESULT ")), None)
    if line is None:
        err = (cache / "err.txt").read_text(errors="replace")
        print(f"  {m}: failed (load {load()})\n{err[-2000:]}")
        return
    res = json.loads(line[len("RESULT ") :])
    e, c = res["eager"], res[m]
    parts = ", ".join(f"{PARTS[k]} {v:.1f} s" for k, v in res["parts"].items())
    print(
        f"  {m:<9} first call {res[m + '_first_s']:7.1f} s (eager "
        f"{res['eager_first_s']:.2f} s); steady {c['median_s']:.3f} s "
        f"(min {c['min_s']:.3f}, max {c['max_s']:.3f}); eager beside it "
        f"{e['median_s']:.3f} s (min {e['min_s']:.3f}, max {e['max_s']:.3f}); "
        f"eager/compiled {e['median_s'] / c['median_s']:.2f}x\n"
        f"            {kernels} C++ kernels; {parts or 'no compile'}; "
        f"done {time.strftime('%H:%M:%S', time.gmtime())} UTC, load {load()}",
        flush=True,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("spec")
    p.add_argument("--input", required=True, help="e.g. 3x8x128x128")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--train", action="store_true")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--modes", nargs="+", default=["regional", "whole"])
    p.add_argument("--together", action="store_true", help="run the modes at the same time")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        one(args)
        return
    mode = "training step" if args.train else "eval"
    print(
        f"{args.spec} {mode}, input {args.batch}x{args.input}, {args.threads} threads; "
        f"start {time.strftime('%H:%M:%S', time.gmtime())} UTC, load {load()}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as root:
        caches = {m: Path(tempfile.mkdtemp(dir=root)) for m in args.modes}
        if args.together:
            procs = {m: launch(m, caches[m]) for m in args.modes}
            for m, proc in procs.items():
                report(m, proc, caches[m])
        else:
            for m in args.modes:
                report(m, launch(m, caches[m]), caches[m])


if __name__ == "__main__":
    main()
