"""Pictures of cost with matplotlib (Agg, imported only when a picture is asked for): the Pareto
front of a sweep, and per-stage bars of params, GMACs and activation memory for several specs.

The same input gives byte-identical files in one environment: a fixed SVG hash salt, no dates or
software versions in the metadata.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..analysis.analyze import StageRow
    from ..explore.run import SweepRun

# Objective columns: (axis label, scale) for the front's axes.
AXES = {
    "params": ("parameters (millions)", 1e-6),
    "gmacs": ("GMACs (matmul-only)", 1.0),
    "gmacs_fvcore": ("GMACs (fvcore: + LayerNorm)", 1.0),
    "activation_gib": ("activation memory (GiB)", 1.0),
    "attention_share": ("attention share of MACs", 1.0),
}


@contextmanager
def _matplotlib() -> Iterator[Any]:
    """pyplot on the Agg backend with reproducible output settings."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"svg.hashsalt": "mvitdsl", "svg.fonttype": "none", "font.size": 9}):
        yield plt


def _save(fig: Any, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in (".svg", ".png"):
        raise ValueError(f"{path}: write .svg or .png")
    metadata = {"Date": None} if suffix == ".svg" else {"Software": None}
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata=metadata, dpi=120)


def plot_front(run: SweepRun, points: Sequence[dict[str, Any]], path: Path) -> None:
    """Every kept variant (dots), the front of the first two objectives as a step line, the base
    starred, and any budget on those axes dashed."""
    from ..explore.engine import Outcome

    objectives = run.objectives[:2]
    if len(objectives) < 2:
        raise ValueError("--plot draws the first two --pareto objectives; name two")
    (ox, oy) = objectives
    lx, sx = AXES.get(ox.column, (ox.column, 1.0))
    ly, sy = AXES.get(oy.column, (oy.column, 1.0))
    usable = [
        p
        for p in points
        if isinstance(p.get(ox.column), (int, float)) and isinstance(p.get(oy.column), (int, float))
    ]
    xs = [p[ox.column] * sx for p in usable]
    ys = [p[oy.column] * sy for p in usable]
    front = sorted((p[ox.column] * sx, p[oy.column] * sy) for p in usable if p["pareto"])
    base = Outcome("base", {}, {})
    run.evaluator.measure(run.base, base)
    with _matplotlib() as plt:
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        ax.scatter(xs, ys, s=10, color="0.65", label=f"variants ({len(usable)})", zorder=2)
        if front:
            fx, fy = zip(*front)
            ax.plot(
                fx,
                fy,
                drawstyle="steps-pre" if ox.maximise else "steps-post",  # the dominated edge
                color="C3",
                marker="o",
                ms=4,
                lw=1.5,
                label=f"Pareto front ({len(front)})",
                zorder=3,
            )
        bx, by = getattr(base, ox.column, None), getattr(base, oy.column, None)
        if isinstance(bx, (int, float)) and isinstance(by, (int, float)):
            ax.scatter(
                [bx * sx],
                [by * sy],
                marker="*",
                s=160,
                color="C0",
                zorder=4,
                label=f"base ({run.base.name})",
            )
        budgets = run.evaluator.budgets
        for column in ("params", "gmacs", "activation_gib"):
            limit = getattr(budgets, column)
            if limit is None:
                continue
            if column == ox.column:
                ax.axvline(limit * sx, ls="--", color="0.3", lw=1, label=f"{column} budget")
            elif column == oy.column:
                ax.axhline(limit * sy, ls="--", color="0.3", lw=1, label=f"{column} budget")
        ax.set_xlabel(f"{lx} ({'max' if ox.maximise else 'min'})")
        ax.set_ylabel(f"{ly} ({'max' if oy.maximise else 'min'})")
        ax.set_title(f"sweep over {run.base.name}: {run.summary.line()}", fontsize=8)
        ax.grid(True, lw=0.3)
        ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        _save(fig, path)
        plt.close(fig)


def plot_costs(specs: Sequence[Any], path: Path) -> None:
    """Per-stage grouped bars of params, GMACs (matmul-only) and activation memory, one colour
    per spec, side by side."""
    from ..analysis.analyze import analyze

    reports = [analyze(s) for s in specs]
    stages = list(dict.fromkeys(st.name for r in reports for st in r.stages))
    panels: tuple[tuple[str, Callable[[StageRow], float]], ...] = (
        ("parameters (millions)", lambda st: st.params / 1e6),
        ("GMACs (matmul-only)", lambda st: st.macs / 1e9),
        ("activation memory (GiB, batch 1 fp32)", lambda st: st.activation_bytes / 2**30),
    )
    width = 0.8 / max(len(reports), 1)
    with _matplotlib() as plt:
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
        for ax, (title, value) in zip(axes, panels):
            for k, report in enumerate(reports):
                by_name = {st.name: st for st in report.stages}
                heights = [value(by_name[n]) if n in by_name else 0.0 for n in stages]
                xs = [i + (k - (len(reports) - 1) / 2) * width for i in range(len(stages))]
                ax.bar(xs, heights, width, label=report.name, color=f"C{k}")
            ax.set_xticks(range(len(stages)), stages)
            ax.set_title(title)
            ax.grid(True, axis="y", lw=0.3)
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        _save(fig, path)
        plt.close(fig)


def run_costs_command(args: argparse.Namespace) -> int:
    """`mvitdsl draw A.mv [B.mv ...] --costs -o FILE.svg|png`."""
    from ..spec import load_spec

    specs = [load_spec(Path(p), input_size=args.input) for p in (args.spec, *args.more)]
    out = args.out or Path(f"{specs[0].name}_costs.svg")
    plot_costs(specs, out)
    print(f"wrote {out}")
    return 0
