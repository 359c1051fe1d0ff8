"""Pooling attention (MViT): q, k, v from one fused Linear or three separate ones (or, pool-first,
pooled before separate projections), pooled Q and K/V, decomposed relative positions, residual
pooling, the output projection. Its record, shape rule, costs, names, checks, emission, drawing."""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from ..nodes import Dims3, Node, Pool
from .base import (
    BlockFlow,
    Costs,
    DrawEdge,
    DrawItem,
    DrawNode,
    Emits,
    Labels,
    Rules,
    Shape,
    Sketch,
    Value,
    lcm3,
    linear,
    lines,
    pooled,
)
from .pools import (
    POOL_CONV,
    POOL_NORM,
    emit_grid,
    emit_pool,
    pool_costs,
    pool_head_dim,
    pool_name,
)
from .pools import sketch as pools_sketch

if TYPE_CHECKING:
    from ..ir import Block, Model

RelPos = Literal["none", "decomposed", "table"]  # table: Swin's bias table (ops/swin.py)
ResidualPool = Literal["none", "tokens", "all"]
Qkv = Literal["fused", "separate"]

ATTN = "attn"
QKV = "attn.qkv"
ATTN_PROJECT, ATTN_DROPOUT = "attn.project.0", "attn.project.1"
# SlowFast's and timm's names inside a block (every attention kind's projection, the pools)
REFERENCE_NAMES = (
    (r"^attn\.proj\.", f"{ATTN_PROJECT}."),
    (r"^attn\.pool_([qkv])\.", rf"attn.pool_\1{POOL_CONV}."),
    (r"^attn\.norm_([qkv])\.", rf"attn.pool_\1{POOL_NORM}."),
)


def rel_pos_name(axis: str) -> str:
    """A decomposed relative-position table, axis t, h or w."""
    return f"attn.rel_pos_{axis}"


class AttentionOptions(Node):
    """What every attention kind holds: pools, projections, relative positions, residual pooling."""

    pool_q: Pool
    pool_kv: Pool
    qkv_bias: bool
    rel_pos: RelPos
    residual_pool: ResidualPool
    qkv: Qkv = "fused"  # one Linear to 3A, or separate q, k, v Linears
    pool_first: bool = False  # pool the input (its own heads) before the separate projections


A = TypeVar("A", bound=AttentionOptions)


def swapped(current: AttentionOptions, kind: type[A], **fields: Any) -> A:
    """An attention of another kind (a scope's, ops/base.py SLOTS) with `current`'s options and
    `fields`."""
    return kind(**current.model_dump(exclude={"kind", *fields}), **fields)


class PoolingAttention(AttentionOptions):
    """MViT's multi-head pooling attention over the whole (pooled) sequence."""

    kind: Literal["pooling_attention"] = "pooling_attention"


# ---------------------------------------------------------------- shapes


def rel_pos_sizes(op: AttentionOptions, nominal_in: Dims3, video: bool) -> tuple[int, int, int]:
    """Table lengths (t, h, w) of decomposed relative positions, as torchvision and timm size
    them: from the bookkeeping grid, spatial size = max(H, W)."""
    size = max(nominal_in[1:])
    q_size = size // op.pool_q.stride[1]
    kv_size = size // op.pool_kv.stride[1]
    spatial = 2 * max(q_size, kv_size) - 1
    temporal = 2 * nominal_in[0] - 1 if video else 0
    return temporal, spatial, spatial


def flow(
    model: Model, block: Block, op: AttentionOptions, grid: Dims3, nom: Dims3
) -> dict[str, Any]:
    """Q and K/V grids after their pools, and the relative-position table lengths."""
    rel = rel_pos_sizes(op, nom, model.video) if op.rel_pos == "decomposed" else None
    return {"grid_q": pooled(grid, op.pool_q), "grid_kv": pooled(grid, op.pool_kv), "rel_pos": rel}


# ---------------------------------------------------------------- costs


def attention_costs(block: Block, op: AttentionOptions, flow: BlockFlow, attended: int) -> Costs:
    """qkv, the attention matmuls (each query against `attended` keys), relative positions,
    the output projection, and the conv pools."""
    a, hd, heads = block.dim_attn, block.head_dim, block.heads
    qkv_p, qkv_m = linear(flow.len_in, block.dim_in, 3 * a, op.qkv_bias)
    if op.pool_first:  # the projections see the pooled tokens
        qkv_m = block.dim_in * a * (flow.len_q + 2 * flow.len_kv)
    proj_p, proj_m = linear(flow.len_q, a, a)
    matmuls = 2 * heads * flow.len_q * attended * hd
    rel_p = rel_m = 0
    if flow.rel_pos is not None:
        rel_p = sum(flow.rel_pos) * hd
        used = sum(n for n, size in zip(flow.grid_kv, flow.rel_pos) if size)
        rel_m = heads * prod(flow.grid_q) * used * hd
    attn = Costs(params=qkv_p + proj_p + rel_p, attn_macs=qkv_m + proj_m + matmuls + rel_m)
    return attn + pool_costs(block, op, flow)


