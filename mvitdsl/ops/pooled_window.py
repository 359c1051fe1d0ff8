"""Windows after pooling (detectron2's MViTv2 backbone): q, k and v are pooled (conv + LayerNorm)
on the whole grid, then each is cut into windows of its own size, the Q window the block's
window over its Q stride and the K/V window it over the K/V stride, the pooled grids zero-padded
to whole windows; attention (with decomposed relative positions sized to the windows) runs per
window, the padded queries are cropped, residual pooling adds the unwindowed pooled Q."""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING, Any, Literal

from ..nodes import Dims3, Node
from . import attention
from .base import BlockFlow, Costs, Emits, Labels, Making, Rules, Sketch, Value

if TYPE_CHECKING:
    from ..ir import Block, Model


class PooledWindowAttention(attention.AttentionOptions):
    """Attention inside windows of the pooled q, k, v; `window` is in tokens of the block's
    input grid."""

    kind: Literal["pooled_window_attention"] = "pooled_window_attention"
    window: Dims3
    scope_from: str = ""  # the stage whose window the block uses, when not its own (the lag)

    @property
    def window_q(self) -> Dims3:
        """The Q window: the window over the block's Q stride."""
        return _over(self.window, self.pool_q.stride)

    @property
    def window_kv(self) -> Dims3:
        """The K/V window: the window over the block's K/V stride."""
        return _over(self.window, self.pool_kv.stride)


def make(
    m: Making, made: tuple[Node, ...], current: attention.AttentionOptions
) -> PooledWindowAttention | None:
    """`scope pooled_window`: the window as written, of the stage whose scope the block keeps."""
    opts = m.scope_opts
    if opts["scope"] != "pooled_window" or opts["window"] is None:
        return None
    return attention.swapped(
        current, PooledWindowAttention, window=opts["window"], scope_from=m.scope_from
    )


