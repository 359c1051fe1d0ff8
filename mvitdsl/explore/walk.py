"""A variant's blocks walked row by row for the sweep: each row's flows, summed costs and whether
the shape rules pass, worked out once per (row's blocks, what enters the row), then looked up.

What the rules read, and so what the keys hold (a key that lacks one gives stale results):
- a block's flow (ops' flow rules): its ops, the grid and bookkeeping grid entering it, the
  model's cls token and input kind;
- its costs (ops' costs and saved rules): the flow, the ops, its widths and heads, the model's
  qkv_bias and dim_change;
- its rules (Checker.check_heads, check_block): the flow, the ops, the width and heads, the
  model's input kind, grid rounding and mask unit, and the Q strides before the block;
- the stem's rules and costs and the head's: the input, patch, tokens, attention and head
  records, the first stage's width, the last block's width and the grid entering the head.
No rule reads a block's index or drop-path rate (the Q strides before a block are the walk's:
StepChecker), so a row is known by its shape: a tuple of blocks equal to the row's but for
those two fields, which the lowering's memo shares between the variants that differ only in
them (Lowering.shapes), and the state entering it (grid, bookkeeping grid, Q strides before
it, context) as one number. Model-wide values go into `Context`. Entries keyed by identity
hold the object, so its id is never reused while the memo lives (one sweep).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from .. import ir
from ..analysis import shapes
from ..analysis.analyze import Costs, activation_elems, block_costs, head_costs, stem_costs
from ..analysis.check import Checker
from ..analysis.graph import BlockFlow, block_flow

ONE: ir.Dims3 = (1, 1, 1)
Flow = tuple[ir.Block, BlockFlow, int]  # a block, its flow and the flow's number


class Context(NamedTuple):
    """The model-wide values that a block's flow, costs and rules read."""

    cls: bool
    video: bool
    grid_rounding: str
    mask_unit: ir.Dims3 | None
    qkv_bias: bool
    dim_change: str


class State(NamedTuple):
    """What enters a block: its grid, bookkeeping grid, the Q strides before it, the context."""

    grid: ir.Dims3
    nominal: ir.Dims3
    strides: ir.Dims3
    ctx: int


@dataclass(frozen=True)
class Row:
    """One row's shape walked from one state: what the sweep reads of it."""

    blocks: tuple[ir.Block, ...]  # the shape, held: the memo's key is its id
    flows: tuple[Flow, ...]  # the shape's blocks (their index may be another variant's)
    after: int  # the state leaving the row
    grid: ir.Dims3  # the grid leaving the row
    costs: tuple[int, ...]  # params, attention, MLP, pooling MACs, norm elements, saved elements
    passed: bool  # every block's rules pass


class StepChecker(Checker):
    """The checker's rules for one block of a row's shape: the block may be a copy from another
    variant at another index, so the Q strides before it are the walk's, not read from the
    model's blocks before its index (the only rule input taken from the index)."""

    strides: ir.Dims3 = ONE

    def strides_before(self, block: ir.Block) -> ir.Dims3:
        return self.strides


def parts_of(model: ir.Model) -> tuple[tuple[ir.Block, ...], ...]:
    """Each stage's blocks (a model that did not come from the sweep's lowering)."""
    parts = tuple(model.blocks[s.first : s.first + s.depth] for s in model.stages)
    return parts if sum(map(len, parts)) == len(model.blocks) else (model.blocks,)


