"""Shifted-window attention (Swin, Liu et al. 2021): q, k, v inside non-overlapping windows of
the grid, every other block on the grid rolled by half a window (with a mask between tokens the
roll made neighbours), and a learned relative-position bias table per head. Its record, shape
rule, costs, names, checks, emission and drawing."""

from __future__ import annotations

from dataclasses import replace
from math import prod
from typing import TYPE_CHECKING, Any, Literal

from ..nodes import Dims3, Node, Pool
from . import attention, merge
from .base import BlockFlow, Costs, Emits, Labels, Making, Rules, Shape, Sketch, Value, linear

if TYPE_CHECKING:
    from ..ir import Block, Model

BIAS_TABLE = "attn.rel_pos_table"
REFERENCE_NAMES = ((r"^attn\.relative_position_bias_table$", BIAS_TABLE),)  # timm's


class SwinAttention(attention.AttentionOptions):
    """Attention in fixed windows, shifted by half a window where `shift` (and the grid is
    larger than the window), with Swin's relative-position bias table where `table`."""

    kind: Literal["swin_attention"] = "swin_attention"
    window: Dims3 | None  # None: the spec asked for a shift or a table without windows
    shift: bool = False
    table: bool = True


def make(
    m: Making, made: tuple[Node, ...], current: attention.AttentionOptions
) -> SwinAttention | None:
    """With a bias table or a shift asked for, the block's scope: its own stage's window (no
    lag), shifted on every other block with `shift alternate`; Q's grid is the merged one where
    the block merges patches (its geometry in `pool_q`, as PVTv2's)."""
    own = m.opts
    if own["rel_pos"] != "table" and own["shift"] == "none":
        return None
    window = own["window"] if own["scope"] == "window" else None
    shifted = own["shift"] == "alternate" and m.j % 2 == 1
    extra: dict[str, Any] = {"table": current.rel_pos == "table"}
    merging = next((op for op in made if isinstance(op, merge.PatchMerge)), None)
    if merging is not None:
        s = merging.stride
        extra["pool_q"] = Pool(mode=current.pool_q.mode, kernel=s, stride=s, padding=(0, 0, 0))
    return attention.swapped(current, SwinAttention, window=window, shift=shifted, **extra)