def saved_elems(block: Block, flow: BlockFlow, attended: int) -> int:
    """Kept for backward: qkv, pooled q, k, v before/after norm, the attention probabilities
    (per window when windowed), the relative-position logits and the copied queries."""
    a, h, hd = block.dim_attn, block.heads, block.head_dim
    saved = flow.len_in * 3 * a + h * hd * (2 * flow.len_q + 4 * flow.len_kv)
    saved += h * flow.len_q * attended
    if flow.rel_pos is not None:
        saved += h * flow.len_q * flow.len_kv + 3 * h * flow.len_q * hd
    return saved


def costs(model: Model, block: Block, op: PoolingAttention, flow: BlockFlow) -> Costs:
    return attention_costs(block, op, flow, flow.len_kv)


def saved(block: Block, op: PoolingAttention, flow: BlockFlow) -> int:
    return saved_elems(block, flow, flow.len_kv)


def row(block: Block, op: PoolingAttention, flow: BlockFlow) -> dict[str, Any]:
    return {"attention": (flow.len_q, flow.len_kv)}


# ---------------------------------------------------------------- state-dict names


def shapes(model: Model, block: Block, op: AttentionOptions, flow: BlockFlow) -> dict[str, Shape]:
    """q, k, v projections (fused or separate), output projection, pools, relative positions."""
    a, hd, phd = block.dim_attn, block.head_dim, pool_head_dim(block, op)
    out: dict[str, Shape] = {}
    fused = ((QKV, 3 * a),)
    separate = ((f"{ATTN}.q", a), (f"{ATTN}.k", a), (f"{ATTN}.v", a))
    for name, width in fused if op.qkv == "fused" else separate:
        out[f"{name}.weight"] = (width, block.dim_in)
        if op.qkv_bias:
            out[f"{name}.bias"] = (width,)
    out[f"{ATTN_PROJECT}.weight"], out[f"{ATTN_PROJECT}.bias"] = (a, a), (a,)
    for which, p in (("q", op.pool_q), ("k", op.pool_kv), ("v", op.pool_kv)):
        if p.exists and p.mode == "conv":
            out[f"{pool_name(which)}{POOL_CONV}.weight"] = (phd, 1, *model.spatial(p.kernel))
            out[f"{pool_name(which)}{POOL_NORM}.weight"] = (phd,)
            out[f"{pool_name(which)}{POOL_NORM}.bias"] = (phd,)
    for axis, length in zip("thw", flow.rel_pos or (0, 0, 0)):
        if length:
            out[rel_pos_name(axis)] = (length, hd)
    return out


# ---------------------------------------------------------------- checks


def check(c: Any, block: Block, op: AttentionOptions, flow: BlockFlow) -> bool:
    """A Q stride that does not divide the grid (E302), pools that leave an empty grid (E303)
    or an avg kernel larger than its grid (E304), relative positions sized to an empty table
    (E303). `c` is the analysis.check.Checker."""
    # K/V strides may exceed the grid (everything pools to one token); only Q sets the grid.
    if c.check_fit(block, flow.grid_in, op.pool_q.stride):
        return True
    for name, pool, grid in (("Q", op.pool_q, flow.grid_q), ("K/V", op.pool_kv, flow.grid_kv)):
        span = c.pool_span(block, name)
        if min(grid) < 1:
            c.r.error(
                "E303",
                f"{name} pooling of block {block.index} leaves a "
                f"{c.fmt(grid)} grid from {c.fmt(flow.grid_in)}",
                span,
                "use a smaller kernel or a larger input",
            )
            return True
        if c.avg_window_too_big(pool, flow.grid_in):
            c.r.error(
                "E304",
                f"{name} avg pooling kernel {c.fmt(pool.kernel)} of "
                f"block {block.index} is larger than its {c.fmt(flow.grid_in)} "
                "input grid",
                span,
                "PyTorch's avg_pool3d needs the grid at least as large as the "
                "kernel; use a smaller kernel, or max or conv pooling",
            )
            return True
    if flow.rel_pos is not None and c.rel_pos_collapses(flow.rel_pos):
        c.r.error(
            "E303",
            f"block {block.index}: relative positions are sized from the "
            f"bookkeeping grid {c.fmt(flow.nominal_in)} (input // strides, as "
            "torchvision does), which leaves an empty table",
            c.row_span(block.stage, "stride_q"),
            "choose an input size divisible by the strides, or 'rel_pos none'",
        )
        return True
    return False


