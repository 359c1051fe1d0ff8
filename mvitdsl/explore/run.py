"""A sweep, end to end: combinations -> values -> --where -> real lowering, checking and costs ->
budgets -> rows, streamed; the Pareto flag from a running front and a second read of a spool.

Streaming: rows go, in chunks of SPOOL_AFTER, to a temporary spool file as they are evaluated,
while only the running Pareto front (ids and objective values of the non-dominated rows) and the
last chunk stay in memory; when every variant is done, the spool is read back once and each row is
yielded with its final `pareto` flag. A 10^5 grid therefore holds the front and one chunk, never
all rows. Without objectives (`pareto=None`, `--pareto none`) rows are yielded as they come.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import pickle
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..diagnostics import CODES, Diagnostic
from ..language import lexical, overrides
from ..spec import Spec, load_spec
from .axes import (
    Axis,
    AxisError,
    Derived,
    Mode,
    Where,
    combinations,
    count,
    parse_set,
    parse_values,
    parse_vary,
    parse_where,
    text_of,
)
from .engine import SWEEP_CODES, Budgets, Evaluator, Outcome
from .expr import paths as expr_paths
from .pareto import Objective, RunningFront, parse_objectives, row_point

SCHEMA = 1  # the JSON shape's version; `kind` names the shape (GLOSSARY.md)
MAX_VARIANTS = 10**6
SPOOL_AFTER = 4096  # rows held in memory at most while the front is being found
COST_COLUMNS = ("params", "gmacs", "gmacs_fvcore", "activation_gib", "attention_share")


@dataclass
class Summary:
    """What happened to every variant, counted by the reason it was rejected."""

    total: int = 0
    kept: int = 0
    excluded: int = 0  # by --where, not evaluated
    rejected: Counter[str] = field(default_factory=Counter)  # "E302 stride does not fit" -> n
    front: list[str] = field(default_factory=list)

    def line(self) -> str:
        parts = [f"{self.kept} kept"]
        parts += [f"{n} {reason}" for reason, n in sorted(self.rejected.items(), key=_by_count)]
        text = f"{self.total} variant{'s' * (self.total != 1)}: " + ", ".join(parts)
        if self.excluded:
            text += f" ({self.excluded} more excluded by --where)"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "kind": "sweep_summary",
            "total": self.total,
            "kept": self.kept,
            "excluded": self.excluded,
            "rejected": dict(sorted(self.rejected.items(), key=_by_count)),
            "pareto": self.front,
        }


def _by_count(item: tuple[str, int]) -> tuple[int, str]:
    return (-item[1], item[0])


def reason(d: Diagnostic) -> str:
    """How the summary names a rejection: the code and its words."""
    if d.code == "E306" and d.message.startswith("over the "):
        return f"E306 {d.message.split(':')[0]}"
    return f"{d.code} {CODES.get(d.code) or SWEEP_CODES.get(d.code, '')}".rstrip()


# Keys of a measurement that the sweep computes itself or that do not measure anything.
_NOT_JOINED = {
    *("schema", "kind", "id", "spec", "file", "values", "ok", "pareto", "diagnostics", "input"),
    *("params", "gmacs", "gmacs_fvcore", "activation_gib", "attention_share"),
}
_ID = re.compile(r"(?:^|_)([0-9a-f]{10})$")


def read_join(path: str | Path) -> dict[str, dict[str, Any]]:
    """Measured columns by variant id: a CSV with an `id` column (any tool); or JSON from
    `mvitdsl bench --format json` run on the files of `--emit`: a folder of `<id>.json`, or a
    .json/.jsonl file of objects, each found by its `id`, or by its `spec` (`<base>_<id>`).
    Top-level numbers and words are joined; costs the sweep computes itself are not."""
    p = Path(path)
    if p.is_dir():
        return _join_json((f.stem, f.read_text(encoding="utf-8")) for f in sorted(p.glob("*.json")))
    if p.suffix.lower() in (".json", ".jsonl"):
        text = p.read_text(encoding="utf-8")
        try:
            data = json.loads(text)
            objs = data if isinstance(data, list) else [data]
        except json.JSONDecodeError:
            objs = [json.loads(line) for line in text.splitlines() if line.strip()]
        return _join_json(("", json.dumps(o)) for o in objs)
    return _read_csv(p)


def _join_json(items: Iterable[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for stem, text in items:
        obj = json.loads(text)
        if not isinstance(obj, dict):
            continue
        key = str(obj.get("id") or "")
        for name in (stem, str(obj.get("spec") or "")):
            m = _ID.search(name) if not key else None
            key = m.group(1) if m else key
        if not key:
            raise AxisError(f"--join: a measurement names no variant id ({stem or text[:60]})")
        out[key] = {
            k: v
            for k, v in obj.items()
            if k not in _NOT_JOINED and isinstance(v, (int, float, str)) and not isinstance(v, bool)
        }
    return out


def _read_csv(path: Path) -> dict[str, dict[str, Any]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "id" not in reader.fieldnames:
            raise AxisError(f"--join {path}: the CSV has no 'id' column")
        return {
            row["id"]: {k: _number(v) for k, v in row.items() if k != "id" and k is not None}
            for row in reader
        }


def _number(text: str | None) -> Any:
    """A joined CSV cell: a number as the language writes it, else a measured float that the
    language has no word for (`-0.5`, `nan`), else the text."""
    if text is None or text == "":
        return None
    if lexical.is_number(text):
        return lexical.number_value(text)
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _axes(vary: Mapping[Any, Any] | Sequence[str]) -> list[Axis]:
    if isinstance(vary, Mapping):
        out = []
        for key, values in vary.items():
            paths = tuple(key) if isinstance(key, tuple) else tuple(str(key).split(","))
            label = ",".join(p.strip() for p in paths)
            texts = (
                parse_values(values)
                if isinstance(values, str)
                else tuple(dict.fromkeys(text_of(v) for v in values))
            )
            out.append(Axis(label, tuple(p.strip() for p in paths), texts))
        return out
    return [parse_vary(a) for a in vary]


def _derived(set_: Mapping[str, str] | Sequence[str]) -> list[Derived]:
    items = [f"{k}={v}" for k, v in set_.items()] if isinstance(set_, Mapping) else list(set_)
    return [parse_set(a) for a in items]


class SweepRun:
    """An iterable of rows (dicts); `summary` is complete once iteration has finished."""

    def __init__(
        self,
        base: Spec | str | Path,
        vary: Mapping[Any, Any] | Sequence[str] = (),
        set: Mapping[str, str] | Sequence[str] = (),  # noqa: A002  (the CLI's --set)
        where: str | Sequence[str] = (),
        *,
        mode: Mode = "grid",
        samples: int | None = None,
        seed: int = 0,
        max_variants: int = MAX_VARIANTS,
        budgets: Budgets | None = None,
        batch: int = 1,
        dtype: str = "fp32",
        pareto: str | Sequence[str] | None = "params,gmacs",
        join: str | Path | Mapping[str, Mapping[str, Any]] | None = None,
        emit: str | Path | None = None,
        emit_parent: tuple[Path, str, tuple[Any, ...]] | None = None,
    ) -> None:
        self.base = base if isinstance(base, Spec) else load_spec(base)
        self.axes = _axes(vary)
        self.derived = _derived(set)
        wheres = [where] if isinstance(where, str) else list(where)
        self.wheres: list[Where] = [parse_where(w) for w in wheres]
        self.mode, self.samples, self.seed = mode, samples, seed
        self.evaluator = Evaluator(self.base, budgets=budgets, batch=batch, dtype=dtype)
        self.objectives: tuple[Objective, ...] = ()
        if pareto:
            text = pareto if isinstance(pareto, str) else ",".join(pareto)
            self.objectives = parse_objectives(text)
        if join is None or isinstance(join, Mapping):
            self.joined: Mapping[str, Mapping[str, Any]] = join or {}
        else:
            self.joined = read_join(join)
        self.emit = Path(emit) if emit is not None else None
        self.emit_parent = emit_parent  # a sweep file's variants extend its parent
        self.summary = Summary()
        self.validate(max_variants)

    # -- before anything runs: every path, value and mode is checked once
    def validate(self, max_variants: int) -> None:
        labels = [a.label for a in self.axes] + [d.label for d in self.derived]
        dupes = {x for x in labels if labels.count(x) > 1}
        if dupes:
            raise AxisError(f"{', '.join(sorted(dupes))} given twice")
        for axis in self.axes:
            for path in axis.paths:
                self.evaluator.target(path)
            for text in axis.values:
                overrides.make_atom(text, self.base.ast.span)
        for d in self.derived:
            self.evaluator.target(d.path)
            for path in expr_paths(d.expr):
                self.evaluator.target(path)
        for w in self.wheres:
            for path in expr_paths(w.expr):
                self.evaluator.target(path)
        if self.mode == "random" and self.samples is None:
            raise AxisError("random mode needs --samples N")
        n = count(self.axes, self.mode)
        if self.mode == "grid" and n > max_variants:
            sizes = " x ".join(str(len(a.values)) for a in self.axes)
            raise AxisError(
                f"the grid has {n:,} variants ({sizes}), more than --max-variants "
                f"{max_variants:,}; sample it with --samples N, or raise --max-variants"
            )
        if self.emit is not None and not Path(self.base.path).is_file():
            raise AxisError("--emit needs a base spec read from a file")
        for name in (o.column for o in self.objectives):
            if name not in COST_COLUMNS and not any(name in r for r in self.joined.values()):
                raise AxisError(
                    f"--pareto: no column '{name}'; costs are {', '.join(COST_COLUMNS)}"
                    + (
                        ", joined: "
                        + ", ".join(sorted({k for r in self.joined.values() for k in r}))
                        if self.joined
                        else ""
                    )
                )

    @property
    def size(self) -> int:
        n = count(self.axes, self.mode)
        return min(n, self.samples) if self.mode == "random" and self.samples is not None else n

    # -- the rows
    def outcomes(self) -> Iterator[Outcome]:
        ev = self.evaluator
        for combo in combinations(self.axes, self.mode, self.samples, self.seed):
            out = ev.assign(self.axes, combo, self.derived)
            if not out.diagnostics and self.wheres and not ev.admits(out, self.wheres):
                self.summary.excluded += 1
                continue
            yield ev.evaluate(out)

    def row(self, out: Outcome) -> dict[str, Any]:
        row: dict[str, Any] = {
            "schema": SCHEMA,
            "kind": "sweep",
            "id": out.id,
            "values": {k: text_of(v) if isinstance(v, tuple) else v for k, v in out.values.items()},
            "ok": out.ok,
            "params": out.params,
            "gmacs": out.gmacs,
            "gmacs_fvcore": out.gmacs_fvcore,
            "activation_gib": out.activation_gib,
            "attention_share": out.attention_share,
            "pareto": False,
        }
        if not out.ok:
            row["diagnostics"] = [_diag(d) for d in out.diagnostics]
        if out.ok and self.emit is not None:
            row["file"] = str(self.write(out))
        row.update(self.joined.get(out.id, {}))
        return row

    def write(self, out: Outcome) -> Path:
        assert self.emit is not None
        self.emit.mkdir(parents=True, exist_ok=True)
        base = self.base
        parent_path, parent_name, parent_statements = self.emit_parent or (
            Path(base.path),
            base.ast.name,
            base.statements,
        )
        parent = os.path.relpath(Path(parent_path).resolve(), self.emit.resolve())
        changes = ", ".join(f"{k}={text_of(v)}" for k, v in out.values.items())
        text = overrides.child_text(
            f"{base.name}_{out.id}",
            parent,
            parent_name,
            parent_statements,
            self.evaluator.statements(out),
            f"variant {out.id} of {base.name}: {changes}",
        )
        path = self.emit / f"{out.id}.mv"
        path.write_text(text, encoding="utf-8")
        return path

    def point(self, row: Mapping[str, Any]) -> tuple[float, ...] | None:
        return row_point(row, self.objectives)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self.summary = Summary()
        rows = (self.tally(self.row(out)) for out in self.outcomes())
        if not self.objectives:
            yield from rows
            return
        front = RunningFront()
        buffer: list[dict[str, Any]] = []
        with tempfile.TemporaryFile() as spool:
            spilled = 0
            for row in rows:
                point = self.point(row)
                if point is not None:
                    front.add(row["id"], point)
                buffer.append(row)
                if len(buffer) >= SPOOL_AFTER:  # bounded memory: older rows wait on disk
                    pickle.dump(buffer, spool, protocol=pickle.HIGHEST_PROTOCOL)
                    spilled += 1
                    buffer = []
            self.summary.front = sorted(front.points, key=lambda k: front.points[k])
            on_front = set(front.points)
            spool.seek(0)
            for chunk in itertools.chain((pickle.load(spool) for _ in range(spilled)), [buffer]):
                for row in chunk:
                    row["pareto"] = row["id"] in on_front
                    yield row

    def tally(self, row: dict[str, Any]) -> dict[str, Any]:
        s = self.summary
        s.total += 1
        if row["ok"]:
            s.kept += 1
        else:
            first = row["diagnostics"][0]
            s.rejected[reason(Diagnostic(first["code"], first["message"]))] += 1
        return row


def _diag(d: Diagnostic) -> dict[str, Any]:
    data: dict[str, Any] = {"code": d.code, "message": d.message}
    if d.span is not None:
        data["file"], data["line"], data["column"] = d.span.file, d.span.line, d.span.column
    if d.hint:
        data["hint"] = d.hint
    return data


def sweep(base: Spec | str | Path, vary: Any = (), **kw: Any) -> SweepRun:
    """Rows of a design-space sweep over a base spec; see SweepRun for the keywords.

    for row in mvitdsl.sweep("specs/mvit_b.mv", vary={"scale4.blocks": "8..16:2"}):
        print(row["id"], row["params"], row["gmacs"], row["pareto"])
    """
    return SweepRun(base, vary, **kw)
