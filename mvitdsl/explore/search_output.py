"""A search's study read back: one row per trial (the sweep's columns plus the measured ones),
the Pareto front over feasible finished variants, the summary line, the table, the emitted
child specs of the front and its picture."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from .objectives import ANALYTIC, Goal
from .output import _cell, _line
from .pareto import brute_force, oriented
from .run import SCHEMA, SweepRun

if TYPE_CHECKING:
    from .search import SearchResult


def row_of(t: FrozenTrial, goals: Sequence[Goal]) -> dict[str, Any]:
    """One trial as a row: id, values, verdict, costs, measured columns and records."""
    result: dict[str, Any] = t.user_attrs.get("result") or {}
    costs = result.get("costs") or {}
    measured = result.get("measured") or {}
    row: dict[str, Any] = {
        "schema": SCHEMA,
        "kind": "search",
        "trial": t.number,
        "state": t.state.name,
        "id": t.user_attrs.get("variant", ""),
        "values": result.get("variant_values") or dict(t.params),
        "ok": t.state == TrialState.COMPLETE,
        "choice": dict(t.params),  # what Optuna proposed: an axis's value text, or zip's index
        **{c: costs.get(c) for c in ANALYTIC},
    }
    for g in goals:
        if g.kind != "analytic":
            record = measured.get(g.name)
            row[g.column] = record.get(g.column) if isinstance(record, dict) else record
            if isinstance(record, dict):
                row[g.name] = record  # device, batch, dtype, input, versions, spread
    row["feasible"] = row["ok"] and all(v <= 0 for v in t.constraints.values())
    row["constraints"] = dict(t.constraints)
    row["cached"] = "cached" in t.user_attrs
    row["worker"] = t.user_attrs.get("worker", "")
    row["pareto"] = False
    for key in ("diagnostics", "excluded"):
        if key in result:
            row[key] = result[key]
    if "lost" in t.user_attrs:
        row["lost"] = t.user_attrs["lost"]
    return row


def rows_of(study: optuna.Study, goals: Sequence[Goal]) -> tuple[list[dict[str, Any]], list[str]]:
    """Every trial as a row, and the front: variant ids of feasible finished trials that no other
    dominates (a variant counted once, however often it was proposed)."""
    rows = [row_of(t, goals) for t in study.get_trials(deepcopy=False)]
    points: dict[str, tuple[float, ...]] = {}
    objectives = [g.objective for g in goals]
    for r in rows:
        values = [r.get(g.column) for g in goals]
        numbers = [float(v) for v in values if isinstance(v, (int, float))]
        if r["feasible"] and len(numbers) == len(goals):
            points.setdefault(r["id"], oriented(numbers, objectives))
    front = brute_force(points.items())
    for r in rows:
        r["pareto"] = r["id"] in front and not r["cached"]
    return rows, sorted(front, key=lambda k: points[k])


def status(row: dict[str, Any]) -> str:
    """The table's last column: ok, over a budget, a rejection's codes, excluded, lost."""
    cached = " (cached)" * bool(row["cached"])
    if row["state"] == "COMPLETE":
        over = [k for k, v in row["constraints"].items() if v > 0]
        return ("over " + ",".join(over) if over else "ok") + cached
    if "lost" in row:
        return f"lost: {row['lost']}"
    if "excluded" in row:
        return "excluded by --where"
    if row.get("diagnostics"):
        codes = ",".join(dict.fromkeys(d["code"] for d in row["diagnostics"]))
        return codes + cached
    return str(row["state"]).lower()


def summary(result: SearchResult) -> str:
    """`40 trials, 12 distinct variants (12 evaluated, 28 cached this run); 3 E302 ...`."""
    rows = result.rows
    distinct = {r["id"] for r in rows if r["id"]}
    rejected = Counter(
        r["diagnostics"][0]["code"] for r in rows if r.get("diagnostics") and not r["cached"]
    )
    parts = [
        f"{len(rows)} trials",
        f"{len(distinct)} distinct variants",
        f"{result.counts.evaluated} evaluated and {result.counts.cached} cached by this run",
    ]
    parts += [f"{n} rejected {code}" for code, n in sorted(rejected.items())]
    lost = sum(1 for r in rows if "lost" in r)
    if lost:
        parts.append(f"{lost} lost (failed, asked again)")
    parts.append(f"front {len(result.front)}")
    return ", ".join(parts) + f"; {result.seconds:.1f} s"


def write_table(result: SearchResult, out: IO[str]) -> None:
    """trial | id | varied values | the sweep's costs | measured columns | front | status."""
    run = result.run
    labels = [a.label for a in run.axes] + [d.label for d in run.derived]
    measured = [g.column for g in result.goals if g.kind != "analytic"]
    heads = ["trial", "id", *labels, "params", "GMACs matmul", "act GiB", *measured, "pareto"]
    widths = [5, 10, *(max(len(x), 7) for x in labels), 12, 12, 8]
    widths += [max(len(x), 10) for x in measured] + [6]
    right = [True, False, *([True] * (len(heads) - 3)), False]
    print(_line([*heads, "status"], [*widths, 6], [*right, False]), file=out)
    print("  ".join("-" * w for w in [*widths, 6]), file=out)
    for row in result.rows:
        cells = [
            str(row["trial"]),
            row["id"],
            *(_cell(row["values"].get(x)) for x in labels),
            f"{row['params']:,}" if row["params"] is not None else "",
            _cell(row["gmacs"]),
            _cell(row["activation_gib"]),
            *(_cell(row.get(c)) for c in measured),
            "*" if row["pareto"] else "",
            status(row),
        ]
        print(_line(cells, [*widths, 6], [*right, False]), file=out)


def emit_front(run: SweepRun, rows: Iterable[dict[str, Any]]) -> list[Path]:
    """The front's variants as child specs DIR/<id>.mv extending the base (the sweep's writer)."""
    paths, done = [], set()
    index = {a.label: a for a in run.axes}
    for row in rows:
        if not row["pareto"] or row["id"] in done:
            continue
        done.add(row["id"])
        choice = row["choice"]
        if run.mode == "zip":
            combo = tuple(choice["index"] for _ in run.axes)
        else:
            combo = tuple(index[a.label].values.index(choice[a.label]) for a in run.axes)
        out = run.evaluator.assign(run.axes, combo, run.derived)
        paths.append(run.write(out))
    return paths


def plot(result: SearchResult, path: Path) -> None:
    """The front of the first two objectives, its points labelled with their ids."""
    from .plot import plot_front

    keep = [g.objective for g in result.goals]
    run = result.run
    run.objectives = tuple(keep)
    points = [
        {k: r.get(k) for k in ("id", "pareto", *(o.column for o in keep))}
        for r in result.rows
        if r["feasible"] and not r["cached"]
    ]
    plot_front(run, points, path, title=f"search {result.study.study_name}: {summary(result)}")
