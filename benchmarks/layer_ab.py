"""What a change of the CPU layer (issue 22) bought: a spec's reference, ours with the named
changes undone ("before"), and ours, alternating in one process with the same weights; medians
[min-max] of wall time and of process CPU time (less sensitive to other processes on a shared
machine), ratio = reference / model, and "paired" (the median of the per-rep ratios before /
ours: each rep runs the two back to back, so a slow spell of the machine slows both).

    .venv/bin/python benchmarks/layer_ab.py hiera_b_image train --reps 15 --threads 2
    .venv/bin/python benchmarks/layer_ab.py mvitv2_t_image eval --undo pools relpos --reps 15

--undo (default: the fifth wave's two): `attention` (kernels.attention and window_attention back
to SDPA), `linear` (Linear through the registered op `mvitdsl::linear` with aten's mm for every
weight gradient, as before the fifth wave), `pools` (the semantic max pools), `relpos` (the
rel-pos bias before the fourth wave). Eval: batch 1 at the spec's size; training: an SGD step,
batch 2 (video at 3x8x128x128).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch

import mvitdsl
from mvitdsl.backend import bench, kernels, runtime
from mvitdsl.backend.export import input_shape
from mvitdsl.backend.passes.rewrite import SEMANTIC

ROOT = Path(__file__).resolve().parent.parent


def previous_rel_pos_bias(
    q: Any, q_grid: Any, k_grid: Any, t: Any, h: Any, w: Any, cls: bool
) -> Any:
    """kernels.rel_pos_bias before the fourth wave: the terms as einsum lays them out."""
    if not cls or runtime.records_grad(q, h):
        return runtime.rel_pos_bias(q, q_grid, k_grid, t, h, w, cls)
    bias, bias_t = runtime.rel_pos_terms(q, q_grid, k_grid, t, h, w, cls)
    B, heads = bias.shape[:2]
    lq, lk = q_grid[0] * q_grid[1] * q_grid[2], k_grid[0] * k_grid[1] * k_grid[2]
    out = bias.new_empty(B, heads, lq + 1, lk + 1)
    out[:, :, 0, :] = 0
    out[:, :, 1:, 0] = 0
    body = out[:, :, 1:, 1:].view(B, heads, *q_grid, *k_grid)
    body.copy_(bias)
    if bias_t is not None:
        body.add_(bias_t)
    return out


UNDO = ("attention", "linear", "pools", "relpos")


class PreviousLinear(kernels.Linear):
    """kernels.Linear before the fifth wave: every fp32 CPU call through the registered op."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not kernels.onednn_linear(x, self.weight):
            return torch.nn.functional.linear(x, self.weight, self.bias)
        out: torch.Tensor = torch.ops.mvitdsl.linear(x, self.weight, self.bias)
        return out


def previous_weight_grad(rows: Any, x: Any, matmul: Any = None) -> Any:
    """The weight gradient before the fifth wave: aten's mm for every layer."""
    return rows.t().mm(x)


def before(gm: Any, undo: list[str]) -> Any:
    """A copy of gm with the named changes undone (the weight gradient: see `step_before`)."""
    gm = copy.deepcopy(gm)
    semantic = {
        kernels.max_pool: "pools" in undo,
        kernels.attention: "attention" in undo,
        kernels.window_attention: "attention" in undo,
    }
    for sub in gm.modules():
        if isinstance(sub, torch.fx.GraphModule):
            for node in sub.graph.nodes:
                if semantic.get(node.target, False):
                    node.target = node.meta[SEMANTIC][0]
                elif node.target is kernels.rel_pos_bias and "relpos" in undo:
                    node.target = previous_rel_pos_bias
            sub.recompile()
        if "linear" in undo and type(sub) is kernels.Linear:
            sub.__class__ = PreviousLinear
    return gm


def step_before(step: Any, undo: list[str]) -> Any:
    """The step with the previous weight gradient swapped in for its duration."""
    if "linear" not in undo:
        return step

    def run() -> Any:
        current, kernels._weight_grad = kernels._weight_grad, previous_weight_grad
        try:
            return step()
        finally:
            kernels._weight_grad = current

    return run


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The options; argparse's exit 2 with a message for a bad one (a spec that is not shipped
    or states no reference included)."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("spec", help="a shipped spec with a `reference` line, e.g. mvitv2_t_image")
    p.add_argument("mode", choices=("eval", "train"))
    p.add_argument("--reps", type=int, default=9)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--undo", nargs="+", choices=UNDO, default=["attention", "linear"])
    args = p.parse_args(argv)
    if args.reps < 1 or args.threads < 1:
        p.error("--reps and --threads take a whole number >= 1")
    path = ROOT / "specs" / f"{args.spec}.mv"
    if "/" in args.spec or not path.is_file():
        p.error(f"{args.spec!r} is no shipped spec (specs/NAME.mv)")
    if mvitdsl.load_spec(path, check=False).reference is None:
        p.error(f"{args.spec}: the spec has no 'reference' line")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    train = args.mode == "train"
    size = tuple(input_shape(mvitdsl.load_spec(ROOT / "specs" / f"{args.spec}.mv").model))
    size = (3, 8, 128, 128) if train and len(size) == 4 else size
    spec = mvitdsl.load_spec(ROOT / "specs" / f"{args.spec}.mv", input_size=size)
    opts = bench.BenchOptions(train=train)
    torch.manual_seed(0)
    ours = bench.build_model(spec, opts)
    assert spec.reference is not None  # parse refused a spec without one
    source = spec.reference.source
    ref = bench.reference_model(spec, source, opts)
    bench.load_reference_weights(ours, ref, spec, source)
    x = torch.randn(2 if train else 1, *size)
    models = {"reference": ref, "before": before(ours, args.undo), "mvitdsl": ours}
    steps = {k: bench.step(m, x, opts) for k, m in models.items()}
    steps["before"] = step_before(steps["before"], args.undo)
    for step in steps.values():
        step()
    wall: dict[str, list[float]] = {k: [] for k in steps}
    cpu: dict[str, list[float]] = {k: [] for k in steps}
    start = os.getloadavg()[0]
    for _ in range(args.reps):
        for k, step in steps.items():
            c, w = time.process_time(), time.perf_counter()
            step()
            wall[k].append(time.perf_counter() - w)
            cpu[k].append(time.process_time() - c)
    shape = "x".join(map(str, x.shape))
    print(
        f"{args.spec} {args.mode} {shape}, {args.threads} thread(s), {args.reps} reps, "
        f"undone: {' '.join(args.undo)}, load {start:.1f} -> {os.getloadavg()[0]:.1f}"
    )
    for label, times in (("wall", wall), ("cpu", cpu)):
        ref_med = statistics.median(times["reference"])
        cells = [
            f"{k} {statistics.median(v) * 1e3:.1f} ms [{min(v) * 1e3:.0f}-{max(v) * 1e3:.0f}]"
            f" ({ref_med / statistics.median(v):.3f}x)"
            for k, v in times.items()
        ]
        paired = statistics.median(b / o for b, o in zip(times["before"], times["mvitdsl"]))
        print(f"  {label}: " + ", ".join(cells) + f"; before / mvitdsl paired {paired:.3f}x")


if __name__ == "__main__":
    main()
