"""AST -> IR: check the vocabulary, fill defaults, expand the stage table to per-block plans.

Every mistake is reported (all of them, not just the first) with a span and a hint; shape
arithmetic is left to mvitdsl.check, which runs on the IR.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from . import ir
from .diagnostics import Reporter, Span, did_you_mean
from .syntax import Atom, Clause, Model, Row, Setting, Table

MAX_INT = 1_000_000  # widths, sizes, strides, classes: anything larger is a typo
MAX_BLOCKS = 512


def loc(span: Span, source: str = "") -> ir.Loc:
    lines = source.splitlines()
    text = lines[span.line - 1].strip() if 0 < span.line <= len(lines) else ""
    return ir.Loc(file=span.file, line=span.line, column=span.column, text=text)


class _Atoms:
    """A cursor over a clause's atoms that reads typed values and reports what is wrong."""

    def __init__(self, atoms: tuple[Atom, ...], end: Span, reporter: Reporter) -> None:
        self.atoms, self.i, self.end, self.r = atoms, 0, end, reporter

    def peek(self) -> Atom | None:
        return self.atoms[self.i] if self.i < len(self.atoms) else None

    def take(self, what: str) -> Atom | None:
        atom = self.peek()
        if atom is None:
            self.r.error("E204", f"missing {what}", self.end)
            return None
        self.i += 1
        return atom

    def word(self, choices: tuple[str, ...], what: str) -> str | None:
        atom = self.take(what)
        if atom is None:
            return None
        if atom.kind != "name" or atom.value not in choices:
            hint = did_you_mean(atom.text, choices) or "choose one of " + ", ".join(choices)
            self.r.error("E203", f"unknown {what} '{atom.text}'", atom.span, hint)
            return None
        return str(atom.value)

    def number(self, what: str, lo: float, hi: float, integer: bool = True) -> Any:
        atom = self.take(what)
        if atom is None:
            return None
        if atom.kind != "number" or (integer and not isinstance(atom.value, int)):
            kind = "a whole number" if integer else "a number"
            self.r.error("E204", f"{what} must be {kind}, not '{atom.text}'", atom.span)
            return None
        value = atom.value
        assert isinstance(value, (int, float))
        if not lo <= value <= hi:
            self.r.error("E205", f"{what} {atom.text} is out of range [{lo:g}, {hi:g}]", atom.span)
            return None
        return value

    def size(self, what: str, parts: int, lo: int = 1) -> tuple[int, ...] | None:
        atom = self.take(what)
        if atom is None:
            return None
        if atom.kind == "number" and isinstance(atom.value, int) and parts == 1:
            value: tuple[int, ...] = (atom.value,)
        elif atom.kind != "size":
            self.r.error(
                "E204",
                f"{what} must be a size such as {'x'.join(['3'] * parts)}, not '{atom.text}'",
                atom.span,
            )
            return None
        else:
            assert isinstance(atom.value, tuple)
            value = atom.value
        if len(value) != parts:
            self.r.error(
                "E206",
                f"{what} '{atom.text}' has {len(value)} sizes; expected {parts}",
                atom.span,
                f"write {parts} numbers joined by 'x'",
            )
            return None
        if not all(lo <= v <= MAX_INT for v in value):
            self.r.error(
                "E205",
                f"{what} '{atom.text}' must have sizes between {lo} and {MAX_INT:,}",
                atom.span,
            )
            return None
        return value

    def done(self) -> None:
        extra = self.peek()
        if extra is not None:
            self.r.error(
                "E203", f"unexpected '{extra.text}' here", extra.span, "separate options with ','"
            )
            self.i = len(self.atoms)


# ---------------------------------------------------------------- inheritance and merging


def merge(parent: tuple[Any, ...], child: tuple[Any, ...]) -> tuple[Any, ...]:
    """Child statements override the parent's: a setting clause by its first word, a table row by
    its name; everything else is inherited, keeping the span of whoever set it."""
    out: dict[str, Any] = {s.key: s for s in parent}
    for statement in child:
        base = out.get(statement.key)
        if isinstance(statement, Setting) and isinstance(base, Setting):
            out[statement.key] = _merge_setting(base, statement)
        elif isinstance(statement, Table) and isinstance(base, Table):
            out[statement.key] = _merge_table(base, statement)
        else:
            out[statement.key] = statement
    return tuple(out.values())


