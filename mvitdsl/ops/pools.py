"""The Q, K and V poolings of an attention (MViT's Pool_Q, Pool_K, Pool_V): a depthwise conv
with a LayerNorm per head, or a max / avg pool, channels-last over all heads at once; the cls
token bypasses them. Shared by every attention kind; their costs, emission and drawing."""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING

from ..nodes import Pool
from .base import (
    BlockFlow,
    Costs,
    DrawEdge,
    DrawItem,
    DrawNode,
    Emits,
    EmitsModel,
    Labels,
    SameRank,
    Value,
    lines,
)

if TYPE_CHECKING:
    from ..ir import Block
    from .attention import AttentionOptions

POOL_CONV, POOL_NORM = ".pool", ".norm_act.0"


def pool_name(which: str) -> str:
    """The pooling of q, k or v: its conv at `.pool`, its LayerNorm at `.norm_act.0`."""
    return f"attn.pool_{which}"


def pool_head_dim(block: Block, op: AttentionOptions) -> int:
    """The channels per head the Q/K/V pools see: the input's with pool-first."""
    return block.dim_in // block.heads if op.pool_first else block.head_dim


def pool_costs(block: Block, op: AttentionOptions, flow: BlockFlow) -> Costs:
    hd, heads = pool_head_dim(block, op), block.heads
    params = macs = norm = 0
    for pool, grid, length, count in (
        (op.pool_q, flow.grid_q, flow.len_q, 1),
        (op.pool_kv, flow.grid_kv, flow.len_kv, 2),
    ):
        if not pool.exists or pool.mode != "conv":
            continue
        params += count * (hd * prod(pool.kernel) + 2 * hd)
        macs += count * heads * prod(grid) * hd * prod(pool.kernel)
        norm += count * heads * length * hd
    return Costs(params=params, pool_macs=macs, norm_elems=norm)


def emit_grid(e: EmitsModel, grid: Value, pool: Pool) -> Value:
    """The run-time grid after `pool` (`grid` itself when the pool does not exist)."""
    from ..backend.runtime import pooled_grid

    if not pool.exists:
        return grid
    key = ("grid", grid, pool.kernel, pool.stride, pool.padding)
    if key not in e.memo:
        e.memo[key] = e.fn(pooled_grid, grid, pool.kernel, pool.stride, pool.padding)
    return e.memo[key]


def emit_map_size(e: EmitsModel, grid: Value) -> Value:
    """The run-time trailing sizes of a map on `grid`: (T, H, W), or (H, W) for images."""
    from ..backend.runtime import spatial_of

    key = ("map", grid)
    if key not in e.memo:
        e.memo[key] = e.fn(spatial_of, grid, e.nd)
    return e.memo[key]


def emit_pool(
    e: Emits, target: str, x: Value, pool: Pool, hd: int | None = None, grid: Value = None
) -> Value:
    """Pool one of q, k, v: (B, L, heads * hd) -> (B, heads, L', hd) on `grid` (the block's
    run-time grid unless given: padded windows pool the padded grid); cls bypasses it.

    The pool runs channels-last on all heads at once (one depthwise conv over A channels,
    the per-head kernel shared), reading a view of x."""
    from torch import nn

    b = e.block
    heads, hd = b.heads, hd or b.head_dim
    if pool.exists:
        cls, t = e.split_cls(x, 1)
        # (B, THW, C) -> (B, C, T, H, W): a strided channels-last view, no copy (the CPU
        # layer makes a dense copy in inference: backend/passes/optimize.py)
        t = e.method("transpose", t, 1, 2)
        t = e.method("unflatten", t, 2, emit_map_size(e, e.grid_node() if grid is None else grid))
        t = emit_pool_op(e, target + POOL_CONV, t, pool, hd)
        # (B, A, T', H', W') channels-last -> (B, T'H'W', A): a view
        t = e.method("flatten", t, 2)
        t = e.method("transpose", t, 1, 2)
        x = e.join_cls(cls, t, 1)
    # (B, L', A) -> (B, L', heads, hd) [-> LayerNorm(hd)] -> (B, heads, L', hd)
    x = e.method("unflatten", x, 2, (heads, hd))
    if pool.exists and pool.mode == "conv":
        eps = e.model.pool_norm_eps
        norm = nn.LayerNorm(hd, eps=e.model.norm_eps if eps is None else eps)
        x = e.module(target + POOL_NORM, norm, x)
    return e.method("transpose", x, 1, 2)


def emit_pool_op(e: Emits, target: str, t: Value, pool: Pool, hd: int) -> Value:
    import torch.nn.functional as F
    from torch import nn

    from ..backend.runtime import depthwise_conv

    kernel, stride, padding = (e.grid(v) for v in (pool.kernel, pool.stride, pool.padding))
    if pool.mode == "conv":
        # torchvision's per-head Conv3d(hd, hd, groups=hd) weight; depthwise_conv shares
        # it over the heads
        conv = nn.Conv3d if e.nd == 3 else nn.Conv2d
        made = conv(hd, hd, kernel, stride=stride, padding=padding, groups=hd, bias=False)
        w = e.attr(target + ".weight", made.weight)
        return e.fn(depthwise_conv, t, w, stride, padding)
    fns = {
        ("max", 3): F.max_pool3d,
        ("max", 2): F.max_pool2d,
        ("avg", 3): F.avg_pool3d,
        ("avg", 2): F.avg_pool2d,
    }
    return e.fn(fns[pool.mode, e.nd], t, kernel, stride, padding)


def sketch(
    b: Block, op: AttentionOptions, flow: BlockFlow, s: Labels, residual: bool
) -> list[DrawItem]:
    heads = f"{b.heads}×{b.head_dim}"
    pooled_grid = {"Q": flow.grid_q, "K": flow.grid_kv, "V": flow.grid_kv}
    targets = {"Q": ["scores", "mix"] if residual else ["scores"], "K": ["scores"], "V": ["mix"]}
    items: list[DrawItem] = []
    drawn = []
    for name, pool in (("Q", op.pool_q), ("K", op.pool_kv), ("V", op.pool_kv)):
        src = "qkv"
        if pool.exists:
            ident = f"pool_{name.lower()}"
            norm = f"+ LayerNorm({b.head_dim})" if pool.mode == "conv" else ""
            label = lines(
                f"Pool_{name}",
                s.pool(pool),
                norm,
                f"{s.grid(flow.grid_in)} → {s.grid(pooled_grid[name])}",
            )
            items.append(DrawNode(ident, label, {"fillcolor": "#d9f0d3"}))
            items.append(DrawEdge("qkv", ident, f"{name} {s.size(flow.grid_in, heads)}"))
            src = ident
            drawn.append(ident)
        for t in targets[name]:
            dashed = {"style": "dashed"} if name == "Q" and t == "mix" else {}
            items.append(DrawEdge(src, t, f"{name}̂ {s.size(pooled_grid[name], heads)}", dashed))
    items.append(SameRank(tuple(drawn)))
    return items