def _over(window: Dims3, stride: Dims3) -> Dims3:
    return (max(window[0] // stride[0], 1), max(window[1] // stride[1], 1),
            max(window[2] // stride[2], 1))  # fmt: skip


def counts(grid: Dims3, window: Dims3) -> Dims3:
    """Windows per axis over `grid`, the last one padded (ceil division)."""
    return (-(-grid[0] // window[0]), -(-grid[1] // window[1]), -(-grid[2] // window[2]))


def windows(op: PooledWindowAttention, flow: BlockFlow) -> int:
    """How many windows the Q grid splits into (the K/V grid splits into as many: checked)."""
    return prod(counts(flow.grid_q, op.window_q))


# ---------------------------------------------------------------- analysis


def costs(model: Model, block: Block, op: PooledWindowAttention, flow: BlockFlow) -> Costs:
    """Pooling attention's, each query attending to its window's K/V tokens; where windows pad,
    the padded queries are computed too (attention and rel-pos), as the reference does."""
    base = attention.attention_costs(block, op, flow, prod(op.window_kv))
    heads, hd = block.heads, block.head_dim
    queries, padded = prod(flow.grid_q), windows(op, flow) * prod(op.window_q)
    extra = 2 * heads * (padded - queries) * prod(op.window_kv) * hd
    if flow.rel_pos is not None:  # the base counts rel-pos over the whole K/V grid
        used = sum(n for n, size in zip(op.window_kv, flow.rel_pos) if size)
        whole = sum(n for n, size in zip(flow.grid_kv, flow.rel_pos) if size)
        extra += heads * hd * (padded * used - queries * whole)
    return base + Costs(attn_macs=extra)


def saved(block: Block, op: PooledWindowAttention, flow: BlockFlow) -> int:
    return attention.saved_elems(block, flow, prod(op.window_kv))


def row(block: Block, op: PooledWindowAttention, flow: BlockFlow) -> dict[str, Any]:
    """L_Q x L_K of one window per head, the count of windows, the windows and the scope."""
    scope = "pooled_window+lag" if op.scope_from else "pooled_window"
    return {
        "attention": (prod(op.window_q), prod(op.window_kv)),
        "scope": scope,
        "windows": windows(op, flow),
        "window_q": op.window_q,
        "window_kv": op.window_kv,
    }


def _problem(c: Any, op: PooledWindowAttention, flow: BlockFlow) -> tuple[str, str]:
    """The window must be a multiple of the Q and K/V strides (the reference floors the
    quotient), and the pooled Q and K/V grids must split into as many windows."""
    for name, stride in (("Q", op.pool_q.stride), ("K/V", op.pool_kv.stride)):
        if any(n % s for n, s in zip(op.window, stride)):
            return (
                f"window {c.fmt(op.window)} is not divisible by its {name} stride {c.fmt(stride)}",
                "use a window that is a multiple of the block's Q and K/V strides",
            )
    q, kv = counts(flow.grid_q, op.window_q), counts(flow.grid_kv, op.window_kv)
    if q != kv:
        return (
            f"the Q grid {c.fmt(flow.grid_q)} splits into {c.fmt(q)} windows of "
            f"{c.fmt(op.window_q)} but the K/V grid {c.fmt(flow.grid_kv)} into {c.fmt(kv)} "
            f"of {c.fmt(op.window_kv)}",
            "pool with kernel k, stride s and padding k//2 ('pool_pad half') so that both grids "
            "are the input grid over their strides",
        )
    return "", ""


def check(c: Any, block: Block, op: PooledWindowAttention, flow: BlockFlow) -> bool:
    """Pooling attention's rules, then the windows' (E309, at the `scope=` cell)."""
    if attention.check(c, block, op, flow):
        return True
    problem, hint = _problem(c, op, flow)
    if not problem:
        return False
    lag = f" (the window of stage '{op.scope_from}': a stage's first block keeps it)"
    where = f"block {block.index}{lag if op.scope_from else ''}"
    c.r.error("E309", f"{where}: {problem}", _window_span(c, block, op), hint)
    return True


def _window_span(c: Any, block: Block, op: PooledWindowAttention) -> Any:
    """The `window=` cell of the stage whose window the block uses, else its `scope=` cell, else
    the attention line."""
    stage = op.scope_from or block.stage
    for s in c.model.stages:
        if s.name == stage and "window" in s.columns:
            return s.columns["window"].span()
    return c.scope_span(block, op.scope_from)


# ---------------------------------------------------------------- emission (torch inside)


def emit_attend(e: Emits, op: PooledWindowAttention, x: Value, normed: Value) -> Value:
    """Pool q, k, v on the whole grid, cut each into (padded) windows of its size, attend per
    window with relative positions over the windows, merge and crop to the Q grid."""
    import torch.nn.functional as F

    from ..backend.runtime import padded_merge, padded_windows

    b = e.block
    q, k, v = attention.emit_pooled_qkv(e, op, x)
    grid_q, grid_kv = attention.emit_grids(e, op)
    qw = e.fn(padded_windows, q, grid_q, op.window_q)
    kw = e.fn(padded_windows, k, grid_kv, op.window_kv)
    vw = e.fn(padded_windows, v, grid_kv, op.window_kv)
    mask = emit_rel_pos(e, op, qw) if e.flow.rel_pos is not None else None
    o = e.fn(F.scaled_dot_product_attention, qw, kw, vw, attn_mask=mask, scale=b.head_dim**-0.5)
    o = e.fn(padded_merge, o, b.heads, grid_q, op.window_q)
    return attention.emit_output(e, op, o, q)


def emit_rel_pos(e: Emits, op: PooledWindowAttention, qw: Value) -> Value:
    """Decomposed relative positions between a Q window and a K/V window (the tables, sized
    from the block's grid, interpolated to the windows at run time, as the reference)."""
    import torch
    from torch import nn

    from ..backend.runtime import rel_pos_bias, window_rel_pos

    assert e.flow.rel_pos is not None
    tables = {}
    for axis, length in zip("thw", e.flow.rel_pos):
        if length:
            param = nn.Parameter(torch.zeros(length, e.block.head_dim))
            tables[axis] = e.attr(attention.rel_pos_name(axis), param)
    t, h, w = tables.get("t"), tables["h"], tables["w"]
    if t is None:  # images: matmuls, which torch.export keeps free of window-count guards
        return e.fn(window_rel_pos, qw, op.window_q, op.window_kv, h, w)
    return e.fn(rel_pos_bias, qw, op.window_q, op.window_kv, t, h, w, False)


# ---------------------------------------------------------------- drawing


def draw_attend(
    block: Block, op: PooledWindowAttention, flow: BlockFlow, s: Labels, src: str, dim: int
) -> Sketch:
    n = windows(op, flow)
    size = (prod(op.window_q), prod(op.window_kv))
    after = " (previous stage's window)" if op.scope_from else ""
    text = f"{n} windows after pooling: Q {s.grid(op.window_q)}, K/V {s.grid(op.window_kv)}{after}"
    return attention.sketch(block, op, flow, s, src, size, f"{n} × ", text)


RULES = Rules(
    kind="pooled_window_attention",
    record=PooledWindowAttention,
    flow=attention.flow,
    period=attention.period,  # partial windows are padded: the strides alone
    costs=costs,
    saved=saved,
    shapes=attention.shapes,
    check=check,
    row=row,
    emit={"attend": emit_attend},
    draw={"attend": draw_attend},
    slot="scope",
    make=make,
)
