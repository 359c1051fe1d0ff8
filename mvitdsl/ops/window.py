"""Windowed attention (Hiera's mask units, or a fixed window): the pooled q, k, v of pooling
attention, partitioned into windows that tile the grid, attended per window, merged back.
A fixed window (`scope window`, SAM2's rule) pads: the normed x is zero-padded to whole windows
before qkv, attended without a mask (padded keys are the qkv bias), and the output cropped."""

from __future__ import annotations

from dataclasses import replace
from math import prod
from typing import TYPE_CHECKING, Any, Literal

from ..nodes import Dims3, Node
from . import attention
from .base import BlockFlow, Costs, Emits, Labels, Making, Rules, Sketch, Value, lcm3, pooled

if TYPE_CHECKING:
    from ..ir import Block, Model


class WindowAttention(attention.AttentionOptions):
    """Attention inside windows: the K/V window, the Q window (it divided by the Q stride)."""

    kind: Literal["window_attention"] = "window_attention"
    scope: Literal["mask_unit", "window"] = "mask_unit"  # how the window was set
    window_kv: Dims3  # the K/V window the block attends in
    scope_from: str = ""  # the stage whose scope the block uses, when not its own (the lag)

    @property
    def padded(self) -> bool:
        """A fixed window pads the grid to whole windows (SAM2); mask units tile it (Hiera)."""
        return self.scope == "window"

    @property
    def window_q(self) -> Dims3:
        """The Q window: the K/V window divided by the block's Q stride."""
        w, s = self.window_kv, self.pool_q.stride
        return (max(w[0] // s[0], 1), max(w[1] // s[1], 1), max(w[2] // s[2], 1))


def make(
    m: Making, made: tuple[Node, ...], current: attention.AttentionOptions
) -> WindowAttention | None:
    """`scope mask_unit` (the mask unit divided by the Q strides applied before the block; the
    checker reports a mask unit they do not divide) or `scope window` (the window as written),
    of the stage whose scope the block keeps."""
    opts = m.scope_opts
    if opts["scope"] == "mask_unit" and opts["mask_unit"] is not None:
        unit, before = opts["mask_unit"], m.strides_before
        window = (max(unit[0] // before[0], 1), max(unit[1] // before[1], 1),
                  max(unit[2] // before[2], 1))  # fmt: skip
    elif opts["scope"] == "window" and opts["window"] is not None:
        window = opts["window"]
    else:
        return None
    return attention.swapped(
        current, WindowAttention, scope=opts["scope"], window_kv=window, scope_from=m.scope_from
    )


def of(block: Block) -> WindowAttention | None:
    """The block's windowed attention, None when it attends globally."""
    op = block.attention_op
    return op if isinstance(op, WindowAttention) else None


def padded_flow(op: WindowAttention, flow: BlockFlow) -> BlockFlow:
    """The flow on the grid padded to whole windows (the flow itself without padding)."""
    if not op.padded:
        return flow
    grid = tuple(-(-n // w) * w for n, w in zip(flow.grid_in, op.window_kv))
    grid_in: Dims3 = (grid[0], grid[1], grid[2])
    grid_q, grid_kv = pooled(grid_in, op.pool_q), pooled(grid_in, op.pool_kv)
    return replace(flow, grid_in=grid_in, grid_q=grid_q, grid_kv=grid_kv, len_in=prod(grid_in),
                   len_q=prod(grid_q), len_kv=prod(grid_kv))  # fmt: skip


def costs(model: Model, block: Block, op: WindowAttention, flow: BlockFlow) -> Costs:
    """Each query attends to its window's K/V tokens; padded windows run qkv, attention and
    the output projection on the padded grid (SAM2's order: the crop comes last)."""
    return attention.attention_costs(block, op, padded_flow(op, flow), prod(op.window_kv))


def saved(block: Block, op: WindowAttention, flow: BlockFlow) -> int:
    return attention.saved_elems(block, padded_flow(op, flow), prod(op.window_kv))


def scope(op: WindowAttention) -> str:
    return f"{op.scope}+lag" if op.scope_from else op.scope


def row(block: Block, op: WindowAttention, flow: BlockFlow) -> dict[str, Any]:
    """L_Q x L_K of one window per head, the count of windows, the windows and the scope."""
    return {
        "attention": (prod(op.window_q), prod(op.window_kv)),
        "scope": scope(op),
        "windows": prod(padded_flow(op, flow).grid_kv) // prod(op.window_kv),
        "window_q": op.window_q,
        "window_kv": op.window_kv,
    }


def check(c: Any, block: Block, op: WindowAttention, flow: BlockFlow) -> bool:
    """Pooling attention's rules, then the windows' (E309)."""
    return attention.check(c, block, op, flow) or check_window(c, block, op, flow)


def _problem(c: Any, block: Block, op: WindowAttention, flow: BlockFlow) -> tuple[str, str]:
    """Mask-unit windows must tile the block's K/V grid and, divided by its Q stride, the Q
    grid: the mask unit divisible by the Q strides before the block, the window by the
    block's stride, the grid by the window; no K/V pooling or relative positions inside."""
    w, wq, stride = op.window_kv, op.window_q, op.pool_q.stride
    before = c.strides_before(block)
    unit = c.model.attention.mask_unit or (1, 1, 1)
    if op.scope == "mask_unit" and any(u % s for u, s in zip(unit, before)):
        return (
            f"mask unit {c.fmt(unit)} is not divisible by the Q strides before it, {c.fmt(before)}",
            "use a larger mask unit, or 'scope=global' in this stage",
        )
    if any(n % s for n, s in zip(w, stride)):
        return (
            f"window {c.fmt(w)} is not divisible by its Q stride {c.fmt(stride)}",
            "use a larger mask unit, or 'scope=global' in the previous stage",
        )
    if not op.padded and any(n % s for n, s in zip(flow.grid_in, w)):
        return (
            # mask units are not padded (Hiera's rule); `scope window` pads (SAM2's)
            f"grid {c.fmt(flow.grid_in)} is not divisible by window {c.fmt(w)}",
            "choose an input size whose grids the mask unit divides",
        )
    if op.pool_kv.exists or flow.rel_pos is not None:
        return (
            "windowed attention needs no K/V pooling and no relative positions",
            "write 'pool_kv off' and 'rel_pos none', or 'scope=global'",
        )
    if op.padded:
        return _padded_problem(c, op)
    q_windows = [n // s for n, s in zip(flow.grid_q, wq)]
    if any(n % s for n, s in zip(flow.grid_q, wq)) or q_windows != [
        n // s for n, s in zip(flow.grid_in, w)
    ]:
        return (
            f"Q grid {c.fmt(flow.grid_q)} does not split into the same windows "
            f"as the K/V grid {c.fmt(flow.grid_in)}",
            "pool Q with kernel = stride and padding 0 ('kernel_q', 'pool_pad zero')",
        )
    return "", ""


def _padded_problem(c: Any, op: WindowAttention) -> tuple[str, str]:
    """Padded windows pool Q inside each window (SAM2): Q's pool must be its stride's tiles
    (kernel = stride, padding 0), or it would mix padded and real tokens across windows; and
    the pool-first projections would see the pad's pooled zeros."""
    q = op.pool_q
    if q.exists and (q.kernel != q.stride or any(q.padding)):
        return (
            f"padded windows pool Q inside each window, but the Q pool {c.fmt(q.kernel)} with "
            f"padding {c.fmt(q.padding)} is not its stride {c.fmt(q.stride)}'s tiles",
            "pool Q with kernel = stride and padding 0 ('kernel_q', 'pool_pad zero')",
        )
    if op.pool_first:
        return ("padded windows project q, k, v before pooling", "write 'pool_first off'")
    return "", ""


def check_window(c: Any, block: Block, op: WindowAttention, flow: BlockFlow) -> bool:
    problem, hint = _problem(c, block, op, flow)
    if not problem:
        return False
    lag = f" (the scope of stage '{op.scope_from}': a stage's first block keeps it)"
    where = f"block {block.index}{lag if op.scope_from else ''}"
    c.r.error("E309", f"{where}: {problem}", c.scope_span(block, op.scope_from), hint)
    return True


def emit_attend(e: Emits, op: WindowAttention, x: Value, normed: Value) -> Value:
    """Attention inside windows, in raster layout: partition Q (its grid, the Q window) and
    K/V (theirs, the K/V window) into the same windows, attend, merge back."""
    import torch.nn.functional as F

    from ..backend.runtime import window_merge, window_partition

    b = e.block
    if op.padded:
        return emit_attend_padded(e, op, x)
    q, k, v = attention.emit_pooled_qkv(e, op, x)
    grid_q, grid_kv = attention.emit_grids(e, op)
    qw = e.fn(window_partition, q, grid_q, op.window_q)
    kw = e.fn(window_partition, k, grid_kv, op.window_kv)
    vw = e.fn(window_partition, v, grid_kv, op.window_kv)
    o = e.fn(F.scaled_dot_product_attention, qw, kw, vw, scale=b.head_dim**-0.5)
    o = e.fn(window_merge, o, b.heads, grid_q, op.window_q)
    return attention.emit_output(e, op, o, q)


def emit_attend_padded(e: Emits, op: WindowAttention, x: Value) -> Value:
    """SAM2's windows: x zero-padded to whole windows and cut into them before qkv; q, k, v
    pooled inside each window, attended without a mask, projected; the windows put back and
    the padding cropped."""
    import torch.nn.functional as F

    from ..backend.runtime import from_windows, padded_grid, to_windows
    from .pools import emit_grid, emit_pool, pool_name

    b, grid = e.block, e.grid_node()
    padded = e.fn(padded_grid, grid, op.window_kv)
    q, k, v = attention.emit_qkv(e, op, e.fn(to_windows, x, grid, padded, op.window_kv))
    k = emit_pool(e, pool_name("k"), k, op.pool_kv, grid=op.window_kv)
    v = emit_pool(e, pool_name("v"), v, op.pool_kv, grid=op.window_kv)
    q = emit_pool(e, pool_name("q"), q, op.pool_q, grid=op.window_kv)
    o = e.fn(F.scaled_dot_product_attention, q, k, v, scale=b.head_dim**-0.5)
    o = attention.emit_output(e, op, o, q)  # (B * windows, Q window, A)
    grid_qp, grid_q = emit_grid(e, padded, op.pool_q), emit_grid(e, grid, op.pool_q)
    return e.fn(from_windows, o, grid_qp, op.window_q, grid_q)


def window_text(
    windows: int, kv: Dims3, q: Dims3, lag: bool, s: Labels, kind: str = "mask-unit"
) -> str:
    """A windowed block's windows: how many, which kind (mask-unit, padded), K/V and Q sizes,
    and the lag."""
    after = " (previous stage's scope)" if lag else ""
    return f"{windows} {kind} windows: K/V {s.grid(kv)}, Q {s.grid(q)}{after}"


def draw_attend(
    block: Block, op: WindowAttention, flow: BlockFlow, s: Labels, src: str, dim: int
) -> Sketch:
    windows = prod(padded_flow(op, flow).grid_kv) // prod(op.window_kv)
    size = (prod(op.window_q), prod(op.window_kv))
    kind = "padded" if op.padded else "mask-unit"
    text = window_text(windows, op.window_kv, op.window_q, bool(op.scope_from), s, kind)
    return attention.sketch(block, op, flow, s, src, size, f"{windows} × ", text)


def period(block: Block, op: WindowAttention) -> Dims3:
    """The strides' period, and the K/V window where windows tile the grid without padding
    (mask units); padded windows take any grid the strides divide."""
    if op.padded:
        return attention.period(block, op)
    return lcm3(attention.period(block, op), op.window_kv)


RULES = Rules(
    kind="window_attention",
    record=WindowAttention,
    flow=attention.flow,
    period=period,
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