class Walk:
    """The memos of one sweep: states, flows, block costs, rules passed, rows, stems."""

    def __init__(self) -> None:
        self._states: dict[tuple[Any, ...], int] = {}
        self._state_of: list[State] = []
        self._contexts: dict[Context, int] = {}
        self._ops: dict[int, tuple[tuple[Any, ...], int]] = {}  # id(block.ops) -> (ops, number)
        self._ops_numbers: dict[tuple[Any, ...], int] = {}
        self._flow_ids: dict[tuple[Any, ...], int] = {}
        self._flows: list[BlockFlow] = []
        self._costs: dict[tuple[Any, ...], tuple[int, ...]] = {}
        self._passed: dict[tuple[Any, ...], bool] = {}
        self._rows: dict[tuple[int, int], Row] = {}
        self._steps: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self._stems: dict[tuple[Any, ...], tuple[int, bool, tuple[Any, ...]]] = {}
        self._heads: dict[tuple[Any, ...], tuple[Costs, int, tuple[Any, ...]]] = {}

    # -- states
    def state(self, s: State) -> int:
        n = self._states.get(s)
        if n is None:
            n = self._states[s] = len(self._state_of)
            self._state_of.append(s)
        return n

    def start(self, model: ir.Model) -> tuple[int, bool]:
        """The state entering the first block, and whether the stem's rules pass."""
        m = model
        first = m.stages[0].dim if m.stages else None
        key = (id(m.input), id(m.patch), id(m.tokens), id(m.attention), first)
        hit = self._stems.get(key)
        if hit is None:
            att = m.attention
            ctx = Context(m.tokens.cls, m.video, m.input.grid_rounding, att.mask_unit,
                          att.qkv_bias, att.dim_change)  # fmt: skip
            c = self._contexts.setdefault(ctx, len(self._contexts))
            grid = shapes.patch_grid(m)
            checker = Checker(m)
            checker.check_stem()
            start = self.state(State(grid, shapes.patch_nominal(m), ONE, c))
            held = (m.input, m.patch, m.tokens, m.attention)
            hit = self._stems[key] = (start, not checker.r.diagnostics, held)
        return hit[0], hit[1]

    # -- rows
    def rows(self, model: ir.Model, parts: tuple[tuple[ir.Block, ...], ...]) -> list[Row]:
        """Each row (its shape, or its blocks) walked from the state the rows before it leave."""
        state, _ = self.start(model)
        out = []
        for part in parts:
            row = self._rows.get((id(part), state))
            if row is None:
                row = self._rows[(id(part), state)] = self.row(model, part, state)
            out.append(row)
            state = row.after
        return out

    def row(self, model: ir.Model, part: tuple[ir.Block, ...], state: int) -> Row:
        """A row's flows, costs and verdict, block by block."""
        checker = StepChecker(model)
        flows: list[Flow] = []
        costs: list[tuple[int, ...]] = [(0, 0, 0, 0, 0, 0)]
        passed = True
        for block in part:
            step = self._steps.get((id(block.ops), block.dim_in, block.dim_attn, block.dim_out,
                                    block.heads, state))  # fmt: skip
            if step is None:
                step = self.step(model, block, state, checker)
            flows.append((block, self._flows[step[0]], step[0]))
            costs.append(step[1])
            passed = passed and step[2]
            state = step[3]
        totals = tuple(map(sum, zip(*costs)))
        return Row(part, tuple(flows), state, self._state_of[state].grid, totals, passed)

    def step(
        self, model: ir.Model, block: ir.Block, state: int, checker: StepChecker
    ) -> tuple[Any, ...]:
        """One block from one state: its flow's number, costs, verdict and the state it leaves.
        Keyed on the block's ops and widths, not the block: blocks at another index or
        drop-path rate (which the rules do not read) share the tuple of ops."""
        grid, nom, strides, c = self._state_of[state]
        kid = self.flow_id(model, block, c, grid, nom)
        flow = self._flows[kid]
        costs = self.block_costs(model, block, flow, kid)
        ok = self.passes(checker, block, flow, kid, strides)
        q = block.pool_q.stride
        strides = (strides[0] * q[0], strides[1] * q[1], strides[2] * q[2])
        after = self.state(State(flow.grid_out, flow.nominal_out, strides, c))
        key = (id(block.ops), block.dim_in, block.dim_attn, block.dim_out, block.heads, state)
        step = self._steps[key] = (kid, costs, ok, after, block.ops)  # holds the ops: their id
        return step

    # -- blocks
    def ops_number(self, block: ir.Block) -> int:
        """A number per distinct tuple of ops (blocks copied to another index share the tuple:
        it is hashed once per tuple object, not per block)."""
        hit = self._ops.get(id(block.ops))
        if hit is None:
            n = self._ops_numbers.setdefault(block.ops, len(self._ops_numbers))
            hit = self._ops[id(block.ops)] = (block.ops, n)
        return hit[1]

    def flow_id(
        self, model: ir.Model, block: ir.Block, c: int, grid: ir.Dims3, nom: ir.Dims3
    ) -> int:
        """The number of the block's flow from this grid (computed once per distinct key)."""
        key = (c, self.ops_number(block), grid, nom)
        kid = self._flow_ids.get(key)
        if kid is None:
            kid = self._flow_ids[key] = len(self._flows)
            self._flows.append(block_flow(model, block, grid, nom))
        return kid

    def block_costs(
        self, model: ir.Model, block: ir.Block, flow: BlockFlow, kid: int
    ) -> tuple[int, ...]:
        """The block's costs: the flow's number holds its ops, grids and context."""
        key = (kid, block.dim_in, block.dim_attn, block.dim_out, block.heads)
        memo = self._costs.get(key)
        if memo is None:
            got = block_costs(model, block, flow)
            assert got.other_macs == 0, "a block's MACs are attention, MLP or pooling"
            memo = self._costs[key] = (
                got.params, got.attn_macs, got.mlp_macs, got.pool_macs, got.norm_elems,
                activation_elems(block, flow),
            )  # fmt: skip
        return memo

    def passes(
        self, checker: StepChecker, block: ir.Block, flow: BlockFlow, kid: int, strides: ir.Dims3
    ) -> bool:
        """Whether the block's rules pass (their messages are not kept: a variant that fails
        is checked again whole, for its diagnostics in the checker's order)."""
        key = (kid, strides, block.dim_attn, block.heads)
        ok = self._passed.get(key)
        if ok is None:
            before = len(checker.r.diagnostics)
            checker.strides = strides
            checker.heads_seen.clear()  # it reports a stage's width once: here each block counts
            checker.check_heads(block)
            checker.check_block(block, flow)
            ok = self._passed[key] = len(checker.r.diagnostics) == before
        return ok

    # -- the stem and the head
    def stem_head(self, model: ir.Model, grid: ir.Dims3) -> tuple[Costs, int]:
        """Stem and head costs and the stem's saved elements."""
        m = model
        last = m.blocks[-1].dim_out if m.blocks else None
        key = (id(m.input), id(m.patch), id(m.tokens), id(m.head), last, grid)
        hit = self._heads.get(key)
        if hit is None:
            stem_tokens = shapes.tokens(shapes.patch_grid(m), m.tokens.cls)
            costs = stem_costs(m) + head_costs(m, grid)
            held = (m.input, m.patch, m.tokens, m.head)
            hit = self._heads[key] = (costs, 2 * stem_tokens * m.patch.dim, held)
        return hit[0], hit[1]