# ---------------------------------------------------------------- emission (torch inside)


def emit_attend(e: Emits, op: PoolingAttention, x: Value, normed: Value) -> Value:
    """x (B, L_in, C_in), normed -> (B, L_q, A): attention over the whole pooled sequence."""
    import torch.nn.functional as F

    q, k, v = emit_pooled_qkv(e, op, x)
    mask = emit_rel_pos(e, op, q) if e.flow.rel_pos is not None else None
    hd = e.block.head_dim
    o = e.fn(F.scaled_dot_product_attention, q, k, v, attn_mask=mask, scale=hd**-0.5)
    return emit_output(e, op, o, q)


def emit_pooled_qkv(e: Emits, op: AttentionOptions, x: Value) -> tuple[Value, Value, Value]:
    """q, k, v as (B, heads, L', hd): projected then pooled, or pooled first."""
    if op.pool_first:
        return emit_pool_first_qkv(e, op, x)
    q, k, v = emit_qkv(e, op, x)
    k = emit_pool(e, pool_name("k"), k, op.pool_kv)
    v = emit_pool(e, pool_name("v"), v, op.pool_kv)
    q = emit_pool(e, pool_name("q"), q, op.pool_q)
    return q, k, v


def emit_output(e: Emits, op: AttentionOptions, o: Value, q: Value) -> Value:
    """Residual pooling, heads merged, the output projection and its dropout."""
    import torch
    from torch import nn

    b, dropout = e.block, e.model.attention.dropout
    o = emit_residual_pool(e, op, o, q)
    # (B, heads, L_q, hd) -> (B, L_q, A)
    # the copy a reshape would make anyway, made explicit: with symbolic sizes torch.export
    # cannot tell that the strided view needs it (contiguous() is dropped) and records a view
    # the ONNX exporter refuses
    o = e.fn(torch.clone, e.method("transpose", o, 1, 2), memory_format=torch.contiguous_format)
    o = e.method("flatten", o, 2)
    o = e.module(ATTN_PROJECT, nn.Linear(b.dim_attn, b.dim_attn), o)
    if dropout > 0:
        o = e.module(ATTN_DROPOUT, nn.Dropout(dropout), o)
    return o


def emit_qkv(e: Emits, op: AttentionOptions, x: Value) -> tuple[Value, Value, Value]:
    """q, k, v as (B, L, A): views of one fused Linear, or three separate Linears."""
    import operator

    from torch import nn

    b, a = e.block, e.block.dim_attn
    if op.qkv == "separate":
        return (
            e.module("attn.q", nn.Linear(b.dim_in, a, bias=op.qkv_bias), x),
            e.module("attn.k", nn.Linear(b.dim_in, a, bias=op.qkv_bias), x),
            e.module("attn.v", nn.Linear(b.dim_in, a, bias=op.qkv_bias), x),
        )
    qkv = e.module(QKV, nn.Linear(b.dim_in, 3 * a, bias=op.qkv_bias), x)
    # (B, L, 3A) -> (B, L, 3, A) -> q, k, v as (B, L, A) views, read channels-last by the
    # pools; unbind's backward is one stack, not three zero-filled copies of qkv
    qkv = e.method("unbind", e.method("unflatten", qkv, 2, (3, a)), 2)
    q, k, v = (e.fn(operator.getitem, qkv, i) for i in range(3))
    return q, k, v


def emit_pool_first_qkv(e: Emits, op: AttentionOptions, x: Value) -> tuple[Value, Value, Value]:
    """Pool-first (pytorchvideo, SlowFast POOL_FIRST): pool the normed input, split into
    the block's heads, then project each of q, k, v: -> (B, heads, L', hd)."""
    from torch import nn

    b = e.block
    out = []
    for which, pool in (("q", op.pool_q), ("k", op.pool_kv), ("v", op.pool_kv)):
        t = emit_pool(e, pool_name(which), x, pool, pool_head_dim(b, op))
        t = e.method("flatten", e.method("transpose", t, 1, 2), 2)  # (B, L', C_in)
        linear_ = nn.Linear(b.dim_in, b.dim_attn, bias=op.qkv_bias)
        t = e.module(f"attn.{which}", linear_, t)
        t = e.method("unflatten", t, 2, (b.heads, b.head_dim))
        out.append(e.method("transpose", t, 1, 2))
    return out[0], out[1], out[2]


