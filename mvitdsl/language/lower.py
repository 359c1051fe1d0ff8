"""AST -> IR: check the vocabulary, fill defaults, expand the stage table to per-block plans.

Every mistake is reported (all of them, not just the first) with a span and a hint; shape
arithmetic is left to mvitdsl.check, which runs on the IR. The steps live beside this entry
point: `extends` in merge.py, the settings' vocabulary in read.py, blocks in expand.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from .. import ir
from ..diagnostics import Diagnostic, Reporter, Span, did_you_mean
from . import overrides, settings
from .expand import expand
from .merge import merge
from .read import Draft, Reader, loc
from .syntax import Model

N = TypeVar("N", bound=ir.Node)

__all__ = ["DEFAULT_BUDGET", "Lowering", "Reading", "merge"]

# Guard rails: a spec above either is refused before anything is allocated (E306), unless its
# `budget` setting raises the limit. Activations: a training step at batch 1 in fp32.
DEFAULT_BUDGET: dict[str, float] = settings.defaults("budget")


@dataclass(frozen=True)
class Reading:
    """What reading the statements gave: the draft, and the errors found on the way."""

    draft: Draft
    diagnostics: list[Diagnostic]


class Lowering:
    """One lowering run over a resolved AST; collects diagnostics in `r`.

    `run` is `read` then `finish`. The sweep uses the two halves: `read_value` reads the base
    with one value replaced, and `finish` turns a draft (the base's, with such values patched
    in) into the IR."""

    def __init__(self, model: Model, statements: tuple[Any, ...], sources: dict[str, str]) -> None:
        self.model = model
        self.statements = statements
        self.sources = sources
        self.r = Reporter(sources)
        self.d = Draft()  # the draft being finished
        # stages' blocks already built, by what they are built from: a sweep's Lowering keeps
        # one over its variants (explore/engine.py); None builds every block
        self.memo: dict[Any, Any] | None = None

    def run(self) -> ir.Model | None:
        draft = self.read()
        if self.r.diagnostics:
            return None
        return self.finish(draft)

    def read(self) -> Draft:
        """The statements read into a draft, required statements checked (errors in `r`)."""
        reader = Reader(self.r, self.sources)
        ordered = sorted(self.statements, key=lambda s: s.key != "input")  # sizes need the kind
        for statement in ordered:
            reader.statement(statement)
        self.require(reader.d)
        return reader.d

    def read_value(self, target: overrides.Target, text: str) -> Reading:
        """The statements read with one value replaced: a PATH's target (overrides.locate)
        and the value's text. PathError when the text is not a value of the language."""
        statements = overrides.apply(self.statements, {target: text}, self.model.span)
        other = Lowering(self.model, statements, self.sources)
        draft = other.read()
        return Reading(draft, list(other.r.diagnostics))

    def require(self, draft: Draft) -> None:
        """Each required statement is written (E202), the stages table has rows (E207)."""
        span = Span(
            self.model.file,
            self.model.span.line,
            self.model.span.column,
            self.model.span.line,
            self.model.span.column + 5,
        )
        given = {s.key for s in self.statements}  # a wrong one was reported where it stands
        for key, hint in settings.required().items():
            if key not in given:
                self.r.error("E202", f"model '{self.model.name}' has no '{key}'", span, hint)
        if draft.stages_span is not None and not draft.rows and not self.r.diagnostics:
            self.r.error("E207", "the stages table has no rows", draft.stages_span)

    # ------------------------------------------------------------ defaults and expansion

    def values(self, key: str) -> dict[str, Any]:
        """A setting's values: what the spec writes over the declared defaults."""
        out = settings.defaults(key)
        out.update({k: v for k, v in self.d.values.get(key, {}).items() if v is not None})
        return out

    def finish(self, draft: Draft) -> ir.Model | None:
        """Defaults, rules between values (E210) and stage expansion: a draft read without
        errors -> the IR, or None with the errors in `r` (which this call starts afresh)."""
        self.r.diagnostics = []
        self.d = d = draft
        assert d.input is not None
        patch_loc = d.where["patch"]
        attention = self.attention_ir(patch_loc)
        patch = self.patch_ir(patch_loc)
        tokens = self.node(ir.Tokens, **self.values("tokens"), loc=d.where.get("tokens", patch_loc))
        head = self.head_ir(tokens, d.where.get("head", patch_loc))
        train, norm = self.values("train"), self.values("norm")
        self.check_cells(attention)
        self.check_head(tokens, head)
        self.check_scope(attention, tokens)
        if self.r.diagnostics:
            return None
        stages, blocks = expand(
            d.rows, attention, patch.dim, float(train["drop_path"]), memo=self.memo
        )
        return ir.Model(
            name=self.model.name,
            input=d.input,
            patch=patch,
            tokens=tokens,
            attention=attention,
            stages=stages,
            blocks=blocks,
            head=head,
            drop_path=float(train["drop_path"]),
            norm_eps=float(norm["norm_eps"]),
            pool_norm_eps=float(norm.get("pool_norm_eps") or norm["norm_eps"]),
            budget=self.node(ir.Budget, **{k: float(v) for k, v in self.values("budget").items()}),
            source_file=self.model.file,
            outputs=self.outputs_ir([s.name for s in stages]),
            loc=loc(self.model.span, self.sources.get(self.model.file, "")),
            where=dict(d.where),
        )

    def outputs_ir(self, stage_names: list[str]) -> ir.Outputs | None:
        """The `outputs` setting, each name checked against the stage table (E203)."""
        if self.d.outputs is None:
            return None
        names, norm, span = self.d.outputs
        for name, at in names:
            if name not in stage_names:
                self.r.error(
                    "E203",
                    f"no stage '{name}' to output",
                    at,
                    did_you_mean(name, stage_names) or "stages are " + ", ".join(stage_names),
                )
        ordered = tuple(n for n in stage_names if n in {name for name, _ in names})
        return ir.Outputs(stages=ordered, norm=norm, loc=loc(span, self.sources.get(span.file, "")))

    def check_cells(self, attention: ir.Attention) -> None:
        """Cells that do not apply where they are written (E210)."""
        for row in self.d.rows:
            if "dim_out" in row.cells and attention.dim_change != "mlp":
                self.r.error(
                    "E210",
                    f"'dim_out' in stage '{row.name}' needs 'dim_change mlp'",
                    row.columns["dim_out"].span(),
                    "with 'dim_change attention' a stage changes width in its first block: "
                    "add a one-block stage at the new width",
                )
            late = [i for i in row.cells.get("global_blocks") or () if i >= row.depth]
            if late:
                self.r.error(
                    "E205",
                    f"global block {late[0]} of stage '{row.name}' is out of its range: the stage "
                    f"has {row.depth} block{'s' if row.depth > 1 else ''} (0 to {row.depth - 1})",
                    row.columns["global"].span(),
                    "indexes count the stage's blocks from 0",
                )

    def check_scope(self, attention: ir.Attention, tokens: ir.Tokens) -> None:
        """`scope mask_unit` needs a mask unit, and no cls token to split off (E210)."""
        self.check_windows(attention)
        rows = [r for r in self.d.rows if r.cells.get("scope") in ("mask_unit", "window")]
        where = [r.columns["scope"].span() for r in rows]
        if attention.scope in ("mask_unit", "window"):
            where.insert(0, self.d.where.get("attention", self.model_loc()).span())
        if not where:
            return
        unit_rows = [r for r in rows if r.cells.get("scope") == "mask_unit"]
        if attention.mask_unit is None and (unit_rows or attention.scope == "mask_unit"):
            first = unit_rows[0].columns["scope"].span() if unit_rows else where[0]
            self.r.error(
                "E210",
                "'scope mask_unit' attends inside mask units, but the model sets no 'mask_unit'",
                first,
                "add 'mask_unit 8x8' (in tokens of the patch grid) to 'attention'",
            )
        elif tokens.cls:
            self.r.error(
                "E210",
                "windowed attention needs a model without a cls token (windows tile the grid)",
                where[0],
                "write 'tokens no_cls', or 'scope global'",
            )

    def check_windows(self, attention: ir.Attention) -> None:
        """`scope window` needs a `window` size for the stage (E210)."""
        for row in self.d.rows:
            scope = row.cells.get("scope") or attention.scope
            if scope == "window" and (row.cells.get("window") or attention.window) is None:
                span = row.columns.get("scope", row.loc)
                self.r.error(
                    "E210",
                    f"stage '{row.name}' attends in windows ('scope window') of no size",
                    span.span(),
                    "add a 'window=HxW' cell (in tokens of the stage's grid), or "
                    "'window HxW' to 'attention'",
                )

    def model_loc(self) -> ir.Loc:
        return loc(self.model.span, self.sources.get(self.model.file, ""))

    def check_head(self, tokens: ir.Tokens, head: ir.Head) -> None:
        """`head cls` needs a cls token to classify from (E210)."""
        if head.pool == "cls" and not tokens.cls:
            self.r.error(
                "E210",
                "'head cls' classifies from the cls token, but the model has none ('no_cls')",
                head.loc.span(),
                "write 'head mean' (the mean over the patch tokens), or 'tokens cls'",
            )

    def patch_ir(self, where: ir.Loc) -> ir.Patch:
        """The patch embedding; stride defaults to the kernel, width to the first stage's."""
        p = self.values("patch")
        return self.node(
            ir.Patch,
            kernel=p["kernel"] or (1, 1, 1),
            stride=p["stride"] or p["kernel"] or (1, 1, 1),
            padding=p["padding"],
            dim=p["dim"] or self.d.rows[0].dim,
            loc=where,
            norm=bool(p["norm"]),
        )

    def head_ir(self, tokens: ir.Tokens, where: ir.Loc) -> ir.Head:
        """The head: normed unless `no_norm`, pooled from cls where there is one (else mean)."""
        v = self.values("head")
        if "pool" not in self.d.values.get("head", {}):
            v["pool"] = "cls" if tokens.cls else "mean"
        v["dropout"] = float(v["dropout"])
        return self.node(ir.Head, **v, loc=where)

    def attention_ir(self, where: ir.Loc) -> ir.Attention:
        values = self.values("attention")
        values["mlp_ratio"] = float(values["mlp_ratio"])
        values["dropout"] = float(values["dropout"])
        values["layer_scale"] = float(values["layer_scale"])
        values.setdefault("stride_kv_adaptive", False)
        return self.node(ir.Attention, **values, loc=self.d.where.get("attention", where))

    def node(self, kind: type[N], **fields: Any) -> N:
        """kind(**fields); with a memo, the same object for the same fields (a sweep's variants
        then share it, and what is worked out from it can be looked up by identity)."""
        if self.memo is None:
            return kind(**fields)
        key = (kind, tuple((k, type(v), v) for k, v in fields.items()))  # 1 and 1.0 apart
        try:
            made = self.memo.get(key)
        except TypeError:  # a field that cannot be hashed: built, not shared
            return kind(**fields)
        if made is None:
            made = self.memo[key] = kind(**fields)
        return made