def _clause_key(clause: Clause) -> str:
    first = clause.atoms[0]
    return str(first.value) if first.kind == "name" else f"#{first.text}"


# Flags that exclude each other: a child's `cls` replaces the parent's `no_cls`, and so on.
_EXCLUSIVE = {"tokens": ("cls", "no_cls"), "head": ("cls", "mean")}


def _merge_setting(base: Setting, child: Setting) -> Setting:
    clauses = {_clause_key(c): c for c in base.clauses}
    group = _EXCLUSIVE.get(base.key, ())
    for c in child.clauses:
        if _clause_key(c) in group:
            for other in group:
                clauses.pop(other, None)
        clauses[_clause_key(c)] = c
    return Setting(base.key, child.key_span, tuple(clauses.values()), child.span)


def _merge_table(base: Table, child: Table) -> Table:
    rows = {str(r.atoms[0].value): r for r in base.rows}
    rows.update({str(r.atoms[0].value): r for r in child.rows})
    return Table(base.key, child.key_span, tuple(rows.values()), child.span)


# ---------------------------------------------------------------- settings


@dataclass
class _Draft:
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
    rows: list[_StageRow] = field(default_factory=list)
    stages_span: Span | None = None


@dataclass
class _StageRow:
    name: str
    depth: int
    dim: int
    heads: int
    stride_q: ir.Dims3
    stride_kv: ir.Dims3 | None
    kv_off: bool
    loc: ir.Loc
    span: Span