def emit_grids(e: Emits, op: AttentionOptions) -> tuple[Value, Value]:
    """The run-time Q and K/V grids (flow's grid_q, grid_kv, computed from the input)."""
    grid = e.grid_node()
    return emit_grid(e, grid, op.pool_q), emit_grid(e, grid, op.pool_kv)


def emit_rel_pos(e: Emits, op: AttentionOptions, q: Value) -> Value:
    import torch
    from torch import nn

    from ..backend.runtime import rel_pos_bias

    flow, hd = e.flow, e.block.head_dim
    assert flow.rel_pos is not None
    tables = {}
    for axis, length in zip("thw", flow.rel_pos):
        if length:
            param = nn.Parameter(torch.zeros(length, hd))
            tables[axis] = e.attr(rel_pos_name(axis), param)
    grid_q, grid_kv = emit_grids(e, op)
    return e.fn(
        rel_pos_bias,
        q,
        grid_q,
        grid_kv,
        tables.get("t"),
        tables["h"],
        tables["w"],
        e.model.tokens.cls,
    )


def emit_residual_pool(e: Emits, op: AttentionOptions, o: Value, q: Value) -> Value:
    import operator

    if op.residual_pool == "none":
        return o
    if op.residual_pool == "all" or not e.model.tokens.cls:
        return e.fn(operator.add, o, q)
    o_cls, o_rest = e.split_cls(o, 2)
    _, q_rest = e.split_cls(q, 2)
    return e.join_cls(o_cls, e.fn(operator.add, o_rest, q_rest), 2)


# ---------------------------------------------------------------- drawing (plain data)


def draw_attend(
    block: Block, op: PoolingAttention, flow: BlockFlow, s: Labels, src: str, dim: int
) -> Sketch:
    return sketch(block, op, flow, s, src, (flow.len_q, flow.len_kv), "", "")


def sketch(
    b: Block,
    op: AttentionOptions,
    flow: BlockFlow,
    s: Labels,
    src: str,
    size: tuple[int, int],
    per: str,
    window: str,
) -> Sketch:
    """qkv, the three poolings, the attention and its projection (MViT's Figure 3)."""
    heads = f"{b.heads}×{b.head_dim}"
    rel = f" + rel. pos ({'t, h, w' if s.video else 'h, w'})" if op.rel_pos == "decomposed" else ""
    items: list[DrawItem] = [
        DrawNode("qkv", lines(f"Linear qkv {b.dim_in} → 3×{b.dim_attn}", f"split {b.heads} heads")),
        DrawEdge(src, "qkv", s.size(flow.grid_in, b.dim_in)),
        DrawNode(
            "scores",
            lines(
                f"Q̂ K̂ᵀ / √{b.head_dim}{rel}",
                "softmax",
                f"L_Q×L_K = {size[0]}×{size[1]} per head" + (" and window" if per else ""),
                window,
            ),
            {"fillcolor": "#fff2b3"},
        ),
    ]
    residual = op.residual_pool != "none"
    mix = lines("attention × V̂", "+ Q̂ (residual pooling)" if residual else "")
    items.append(DrawNode("mix", mix, {"fillcolor": "#fff2b3"}))
    items.append(DrawEdge("scores", "mix", f"{b.heads} × {per}{size[0]}×{size[1]}"))
    items += pools_sketch(b, op, flow, s, residual)
    items.append(DrawNode("proj", f"Linear proj {b.dim_attn} → {b.dim_attn}"))
    items.append(DrawEdge("mix", "proj", s.size(flow.grid_q, heads)))
    return Sketch(tuple(items), "proj", b.dim_attn)


def period(block: Block, op: AttentionOptions) -> Dims3:
    """Q and K/V strides: their grids and the relative positions' bookkeeping stay exact."""
    return lcm3(op.pool_q.stride, op.pool_kv.stride)


RULES = Rules(
    kind="pooling_attention",
    record=PoolingAttention,
    flow=flow,
    period=period,
    costs=costs,
    saved=saved,
    shapes=shapes,
    check=check,
    row=row,
    emit={"attend": emit_attend},
    draw={"attend": draw_attend},
    names=REFERENCE_NAMES,
)
