"""AST -> IR: check the vocabulary, fill defaults, expand the stage table to per-block plans.

Every mistake is reported (all of them, not just the first) with a span and a hint; shape
arithmetic is left to mvitdsl.check, which runs on the IR. The steps live beside this entry
point: `extends` in merge.py, the settings' vocabulary in read.py, blocks in expand.py.
"""

from __future__ import annotations

from typing import Any

from .. import ir
from ..diagnostics import Reporter, Span, did_you_mean
from .expand import expand
from .merge import merge
from .read import Reader
from .syntax import Model, Setting

__all__ = ["DEFAULT_BUDGET", "Lowering", "budgets", "merge"]

# Guard rails: a spec above either is refused before anything is allocated (E306), unless its
# `budget` setting raises the limit. Activations: a training step at batch 1 in fp32.
DEFAULT_BUDGET: dict[str, float] = {"params": 2e9, "activation_gib": 128.0}

_EXAMPLES = {
    "input": "add 'input video 3x16x224x224'",
    "patch": "add 'patch conv 3x7x7 stride 2x4x4 pad 1x3x3 -> 96'",
    "stages": "add a 'stages { ... }' table with one row per stage",
}


class Lowering:
    """One lowering run over a resolved AST; collects diagnostics in `reporter`."""

    def __init__(self, model: Model, statements: tuple[Any, ...], sources: dict[str, str]) -> None:
        self.model = model
        self.statements = statements
        self.sources = sources
        self.r = Reporter(sources)
        self.reader = Reader(self.r, sources)
        self.d = self.reader.d

    def run(self) -> ir.Model | None:
        ordered = sorted(self.statements, key=lambda s: s.key != "input")  # sizes need the kind
        for statement in ordered:
            self.reader.statement(statement)
        self.require()
        if self.r.diagnostics:
            return None
        return self.finish()

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

    # ------------------------------------------------------------ defaults and expansion

    def finish(self) -> ir.Model:
        d = self.d
        assert d.input is not None and d.patch_loc is not None
        attention = self.attention_ir()
        patch = self.patch_ir(d.patch_loc)
        tokens = d.tokens or ir.Tokens(cls=True, position="none", loc=d.patch_loc)
        head = d.head or self.head_ir(tokens, d.patch_loc)
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
            outputs=self.outputs_ir([s.name for s in stages]),
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
        return ir.Outputs(stages=ordered, norm=norm, loc=self.reader.loc(span))

    def patch_ir(self, loc: ir.Loc) -> ir.Patch:
        """The patch embedding; stride defaults to the kernel, width to the first stage's."""
        p = self.d.patch
        return ir.Patch(
            kernel=p.get("kernel") or (1, 1, 1),
            stride=p.get("stride") or p.get("kernel") or (1, 1, 1),
            padding=p.get("padding") or (0, 0, 0),
            dim=p.get("dim") or self.d.rows[0].dim,
            loc=loc,
        )

    def head_ir(self, tokens: ir.Tokens, loc: ir.Loc) -> ir.Head:
        """The head when none is given: normed, pooled from cls where there is one, 1000 classes."""
        return ir.Head(
            norm=True,
            pool="cls" if tokens.cls else "mean",
            dropout=0.0,
            classes=1000,
            loc=loc,
        )

    def attention_ir(self) -> ir.Attention:
        a = self.d.attention
        defaults: dict[str, Any] = {
            "pool_mode": "conv",
            "kernel_q": None,
            "kernel_kv": None,
            "pool_q_blocks": "first",
            "stride_kv": None,
            "stride_kv_adaptive": False,
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
