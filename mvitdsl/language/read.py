"""Settings -> Draft: the vocabulary of each setting and of the stage table, read into typed
values with every mistake reported (span and hint). Which options exist, their kinds, choices
and ranges come from language/settings.py; defaults are filled later, by mvitdsl.lower.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import ir
from ..diagnostics import Reporter, Span, did_you_mean
from . import settings as S
from .atoms import Atoms, dims3, pad3
from .syntax import Atom, Cell, Row, Setting, Table


def renamed(word: str, setting: S.Setting, span: Span, r: Reporter) -> str:
    """The current spelling of an option word; an old one (settings.py's `old`) is accepted
    with warning W001."""
    new = setting.renamed().get(word)
    if new is None:
        return word
    r.warning("W001", f"'{word}' is now spelled '{new}'", span, f"write '{new}'")
    return new


def value_extent(o: S.Option, atoms: tuple[Atom, ...], i: int) -> int:
    """How many atoms after an option's word at i hold its value, as Reader.option reads them
    (the sweep's PATHs find a value by it)."""
    if o.kind == "flag":
        return 0
    rest = atoms[i + 1 :]
    if o.word == "pool":  # `pool MODE [KERNEL]`
        return 1 + (len(rest) > 1 and rest[1].kind == "size")
    if o.word == "stride_kv":  # `stride_kv [adaptive] SIZE`
        return 1 + (bool(rest) and rest[0].kind == "name" and rest[0].value == "adaptive")
    return 1


def loc(span: Span, source: str = "") -> ir.Loc:
    """Where a span is, with its source line's text for the report."""
    lines = source.splitlines()
    text = lines[span.line - 1].strip() if 0 < span.line <= len(lines) else ""
    return ir.Loc(
        file=span.file,
        line=span.line,
        column=span.column,
        text=text,
        end_line=span.end_line,
        end_column=span.end_column,
    )


@dataclass
class Draft:
    """Values read from the settings, before defaults are filled and the table expanded."""

    input: ir.Input | None = None
    kind: str | None = None  # known even when the input's size is wrong, so sizes parse right
    values: dict[str, dict[str, Any]] = field(default_factory=dict)  # setting -> field -> value
    where: dict[str, ir.Loc] = field(default_factory=dict)  # setting -> where it is written
    outputs: tuple[list[tuple[str, Span]], bool, Span] | None = None
    rows: list[StageDraft] = field(default_factory=list)
    stages_span: Span | None = None

    def get(self, key: str) -> dict[str, Any]:
        return self.values.setdefault(key, {})


@dataclass
class StageDraft:
    """One row of the stages table, read but not yet expanded to blocks."""

    name: str
    depth: int
    dim: int
    heads: int
    stride_q: ir.Dims3
    stride_kv: ir.Dims3 | None
    kv_off: bool
    loc: ir.Loc
    span: Span
    cells: dict[str, Any] = field(default_factory=dict)  # option field -> value, from cells
    columns: dict[str, ir.Loc] = field(default_factory=dict)


class Reader:
    """Reads the statements of a resolved AST into `d`; collects diagnostics in `r`."""

    def __init__(self, reporter: Reporter, sources: dict[str, str]) -> None:
        self.r = reporter
        self.sources = sources
        self.d = Draft()

    def loc(self, span: Span) -> ir.Loc:
        return loc(span, self.sources.get(span.file, ""))

    @property
    def parts(self) -> int:
        return 2 if self.d.kind == "image" else 3

    def statement(self, s: Any) -> None:
        """Read one setting or table, or report that its key is not one."""
        known = [*S.BY_KEY, "stages", "outputs"]
        if s.key == "outputs" and not isinstance(s, Table):
            self.d.where["outputs"] = self.loc(s.span)
            self.outputs(s)
        elif s.key == "stages":
            if isinstance(s, Table):
                self.d.where["stages"] = self.loc(s.key_span)
                self.stages(s)
            else:
                self.r.error(
                    "E207",
                    "'stages' is a table",
                    s.key_span,
                    "write 'stages {', one row per line, then '}'",
                )
        elif s.key not in S.BY_KEY:
            self.r.error(
                "E200",
                f"unknown setting '{s.key}'",
                s.key_span,
                did_you_mean(s.key, known) or "settings are " + ", ".join(known),
            )
        elif isinstance(s, Table):
            self.r.error("E204", f"'{s.key}' is a setting, not a table", s.key_span)
        else:
            self.d.where[s.key] = self.loc(s.span)
            if s.key == "input":
                self.input(s)
            else:
                self.clauses(s, S.BY_KEY[s.key], self.d.get(s.key))

    def clauses(self, s: Setting, setting: S.Setting, into: dict[str, Any]) -> None:
        """Read `option value... option value...`; commas separate clauses but are optional."""
        options = {o.word: o for o in setting.options}
        seen: set[str] = set()
        for clause in s.clauses:
            atoms = Atoms(clause.atoms, clause.span, self.r)
            while (first := atoms.peek()) is not None:
                key = renamed(str(first.value), setting, first.span, self.r)
                if first.kind not in ("name", "arrow") or key not in options:
                    self.r.error(
                        "E203",
                        f"unknown option '{first.text}' in '{s.key}'",
                        first.span,
                        did_you_mean(first.text, options) or "options are " + ", ".join(options),
                    )
                    break
                if key in seen:
                    self.r.error("E201", f"option '{key}' given twice in '{s.key}'", first.span)
                seen.add(key)
                atoms.i += 1
                self.option(options[key], atoms, into)

    def option(self, o: S.Option, at: Atoms, into: dict[str, Any]) -> None:
        """Read one option's value(s) from the cursor just past its word into `into`."""
        p = self.parts
        if o.kind == "flag":
            into[o.field] = o.default
        elif o.kind == "word":
            into[o.field] = at.word(o.choices, o.name)
        elif o.kind == "switch":
            into[o.field] = at.word(("on", "off"), o.name) == "on"
        elif o.kind in ("number", "integer"):
            assert o.range is not None
            into[o.field] = at.ranged(o.name, o.range, integer=o.kind == "integer")
        elif o.kind == "indexes":
            assert o.range is not None
            into[o.field] = at.indexes(o.name, o.range)
        elif o.kind == "size" and o.field == "padding":
            into[o.field] = pad3(at.size(o.name, p, lo=0))
        elif o.kind == "size":
            into[o.field] = dims3(at.size(o.name, p))
        elif o.word == "pool":
            # `pool MODE [KERNEL]`: the mode, and the kernel of both Q and K/V if one follows
            into["pool_mode"] = at.word(o.choices, "pooling mode")
            if at.peek() is not None:
                into["kernel_q"] = into["kernel_kv"] = dims3(at.size("pooling kernel", p))
        elif o.word == "stride_kv":
            # `stride_kv [adaptive] SIZE`
            nxt = at.peek()
            into["stride_kv_adaptive"] = (
                nxt is not None and nxt.kind == "name" and nxt.value == "adaptive"
            )
            if into["stride_kv_adaptive"]:
                at.i += 1
            into["stride_kv"] = dims3(at.size("K/V stride", p))
        else:  # pragma: no cover - a custom kind without a reader is a bug in settings.py
            raise AssertionError(f"no reader for option {o.word!r}")

    # -- input video 3x16x224x224 | input image 3x224x224 [, grid_rounding ceil]
    def input(self, s: Setting) -> None:
        if not s.clauses:
            self.r.error(
                "E204", "'input' needs a kind and a size, e.g. 'video 3x16x224x224'", s.key_span
            )
            return
        atoms = Atoms(s.clauses[0].atoms, s.clauses[0].span, self.r)
        kind = atoms.word(("video", "image"), "input kind")
        if kind is None:
            return
        self.d.kind = kind
        size = atoms.size(f"{kind} size", 4 if kind == "video" else 3)
        atoms.done()
        rest = Setting(s.key, s.key_span, s.clauses[1:], s.span)
        rounding: dict[str, Any] = {}
        only = S.Setting("input", "", "", (S.BY_KEY["input"].option("grid_rounding"),))
        self.clauses(rest, only, rounding)
        if size is not None:
            c, *thw = size
            grid = (thw[0], thw[1], thw[2]) if kind == "video" else (1, thw[0], thw[1])
            self.d.input = ir.Input(
                kind=kind,
                channels=c,
                size=grid,
                loc=self.loc(s.span),
                grid_rounding=rounding.get("grid_rounding") or "exact",
            )

    # -- outputs scale2, scale3, scale4, scale5, norm   (feature maps instead of logits)
    def outputs(self, s: Setting) -> None:
        names: list[tuple[str, Span]] = []
        norm = False
        for clause in s.clauses:
            for atom in clause.atoms:
                if atom.kind == "name" and atom.value == "norm":
                    norm = True
                elif atom.kind == "name":
                    names.append((str(atom.value), atom.span))
                else:
                    self.r.error(
                        "E204",
                        f"'outputs' takes stage names, not '{atom.text}'",
                        atom.span,
                        "outputs scale2, scale3, scale4, scale5 [, norm]",
                    )
        if not names:
            self.r.error("E204", "'outputs' names no stage", s.key_span, "outputs scale4, scale5")
        self.d.outputs = (names, norm, s.span)

    # -- stages { name blocks dim heads stride_q [stride_kv | off] [key=value ...] }
    def stages(self, t: Table) -> None:
        self.d.stages_span = t.key_span
        if len(t.rows) > S.MAX_ROWS:
            self.r.error(
                "E205", f"{len(t.rows)} stage rows; at most {S.MAX_ROWS} are supported", t.key_span
            )
            return
        names: set[str] = set()
        for row in t.rows:
            stage = self.stage_row(row)
            if stage is None:
                continue
            if stage.name in names:
                self.r.error("E208", f"stage '{stage.name}' appears twice", row.atoms[0].span)
            names.add(stage.name)
            self.d.rows.append(stage)

    def stage_row(self, row: Row) -> StageDraft | None:
        """One row: its positional columns read by settings.COLUMNS, then its cells."""
        atoms = Atoms(row.atoms, row.span, self.r)
        errors = len(self.r.diagnostics)
        first = atoms.take("stage name")
        if first is None or first.kind != "name":
            self.r.error(
                "E207",
                "a stage row starts with the stage's name",
                row.span,
                "columns: " + " ".join(f"[{c.word}]" if c.optional else c.word for c in S.COLUMNS),
            )
            return None
        values = {c.word: self.column(c, atoms) for c in S.COLUMNS[1:]}
        atoms.done()
        kv_off = values["stride_kv"] == "off"
        cells = self.cells(row.cells)
        if kv_off:
            cells["pool_kv"] = False
        needed = [values[c.word] for c in S.COLUMNS[1:] if not c.optional]
        if len(self.r.diagnostics) > errors or None in needed:
            return None
        columns = {c.word: self.loc(a.span) for c, a in zip(S.COLUMNS, row.atoms)}
        columns.update({c.key: self.loc(c.span) for c in row.cells})
        return StageDraft(
            str(first.value),
            values["blocks"],
            values["dim"],
            values["heads"],
            values["stride_q"],
            None if kv_off else values["stride_kv"],
            kv_off,
            self.loc(row.span),
            row.span,
            cells,
            columns,
        )

    def cells(self, cells: tuple[Cell, ...]) -> dict[str, Any]:
        """A row's `key=value` cells -> {option field: value}; unknown or repeated keys reported."""
        known = S.stage_cells()
        out: dict[str, Any] = {}
        seen: set[str] = set()
        for cell in cells:
            if cell.key not in known:
                self.r.error(
                    "E203",
                    f"unknown stage cell '{cell.key}'",
                    cell.key_span,
                    did_you_mean(cell.key, known) or "cells are " + ", ".join(known),
                )
                continue
            if cell.key in seen:
                self.r.error("E201", f"cell '{cell.key}' given twice in one row", cell.key_span)
            seen.add(cell.key)
            self.option(known[cell.key][1], Atoms((cell.value,), cell.span, self.r), out)
        return out

    def column(self, c: S.Column, atoms: Atoms) -> Any:
        """One positional column's value by its declaration; None where it is wrong or absent."""
        if c.kind == "integer":
            assert c.range is not None
            return atoms.ranged(c.word, c.range, integer=True)
        if c.kind == "size":
            return dims3(atoms.size(c.word, self.parts))
        # the optional K/V column: a size, `off` (no K/V pooling), or nothing
        nxt = atoms.peek()
        if nxt is not None and nxt.kind == "name" and nxt.value == "off":
            atoms.i += 1
            return "off"
        return dims3(atoms.size(c.word, self.parts)) if nxt is not None else None
