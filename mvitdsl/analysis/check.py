"""Shape-flow rules over the block graph -> diagnostics. Never edits the IR; never imports torch.

A model the checker accepts builds and runs, with exactly the shapes the graph predicts
(tests/test_checker_vs_runtime.py holds it to that).
"""

from __future__ import annotations

from typing import Any

from ..diagnostics import Reporter, Span
from ..ir import Block, Dims3, Model, Pool, spatial
from . import shapes
from .graph import BlockFlow, blocks_in_order, build_graph


def fmt(grid: tuple[Any, ...]) -> str:
    return "x".join(f"{v:g}" if isinstance(v, float) else str(v) for v in grid)


def positions_fit(position: str, grid: Dims3, nominal: Dims3) -> bool:
    """Whether the absolute positions, sized from input // stride, line up with the tokens:
    joint needs the same count; separable the same T and the same H*W."""
    if position in ("joint", "sincos"):
        return grid[0] * grid[1] * grid[2] == nominal[0] * nominal[1] * nominal[2]
    if position == "separable":
        return grid[0] == nominal[0] and grid[1] * grid[2] == nominal[1] * nominal[2]
    return True


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

    def __init__(self, model: Model, sources: dict[str, str] | None = None) -> None:
        self.model = model
        self.r = Reporter(sources or {})
        self.heads_seen: set[tuple[str, int, int]] = set()

    def fmt(self, grid: tuple[Any, ...]) -> str:
        """A grid, kernel or stride as the spec writes it: T x H x W, or H x W for images."""
        return fmt(spatial(grid, self.model.video))

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
        for block, flow in blocks_in_order(build_graph(self.model)):
            self.check_heads(block)
            if flow_ok:
                errors = len(self.r.diagnostics)
                self.check_block(block, flow)
                flow_ok = len(self.r.diagnostics) == errors

    def check_stem(self) -> None:
        m = self.model
        grid, nom = shapes.patch_grid(m), shapes.patch_nominal(m)
        if min(grid) < 1:
            self.r.error(
                "E303",
                f"the patch embedding leaves a {self.fmt(grid)} grid from a "
                f"{self.fmt(m.input.size)} input",
                self.setting_span("patch"),
                "use a smaller kernel or stride, or a larger input",
            )
        elif not positions_fit(m.tokens.position, grid, nom):
            self.r.error(
                "E307",
                f"the patch embedding makes a {self.fmt(grid)} token grid, but "
                f"'position {m.tokens.position}' is sized for {self.fmt(nom)} (input size "
                f"{self.fmt(m.input.size)} // patch stride {self.fmt(m.patch.stride)})",
                self.setting_span("tokens"),
                "choose an input size divisible by the "
                "patch stride and an odd kernel with pad kernel//2, or 'position none'",
            )
        if m.tokens.position == "sincos" and m.patch.dim % 16:
            self.r.error(
                "E307",
                f"'position sincos' needs an embedding width divisible by 16 (a quarter for "
                f"time, three for space, each half sin, half cos); the width is {m.patch.dim}",
                self.setting_span("tokens"),
                "choose a patch width divisible by 16, or 'position joint'",
            )
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
        q = block.pool_q
        # K/V strides may exceed the grid (everything pools to one token); only Q sets the grid.
        if self.check_fit(block, flow.grid_in, q.stride):
            return
        for name, pool, grid in (("Q", q, flow.grid_q), ("K/V", block.pool_kv, flow.grid_kv)):
            span = self.pool_span(block, name)
            if min(grid) < 1:
                self.r.error(
                    "E303",
                    f"{name} pooling of block {block.index} leaves a "
                    f"{self.fmt(grid)} grid from {self.fmt(flow.grid_in)}",
                    span,
                    "use a smaller kernel or a larger input",
                )
                return
            if self.avg_window_too_big(pool, flow.grid_in):
                self.r.error(
                    "E304",
                    f"{name} avg pooling kernel {self.fmt(pool.kernel)} of "
                    f"block {block.index} is larger than its {self.fmt(flow.grid_in)} "
                    "input grid",
                    span,
                    "PyTorch's avg_pool3d needs the grid at least as large as the "
                    "kernel; use a smaller kernel, or max or conv pooling",
                )
                return
        if flow.rel_pos is not None and self.rel_pos_collapses(flow.rel_pos):
            self.r.error(
                "E303",
                f"block {block.index}: relative positions are sized from the "
                f"bookkeeping grid {self.fmt(flow.nominal_in)} (input // strides, as "
                "torchvision does), which leaves an empty table",
                self.row_span(block.stage, "stride_q"),
                "choose an input size divisible by the strides, or 'rel_pos none'",
            )
            return
        if block.window is not None and self.check_window(block, flow):
            return
        if flow.grid_skip != flow.grid_q:
            self.r.error(
                "E301",
                f"block {block.index}: attention output grid "
                f"{self.fmt(flow.grid_q)} differs from the residual grid "
                f"{self.fmt(flow.grid_skip)} (Q kernel "
                f"{self.fmt(q.kernel)}, stride {self.fmt(q.stride)})",
                self.row_span(block.stage, "stride_q"),
                f"use an odd Q kernel, e.g. {self.fmt((3, 3, 3))}, or the s+1 rule",
            )

    def scope_span(self, block: Block) -> Span:
        """The `scope=` cell of the stage whose scope the block uses, else the attention line."""
        stage = block.scope_from or block.stage
        for s in self.model.stages:
            if s.name == stage and "scope" in s.columns:
                return s.columns["scope"].span()
        return self.setting_span("attention")

    def check_window(self, block: Block, flow: BlockFlow) -> bool:
        """Mask-unit windows must tile the block's K/V grid and, divided by its Q stride, the Q
        grid: the mask unit divisible by the Q strides before the block, the window by the
        block's stride, the grid by the window; no K/V pooling or relative positions inside."""
        m, w, wq = self.model, block.window, block.window_q
        assert w is not None and wq is not None
        before = strides_before(m, block)
        lag = f" (the scope of stage '{block.scope_from}': a stage's first block keeps it)"
        where = f"block {block.index}{lag if block.scope_from else ''}"
        unit = m.attention.mask_unit or (1, 1, 1)
        by_unit = block.scope == "mask_unit"
        problem = hint = ""
        if by_unit and any(u % s for u, s in zip(unit, before)):
            problem = (
                f"{where}: mask unit {self.fmt(unit)} is not divisible by the Q strides "
                f"before it, {self.fmt(before)}"
            )
            hint = "use a larger mask unit, or 'scope=global' in this stage"
        elif any(n % s for n, s in zip(w, block.pool_q.stride)):
            problem = (
                f"{where}: window {self.fmt(w)} is not divisible by its Q stride "
                f"{self.fmt(block.pool_q.stride)}"
            )
            hint = "use a larger mask unit, or 'scope=global' in the previous stage"
        elif any(n % s for n, s in zip(flow.grid_in, w)):
            grid = self.fmt(flow.grid_in)
            problem = f"{where}: grid {grid} is not divisible by window {self.fmt(w)}"
            hint = "choose an input size whose grids the mask unit divides"
        elif block.pool_kv.exists or flow.rel_pos is not None:
            problem = f"{where}: windowed attention needs no K/V pooling and no relative positions"
            hint = "write 'pool_kv off' and 'rel_pos none', or 'scope=global'"
        elif any(n % s for n, s in zip(flow.grid_q, wq)) or [
            n // s for n, s in zip(flow.grid_q, wq)
        ] != [n // s for n, s in zip(flow.grid_in, w)]:
            problem = (
                f"{where}: Q grid {self.fmt(flow.grid_q)} does not split into the same windows "
                f"as the K/V grid {self.fmt(flow.grid_in)}"
            )
            hint = "pool Q with kernel = stride and padding 0 ('kernel_q', 'pool_pad zero')"
        if not problem:
            return False
        self.r.error("E309", problem, self.scope_span(block), hint)
        return True

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


def check_model(model: Model, sources: dict[str, str] | None = None) -> None:
    """Raise SpecError with every shape problem of the model, or return quietly."""
    checker = Checker(model, sources)
    checker.run()
    checker.r.raise_if_any()
