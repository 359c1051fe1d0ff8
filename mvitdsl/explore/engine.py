"""One variant, evaluated: overrides applied to the base's syntax tree, then the real lowering,
the real shape rules, the cost model and the budget rules. Never imports torch.

Speed comes from parsing the base once and from memoising what a block costs on the block's own
fields (widths, heads, pools and the grids it sees), so that the 4,000 variants of a grid share
their blocks' arithmetic; the memo lives in the Evaluator, not in a module-global cache.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from .. import ir
from ..analysis import shapes
from ..analysis.analyze import DTYPE_BYTES, Costs, activation_elems, block_costs, head_costs
from ..analysis.analyze import stem_costs
from ..analysis.budget import check_budget
from ..analysis.check import Checker
from ..analysis.graph import BlockShapes, block_shapes
from ..diagnostics import Diagnostic, SpecError, Span
from ..language import overrides
from ..language.lower import Lowering
from ..spec import Spec
from .axes import Axis, Derived, Where, text_of, value_of
from .expr import Env, ExprError, InexactError, Value, evaluate

GIB = 2**30

# Codes of the sweep's own reasons (spec diagnostics keep theirs: E302, E306 ...).
SWEEP_CODES = {
    "S100": "a derived value is not a whole number",
    "S101": "a derived value or constraint cannot be evaluated",
    "S102": "a value is not a word of the spec language",
}


@dataclass(frozen=True)
class Budgets:
    """The sweep's limits (None: no limit); E306 when a variant exceeds one."""

    params: float | None = None
    gmacs: float | None = None
    activation_gib: float | None = None


@dataclass
class Outcome:
    """What one variant is: its values, its costs if it could be measured, its verdict."""

    id: str
    values: dict[str, Value]
    assigned: dict[str, str]  # PATH -> value text, every path the variant sets
    ok: bool = False
    params: int | None = None
    gmacs: float | None = None
    gmacs_fvcore: float | None = None
    activation_gib: float | None = None
    attention_share: float | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    statements: tuple[Any, ...] = ()
    excluded: bool = False  # rejected by --where: not evaluated


def variant_id(assigned: Mapping[str, str]) -> str:
    """A stable id: the first 10 hex digits of the SHA-1 of the canonical overrides."""
    canonical = json.dumps(sorted(assigned.items()), separators=(",", ":"))
    return hashlib.sha1(canonical.encode()).hexdigest()[:10]


class _SweepChecker(Checker):
    """The checker's rules, run over flows computed once per distinct block instead of over a
    fresh networkx graph; a block whose rules passed before on the same fields is not re-run."""

    def __init__(self, spec: Spec, flows: list[tuple[ir.Block, BlockShapes, tuple[Any, ...]]],
                 passed: set[tuple[Any, ...]]) -> None:
        super().__init__(spec)
        self.flows, self.passed = flows, passed

    def run(self) -> None:
        flow_ok = True  # as Checker.run: after one broken grid, later grids are consequences
        for block, flow, key in self.flows:
            self.check_heads(block)
            if flow_ok and key not in self.passed:
                errors = len(self.r.diagnostics)
                self.check_block(block, flow)
                flow_ok = len(self.r.diagnostics) == errors
                if flow_ok:
                    self.passed.add(key)


@dataclass(frozen=True)
class _Totals:
    """What the budget rule reads of a report."""

    params: int
    activation_bytes: int


