"""One variant, evaluated: overrides applied to the base's syntax tree, then the real lowering,
the real shape rules, the cost model and the budget rules. Never imports torch.

Speed, without a second implementation of any rule:
- the base is parsed and read once; each distinct (PATH, value) is read once by the real
  reader (`Lowering.read_value`), and what it changed in the base's draft (or its diagnostics)
  is kept; a variant's draft is the base's with those changes patched in, and the real
  `Lowering.finish` (defaults, stage expansion, the IR) runs on it. Values are read atom by
  atom, so their effects are independent; a test holds the result equal to lowering each
  variant's whole tree (`fast=False`);
- the checker's rules run per block over flows memoised on the block's own fields (pools and the
  grids it sees) instead of a fresh networkx graph, and a block whose rules passed on the same
  fields is not re-run; a variant with a diagnostic is re-checked on its own tree for exact spans;
- block costs are memoised on the block's fields (widths, heads, MLP width, flow key).
The memos live in the Evaluator (one sweep), never in a module-global cache. Measured: about
2,400 variants per CPU-second over mvit_b; half of it is `Lowering.finish` building the
pydantic IR, which a 10,000/s goal would have to skip (benchmarks/sweep.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from .. import ir
from ..analysis import shapes
from ..analysis.analyze import (
    DTYPE_BYTES,
    Costs,
    activation_elems,
    block_costs,
    head_costs,
    stem_costs,
)
from ..analysis.budget import check_budget
from ..analysis.check import Checker
from ..analysis.graph import BlockFlow, block_flow
from ..diagnostics import Diagnostic, Span, SpecError
from ..language import overrides
from ..language.lower import Lowering
from ..ops import block as ops_block
from ..spec import Spec
from .axes import Axis, Derived, Where, text_of, value_of
from .expr import Env, ExprError, InexactError, Value, evaluate
from .patch import Delta, draft_delta, patch

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


def variant_id(assigned: Mapping[str, str]) -> str:
    """A stable id: the first 10 hex digits of the SHA-1 of the canonical overrides (paths
    sorted, values as the language writes them: `2.50` and `2.5` are one value)."""
    items = sorted((path, text_of(value_of(text))) for path, text in assigned.items())
    canonical = json.dumps(items, separators=(",", ":"))
    return hashlib.sha1(canonical.encode()).hexdigest()[:10]


class _SweepChecker(Checker):
    """The checker's rules, run over flows computed once per distinct block instead of over a
    fresh networkx graph; a block whose rules passed before on the same fields is not re-run."""

    def __init__(
        self,
        spec: Spec,
        flows: list[tuple[ir.Block, BlockFlow, int]],
        passed: set[int],
    ) -> None:
        super().__init__(spec.model, spec.sources)
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

    def __init__(
        self,
        base: Spec,
        *,
        budgets: Budgets | None = None,
        batch: int = 1,
        dtype: str = "fp32",
        fast: bool = True,
    ) -> None:
        self.base = base
        self.budgets = budgets or Budgets()
        self.batch, self.nbytes = batch, DTYPE_BYTES[dtype]
        self.targets: dict[str, overrides.Target] = {}
        self._ids: dict[tuple[Any, ...], int] = {}
        self._stem_head: dict[tuple[Any, ...], tuple[Costs, int]] = {}
        self._flows: dict[int, BlockFlow] = {}
        self._costs: dict[tuple[Any, ...], tuple[int, ...]] = {}
        self._passed: set[int] = set()
        self._patched: dict[Any, Any] = {}  # list items / dict entries of drafts, patched
        self._last_flows: list[tuple[ir.Block, BlockFlow, int]] = []
        self._single: dict[tuple[overrides.Target, str], Single] = {}
        # fast=False lowers every variant from its whole tree: the same rows, slower (the test
        # that holds the fast path to it).
        self.fast = fast
        self._lowering = Lowering(base.ast, base.statements, base.sources)
        self._draft = self._lowering.read()

    # -- paths
    def target(self, path: str) -> overrides.Target:
        t = self.targets.get(path)
        if t is None:
            t = self.targets[path] = overrides.locate(path, self.base.statements)
        return t

    def base_value(self, path: str) -> Value:
        atom = overrides.written(self.target(path), self.base.statements)
        if atom is None:
            raise ExprError(f"the base spec does not write '{path}'; vary or --set it")
        return atom.value

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
            if not self.fast:
                for text in targets.values():
                    overrides.make_atom(text, base.ast.span)
        except overrides.PathError as e:
            out.diagnostics.append(Diagnostic("S102", str(e)))
            return out
        model = self.lower_fast(targets, out) if self.fast else None
        if out.diagnostics:
            return out
        if model is None:  # the plain way: the whole tree lowered again
            out.statements = overrides.apply(base.statements, targets, base.ast.span)
            lowering = Lowering(base.ast, out.statements, base.sources)
            model = lowering.run()
            if lowering.r.diagnostics or model is None:
                out.diagnostics = _ordered(lowering.r.diagnostics)
                return out
        # Spans of replaced values are the base's own, so the base's tree locates every
        # diagnostic except where a value was added; then the variant's own tree is built.
        plain = not out.statements and not any(t.key == "budget" for t in targets)
        statements = base.statements if plain else self.statements(out, targets)
        spec = Spec(model, base.ast, statements, base.sources)
        errors = self.errors(spec)
        if errors and plain:
            spec = Spec(model, base.ast, self.statements(out, targets), base.sources)
            errors = self.errors(spec)
        if errors:
            out.diagnostics = errors
            return out
        self.measure(spec, out)
        return out

    def errors(self, spec: Spec) -> list[Diagnostic]:
        try:
            self.check(spec)
        except SpecError as e:
            return list(e.diagnostics)
        return []

    def statements(
        self, out: Outcome, targets: Mapping[overrides.Target, str] | None = None
    ) -> tuple[Any, ...]:
        """The variant's syntax tree (built once, when a diagnostic or an emitted file needs it)."""
        if targets is None:
            targets = {self.target(p): text for p, text in out.assigned.items()}
        if not out.statements:
            out.statements = overrides.apply(self.base.statements, targets, self.base.ast.span)
        return out.statements

    # -- the fast path: each distinct value read once by the real reader, then patched in
    def lower_fast(self, targets: Mapping[overrides.Target, str], out: Outcome) -> ir.Model | None:
        """The variant's IR from the base's draft with each value's effect patched in; None when
        the lowering cannot be patched (then the caller lowers the whole tree)."""
        deltas: list[Delta] = []
        for target, text in targets.items():
            single = self._single.get((target, text))
            if single is None:
                single = self._single[(target, text)] = self.read_single(target, text)
            out.diagnostics += single.diagnostics
            deltas += single.deltas
        if out.diagnostics:
            out.diagnostics = _ordered(out.diagnostics)
            return None
        lowering = self._lowering
        model = lowering.finish(patch(self._draft, deltas, self._patched))
        if lowering.r.diagnostics or model is None:
            out.diagnostics = _ordered(list(lowering.r.diagnostics))
            return None
        return model

    def read_single(self, target: overrides.Target, text: str) -> Single:
        """The real reader on the base with this one value: its diagnostics, or what it changed
        in the draft (values are read atom by atom, so their effects are independent)."""
        try:
            reading = self._lowering.read_value(target, text)
        except overrides.PathError as e:
            return Single([Diagnostic("S102", str(e))], [])
        if reading.diagnostics:
            return Single(reading.diagnostics, [])
        return Single([], draft_delta(self._draft, reading.draft))

    def check(self, spec: Spec) -> None:
        """The shape rules, as mvitdsl.check runs them (the budget rule comes with the costs)."""
        checker = _SweepChecker(spec, [], self._passed)
        checker.check_stem()
        if not checker.r.diagnostics:
            checker.flows = self._last_flows = self.flows(spec.model)
            checker.run()
        checker.r.raise_if_any()

    def flows(self, model: ir.Model) -> list[tuple[ir.Block, BlockFlow, int]]:
        ctx = (
            model.tokens.cls,
            model.attention.rel_pos,
            model.input.kind,
            model.input.grid_rounding,
        )
        grid, nom = shapes.patch_grid(model), shapes.patch_nominal(model)
        out = []
        for block in model.blocks:
            q, kv = block.pool_q, block.pool_kv
            enter = ops_block.entering(block)  # e.g. patch merging: it sets the grid too
            key = (ctx, q.mode, q.kernel, q.stride, kv.mode, kv.kernel, kv.stride, grid, nom, enter)
            kid = self._ids.get(key)  # a small int per distinct key: hashed once, not per use
            if kid is None:
                kid = self._ids[key] = len(self._ids)
                self._flows[kid] = block_flow(model, block, grid, nom)
            flow = self._flows[kid]
            out.append((block, flow, kid))
            grid, nom = flow.grid_out, flow.nominal_out
        return out

    def measure(self, spec: Spec, out: Outcome) -> None:
        """Costs (the same arithmetic as mvitdsl.analyze), then the budget rules."""
        model = spec.model
        att = model.attention
        flows = self._last_flows
        if not flows or flows[0][0] is not model.blocks[0]:
            flows = self.flows(model)
        # Sums of plain integers: params, attention, mlp, pooling MACs, norm elements, saved.
        params = attn = mlp = pool = norm = elems = 0
        ctx = (att.qkv_bias, att.dim_change)
        costs = self._costs
        for block, flow, kid in flows:
            ckey = (kid, ctx, block.dim_in, block.dim_attn, block.dim_out, block.heads,
                    block.mlp_hidden)  # fmt: skip
            memo = costs.get(ckey)
            if memo is None:
                c = block_costs(model, block, flow)
                memo = costs[ckey] = (
                    c.params, c.attn_macs, c.mlp_macs, c.pool_macs, c.norm_elems,
                    activation_elems(block, flow),
                )  # fmt: skip
                assert c.other_macs == 0, "a block's MACs are attention, MLP or pooling"
            params += memo[0]
            attn += memo[1]
            mlp += memo[2]
            pool += memo[3]
            norm += memo[4]
            elems += memo[5]
        grid = flows[-1][1].grid_out if flows else shapes.patch_grid(model)
        stem_head = self.stem_head(model, grid)
        total = Costs(params, attn, mlp, pool, 0, norm) + stem_head[0]
        elems += stem_head[1]
        out.params = total.params
        out.gmacs = total.macs / 1e9
        out.gmacs_fvcore = total.macs_fvcore / 1e9
        out.activation_gib = elems * self.batch * self.nbytes / GIB
        out.attention_share = total.share["attention"]
        try:
            check_budget(model, cast(Any, _Totals(total.params, elems * 4)), spec.sources)
        except SpecError as e:
            out.diagnostics = list(e.diagnostics)
            return
        out.diagnostics = self.over_budget(out, spec.ast.span)
        out.ok = not out.diagnostics

    def stem_head(self, model: ir.Model, grid: ir.Dims3) -> tuple[Costs, int]:
        """Stem and head costs and the stem's saved elements, memoised on the fields they read."""
        inp, p, tok, head = model.input, model.patch, model.tokens, model.head
        key = (inp.channels, inp.size, p.kernel, p.stride, p.padding, p.dim, tok.cls,
               tok.position, head.norm, head.classes, model.blocks[-1].dim_out, grid)  # fmt: skip
        hit = self._stem_head.get(key)
        if hit is None:
            stem_tokens = shapes.tokens(shapes.patch_grid(model), tok.cls)
            hit = self._stem_head[key] = (
                stem_costs(model) + head_costs(model, grid),
                2 * stem_tokens * p.dim,
            )
        return hit

    def over_budget(self, out: Outcome, span: Span) -> list[Diagnostic]:
        b, diags = self.budgets, []
        checks = (
            ("params", out.params, b.params, "parameters"),
            ("gmacs", out.gmacs, b.gmacs, "GMACs (matmul-only)"),
            ("activation_gib", out.activation_gib, b.activation_gib, "GiB of activations"),
        )
        for name, value, limit, words in checks:
            if limit is not None and value is not None and value > limit:
                amount = f"{value:,.0f}" if name == "params" else f"{value:,.4g}"
                message = f"over the {name} budget: {amount} {words} > {limit:,.6g}"
                diags.append(Diagnostic("E306", message))
        return diags


@dataclass(frozen=True)
class Single:
    """What one value does on its own: diagnostics, or its changes to the base's draft."""

    diagnostics: list[Diagnostic]
    deltas: list[Delta]


def _ordered(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """In source order, as SpecError lists them."""
    return sorted(
        diagnostics,
        key=lambda d: (d.span.file, d.span.line, d.span.column) if d.span else ("", 0, 0),
    )
