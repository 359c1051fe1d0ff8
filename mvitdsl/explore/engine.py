"""One variant, evaluated: overrides applied to the base's syntax tree, then the real lowering,
the real shape rules, the cost model and the budget rules. Never imports torch.

Speed, without a second implementation of any rule:
- the base is parsed and read once; each distinct (PATH, value) is read once by the real
  reader (`Lowering.read_value`), and what it changed in the base's draft (or its diagnostics)
  is kept; a variant's draft is the base's with those changes patched in, and the real
  `Lowering.finish` (defaults, stage expansion, the IR) runs on it. Values are read atom by
  atom, so their effects are independent; a test holds the result equal to lowering each
  variant's whole tree (`fast=False`);
- the Evaluator's Lowering keeps a memo (`Lowering.memo`, language/expand.py): a row's blocks
  and each block are built once per distinct set of what they are built from (a block at another
  index or drop-path rate is a copy of its shape's), so variants share each row's tuple of
  blocks and most of the IR is never rebuilt or re-validated (a test holds each IR equal to a
  fresh lowering's);
- explore/walk.py walks a variant row by row: a row's flows, summed costs and whether its rules
  pass are worked out once per (tuple of blocks, state entering it), each block's on keys that
  hold everything its rules read (ops, windows included, grids, widths, model-wide values);
  a variant whose stem and rows all passed has no diagnostic, else the real checker runs on it
  whole (over the walk's flows) for the messages in its order, on its own tree for exact spans.
The memos live in the Evaluator (one sweep), never in a module-global cache. benchmarks/sweep.py
measures the speed (docs/PERFORMANCE.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from .. import ir
from ..analysis import shapes
from ..analysis.analyze import DTYPE_BYTES, Costs
from ..analysis.budget import check_budget
from ..analysis.check import Checker
from ..diagnostics import Diagnostic, SpecError
from ..language import overrides
from ..language.lower import Lowering
from ..spec import Spec
from .axes import Axis, Derived, Where, text_of, value_of
from .expr import Env, ExprError, InexactError, Value, evaluate
from .outcome import (
    SWEEP_CODES,
    Budgets,
    Outcome,
    Single,
    VariantIds,
    in_source_order,
    over_budget,
    variant_id,
)
from .patch import Delta, draft_delta, patch
from .walk import Row, Walk, parts_of

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
        self.walk = Walk()  # flows, costs and rules passed, row by row (explore/walk.py)
        self._value_of: dict[str, Value] = {}
        self._canonical: dict[str, str] = {}
        self.variant_id = VariantIds(self.canonical)
        self._patched: dict[Any, Any] = {}  # list items / dict entries of drafts, patched
        self._single: dict[tuple[overrides.Target, str], Single] = {}
        # fast=False lowers every variant from its whole tree: the same rows, slower (the test
        # that holds the fast path to it).
        self.fast = fast
        self._lowering = Lowering(base.ast, base.statements, base.sources)
        self._lowering.memo = {}  # blocks shared between variants (language/expand.py)
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
        out.id = self.variant_id(assigned)
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
        shapes = self._lowering.shapes  # each row's shape, shared between variants
        if model is None and not out.diagnostics:
            model, shapes = self.lower_plain(targets, out)
        if model is None:
            return out
        rows = self.walk.rows(model, shapes)
        # Spans of replaced values are the base's own, so the base's tree locates every
        # diagnostic except where a value was added; then the variant's own tree is built.
        plain = not out.statements and not any(t.key == "budget" for t in targets)
        statements = base.statements if plain else self.statements(out, targets)
        spec = Spec(model, base.ast, statements, base.sources)
        errors = self.errors(spec, rows)
        if errors and plain:
            spec = Spec(model, base.ast, self.statements(out, targets), base.sources)
            errors = self.errors(spec, rows)
        if errors:
            out.diagnostics = errors
            return out
        self.measure(spec, out, rows)
        return out

    def lower_plain(
        self, targets: Mapping[overrides.Target, str], out: Outcome
    ) -> tuple[ir.Model | None, tuple[tuple[ir.Block, ...], ...]]:
        """The plain way: the variant's whole tree lowered again (its errors in `out`)."""
        base = self.base
        out.statements = overrides.apply(base.statements, targets, base.ast.span)
        lowering = Lowering(base.ast, out.statements, base.sources)
        model = lowering.run()
        if lowering.r.diagnostics or model is None:
            out.diagnostics = in_source_order(lowering.r.diagnostics)
            return None, ()
        return model, lowering.shapes

    def errors(self, spec: Spec, rows: list[Row]) -> list[Diagnostic]:
        """The shape rules' diagnostics, as mvitdsl.check gives them (the budget rule comes with
        the costs): none when the stem's and every row's rules passed before; else the checker
        runs on the whole variant over the walk's flows, for its messages in its order."""
        if self.walk.start(spec.model)[1] and all(row.passed for row in rows):
            return []
        flows = tuple(flow for row in rows for _, flow, _ in row.flows)
        checker = Checker(spec.model, spec.sources, flows)
        checker.run()
        try:
            checker.r.raise_if_any()
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

    def measure(self, spec: Spec, out: Outcome, rows: list[Row] | None = None) -> None:
        """Costs (the same arithmetic as mvitdsl.analyze, summed row by row), then the budget
        rules; `rows` as the walk gave them (None: walked here)."""
        model = spec.model
        if rows is None:
            rows = self.walk.rows(model, parts_of(model))
        params = attn = mlp = pool = norm = elems = 0
        for row in rows:
            c = row.costs
            params, attn, mlp = params + c[0], attn + c[1], mlp + c[2]
            pool, norm, elems = pool + c[3], norm + c[4], elems + c[5]
        grid = rows[-1].grid if rows else shapes.patch_grid(model)
        sh, stem_elems = self.walk.stem_head(model, grid)
        total = Costs(params + sh.params, attn + sh.attn_macs, mlp + sh.mlp_macs,
                      pool + sh.pool_macs, sh.other_macs, norm + sh.norm_elems)  # fmt: skip
        elems += stem_elems
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