class Evaluator:
    """Evaluates the variants of one base spec; holds the per-sweep memo of block costs."""

    def __init__(self, base: Spec, *, budgets: Budgets | None = None, batch: int = 1,
                 dtype: str = "fp32") -> None:
        self.base = base
        self.budgets = budgets or Budgets()
        self.batch, self.nbytes = batch, DTYPE_BYTES[dtype]
        self.targets: dict[str, overrides.Target] = {}
        self._flows: dict[tuple[Any, ...], BlockShapes] = {}
        self._costs: dict[tuple[Any, ...], tuple[Costs, int]] = {}
        self._passed: set[tuple[Any, ...]] = set()

    # -- paths
    def target(self, path: str) -> overrides.Target:
        t = self.targets.get(path)
        if t is None:
            t = self.targets[path] = overrides.resolve(path, self.base.statements)
        return t

    def base_value(self, path: str) -> Value:
        atom = overrides.read(self.target(path), self.base.statements)
        if atom is None:
            raise ExprError(f"the base spec does not write '{path}'; vary or --set it")
        return cast(Value, atom.value)

    # -- one variant
    def assign(self, axes: list[Axis], combo: tuple[int, ...], derived: list[Derived]) -> Outcome:
        """The variant's values: each axis's value, then each derived value in order."""
        values: dict[str, Value] = {}
        assigned: dict[str, str] = {}
        for axis, i in zip(axes, combo):
            text = axis.values[i]
            values[axis.label] = value_of(text)
            for path in axis.paths:
                assigned[path] = text
        out = Outcome("", values, assigned)
        env = self.env(assigned)
        for d in derived:
            try:
                value = evaluate(d.expr, env)
            except InexactError as e:
                out.diagnostics.append(Diagnostic("S100", f"--set {d.path}={d.text}: {e}"))
                break
            except ExprError as e:
                out.diagnostics.append(Diagnostic("S101", f"--set {d.path}={d.text}: {e}"))
                break
            values[d.label] = value
            assigned[d.path] = text_of(value)
        out.id = variant_id(assigned)
        return out

    def env(self, assigned: Mapping[str, str]) -> Env:
        def lookup(path: str) -> Value:
            text = assigned.get(path)
            return value_of(text) if text is not None else self.base_value(path)

        return lookup

    def admits(self, out: Outcome, wheres: list[Where]) -> bool:
        """Whether every --where holds; a constraint that cannot be evaluated is a diagnostic."""
        env = self.env(out.assigned)
        for w in wheres:
            try:
                if not evaluate(w.expr, env):
                    return False
            except ExprError as e:
                out.diagnostics.append(Diagnostic("S101", f"--where {w.text}: {e}"))
                return True
        return True

    def evaluate(self, out: Outcome) -> Outcome:
        """Lower, check and measure the variant; fills out's costs, verdict and diagnostics."""
        if out.diagnostics:
            return out
        base = self.base
        try:
            targets = {self.target(p): text for p, text in out.assigned.items()}
            statements = overrides.apply(base.statements, targets, base.ast.span)
        except overrides.PathError as e:
            out.diagnostics.append(Diagnostic("S102", str(e)))
            return out
        out.statements = statements
        lowering = Lowering(base.ast, statements, base.sources)
        model = lowering.run()
        if lowering.r.diagnostics or model is None:
            out.diagnostics = _ordered(lowering.r.diagnostics)
            return out
        spec = Spec(model, base.ast, statements, base.sources)
        try:
            self.check(spec)
        except SpecError as e:
            out.diagnostics = list(e.diagnostics)
            return out
        self.measure(spec, out)
        return out

    def check(self, spec: Spec) -> None:
        """The shape rules (as mvitdsl.check runs them) and the spec's own budget rule."""
        checker = _SweepChecker(spec, [], self._passed)
        checker.check_stem()
        if not checker.r.diagnostics:
            checker.flows = self.flows(spec.model)
            checker.run()
        checker.r.raise_if_any()

    def flows(self, model: ir.Model) -> list[tuple[ir.Block, BlockShapes, tuple[Any, ...]]]:
        ctx = (model.tokens.cls, model.attention.rel_pos, model.input.kind,
               model.input.grid_rounding)
        grid, nom = shapes.patch_grid(model), shapes.patch_nominal(model)
        out = []
        for block in model.blocks:
            q, kv = block.pool_q, block.pool_kv
            key = (ctx, q.mode, q.kernel, q.stride, kv.mode, kv.kernel, kv.stride, grid, nom)
            flow = self._flows.get(key)
            if flow is None:
                flow = self._flows[key] = block_shapes(model, block, grid, nom)
            out.append((block, flow, key))
            grid, nom = flow.grid_out, flow.nominal_out
        return out

    def measure(self, spec: Spec, out: Outcome) -> None:
        """Costs (the same arithmetic as mvitdsl.analyze), then the budget rules."""
        model = spec.model
        att = model.attention
        total = stem_costs(model)
        elems = 0
        grid = shapes.patch_grid(model)
        for block, flow, key in self.flows(model):
            ckey = (key, att.qkv_bias, att.dim_change, block.dim_in, block.dim_attn,
                    block.dim_out, block.heads, block.mlp_hidden)
            memo = self._costs.get(ckey)
            if memo is None:
                memo = self._costs[ckey] = (
                    block_costs(model, block, flow), activation_elems(block, flow)
                )
            total, elems, grid = total + memo[0], elems + memo[1], flow.grid_out
        total = total + head_costs(model, grid)
        stem_elems = shapes.tokens(shapes.patch_grid(model), model.tokens.cls) * model.patch.dim
        elems += 2 * stem_elems
        out.params = total.params
        out.gmacs = total.macs / 1e9
        out.gmacs_fvcore = total.macs_fvcore / 1e9
        out.activation_gib = elems * self.batch * self.nbytes / GIB
        out.attention_share = total.share["attention"]
        try:
            check_budget(spec, cast(Any, _Totals(total.params, elems * 4)))
        except SpecError as e:
            out.diagnostics = list(e.diagnostics)
            return
        out.diagnostics = self.over_budget(out, spec.ast.span)
        out.ok = not out.diagnostics

    def over_budget(self, out: Outcome, span: Span) -> list[Diagnostic]:
        b, diags = self.budgets, []
        checks = (
            ("params", out.params, b.params, "parameters"),
            ("gmacs", out.gmacs, b.gmacs, "GMACs (matmul-only)"),
            ("activation_gib", out.activation_gib, b.activation_gib, "GiB of activations"),
        )
        for name, value, limit, words in checks:
            if limit is not None and value is not None and value > limit:
                diags.append(
                    Diagnostic("E306", f"over the {name} budget: {value:,.6g} {words} > {limit:,.6g}")
                )
        return diags


def _ordered(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """In source order, as SpecError lists them."""
    return sorted(
        diagnostics, key=lambda d: (d.span.file, d.span.line, d.span.column) if d.span else ("", 0, 0)
    )
