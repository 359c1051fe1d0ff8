"""The sections of a report for a sweep (`mvitdsl sweep ... --format jsonl`): its rows read and
checked line by line, the variant table (sortable), and the Pareto plot, an SVG written here whose
points link to their rows."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

from .page import Cell, esc, figure, table

ROW_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
COSTS = ("gmacs", "gmacs_fvcore", "activation_gib", "attention_share")
SCALAR = (str, int, float, bool, type(None))


class SweepError(ValueError):
    """A sweep file that cannot be read: one line saying where and why."""


def read_sweep(text: str, file: str) -> list[dict[str, Any]]:
    """The rows of a sweep's JSON Lines, each checked to be a sweep row; SweepError if not."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line, parse_constant=_no_constant, parse_float=_finite)
        except (ValueError, RecursionError) as e:
            raise SweepError(f"{file}:{n}: not JSON ({str(e).splitlines()[0][:80]})") from None
        problem = row_problem(row)
        if problem:
            raise SweepError(f"{file}:{n}: not a sweep row: {problem}")
        if row_key(row) in seen:
            raise SweepError(f"{file}:{n}: a second row with id '{row_key(row)}'")
        seen.add(row_key(row))
        rows.append(row)
    if not rows:
        raise SweepError(f"{file}: no sweep rows (write them with `mvitdsl sweep --format jsonl`)")
    return rows


def row_key(row: dict[str, Any]) -> str:
    """A row's name on the page: its id, or `family:id` in a sweep over several bases (one id
    can come once per base)."""
    return f"{row['family']}:{row['id']}" if "family" in row else str(row["id"])


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite(text: str) -> float:
    """A JSON number as a float; 1e400 (read as infinity) is refused, as NaN is."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is too large a number")
    return value


def row_problem(row: Any) -> str | None:
    """Why `row` is not a sweep row (the fields this page reads), or None."""
    if not isinstance(row, dict) or row.get("kind") != "sweep":
        return 'expected an object with "kind": "sweep"'
    if not isinstance(row.get("id"), str) or not ROW_ID.fullmatch(row["id"]):
        return '"id" must be a short word (letters, digits, _ . : -)'
    if "family" in row and not (isinstance(row["family"], str) and ROW_ID.fullmatch(row["family"])):
        return '"family" must be a short word (letters, digits, _ . : -)'
    values = row.get("values")
    if not isinstance(values, dict) or not all(isinstance(v, SCALAR) for v in values.values()):
        return '"values" must be an object of plain values'
    if not isinstance(row.get("ok"), bool) or not isinstance(row.get("pareto"), bool):
        return '"ok" and "pareto" must be true or false'
    params = row.get("params")
    if params is not None and not (_number(params) and isinstance(params, int)):
        return '"params" must be a whole number or null'
    for key in COSTS:
        if row.get(key) is not None and not _number(row[key]):
            return f'"{key}" must be a number or null'
    diagnostics = row.get("diagnostics", [])
    if not isinstance(diagnostics, list) or not all(
        isinstance(d, dict) and isinstance(d.get("code"), str) for d in diagnostics
    ):
        return '"diagnostics" must be a list of objects with a "code"'
    return None


def _number(v: Any) -> bool:
    """A finite JSON number of a size a cost can have (1e400 reads as inf; 10**400 as an int)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    return abs(v) < 1e18 and math.isfinite(v)


def labels_of(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The varied values' names, in the order they first appear."""
    return list(dict.fromkeys(k for r in rows for k in r["values"]))


def variant_table(rows: Sequence[dict[str, Any]]) -> str:
    """Every variant, sortable by any column; row ids `row-ID` (the plot links to them)."""
    labels = labels_of(rows)
    family = ["family"] if any("family" in r for r in rows) else []  # several bases
    body = [[*_value_cells(r, family + labels), *_cost_cells(r)] for r in rows]
    heads = (
        "id", *family, *labels, "params", "GMACs", "GMACs fvcore", "act GiB", "attn %", "pareto",
        "status",
    )  # fmt: skip
    ids = [f"row-{row_key(r)}" for r in rows]
    return table(heads, body, ident="variants", sortable=True, row_ids=ids)


def _value_cells(r: dict[str, Any], labels: Sequence[str]) -> list[Cell]:
    cells = [Cell(r["id"])]
    for label in labels:
        v = r["family"] if label == "family" else r["values"].get(label)
        number = v if isinstance(v, (int, float)) and not isinstance(v, bool) else None
        cells.append(Cell("" if v is None else str(v), number))
    return cells


def _cost_cells(r: dict[str, Any]) -> list[Cell]:
    params, share = r.get("params"), r.get("attention_share")
    status = "ok" if r["ok"] else ",".join(dict.fromkeys(d["code"] for d in r["diagnostics"]))
    return [
        Cell("" if params is None else f"{params:,}", params),
        *(_float(r.get(k), 3) for k in ("gmacs", "gmacs_fvcore", "activation_gib")),
        _float(None if share is None else 100 * share, 1),
        Cell("*" if r["pareto"] else "", int(r["pareto"])),
        Cell(status),
    ]


def _float(v: float | None, digits: int) -> Cell:
    if v is None or not math.isfinite(v):
        return Cell("", None)
    return Cell(f"{v:.{digits}f}", v)


def plotted(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with both plot coordinates (params, GMACs) as finite numbers."""
    return [r for r in rows if r.get("params") is not None and r.get("gmacs") is not None]


def front_figure(rows: Sequence[dict[str, Any]]) -> str:
    """The design front: params against GMACs, each point a link to its row."""
    from .plot import front_svg

    points = plotted(rows)
    n = sum(r["pareto"] for r in points)
    caption = f"{len(points)} variants, {n} on the Pareto front; click a point for its row"
    return figure("front-figure", front_svg(points), caption)


def sweep_section(rows: Sequence[dict[str, Any]], file: str) -> str:
    ok = sum(r["ok"] for r in rows)
    return (
        f'<h2 id="sweep">sweep <small>{esc(file)}</small></h2>'
        f"<p>{len(rows)} variants: {ok} kept, {len(rows) - ok} refused.</p>"
        + front_figure(rows)
        + "<h3>Variants</h3>"
        + variant_table(rows)
    )
