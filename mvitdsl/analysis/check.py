"""Shape-flow rules over the block graph -> diagnostics. Never edits the IR; never imports torch.

A model the checker accepts builds and runs, with exactly the shapes the graph predicts
(tests/test_checker_vs_runtime.py holds it to that).
"""

from __future__ import annotations

from typing import Any

from ..diagnostics import Reporter, Span
from ..ir import Block, Dims3, Model, Pool, spatial
from ..ops import block as ops_block
from ..ops import patch, positions
from . import shapes
from .graph import BlockFlow, block_flows, with_flows


def fmt(grid: tuple[Any, ...]) -> str:
    return "x".join(f"{v:g}" if isinstance(v, float) else str(v) for v in grid)


def divisors_near(grid: Dims3, stride: Dims3) -> list[Dims3]:
    """The strides nearest below and above `stride` (per dim) that divide `grid` exactly."""
    out: list[Dims3] = []
    for pick in (max, min):
        ds = []
        for n, s in zip(grid, stride):
            if n > 10_000:  # no hint for absurd grids; keeps hostile specs fast
                return []
            below = [d for d in range(1, min(s, n) + 1) if n % d == 0]
            above = [d for d in range(s, n + 1) if n % d == 0]
            ds.append(max(below) if pick is max else min(above or below))
        near = (ds[0], ds[1], ds[2])
        if near != stride and near not in out and any(d > 1 for d in near):
            out.append(near)
    return out


def strides_before(model: Model, block: Block) -> Dims3:
    """The product of the Q strides of the blocks before `block`."""
    t = h = w = 1
    for b in model.blocks[: block.index]:
        t, h, w = t * b.pool_q.stride[0], h * b.pool_q.stride[1], w * b.pool_q.stride[2]
    return (t, h, w)


def setting_span(model: Model, key: str) -> Span:
    """Where the spec sets `key` (the key of a table); the whole model when it does not."""
    return model.setting_loc(key).span()


