"""The skip pool: the residual's max-pool where Q is strided, so the shortcut meets the pooled
attention output (cls token bypasses it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from ..nodes import Dims3, Node, Pool
from .base import BlockFlow, Emits, Labels, Rules, Sketch, Value, lines, pooled

if TYPE_CHECKING:
    from ..ir import Block, Model


class SkipPool(Node):
    """The residual's max-pool: s+1 kernel with k//2 padding, or the Q pool's kernel (`like_q`)."""

    kind: Literal["skip_pool"] = "skip_pool"
    pool: Pool


def flow(model: Model, block: Block, op: SkipPool, grid: Dims3, nom: Dims3) -> dict[str, Any]:
    return {"grid_skip": pooled(grid, op.pool)}


def emit_shortcut(e: Emits, op: SkipPool, x: Value, normed: Value) -> Value:
    """Max-pool the residual like Q, channels-last: (B, L_in, C) -> (B, L_q, C)."""
    import torch.nn.functional as F

    from .pools import emit_map_size

    skip = op.pool
    cls, t = e.split_cls(x, 1)
    # (B, THW, C) -> (B, C, T, H, W): a view of x (saved by norm1 anyway), so training
    # keeps no extra copy; at batch 1 it is already dense channels-last
    t = e.method("transpose", t, 1, 2)
    t = e.method("unflatten", t, 2, emit_map_size(e, e.grid_node()))
    pool = F.max_pool3d if e.nd == 3 else F.max_pool2d
    t = e.fn(pool, t, e.grid(skip.kernel), e.grid(skip.stride), e.grid(skip.padding))
    # (B, C, T', H', W') channels-last -> (B, T'H'W', C): a view
    t = e.method("flatten", t, 2)
    t = e.method("transpose", t, 1, 2)
    return e.join_cls(cls, t, 1)


def draw_shortcut(
    block: Block, op: SkipPool, flow: BlockFlow, s: Labels, src: str, dim: int
) -> Sketch:
    label = lines(
        "skip pool",
        f"max {s.grid(op.pool.kernel)} stride {s.grid(op.pool.stride)}",
        "(cls token bypasses)" if s.cls else "",
    )
    return Sketch.box("skip_pool", label, src, s.size(flow.grid_in, dim), dim, fill="#d9f0d3")


RULES = Rules(
    kind="skip_pool",
    record=SkipPool,
    flow=flow,
    emit={"shortcut_attention": emit_shortcut},
    draw={"shortcut_attention": draw_shortcut},
)
