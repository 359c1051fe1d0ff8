"""`mvitdsl bench`: a spec's measured speed on this device; the flags, the progress line and the
text; the measurement itself (the one timing loop) is backend/bench.py."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, get_args

from ..ir import ReferenceSource
from .common import DTYPES, MAX_FLAG_INT, Subparsers, add_spec_args, int_in, load


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser("bench", help="measure a spec's speed on this device")
    add_spec_args(p)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument(
        "--dtype",
        default="fp32",
        choices=DTYPES,
        help="bf16/fp16: autocast (add --pure for a model built in that dtype)",
    )
    p.add_argument("--pure", action="store_true", help="build(dtype=...) instead of autocast")
    p.add_argument("--batch", type=int_in(1, MAX_FLAG_INT, "--batch"), default=1)
    p.add_argument("--train", action="store_true", help="time an SGD step, not inference")
    p.add_argument(
        "--compile",
        nargs="?",
        const="whole",
        default="none",
        choices=("none", "regional", "whole"),
        help="torch.compile: whole (the default of a bare --compile), or regional: the blocks "
        "that repeat, identical blocks sharing one compiled graph",
    )
    p.add_argument(
        "--no-optimize", action="store_true", help="the semantic graph without the CPU layer"
    )
    p.add_argument("--reps", type=int_in(1, MAX_FLAG_INT, "--reps"), default=5)
    p.add_argument("--warmup", type=int_in(0, MAX_FLAG_INT, "--warmup"), default=1)
    p.add_argument(
        "--threads", type=int_in(1, MAX_FLAG_INT, "--threads"), default=None, help="CPU threads"
    )
    p.add_argument(
        "--peak-tflops", type=float, default=None, help="a vendor peak instead of the probe"
    )
    p.add_argument(
        "--against",
        choices=get_args(ReferenceSource),
        default=None,
        help="time beside ours the model the spec's `reference SOURCE MODEL` line names",
    )
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    spec = load(args)  # checked before torch is imported
    from ..backend.bench import BenchOptions
    from ..backend.bench import run as bench

    opts = BenchOptions(
        device=args.device,
        dtype=args.dtype,
        pure=args.pure,
        batch=args.batch,
        train=args.train,
        compile=args.compile,
        optimize=False if args.no_optimize else "auto",
        reps=args.reps,
        warmup=args.warmup,
        threads=args.threads,
        peak_tflops=args.peak_tflops,
        against=args.against,
        progress=progress if sys.stderr.isatty() or args.format == "text" else None,
    )
    try:
        result = bench(spec, opts)
    except ValueError as e:
        print(f"\nmvitdsl: {e}", file=sys.stderr)
        return 2
    print(file=sys.stderr)  # end the progress line
    print(json.dumps(result, indent=2) if args.format == "json" else render_text(result))
    return 0


def progress(line: str) -> None:
    """One progress line on stderr, rewritten in place on a terminal."""
    if sys.stderr.isatty():
        print(f"\r\033[K[bench] {line}", end="", file=sys.stderr, flush=True)
    else:
        print(f"[bench] {line}", file=sys.stderr, flush=True)


def render_text(r: dict[str, Any]) -> str:
    """The measurement as a few lines of text."""
    unit = "clips" if len(r["input"]) == 4 else "images"
    lines = [
        f"{r['spec']}: {r['mode']} {r['dtype']} batch {r['batch']} input "
        f"{'x'.join(map(str, r['input']))} on {r['device']}"
        + (f" (torch.compile, {r['compile']})" if r["compile"] != "none" else ""),
        f"  {r['clips_per_s']:.2f} {unit}/s; latency median {r['latency_ms_median']:.1f} ms "
        f"(min {r['latency_ms_min']:.1f}, max {r['latency_ms_max']:.1f}, IQR "
        f"{r['latency_ms_iqr']:.1f}; {r['reps']} reps)",
        f"  peak memory {r['peak_mem_gib']:.3f} GiB ({r['peak_mem_source']})",
        f"  {r['tflops']:.3f} TFLOP/s achieved ({r['gmacs']:.1f} GMACs x 2"
        f"{' x 3 (training)' if r['mode'] == 'train' else ''}); peak {r['peak_tflops']:.3f} "
        f"TFLOP/s ({r['peak_source']}); fraction {r['mfu']:.1%}",
    ]
    if r["stages_ms"]:
        parts = ", ".join(f"{k} {v:.1f}" for k, v in r["stages_ms"].items())
        lines.append(f"  per stage (ms, one instrumented pass): {parts}")
    if "against" in r:
        a = r["against"]
        lines.append(
            f"  {a['reference']}: {a['latency_ms_median']:.1f} ms median; ratio "
            f"{a['ratio']:.2f}x (reference / mvitdsl, alternated, same weights)"
        )
    return "\n".join(lines)