class Lowering:
    """One lowering run over a resolved AST; collects diagnostics in `reporter`."""

    def __init__(self, model: Model, statements: tuple[Any, ...], sources: dict[str, str]) -> None:
        self.model = model
        self.statements = statements
        self.sources = sources
        self.r = Reporter(sources)
        self.d = _Draft()

    def loc(self, span: Span) -> ir.Loc:
        return loc(span, self.sources.get(span.file, ""))

    @property
    def parts(self) -> int:
        return 2 if self.d.kind == "image" else 3

    def dims3(self, value: tuple[int, ...] | None) -> ir.Dims3 | None:
        if value is None:
            return None
        return (1, value[0], value[1]) if len(value) == 2 else (value[0], value[1], value[2])

    def pad3(self, value: tuple[int, ...] | None) -> ir.Dims3 | None:
        """Like dims3, but an image's missing T axis gets padding 0, not 1."""
        if value is None or len(value) != 2:
            return self.dims3(value)
        return (0, value[0], value[1])

    def run(self) -> ir.Model | None:
        settings: dict[str, Callable[[Setting], None]] = {
            "input": self.input,
            "patch": self.patch,
            "tokens": self.tokens,
            "attention": self.attention,
            "head": self.head,
            "train": self.train,
            "norm": self.norm,
            "budget": self.budget,
        }
        ordered = sorted(self.statements, key=lambda s: s.key != "input")  # sizes need the kind
        for statement in ordered:
            self.statement(statement, settings)
        self.require()
        if self.r.diagnostics:
            return None
        return self.finish()

    def statement(self, s: Any, settings: dict[str, Callable[[Setting], None]]) -> None:
        known = [*settings, "stages"]
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
        elif s.key not in settings:
            self.r.error(
                "E200",
                f"unknown setting '{s.key}'",
                s.key_span,
                did_you_mean(s.key, known) or "settings are " + ", ".join(known),
            )
        elif isinstance(s, Table):
            self.r.error("E204", f"'{s.key}' is a setting, not a table", s.key_span)
        else:
            settings[s.key](s)

    def require(self) -> None:
        span = Span(
            self.model.file,
            self.model.span.line,
            self.model.span.column,
            self.model.span.line,
            self.model.span.column + 5,
        )
        given = {s.key for s in self.statements}  # a wrong one was reported where it stands
        for key in ("input", "patch", "stages"):
            if key not in given:
                self.r.error(
                    "E202", f"model '{self.model.name}' has no '{key}'", span, _EXAMPLES[key]
                )
        if self.d.stages_span is not None and not self.d.rows and not self.r.diagnostics:
            self.r.error("E207", "the stages table has no rows", self.d.stages_span)

    def clauses(self, s: Setting, options: dict[str, Callable[[_Atoms], None]]) -> None:
        """Read `option value... option value...`; commas separate clauses but are optional."""
        seen: set[str] = set()
        for clause in s.clauses:
            atoms = _Atoms(clause.atoms, clause.span, self.r)
            while (first := atoms.peek()) is not None:
                key = str(first.value)
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
        atoms = _Atoms(s.clauses[0].atoms, s.clauses[0].span, self.r)
        kind = atoms.word(("video", "image"), "input kind")
        if kind is None:
            return
        self.d.kind = kind
        size = atoms.size(f"{kind} size", 4 if kind == "video" else 3)
        atoms.done()
        rounding: dict[str, Any] = {"grid_rounding": "exact"}
        rest = Setting(s.key, s.key_span, s.clauses[1:], s.span)
        self.clauses(
            rest,
            {
                "grid_rounding": lambda a: rounding.__setitem__(
                    "grid_rounding", a.word(("exact", "ceil"), "grid rounding") or "exact"
                )
            },
        )
        if size is not None:
            c, *thw = size
            grid = (thw[0], thw[1], thw[2]) if kind == "video" else (1, thw[0], thw[1])
            self.d.input = ir.Input(
                kind=kind, channels=c, size=grid, loc=self.loc(s.span), **rounding
            )

    # -- patch conv 3x7x7 stride 2x4x4 pad 1x3x3 -> 96
    def patch(self, s: Setting) -> None:
        self.d.patch_loc = self.loc(s.span)
        p = self.parts
        self.clauses(
            s,
            {
                "conv": lambda a: self.d.patch.__setitem__(
                    "kernel", self.dims3(a.size("kernel", p))
                ),
                "stride": lambda a: self.d.patch.__setitem__(
                    "stride", self.dims3(a.size("stride", p))
                ),
                "pad": lambda a: self.d.patch.__setitem__(
                    "padding", self.pad3(a.size("padding", p, lo=0))
                ),
                "->": lambda a: self.d.patch.__setitem__("dim", a.number("embed dim", 1, MAX_INT)),
            },
        )

    # -- tokens cls, position separable
    def tokens(self, s: Setting) -> None:
        values: dict[str, Any] = {"cls": False, "position": "none"}
        self.clauses(
            s,
            {
                "cls": lambda a: values.__setitem__("cls", True),
                "no_cls": lambda a: values.__setitem__("cls", False),
                "position": lambda a: values.__setitem__(
                    "position", a.word(("none", "separable", "joint"), "position kind") or "none"
                ),
            },
        )
        self.d.tokens = ir.Tokens(
            cls=values["cls"], position=values["position"], loc=self.loc(s.span)
        )

    # -- attention pool conv 3x3x3, kv_stride adaptive 1x8x8, mlp_ratio 4, dim_change mlp
    def attention(self, s: Setting) -> None:
        self.d.attention_loc = self.loc(s.span)
        a = self.d.attention
        p = self.parts

        def pool(at: _Atoms) -> None:
            a["pool_mode"] = at.word(("conv", "avg", "max"), "pooling mode")
            if at.peek() is not None:
                a["kernel_q"] = a["kernel_kv"] = self.dims3(at.size("pooling kernel", p))

        def kv_stride(at: _Atoms) -> None:
            nxt = at.peek()
            a["kv_adaptive"] = nxt is not None and nxt.kind == "name" and nxt.value == "adaptive"
            if a["kv_adaptive"]:
                at.i += 1
            a["kv_stride"] = self.dims3(at.size("K/V stride", p))

        def switch(name: str) -> Callable[[_Atoms], None]:
            return lambda at: a.__setitem__(name, at.word(("on", "off"), name) == "on")

        self.clauses(
            s,
            {
                "pool": pool,
                "kernel_q": lambda at: a.__setitem__(
                    "kernel_q", self.dims3(at.size("Q kernel", p))
                ),
                "kernel_kv": lambda at: a.__setitem__(
                    "kernel_kv", self.dims3(at.size("K/V kernel", p))
                ),
                "pool_q": lambda at: a.__setitem__(
                    "pool_q", at.word(("first", "all"), "pool_q rule")
                ),
                "kv_stride": kv_stride,
                "mlp_ratio": lambda at: a.__setitem__(
                    "mlp_ratio", at.number("mlp_ratio", 0.01, 64, False)
                ),
                "dim_change": lambda at: a.__setitem__(
                    "dim_change", at.word(("mlp", "attention"), "dim_change place")
                ),
                "rel_pos": lambda at: a.__setitem__(
                    "rel_pos", at.word(("none", "decomposed"), "rel_pos kind")
                ),
                "residual_pool": lambda at: a.__setitem__(
                    "residual_pool", at.word(("none", "tokens", "all"), "residual_pool kind")
                ),
                "qkv_bias": switch("qkv_bias"),
                "dropout": lambda at: a.__setitem__("dropout", at.number("dropout", 0, 1, False)),
            },
        )

    # -- head norm, cls, dropout 0.5, classes 400
    def head(self, s: Setting) -> None:
        v: dict[str, Any] = {"norm": False, "pool": "cls", "dropout": 0.0, "classes": 1000}
        self.clauses(
            s,
            {
                "norm": lambda a: v.__setitem__("norm", True),
                "cls": lambda a: v.__setitem__("pool", "cls"),
                "mean": lambda a: v.__setitem__("pool", "mean"),
                "dropout": lambda a: v.__setitem__("dropout", a.number("dropout", 0, 1, False)),
                "classes": lambda a: v.__setitem__("classes", a.number("classes", 1, MAX_INT * 10)),
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

    # -- stages { name blocks dim heads pool_q [pool_kv | off] }
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

    def stage_row(self, row: Row) -> _StageRow | None:
        atoms = _Atoms(row.atoms, row.span, self.r)
        errors = len(self.r.diagnostics)
        first = atoms.take("stage name")
        if first is None or first.kind != "name":
            self.r.error(
                "E207",
                "a stage row starts with the stage's name",
                row.span,
                "columns: name blocks dim heads pool_q [pool_kv]",
            )
            return None
        depth = atoms.number("blocks", 1, MAX_BLOCKS)
        dim = atoms.number("dim", 1, MAX_INT)
        heads = atoms.number("heads", 1, 4096)
        stride_q = self.dims3(atoms.size("pool_q stride", self.parts))
        kv, kv_off = None, False
        nxt = atoms.peek()
        if nxt is not None and nxt.kind == "name" and nxt.value == "off":
            atoms.i += 1
            kv_off = True
        elif nxt is not None:
            kv = self.dims3(atoms.size("pool_kv stride", self.parts))
        atoms.done()
        if len(self.r.diagnostics) > errors or None in (depth, dim, heads, stride_q):
            return None
        assert stride_q is not None
        return _StageRow(
            str(first.value), depth, dim, heads, stride_q, kv, kv_off, self.loc(row.span), row.span
        )

    # ------------------------------------------------------------ expansion

    def finish(self) -> ir.Model:
        d = self.d
        assert d.input is not None and d.patch_loc is not None
        attention = self.attention_ir()
        patch = ir.Patch(
            kernel=d.patch.get("kernel") or (1, 1, 1),
            stride=d.patch.get("stride") or d.patch.get("kernel") or (1, 1, 1),
            padding=d.patch.get("padding") or (0, 0, 0),
            dim=d.patch.get("dim") or d.rows[0].dim,
            loc=d.patch_loc,
        )
        tokens = d.tokens or ir.Tokens(cls=True, position="none", loc=d.patch_loc)
        head = d.head or ir.Head(
            norm=True,
            pool="cls" if tokens.cls else "mean",
            dropout=0.0,
            classes=1000,
            loc=d.patch_loc,
        )
        stages, blocks = expand(d.rows, attention, patch.dim, d.drop_path)
        return ir.Model(
            name=self.model.name,
            input=d.input,
            patch=patch,
            tokens=tokens,
            attention=attention,
            stages=stages,
            blocks=blocks,
            head=head,
            drop_path=d.drop_path,
            norm_eps=d.norm_eps,
            source_file=self.model.file,
        )

    def attention_ir(self) -> ir.Attention:
        a = self.d.attention
        defaults: dict[str, Any] = {
            "pool_mode": "conv",
            "kernel_q": None,
            "kernel_kv": None,
            "pool_q": "first",
            "kv_stride": None,
            "kv_adaptive": False,
            "mlp_ratio": 4.0,
            "dim_change": "mlp",
            "rel_pos": "none",
            "residual_pool": "none",
            "qkv_bias": True,
            "dropout": 0.0,
        }
        values = {k: (a[k] if a.get(k) is not None else v) for k, v in defaults.items()}
        values["mlp_ratio"] = float(values["mlp_ratio"])
        values["dropout"] = float(values["dropout"])
        return ir.Attention(**values, loc=self.d.attention_loc or self.d.patch_loc)


# Guard rails: a spec above either is refused before anything is allocated (E306), unless its
# `budget` setting raises the limit. Activations: a training step at batch 1 in fp32.
DEFAULT_BUDGET: dict[str, float] = {"params": 2e9, "activation_gib": 128.0}


def budgets(statements: tuple[Any, ...]) -> dict[str, float]:
    """The `budget` setting over the defaults; its values were validated while lowering."""
    out = dict(DEFAULT_BUDGET)
    for s in statements:
        if isinstance(s, Setting) and s.key == "budget":
            for clause in s.clauses:
                for key, value in zip(clause.atoms, clause.atoms[1:]):
                    if key.kind == "name" and key.value in out and value.kind == "number":
                        out[str(key.value)] = float(value.value)  # type: ignore[arg-type]
    return out


_EXAMPLES = {
    "input": "add 'input video 3x16x224x224'",
    "patch": "add 'patch conv 3x7x7 stride 2x4x4 pad 1x3x3 -> 96'",
    "stages": "add a 'stages { ... }' table with one row per stage",
}


def _kernel_rule(stride: ir.Dims3) -> ir.Dims3:
    """SlowFast's default kernel when none is given: s + 1 where s > 1, else s."""
    k = tuple(s + 1 if s > 1 else s for s in stride)
    return (k[0], k[1], k[2])


def _divide(kv: ir.Dims3, q: ir.Dims3) -> ir.Dims3:
    return (max(kv[0] // q[0], 1), max(kv[1] // q[1], 1), max(kv[2] // q[2], 1))


def _stage_blocks(rows: list[_StageRow]) -> Iterator[tuple[int, int, _StageRow, int]]:
    """(block index, stage index, stage row, index inside the stage) for every block."""
    index = 0
    for s, row in enumerate(rows):
        for j in range(row.depth):
            yield index, s, row, j
            index += 1


def expand(
    rows: list[_StageRow], att: ir.Attention, embed_dim: int, drop_path: float
) -> tuple[tuple[ir.Stage, ...], tuple[ir.Block, ...]]:
    """The stage table -> one Block per block, with strides, kernels, widths resolved."""
    total = sum(r.depth for r in rows)
    kv_running = att.kv_stride or (1, 1, 1)
    blocks: list[ir.Block] = []
    stages: list[ir.Stage] = []
    dim_in = embed_dim
    for index, s, row, j in _stage_blocks(rows):
        stride_q = row.stride_q if j == 0 else (1, 1, 1)
        if att.kv_adaptive and j == 0 and stride_q != (1, 1, 1):
            kv_running = _divide(kv_running, stride_q)
        stride_kv = (1, 1, 1) if row.kv_off else row.stride_kv or kv_running
        if att.dim_change == "mlp":
            last = j == row.depth - 1 and s + 1 < len(rows)
            dim_attn, dim_out = dim_in, rows[s + 1].dim if last else row.dim
            dim_in_block = dim_in
        else:
            dim_in_block, dim_attn, dim_out = dim_in, row.dim, row.dim
        q_pooled = att.pool_q == "all" or stride_q != (1, 1, 1)
        kernel_q = (att.kernel_q or _kernel_rule(stride_q)) if q_pooled else (1, 1, 1)
        kernel_kv = (1, 1, 1) if row.kv_off else att.kernel_kv or _kernel_rule(stride_kv)
        blocks.append(
            ir.Block(
                index=index,
                stage=row.name,
                dim_in=dim_in_block,
                dim_attn=dim_attn,
                dim_out=dim_out,
                heads=row.heads,
                mlp_hidden=int(dim_attn * att.mlp_ratio),
                pool_q=ir.Pool(mode=att.pool_mode, kernel=kernel_q, stride=stride_q),
                pool_kv=ir.Pool(mode=att.pool_mode, kernel=kernel_kv, stride=stride_kv),
                drop_path=drop_path * index / (total - 1) if total > 1 else 0.0,
                loc=row.loc,
            )
        )
        dim_in = dim_out
        if j == 0:
            stages.append(
                ir.Stage(
                    name=row.name,
                    first=index,
                    depth=row.depth,
                    dim=row.dim,
                    heads=row.heads,
                    stride_q=row.stride_q,
                    stride_kv=(1, 1, 1) if row.kv_off else row.stride_kv,
                    loc=row.loc,
                )
            )
    return tuple(stages), tuple(blocks)
