"""Settings -> Draft: the vocabulary of each setting and of the stage table, read into typed
values with every mistake reported (span and hint). Defaults are filled later, by mvitdsl.lower.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import ir
from ..diagnostics import Reporter, Span, did_you_mean
from .atoms import (
    MAX_INT,
    Atoms,
    Option,
    dims3,
    pad3,
    set_dims,
    set_flag,
    set_number,
    set_switch,
    set_word,
)
from .syntax import Row, Setting, Table

MAX_BLOCKS = 512

# Option words renamed by issue 12 (GLOSSARY): the old spelling still reads, with warning W001.
RENAMED_OPTIONS = {"kv_stride": "stride_kv", "pool_q": "pool_q_blocks"}  # rename_vocab: keep


def renamed(word: str, options: dict[str, Option], span: Span, r: Reporter) -> str:
    """The current spelling of an option word; an old one is accepted with a warning."""
    new = RENAMED_OPTIONS.get(word)
    if new is None or new not in options:
        return word
    r.warning("W001", f"'{word}' is now spelled '{new}'", span, f"write '{new}'")
    return new


def loc(span: Span, source: str = "") -> ir.Loc:
    """Where a span is, with its source line's text for the report."""
    lines = source.splitlines()
    text = lines[span.line - 1].strip() if 0 < span.line <= len(lines) else ""
    return ir.Loc(file=span.file, line=span.line, column=span.column, text=text)


def _pool(a: dict[str, Any], at: Atoms, parts: int) -> None:
    """`pool MODE [KERNEL]`: the pooling mode, and the kernel of both Q and K/V if one follows."""
    a["pool_mode"] = at.word(("conv", "avg", "max"), "pooling mode")
    if at.peek() is not None:
        a["kernel_q"] = a["kernel_kv"] = dims3(at.size("pooling kernel", parts))


def _stride_kv(a: dict[str, Any], at: Atoms, parts: int) -> None:
    """`stride_kv [adaptive] SIZE`."""
    nxt = at.peek()
    a["stride_kv_adaptive"] = nxt is not None and nxt.kind == "name" and nxt.value == "adaptive"
    if a["stride_kv_adaptive"]:
        at.i += 1
    a["stride_kv"] = dims3(at.size("K/V stride", parts))


@dataclass
class Draft:
    """Values read from the settings, before the stage table is expanded."""

    input: ir.Input | None = None
    kind: str | None = None  # known even when the input's size is wrong, so sizes parse right
    patch: dict[str, Any] = field(default_factory=dict)
    patch_loc: ir.Loc | None = None
    tokens: ir.Tokens | None = None
    attention: dict[str, Any] = field(default_factory=dict)
    attention_loc: ir.Loc | None = None
    head: ir.Head | None = None
    drop_path: float = 0.0
    norm_eps: float = 1e-6
    rows: list[StageDraft] = field(default_factory=list)
    stages_span: Span | None = None
    outputs: tuple[list[tuple[str, Span]], bool, Span] | None = None


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