def shift_of(op: SwinAttention, grid: Dims3) -> Dims3:
    """Half the window along each axis the grid is larger than the window (Swin's rule: a grid
    of one window is not shifted)."""
    w = op.window or (1, 1, 1)
    if not op.shift:
        return (0, 0, 0)
    return (0, *(k // 2 if n > k else 0 for n, k in zip(grid[1:], w[1:])))  # type: ignore[return-value]


def flow(model: Model, block: Block, op: SwinAttention, grid: Dims3, nom: Dims3) -> dict[str, Any]:
    """Q and K/V see the grid after the block's patch merging (ops/merge.py), if any."""
    g = merge.entered(block, grid)
    return {"grid_q": g, "grid_kv": g, "rel_pos": None}


def padded(op: SwinAttention, grid: Dims3) -> Dims3:
    """The grid rounded up to whole windows (bottom and right padding)."""
    w = op.window or grid
    t, h, x = (-(-n // k) * k for n, k in zip(grid, w))
    return (t, h, x)


def table_rows(op: SwinAttention) -> int:
    w = op.window or (1, 1, 1)
    return (2 * w[1] - 1) * (2 * w[2] - 1)


def costs(model: Model, block: Block, op: SwinAttention, flow: BlockFlow) -> Costs:
    """qkv and the projection over the padded tokens, each query against its window's."""
    a, n = block.dim_attn, prod(padded(op, flow.grid_q))
    qkv_p, qkv_m = linear(n, a, 3 * a, op.qkv_bias)
    proj_p, proj_m = linear(n, a, a)
    matmuls = 2 * block.heads * n * prod(op.window or (1, 1, 1)) * block.head_dim
    table = table_rows(op) * block.heads if op.table else 0
    return Costs(params=qkv_p + proj_p + table, attn_macs=qkv_m + proj_m + matmuls)


def saved(block: Block, op: SwinAttention, flow: BlockFlow) -> int:
    """qkv, the windowed q, k, v and the attention probabilities (on the padded grid)."""
    a, n = block.dim_attn, prod(padded(op, flow.grid_q))
    return 3 * n * a + 3 * n * a + block.heads * n * prod(op.window or (1, 1, 1))


def shapes(model: Model, block: Block, op: SwinAttention, flow: BlockFlow) -> dict[str, Shape]:
    a = block.dim_attn
    out: dict[str, Shape] = {f"{attention.QKV}.weight": (3 * a, a)}
    if op.qkv_bias:
        out[f"{attention.QKV}.bias"] = (3 * a,)
    if op.table:
        out[BIAS_TABLE] = (table_rows(op), block.heads)
    out[f"{attention.ATTN_PROJECT}.weight"] = (a, a)
    out[f"{attention.ATTN_PROJECT}.bias"] = (a,)
    return out


def row(block: Block, op: SwinAttention, flow: BlockFlow) -> dict[str, Any]:
    w = op.window or flow.grid_q
    shifted = any(shift_of(op, flow.grid_q))
    return {
        "attention": (prod(w), prod(w)),
        "scope": "shifted_window" if shifted else "window",
        "windows": prod(padded(op, flow.grid_q)) // prod(w),
        "window_q": w,
        "window_kv": w,
    }


def _problem(c: Any, block: Block, op: SwinAttention, flow: BlockFlow) -> tuple[str, str, str]:
    """(code, message, hint) of the first rule the block breaks, or empty strings."""
    if op.window is None:
        return (
            "E210",
            f"block {block.index}: 'shift' and 'rel_pos table' need windows ('scope window')",
            "write 'scope window, window 7x7' in 'attention' (or the stage row)",
        )
    if c.model.video:
        return ("E210", "shifted windows are for images", "write 'input image CxHxW'")
    return _too_large(c, block, op, c.own_flow(block, flow).grid_q)


def _too_large(c: Any, block: Block, op: SwinAttention, grid: Dims3) -> tuple[str, str, str]:
    """E309 for a window larger than its grid at the spec's written input: timm shrinks such a
    window to the grid and drops the shift, another model than the one written. Only there: a
    built module runs at other sizes (smaller grids too), padding to whole windows."""
    w = op.window or grid
    if all(k <= n for k, n in zip(w[1:], grid[1:])):
        return "", "", ""
    fit: Dims3 = (1, min(w[1], grid[1]), min(w[2], grid[2]))
    size = "x".join(map(str, (c.model.input.channels, *grid_of_input(c))))
    return (
        "E309",
        f"block {block.index}: window {c.fmt(w)} is larger than its {c.fmt(grid)} grid at the "
        f"spec's input {size}",
        f"write 'window={c.fmt(fit)}' in stage '{block.stage}' (timm's window at that grid, "
        "unshifted), or a larger 'input' (the built module still runs at smaller sizes)",
    )


def grid_of_input(c: Any) -> tuple[int, int]:
    """The written input's H and W."""
    own = c.model.input.own
    return own[1], own[2]


def _window_span(c: Any, block: Block) -> Any:
    """The stage's `window=` cell, else its `scope=` cell, else the attention line."""
    for s in c.model.stages:
        if s.name == block.stage and "window" in s.columns:
            return s.columns["window"].span()
    return c.scope_span(block, "")


def check(c: Any, block: Block, op: SwinAttention, flow: BlockFlow) -> bool:
    """Windows that exist, on images (E210), that fit their grids at the spec's written input
    (E309); heads that divide the width are the checker's."""
    code, problem, hint = _problem(c, block, op, flow)
    if not code:
        return False
    c.r.error(
        code, problem, _window_span(c, block) if code == "E309" else c.scope_span(block, ""), hint
    )
    return True


def emit_attend(e: Emits, op: SwinAttention, x: Value, normed: Value) -> Value:
    """x (B, L, A) -> (B, L, A) at the run-time grid: roll, pad to whole windows, partition,
    attend with the bias table and the shift mask (computed for the padded grid), merge, crop,
    roll back. The window and the shift are the built ones (the spec's size decides them)."""
    import operator

    import torch
    from torch import nn

    from ..backend.runtime import shifted_windows, unshifted_windows, window_attention, window_bias

    b, w, a = e.block, op.window or (1, 1, 1), e.block.dim_attn
    g, shift = merge.emit_entered(e), shift_of(op, e.flow.grid_q)[1:]
    t = e.fn(shifted_windows, x, g, w[1:], shift)  # (B, nW, N, A)
    qkv = e.module(attention.QKV, nn.Linear(a, 3 * a, bias=op.qkv_bias), t)
    # (B, nW, N, 3A) -> (3, B, nW, heads, N, hd)
    qkv = e.method("unflatten", qkv, 3, (3, b.heads, b.head_dim))
    qkv = e.method("unbind", e.method("permute", qkv, 3, 0, 1, 4, 2, 5), 0)
    q, k, v = (e.fn(operator.getitem, qkv, i) for i in range(3))
    mask = None
    if op.table:
        table = e.attr(BIAS_TABLE, nn.Parameter(torch.zeros(table_rows(op), b.heads)))
        mask = e.fn(window_bias, table, g, w[1:], shift, b.heads)
    o = e.fn(window_attention, q, k, v, mask, b.head_dim**-0.5)  # (B, nW, N, A)
    o = e.fn(unshifted_windows, o, g, w[1:], shift)
    o = e.module(attention.ATTN_PROJECT, nn.Linear(a, a), o)
    if e.model.attention.dropout > 0:
        o = e.module(attention.ATTN_DROPOUT, nn.Dropout(e.model.attention.dropout), o)
    return o


def draw_attend(
    block: Block, op: SwinAttention, flow: BlockFlow, s: Labels, src: str, dim: int
) -> Sketch:
    w = op.window or flow.grid_q
    windows = prod(padded(op, flow.grid_q)) // prod(w)
    shifted = any(shift_of(op, flow.grid_q))
    how = "shifted windows (rolled by half a window, masked)" if shifted else "windows"
    bias = " + bias table" if op.table else ""
    text = f"{windows} {how}: {s.grid(w)}{bias}"
    size = (prod(w), prod(w))
    # the attention sees the merged tokens at the attention width
    seen = block.model_copy(update={"dim_in": block.dim_attn})
    at = replace(flow, grid_in=flow.grid_branches)
    return attention.sketch(seen, op, at, s, src, size, f"{windows} × ", text)


RULES = Rules(
    kind="swin_attention",
    record=SwinAttention,
    flow=flow,
    costs=costs,
    saved=saved,
    shapes=shapes,
    check=check,
    row=row,
    emit={"attend": emit_attend},
    draw={"attend": draw_attend},
    names=REFERENCE_NAMES,
    slot="scope",
    make=make,
)
