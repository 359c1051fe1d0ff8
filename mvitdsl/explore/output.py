"""A sweep's rows as an aligned table, CSV or JSON Lines; all three stream row by row except the
table, whose column widths are fixed up front so that it streams too."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from typing import IO, Any, Union

from .multi import MultiSweep
from .run import SweepRun

Sweep = Union[SweepRun, MultiSweep]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "*" if value else ""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e6 else f"{value:.3f}"
    return str(value)


def _status(row: dict[str, Any]) -> str:
    if row["ok"]:
        return "ok"
    return ",".join(dict.fromkeys(d["code"] for d in row["diagnostics"]))


def write_table(run: Sweep, rows: Iterable[dict[str, Any]], out: IO[str]) -> None:
    """id | varied values | params | GMACs (matmul) | GMACs (fvcore) | act GiB | attn % | front;
    over several bases, a `family` column after the id."""
    labels = [a.label for a in run.axes] + [d.label for d in run.derived]
    extra = _joined_columns(run)
    heads, widths = _table_heads(labels, extra)
    right = [False, *([True] * (len(heads) - 3)), False, False]
    families = _families(run)
    if families:
        heads.insert(1, "family")
        widths.insert(1, max(len(f) for f in ["family", *families]))
        right.insert(1, False)
    print(_line(heads, widths, right), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for row in rows:
        cells = _table_cells(row, labels, extra)
        if families:
            cells.insert(1, row["family"])
        print(_line(cells, widths, right), file=out)


def _families(run: Sweep) -> list[str]:
    """The bases' names of a sweep over several, else none (a one-base sweep has no column)."""
    return run.families if isinstance(run, MultiSweep) else []


def _table_heads(labels: list[str], extra: list[str]) -> tuple[list[str], list[int]]:
    """The table's column heads and their widths."""
    heads = [
        "id",
        *labels,
        "params",
        "GMACs matmul",
        "GMACs fvcore",
        "act GiB",
        "attn %",
        *extra,
        "pareto",
        "status",
    ]
    widths = [
        10,
        *(max(len(x), 7) for x in labels),
        12,
        12,
        12,
        8,
        6,
        *(max(len(x), 8) for x in extra),
        6,
        6,
    ]
    return heads, widths


def _table_cells(row: dict[str, Any], labels: list[str], extra: list[str]) -> list[str]:
    """One row's cells, in the order of `_table_heads`."""
    share = row["attention_share"]
    return [
        row["id"],
        *(_cell(row["values"].get(x)) for x in labels),
        f"{row['params']:,}" if row["params"] is not None else "",
        _cell(row["gmacs"]),
        _cell(row["gmacs_fvcore"]),
        _cell(row["activation_gib"]),
        f"{100 * share:.1f}" if share is not None else "",
        *(_cell(row.get(x)) for x in extra),
        "*" if row["pareto"] else "",
        _status(row),
    ]


def _line(cells: Sequence[str], widths: Sequence[int], right: Sequence[bool]) -> str:
    return "  ".join(
        c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)
    ).rstrip()


def _joined_columns(run: Sweep) -> list[str]:
    return sorted({k for r in run.joined.values() for k in r})


def write_csv(run: Sweep, rows: Iterable[dict[str, Any]], out: IO[str]) -> None:
    """One line per variant; values under their PATH as written; diagnostics as `CODE: words`;
    over several bases, a `family` column after the id."""
    labels = [a.label for a in run.axes] + [d.label for d in run.derived]
    extra = _joined_columns(run)
    family = ["family"] if _families(run) else []
    columns = [
        "id",
        *family,
        *labels,
        "ok",
        "params",
        "gmacs",
        "gmacs_fvcore",
        "activation_gib",
        "attention_share",
        "pareto",
        "diagnostics",
        "file",
        *extra,
    ]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        diags = "; ".join(f"{d['code']}: {d['message']}" for d in row.get("diagnostics", []))
        writer.writerow(
            [
                row["id"],
                *(row[x] for x in family),
                *(row["values"].get(x, "") for x in labels),
                row["ok"],
                row["params"],
                row["gmacs"],
                row["gmacs_fvcore"],
                row["activation_gib"],
                row["attention_share"],
                row["pareto"],
                diags,
                row.get("file", ""),
                *(row.get(x, "") for x in extra),
            ]
        )


def write_jsonl(rows: Iterable[dict[str, Any]], out: IO[str]) -> None:
    for row in rows:
        out.write(json.dumps(row, separators=(",", ":")) + "\n")
