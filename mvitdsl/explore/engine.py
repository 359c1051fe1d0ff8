"""One variant, evaluated: overrides applied to the base's syntax tree, then the real lowering,
the real shape rules, the cost model and the budget rules. Never imports torch.

Speed, without a second implementation of any rule:
- the base is parsed and read once; each distinct (PATH, value) is read once by the real
  reader (`Lowering.read_value`), and what it changed in the base's draft (or its diagnostics)
  is kept; a variant's draft is the base's with those changes patched in, and the real
  `Lowering.finish` (defaults, stage expansion, the IR) runs on it. Values are read atom by
  atom, so their effects are independent; a test holds the result equal to lowering each
  variant's whole tree (`fast=False`);
- the Evaluator's Lowering keeps a memo (`Lowering.memo`, language/expand.py): a stage's blocks
  and each block are built once per distinct set of what they are built from, so variants share
  block objects and most of the IR is never rebuilt or re-validated (a test holds each IR equal
  to a fresh lowering's); flows and costs are then looked up by block identity;
- the checker's rules run per block over flows memoised on the block's own fields (pools and the
  grids it sees) instead of a fresh networkx graph, and a block whose rules passed on the same
  fields is not re-run; a variant with a diagnostic is re-checked on its own tree for exact spans;
- block costs are memoised on the block's fields (widths, heads, MLP width, flow key).
The memos live in the Evaluator (one sweep), never in a module-global cache. benchmarks/sweep.py
measures the speed (docs/PERFORMANCE.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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
from ..analysis.graph import BlockFlow, block_flow
from ..diagnostics import Diagnostic, SpecError
from ..language import overrides
from ..language.lower import Lowering
from ..ops import block as ops_block
from ..spec import Spec
from .axes import Axis, Derived, Where, text_of, value_of
from .expr import Env, ExprError, InexactError, Value, evaluate
from .outcome import (
    SWEEP_CODES,
    Budgets,
    Outcome,
    Single,
    in_source_order,
    over_budget,
    variant_id,
)
from .patch import Delta, draft_delta, patch
from .sweepcheck import SweepChecker

__all__ = ["SWEEP_CODES", "Budgets", "Evaluator", "Outcome", "Single", "variant_id"]

GIB = 2**30


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
        self._seen: dict[tuple[int, int], tuple[ir.Block, int, int]] = {}  # by block identity
        self._numbers: dict[tuple[Any, ...], int] = {}
        self._costs_of: dict[tuple[Any, ...], tuple[int, ...]] = {}  # by block identity
        self._value_of: dict[str, Value] = {}
        self._stem_passed: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self._canonical: dict[str, str] = {}
        self._costs: dict[tuple[Any, ...], tuple[int, ...]] = {}
        self._passed: set[int] = set()
        self._patched: dict[Any, Any] = {}  # list items / dict entries of drafts, patched
        self._last_flows: list[tuple[ir.Block, BlockFlow, int]] = []
        self._single: dict[tuple[overrides.Target, str], Single] = {}
        # fast=False lowers every variant from its whole tree: the same rows, slower (the test
        # that holds the fast path to it).
        self.fast = fast
        self._lowering = Lowering(base.ast, base.statements, base.sources)
        self._lowering.memo = {}  # blocks shared between variants (language/expand.py)
        self._draft = self._lowering.read()
        self._last_model: ir.Model | None = None  # whose flows _last_flows are

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
            values[axis.label] = self.value(text)
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
        out.id = variant_id(assigned, self.canonical)
        return out

    def value(self, text: str) -> Value:
        """value_of, once per distinct text of a sweep (values are immutable)."""
        v = self._value_of.get(text)
        if v is None:
            v = self._value_of[text] = value_of(text)
        return v

    def canonical(self, text: str) -> str:
        """A value's text as the language writes it (the variant id's), once per distinct text."""
        c = self._canonical.get(text)
        if c is None:
            c = self._canonical[text] = text_of(value_of(text))
        return c

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
                out.diagnostics = in_source_order(lowering.r.diagnostics)
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
            out.diagnostics = in_source_order(out.diagnostics)
            return None
        lowering = self._lowering
        model = lowering.finish(patch(self._draft, deltas, self._patched))
        if lowering.r.diagnostics or model is None:
            out.diagnostics = in_source_order(list(lowering.r.diagnostics))
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
        checker = SweepChecker(spec, [], self._passed)
        m = spec.model
        # the stem's rules read the input, patch and tokens (objects the lowering's memo
        # shares between variants) and the first stage's width: passed once, not re-run
        stem = (id(m.input), id(m.patch), id(m.tokens), m.attention.dim_change,
                m.stages[0].dim if m.stages else None)  # fmt: skip
        if stem not in self._stem_passed:
            checker.check_stem()
            if not checker.r.diagnostics:
                self._stem_passed[stem] = (m.input, m.patch, m.tokens)  # keeps the ids alive
        if not checker.r.diagnostics:
            checker.flows = self._last_flows = self.flows(spec.model)
            self._last_model = spec.model
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
        state = self.number((grid, nom, ctx))  # what a block's flow starts from, as one int
        out = []
        for block in model.blocks:
            # variants share block objects (the lowering's memo): one lookup by identity; the
            # value holds the block, so its id is never reused while the entry lives
            seen = self._seen.get((id(block), state))
            if seen is None:
                kid = self.flow_id(model, block, ctx, grid, nom)
                after = self._flows[kid]
                seen = self._seen[(id(block), state)] = (
                    block, kid, self.number((after.grid_out, after.nominal_out, ctx)),
                )  # fmt: skip
            _, kid, state = seen
            flow = self._flows[kid]
            out.append((block, flow, kid))
            grid, nom = flow.grid_out, flow.nominal_out
        return out

    def number(self, key: tuple[Any, ...]) -> int:
        """A small int for a key used in many others (hashed once, then compared as an int)."""
        n = self._numbers.get(key)
        if n is None:
            n = self._numbers[key] = len(self._numbers)
        return n

    def flow_id(
        self, model: ir.Model, block: ir.Block, ctx: tuple[Any, ...], grid: Any, nom: Any
    ) -> int:
        """The number of the block's flow at this grid (computed once per distinct key)."""
        q, kv = block.pool_q, block.pool_kv
        enter = ops_block.entering(block)  # e.g. patch merging: it sets the grid too
        key = (ctx, q.mode, q.kernel, q.stride, kv.mode, kv.kernel, kv.stride, grid, nom, enter)
        kid = self._ids.get(key)  # a small int per distinct key: hashed once, not per use
        if kid is None:
            kid = self._ids[key] = len(self._ids)
            self._flows[kid] = block_flow(model, block, grid, nom)
        return kid

    def measure(self, spec: Spec, out: Outcome) -> None:
        """Costs (the same arithmetic as mvitdsl.analyze), then the budget rules."""
        model = spec.model
        att = model.attention
        flows = self._last_flows
        if not flows or self._last_model is not model:  # blocks may be shared between models
            flows = self.flows(model)
        # Sums of plain integers: params, attention, mlp, pooling MACs, norm elements, saved.
        params = attn = mlp = pool = norm = elems = 0
        ctx = (att.qkv_bias, att.dim_change)
        c = self.number(ctx)
        for block, flow, kid in flows:
            memo = self._costs_of.get((id(block), kid, c))  # flows() keeps the block alive
            if memo is None:
                memo = self._costs_of[(id(block), kid, c)] = self.block_costs(
                    model, block, flow, kid, ctx
                )
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
        out.diagnostics = over_budget(self.budgets, out)
        out.ok = not out.diagnostics

    def block_costs(
        self, model: ir.Model, block: ir.Block, flow: BlockFlow, kid: int, ctx: tuple[Any, ...]
    ) -> tuple[int, ...]:
        """A block's costs, memoised on the fields they read."""
        ckey = (
            kid,
            ctx,
            block.dim_in,
            block.dim_attn,
            block.dim_out,
            block.heads,
            block.ops,
        )  # fmt: skip  (the ops: e.g. a stage's closing norm)
        memo = self._costs.get(ckey)
        if memo is None:
            c = block_costs(model, block, flow)
            memo = self._costs[ckey] = (
                c.params, c.attn_macs, c.mlp_macs, c.pool_macs, c.norm_elems,
                activation_elems(block, flow),
            )  # fmt: skip
            assert c.other_macs == 0, "a block's MACs are attention, MLP or pooling"
        return memo

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