class Reader:
    """Reads the statements of a resolved AST into `d`; collects diagnostics in `r`."""

    def __init__(self, reporter: Reporter, sources: dict[str, str]) -> None:
        self.r = reporter
        self.sources = sources
        self.d = Draft()
        self.settings: dict[str, Callable[[Setting], None]] = {
            "input": self.input,
            "patch": self.patch,
            "tokens": self.tokens,
            "attention": self.attention,
            "head": self.head,
            "train": self.train,
            "norm": self.norm,
            "budget": self.budget,
            "outputs": self.outputs,
        }

    def loc(self, span: Span) -> ir.Loc:
        return loc(span, self.sources.get(span.file, ""))

    @property
    def parts(self) -> int:
        return 2 if self.d.kind == "image" else 3

    def statement(self, s: Any) -> None:
        """Read one setting or table, or report that its key is not one."""
        known = [*self.settings, "stages"]
        if s.key == "stages":
            if isinstance(s, Table):
                self.stages(s)
            else:
                self.r.error(
                    "E207",
                    "'stages' is a table",
                    s.key_span,
                    "write 'stages {', one row per line, then '}'",
                )
        elif s.key not in self.settings:
            self.r.error(
                "E200",
                f"unknown setting '{s.key}'",
                s.key_span,
                did_you_mean(s.key, known) or "settings are " + ", ".join(known),
            )
        elif isinstance(s, Table):
            self.r.error("E204", f"'{s.key}' is a setting, not a table", s.key_span)
        else:
            self.settings[s.key](s)

    def clauses(self, s: Setting, options: dict[str, Option]) -> None:
        """Read `option value... option value...`; commas separate clauses but are optional."""
        seen: set[str] = set()
        for clause in s.clauses:
            atoms = Atoms(clause.atoms, clause.span, self.r)
            while (first := atoms.peek()) is not None:
                key = renamed(str(first.value), options, first.span, self.r)
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
                options[key](atoms)

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
        rounding = self.input_options(Setting(s.key, s.key_span, s.clauses[1:], s.span))
        if size is not None:
            c, *thw = size
            grid = (thw[0], thw[1], thw[2]) if kind == "video" else (1, thw[0], thw[1])
            self.d.input = ir.Input(
                kind=kind, channels=c, size=grid, loc=self.loc(s.span), **rounding
            )

    def input_options(self, rest: Setting) -> dict[str, Any]:
        """The clauses after the input's size: `grid_rounding exact|ceil`."""
        rounding: dict[str, Any] = {"grid_rounding": "exact"}
        self.clauses(
            rest,
            {
                "grid_rounding": lambda a: rounding.__setitem__(
                    "grid_rounding", a.word(("exact", "ceil"), "grid rounding") or "exact"
                )
            },
        )
        return rounding

    # -- patch conv 3x7x7 stride 2x4x4 pad 1x3x3 -> 96
    def patch(self, s: Setting) -> None:
        self.d.patch_loc = self.loc(s.span)
        p, out = self.parts, self.d.patch
        self.clauses(
            s,
            {
                "conv": set_dims(out, "kernel", "kernel", p),
                "stride": set_dims(out, "stride", "stride", p),
                "pad": lambda a: out.__setitem__("padding", pad3(a.size("padding", p, lo=0))),
                "->": set_number(out, "dim", "embed dim", 1, MAX_INT, integer=True),
            },
        )

    # -- tokens cls, position separable
    def tokens(self, s: Setting) -> None:
        values: dict[str, Any] = {"cls": False, "position": "none"}
        self.clauses(
            s,
            {
                "cls": set_flag(values, "cls", True),
                "no_cls": set_flag(values, "cls", False),
                "position": lambda a: values.__setitem__(
                    "position", a.word(("none", "separable", "joint"), "position kind") or "none"
                ),
            },
        )
        self.d.tokens = ir.Tokens(
            cls=values["cls"], position=values["position"], loc=self.loc(s.span)
        )

    # -- attention pool conv 3x3x3, stride_kv adaptive 1x8x8, mlp_ratio 4, dim_change mlp
    def attention(self, s: Setting) -> None:
        self.d.attention_loc = self.loc(s.span)
        a, p = self.d.attention, self.parts
        self.clauses(
            s,
            {
                "pool": lambda at: _pool(a, at, p),
                "kernel_q": set_dims(a, "kernel_q", "Q kernel", p),
                "kernel_kv": set_dims(a, "kernel_kv", "K/V kernel", p),
                "pool_q_blocks": set_word(
                    a, "pool_q_blocks", ("first", "all"), "pool_q_blocks rule"
                ),
                "stride_kv": lambda at: _stride_kv(a, at, p),
                "mlp_ratio": set_number(a, "mlp_ratio", "mlp_ratio", 0.01, 64),
                "dim_change": set_word(a, "dim_change", ("mlp", "attention"), "dim_change place"),
                "rel_pos": set_word(a, "rel_pos", ("none", "decomposed"), "rel_pos kind"),
                "residual_pool": set_word(
                    a, "residual_pool", ("none", "tokens", "all"), "residual_pool kind"
                ),
                "qkv_bias": set_switch(a, "qkv_bias"),
                "dropout": set_number(a, "dropout", "dropout", 0, 1),
            },
        )

    # -- head norm, cls, dropout 0.5, classes 400
    def head(self, s: Setting) -> None:
        v: dict[str, Any] = {"norm": False, "pool": "cls", "dropout": 0.0, "classes": 1000}
        self.clauses(
            s,
            {
                "norm": set_flag(v, "norm", True),
                "cls": set_flag(v, "pool", "cls"),
                "mean": set_flag(v, "pool", "mean"),
                "dropout": set_number(v, "dropout", "dropout", 0, 1),
                "classes": set_number(v, "classes", "classes", 1, MAX_INT * 10, integer=True),
            },
        )
        if None not in v.values():
            self.d.head = ir.Head(**v, loc=self.loc(s.span))

    # -- train drop_path 0.2
    def train(self, s: Setting) -> None:
        self.clauses(
            s,
            {
                "drop_path": lambda a: setattr(
                    self.d, "drop_path", a.number("drop_path", 0, 1, False) or 0.0
                )
            },
        )

    # -- norm eps 1e-6
    def norm(self, s: Setting) -> None:
        self.clauses(
            s,
            {
                "eps": lambda a: setattr(
                    self.d, "norm_eps", a.number("eps", 1e-12, 1, False) or 1e-6
                )
            },
        )

    # -- budget params 4e9, activation_gib 128   (raises the guard rails of mvitdsl.check)
    def budget(self, s: Setting) -> None:
        self.clauses(
            s,
            {
                "params": lambda a: a.number("params budget", 1, 1e15, integer=False),
                "activation_gib": lambda a: a.number(
                    "activation_gib budget", 1e-6, 1e9, integer=False
                ),
            },
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

    # -- stages { name blocks dim heads stride_q [stride_kv | off] }
    def stages(self, t: Table) -> None:
        self.d.stages_span = t.key_span
        if len(t.rows) > 64:
            self.r.error("E205", f"{len(t.rows)} stage rows; at most 64 are supported", t.key_span)
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
        atoms = Atoms(row.atoms, row.span, self.r)
        errors = len(self.r.diagnostics)
        first = atoms.take("stage name")
        if first is None or first.kind != "name":
            self.r.error(
                "E207",
                "a stage row starts with the stage's name",
                row.span,
                "columns: name blocks dim heads stride_q [stride_kv]",
            )
            return None
        depth = atoms.number("blocks", 1, MAX_BLOCKS)
        dim = atoms.number("dim", 1, MAX_INT)
        heads = atoms.number("heads", 1, 4096)
        stride_q = dims3(atoms.size("stride_q", self.parts))
        kv, kv_off = self.kv_column(atoms)
        atoms.done()
        if len(self.r.diagnostics) > errors or None in (depth, dim, heads, stride_q):
            return None
        assert stride_q is not None
        return StageDraft(
            str(first.value), depth, dim, heads, stride_q, kv, kv_off, self.loc(row.span), row.span
        )

    def kv_column(self, atoms: Atoms) -> tuple[ir.Dims3 | None, bool]:
        """(K/V stride, off) from a row's optional last column: a size, `off`, or nothing."""
        nxt = atoms.peek()
        if nxt is not None and nxt.kind == "name" and nxt.value == "off":
            atoms.i += 1
            return None, True
        if nxt is not None:
            return dims3(atoms.size("stride_kv", self.parts)), False
        return None, False