class Checker:
    """Runs every rule over one model's block graph and reports through one Reporter.

    Runs on the IR alone: the places to point at are the IR's locations (`Model.where`, each
    stage's `columns`); `sources` only supplies the lines that the rendered diagnostics quote."""

    def __init__(
        self,
        model: Model,
        sources: dict[str, str] | None = None,
        flows: tuple[BlockFlow, ...] | None = None,
    ) -> None:
        self.model = model
        self.known_flows = flows  # handed down by the driver (None: computed here)
        self.r = Reporter(sources or {})
        self.heads_seen: set[tuple[str, int, int]] = set()
        self.own_flows: tuple[BlockFlow, ...] | None = None  # at the written input, when needed

    def fmt(self, grid: tuple[Any, ...]) -> str:
        """A grid, kernel or stride as the spec writes it: T x H x W, or H x W for images."""
        return fmt(spatial(grid, self.model.video))

    def own_flow(self, block: Block, flow: BlockFlow) -> BlockFlow:
        """The block's flow at the spec's written input size (`flow` itself where the model is
        checked there): the rules of the spec as written, whatever size it is built at."""
        own = self.model.input.own
        if own == self.model.input.size:
            return flow
        if self.own_flows is None:
            written = self.model.input.at(own)
            self.own_flows = block_flows(self.model.model_copy(update={"input": written}))
        return self.own_flows[block.index]

    # -- where to point
    def setting_span(self, key: str) -> Span:
        return setting_span(self.model, key)

    def row_span(self, stage: str, column: str) -> Span:
        """Where the row of `stage` writes `column` (the whole row when it does not)."""
        for s in self.model.stages:
            if s.name == stage:
                return s.column(column).span()
        return self.setting_span("stages")

    # -- rules
    def run(self) -> None:
        self.check_stem()
        if self.r.diagnostics:
            return
        flow_ok = True  # after one broken grid, later grids are consequences: not reported
        for block, flow in with_flows(self.model, self.known_flows):
            self.check_heads(block)
            if flow_ok:
                errors = len(self.r.diagnostics)
                self.check_block(block, flow)
                flow_ok = len(self.r.diagnostics) == errors

    def check_stem(self) -> None:
        """The patch embedding's rules, the positions', and the first stage's width."""
        m = self.model
        patch.check(self)
        positions.check(self, shapes.patch_grid(m))
        if m.attention.dim_change == "mlp" and m.stages and m.patch.dim != m.stages[0].dim:
            self.r.error(
                "E305",
                f"patch embedding width {m.patch.dim} differs from the first "
                f"stage's dim {m.stages[0].dim}",
                self.setting_span("patch"),
                f"write '-> {m.stages[0].dim}' or change the first stage's dim "
                "(with 'dim_change mlp' a stage works at its own width)",
            )

    def check_heads(self, block: Block) -> None:
        dim, heads = block.dim_attn, block.heads
        if dim % heads == 0 or (block.stage, dim, heads) in self.heads_seen:
            return
        self.heads_seen.add((block.stage, dim, heads))  # once per stage, not once per block
        lo = dim - dim % heads
        options = " or ".join(str(d) for d in (lo, lo + heads) if d > 0)
        fits = ", ".join(str(h) for h in range(1, min(dim, 16) + 1) if dim % h == 0)
        self.r.error(
            "E300",
            f"dim {dim} is not divisible by {heads} heads "
            f"(block {block.index}, stage '{block.stage}')",
            self.row_span(block.stage, "dim" if self.first_of_stage(block) else "heads"),
            f"dim {options} would be; or use {fits} heads with dim {dim}",
        )

    def first_of_stage(self, block: Block) -> bool:
        return any(s.first == block.index for s in self.model.stages)

    def check_block(self, block: Block, flow: BlockFlow) -> None:
        """The rules of the block's ops (ops/), then the residual add's: both branches meet."""
        if ops_block.check(self, block, flow):
            return
        if flow.grid_skip != flow.grid_q:
            q = block.pool_q
            self.r.error(
                "E301",
                f"block {block.index}: attention output grid "
                f"{self.fmt(flow.grid_q)} differs from the residual grid "
                f"{self.fmt(flow.grid_skip)} (Q kernel "
                f"{self.fmt(q.kernel)}, stride {self.fmt(q.stride)})",
                self.row_span(block.stage, "stride_q"),
                f"use an odd Q kernel, e.g. {self.fmt((3, 3, 3))}, or the s+1 rule",
            )

    def strides_before(self, block: Block) -> Dims3:
        return strides_before(self.model, block)

    def scope_span(self, block: Block, scope_from: str) -> Span:
        """The `scope=` cell of the stage whose scope the block uses, else the attention line."""
        stage = scope_from or block.stage
        for s in self.model.stages:
            if s.name == stage and "scope" in s.columns:
                return s.columns["scope"].span()
        return self.setting_span("attention")

    def rel_pos_collapses(self, sizes: tuple[int, int, int]) -> bool:
        t, h, w = sizes
        return min(h, w) < 1 or (self.model.video and t < 1)

    def avg_window_too_big(self, pool: Pool, grid: Dims3) -> bool:
        """As avg_pool3d does: it refuses any input dim smaller than the kernel (padding or not)."""
        video = self.model.video
        return (
            video
            and pool.exists
            and pool.mode == "avg"
            and any(k > n for k, n in zip(pool.kernel, grid))
        )

    def pool_span(self, block: Block, name: str) -> Span:
        """The stage row's stride (or the cell that sets the kernel), else the attention line."""
        stage = next(s for s in self.model.stages if s.name == block.stage)
        cell = "kernel_q" if name == "Q" else "kernel_kv"
        for column in (cell, "pool", "stride_q" if name == "Q" else "stride_kv"):
            if column in stage.columns:
                return stage.columns[column].span()
        return self.setting_span("attention")

    def check_fit(self, block: Block, grid: Dims3, stride: Dims3) -> bool:
        """Report a Q stride larger than the grid, or one that does not divide it."""
        too_big = any(s > n for s, n in zip(stride, grid))
        fraction = any(n % s for s, n in zip(stride, grid))
        if not (too_big or fraction):
            return False
        if not too_big and self.model.input.grid_rounding == "ceil":
            return False
        where = f"stride_q {self.fmt(stride)} of block {block.index}"
        if too_big:
            message = f"{where} is larger than its {self.fmt(grid)} input grid"
        else:
            exact = tuple(float(f"{n / s:.3g}") for n, s in zip(grid, stride))
            message = (
                f"{where} leaves a fractional grid: {self.fmt(grid)} / "
                f"{self.fmt(stride)} = {self.fmt(exact)}"
            )
        options = " or ".join(self.fmt(d) for d in divisors_near(grid, stride))
        hint = f"{options} would divide it" if options else "use a larger input"
        if not too_big:
            hint += "; or pad partial windows: 'input ..., grid_rounding ceil'"
        self.r.error("E302", message, self.row_span(block.stage, "stride_q"), hint)
        return True


def check_model(
    model: Model,
    sources: dict[str, str] | None = None,
    flows: tuple[BlockFlow, ...] | None = None,
) -> None:
    """Raise SpecError with every shape problem of the model, or return quietly (`flows`: the
    block flows, when already computed)."""
    checker = Checker(model, sources, flows)
    checker.run()
    checker.r.raise_if_any()
