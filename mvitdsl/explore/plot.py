"""The sweep's Pareto front as a picture (matplotlib through draw.costs' house style)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..draw.costs import AXES, _matplotlib, _save
from .engine import Outcome
from .multi import MultiSweep
from .run import SweepRun


def plot_front(
    run: SweepRun, points: Sequence[dict[str, Any]], path: Path, title: str | None = None
) -> None:
    """Every kept variant (dots), the front of the first two objectives as a step line, the base
    starred, and any budget on those axes dashed; with a title (a search's), the front's points
    are labelled with their ids."""
    objectives = run.objectives[:2]
    if len(objectives) < 2:
        raise ValueError("--plot draws the first two --pareto objectives; name two")
    (ox, oy) = objectives
    lx, sx = AXES.get(ox.column, (ox.column, 1.0))
    ly, sy = AXES.get(oy.column, (oy.column, 1.0))
    usable = _usable(points, ox.column, oy.column)
    xs = [p[ox.column] * sx for p in usable]
    ys = [p[oy.column] * sy for p in usable]
    front = sorted((p[ox.column] * sx, p[oy.column] * sy, p["id"]) for p in usable if p["pareto"])
    base = Outcome("base", {}, {})
    run.evaluator.measure(run.base, base)
    with _matplotlib() as plt:
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        ax.scatter(xs, ys, s=10, color="0.65", label=f"variants ({len(usable)})", zorder=2)
        _draw_front(ax, front, ox.maximise, labelled=title is not None)
        _draw_base(ax, run, base, (ox.column, sx), (oy.column, sy))
        _draw_budgets(ax, run.evaluator.budgets, (ox.column, sx), (oy.column, sy))
        ax.set_xlabel(f"{lx} ({'max' if ox.maximise else 'min'})")
        ax.set_ylabel(f"{ly} ({'max' if oy.maximise else 'min'})")
        ax.set_title(title or f"sweep over {run.base.name}: {run.summary.line()}", fontsize=8)
        ax.grid(True, lw=0.3)
        ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        _save(fig, path)
        plt.close(fig)


def plot_joint_front(run: MultiSweep, points: Sequence[dict[str, Any]], path: Path) -> None:
    """A sweep over several bases (`points`: its rows, or the kept rows' plotted fields, after
    iteration): each family's kept variants and its base (starred) in its
    own colour, the joint front of the first two objectives as a step line with its points
    labelled by id, and any budget on those axes dashed."""
    objectives = run.objectives[:2]
    if len(objectives) < 2:
        raise ValueError("--plot draws the first two --pareto objectives; name two")
    (ox, oy) = objectives
    (lx, sx), (ly, sy) = (AXES.get(o.column, (o.column, 1.0)) for o in objectives)
    # rows straight from the API carry `ok`; the CLI's plotted points are the kept ones only
    usable = [p for p in _usable(points, ox.column, oy.column) if p.get("ok", True)]
    with _matplotlib() as plt:
        fig, ax = plt.subplots(figsize=(8.8, 4.8))
        for i, (name, sub) in enumerate(run.runs.items()):
            mine = [p for p in usable if p["family"] == name]
            ax.scatter(
                [p[ox.column] * sx for p in mine],
                [p[oy.column] * sy for p in mine],
                s=12,
                color=f"C{i}",
                alpha=0.55,
                label=f"{name} ({len(mine)})",
                zorder=2,
            )
            base = Outcome("base", {}, {})
            sub.evaluator.measure(sub.base, base)
            _draw_base(ax, sub, base, (ox.column, sx), (oy.column, sy), f"C{i}")
        _draw_joint_front(ax, run, usable, (ox.column, sx), (oy.column, sy), ox.maximise)
        first = next(iter(run.runs.values()))
        _draw_budgets(ax, first.evaluator.budgets, (ox.column, sx), (oy.column, sy))
        ax.set_xlabel(f"{lx} ({'max' if ox.maximise else 'min'})")
        ax.set_ylabel(f"{ly} ({'max' if oy.maximise else 'min'})")
        summary = textwrap.fill(run.summary.line(), 100)
        ax.set_title(f"joint front over {', '.join(run.runs)}\n{summary}", fontsize=7)
        ax.grid(True, lw=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
        fig.tight_layout()
        _save(fig, path)
        plt.close(fig)


def _draw_joint_front(
    ax: Any,
    run: MultiSweep,
    usable: list[dict[str, Any]],
    x: tuple[str, float],
    y: tuple[str, float],
    maximise: bool,
) -> None:
    """The joint front as one step line; its points ringed in their family's colour, each
    labelled with its id."""
    front = sorted(
        (p[x[0]] * x[1], p[y[0]] * y[1], p["family"], p["id"]) for p in usable if p["pareto"]
    )
    if not front:
        return
    fx, fy, families, ids = zip(*front)
    ax.plot(
        fx,
        fy,
        drawstyle="steps-pre" if maximise else "steps-post",
        color="0.15",
        lw=1.2,
        label=f"joint Pareto front ({len(front)})",
        zorder=3,
    )
    colour = {name: f"C{i}" for i, name in enumerate(run.runs)}
    ax.scatter(fx, fy, s=36, c=[colour[f] for f in families], edgecolors="0.15", zorder=4)
    for px, py, label in zip(fx, fy, ids):
        ax.annotate(label, (px, py), fontsize=5, xytext=(3, 3), textcoords="offset points")


def _usable(points: Sequence[dict[str, Any]], x: str, y: str) -> list[dict[str, Any]]:
    """The points with a number in both plotted columns."""
    return [
        p
        for p in points
        if isinstance(p.get(x), (int, float)) and isinstance(p.get(y), (int, float))
    ]


def _draw_front(ax: Any, front: list[tuple[Any, Any, Any]], maximise: bool, labelled: bool) -> None:
    """The front as a step line over its sorted (x, y, id) points, each labelled with its id."""
    if not front:
        return
    fx, fy, ids = zip(*front)
    ax.plot(
        fx,
        fy,
        drawstyle="steps-pre" if maximise else "steps-post",  # the dominated edge
        color="C3",
        marker="o",
        ms=4,
        lw=1.5,
        label=f"Pareto front ({len(front)})",
        zorder=3,
    )
    for x, y, label in zip(fx, fy, ids) if labelled else ():
        ax.annotate(label, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")


def _draw_base(
    ax: Any,
    run: SweepRun,
    base: Outcome,
    x: tuple[str, float],
    y: tuple[str, float],
    color: str = "C0",
) -> None:
    """The base spec starred, where it has a number on both axes ((column, scale) each)."""
    bx, by = getattr(base, x[0], None), getattr(base, y[0], None)
    if isinstance(bx, (int, float)) and isinstance(by, (int, float)):
        ax.scatter(
            [bx * x[1]],
            [by * y[1]],
            marker="*",
            s=160,
            color=color,
            edgecolors="0.15" if color != "C0" else None,
            zorder=4,
            label=f"base ({run.base.name})",
        )


def _draw_budgets(ax: Any, budgets: Any, x: tuple[str, float], y: tuple[str, float]) -> None:
    """Each budget set on a plotted axis as a dashed line."""
    for column in ("params", "gmacs", "activation_gib"):
        limit = getattr(budgets, column)
        if limit is None:
            continue
        if column == x[0]:
            ax.axvline(limit * x[1], ls="--", color="0.3", lw=1, label=f"{column} budget")
        elif column == y[0]:
            ax.axhline(limit * y[1], ls="--", color="0.3", lw=1, label=f"{column} budget")
