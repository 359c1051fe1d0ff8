"""Spatial-reduction attention (PVTv2, `reduce R`): q from every token; k and v from the
tokens reduced by a conv of kernel and stride R (with bias) and a LayerNorm, or in the linear
variant (`reduce_mode linear`) average-pooled to 7x7, a 1x1 conv, LayerNorm and GELU. Its
record, shape rule, costs, names, checks, emission and drawing.

The block's Q grid is its input through the stage embedding (ops/embed.py), so `pool_q`
carries the embedding's geometry (no Q pooling of its own) and `pool_kv` the reduction's: the
analyses that read a block's strides see PVTv2's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from ..nodes import Dims3, Node, Pool
from . import attention, embed, merge
from .base import (
    BlockFlow,
    Costs,
    DrawEdge,
    DrawNode,
    Emits,
    Labels,
    Making,
    Rules,
    Shape,
    Sketch,
    Value,
    lcm3,
    linear,
    lines,
    pooled,
)

if TYPE_CHECKING:
    from ..ir import Block, Model

Q, KV, SR, SR_NORM, SR_ACT = "attn.q", "attn.kv", "attn.sr", "attn.norm", "attn.act"


class ReductionAttention(attention.AttentionOptions):
    """Global attention of every query over K/V reduced by `reduce` (or pooled to `pooled`
    squared tokens where `linear`)."""

    kind: Literal["reduction_attention"] = "reduction_attention"
    reduce: int = 1
    linear: bool = False
    pooled: int = 7  # PVTv2-li's average-pool size


def make(
    m: Making, made: tuple[Node, ...], current: attention.PoolingAttention
) -> ReductionAttention | None:
    """With `reduce` or `dim_change embed`, the block's attention: Q's grid is the stage
    embedding's (its geometry in `pool_q`), K/V's the reduction's (a conv of kernel and stride
    `reduce`, in `pool_kv`; with `reduce_mode linear` an adaptive average pool to a fixed grid,
    not a stride: K/V's mode says so)."""
    if m.opts["reduce"] is None and m.opts["dim_change"] != "embed":
        return None
    r = m.opts["reduce"] or 1
    fields = current.model_dump(exclude={"kind", "pool_q", "pool_kv"})
    q = current.pool_q
    entered = next((op for op in made if isinstance(op, embed.StageEmbed)), None)
    if entered is not None:
        q = Pool(mode="conv", kernel=entered.kernel, stride=entered.stride, padding=entered.padding)
    linear = m.opts["reduce_mode"] == "linear"
    side = (1, 1, 1) if linear else (1, r, r)
    kv = Pool(mode="avg" if linear else "conv", kernel=side, stride=side, padding=(0, 0, 0))
    return ReductionAttention(pool_q=q, pool_kv=kv, reduce=r, linear=linear, **fields)


def reduces(op: ReductionAttention) -> bool:
    return op.linear or op.reduce > 1


def flow(
    model: Model, block: Block, op: ReductionAttention, grid: Dims3, nom: Dims3
) -> dict[str, Any]:
    g = pooled(grid, op.pool_q)
    kv = (1, op.pooled, op.pooled) if op.linear else pooled(g, op.pool_kv)
    return {"grid_q": g, "grid_kv": kv, "rel_pos": None}


def conv_taps(op: ReductionAttention) -> int:
    return 1 if op.linear else op.reduce * op.reduce


def costs(model: Model, block: Block, op: ReductionAttention, flow: BlockFlow) -> Costs:
    """q over every token, kv over the reduced ones, the reduction conv and its norm, the
    attention matmuls and the output projection."""
    a, n, m = block.dim_attn, flow.len_q, flow.len_kv
    q_p, q_m = linear(n, a, a, op.qkv_bias)
    kv_p, kv_m = linear(m, a, 2 * a, op.qkv_bias)
    proj_p, proj_m = linear(n, a, a)
    matmuls = 2 * block.heads * n * m * block.head_dim
    attn = Costs(params=q_p + kv_p + proj_p, attn_macs=q_m + kv_m + proj_m + matmuls)
    if not reduces(op):
        return attn
    taps = conv_taps(op)
    sr = Costs(params=a * a * taps + 3 * a, pool_macs=m * a * a * taps, norm_elems=m * a)
    return attn + sr


def saved(block: Block, op: ReductionAttention, flow: BlockFlow) -> int:
    """q, the reduced tokens before and after the norm, kv, the attention probabilities."""
    a, n, m = block.dim_attn, flow.len_q, flow.len_kv
    return n * a + 2 * m * a + 2 * m * a + block.heads * n * m


def shapes(model: Model, block: Block, op: ReductionAttention, flow: BlockFlow) -> dict[str, Shape]:
    """In the order the emission registers them: q, the reduction, kv, the projection."""
    a = block.dim_attn
    out: dict[str, Shape] = {f"{Q}.weight": (a, a)}
    if op.qkv_bias:
        out[f"{Q}.bias"] = (a,)
    if reduces(op):
        side = 1 if op.linear else op.reduce
        out[f"{SR}.weight"], out[f"{SR}.bias"] = (a, a, side, side), (a,)
        out[f"{SR_NORM}.weight"], out[f"{SR_NORM}.bias"] = (a,), (a,)
    out[f"{KV}.weight"] = (2 * a, a)
    if op.qkv_bias:
        out[f"{KV}.bias"] = (2 * a,)
    out[f"{attention.ATTN_PROJECT}.weight"] = (a, a)
    out[f"{attention.ATTN_PROJECT}.bias"] = (a,)
    return out


class Problem(NamedTuple):
    """A broken rule: its code, message, the stage cell to point at ("": the attention line)
    and the hint."""

    code: str
    message: str
    cell: str
    hint: str


def _problem(c: Any, block: Block, op: ReductionAttention, flow: BlockFlow) -> Problem | None:
    """The first rule the block breaks, if any."""
    at = f"block {block.index}: 'reduce'"
    if c.model.video:
        return Problem("E210", f"{at} is for images", "", "write 'input image CxHxW'")
    if c.model.tokens.cls and reduces(op):
        return Problem("E210", f"{at} convolves the token grid: a model without a cls token "
                       "only", "", "write 'tokens no_cls'")  # fmt: skip
    if op.rel_pos != "none" or op.residual_pool != "none":
        return Problem("E210", f"{at} attends globally without relative positions or residual "
                       "pooling", "", "write 'rel_pos none, residual_pool none'")  # fmt: skip
    embedded = any(isinstance(o, embed.StageEmbed) for o in block.ops)
    merged = merge.of(block) is not None
    if merged or (not embedded and (op.pool_q.exists or block.dim_in != block.dim_attn)):
        return Problem("E210", f"{at} changes a stage's grid and width through its stage "
                       "embedding only", "", "write 'dim_change embed'")  # fmt: skip
    return _reduction_problem(c, at, op, flow.grid_q)


def _reduction_problem(c: Any, at: str, op: ReductionAttention, g: Dims3) -> Problem | None:
    """A conv reduction larger than the grid (E303) or not dividing it (E302)."""
    r = op.reduce
    if op.linear or r == 1:
        return None
    if any(r > n for n in g[1:]):
        return Problem("E303", f"{at} {r} is larger than its {c.fmt(g)} grid", "reduce",
                       "use a smaller 'reduce' or a larger input")  # fmt: skip
    if any(n % r for n in g[1:]):
        return Problem("E302", f"{at} {r} leaves a fractional K/V grid from {c.fmt(g)}",
                       "reduce", "choose a 'reduce' that divides the grid, or an input size "
                       "whose grids it divides")  # fmt: skip
    return None


def check(c: Any, block: Block, op: ReductionAttention, flow: BlockFlow) -> bool:
    """Images without a cls token only, no relative positions, strides and widths through the
    stage embedding (E210); a reduction larger than the grid (E303) or not dividing it
    (E302)."""
    found = _problem(c, block, op, flow)
    if found is None:
        return False
    where = c.row_span(block.stage, found.cell) if found.cell else c.setting_span("attention")
    c.r.error(found.code, found.message, where, found.hint)
    return True


def emit_attend(e: Emits, op: ReductionAttention, x: Value, normed: Value) -> Value:
    """x (B, L, A) -> (B, L, A): q from every token, k and v from the reduced ones."""
    import operator

    import torch.nn.functional as F
    from torch import nn

    b, a = e.block, e.block.dim_attn
    q = e.module(Q, nn.Linear(a, a, bias=op.qkv_bias), normed)
    q = e.method("transpose", e.method("unflatten", q, 2, (b.heads, b.head_dim)), 1, 2)
    t = emit_reduced(e, op, normed) if reduces(op) else normed
    kv = e.module(KV, nn.Linear(a, 2 * a, bias=op.qkv_bias), t)
    # (B, M, 2A) -> (2, B, heads, M, hd)
    kv = e.method("permute", e.method("unflatten", kv, 2, (2, b.heads, b.head_dim)), 2, 0, 3, 1, 4)
    kv = e.method("unbind", kv, 0)
    k, v = (e.fn(operator.getitem, kv, i) for i in range(2))
    o = e.fn(F.scaled_dot_product_attention, q, k, v, scale=b.head_dim**-0.5)
    return attention.emit_output(e, op, o, q)


def emit_reduced(e: Emits, op: ReductionAttention, x: Value) -> Value:
    """(B, L, A) -> (B, M, A): a channels-last view of the grid, [pooled,] conv, norm[, GELU]."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from .pools import emit_grid, emit_map_size

    a = e.block.dim_attn
    grid = emit_map_size(e, emit_grid(e, e.grid_node(), e.block.pool_q))
    t = e.method("unflatten", e.method("transpose", x, 1, 2), 2, grid)  # (B, A, H, W)
    if op.linear:
        t = e.fn(F.adaptive_avg_pool2d, t, op.pooled)
    side = 1 if op.linear else op.reduce
    conv = nn.Conv2d(a, a, side, stride=side).to(memory_format=torch.channels_last)
    t = e.module(SR, conv, t)  # a channels-last weight: as conv_mlp's
    t = e.method("transpose", e.method("flatten", t, 2), 1, 2)
    eps = e.model.pool_norm_eps
    t = e.module(SR_NORM, nn.LayerNorm(a, eps=e.model.norm_eps if eps is None else eps), t)
    return e.module(SR_ACT, nn.GELU(), t) if op.linear else t


def draw_attend(
    block: Block, op: ReductionAttention, flow: BlockFlow, s: Labels, src: str, dim: int
) -> Sketch:
    """q, the reduction, kv, the attention and its projection."""
    b, a = block, block.dim_attn
    if op.linear:
        how = f"avg pool → {s.grid(flow.grid_kv)}, conv 1×1, LayerNorm, GELU"
    elif op.reduce > 1:
        how = f"conv {op.reduce}×{op.reduce} stride {op.reduce}, LayerNorm"
    else:
        how = "no reduction"
    size = f"L_Q×L_K = {flow.len_q}×{flow.len_kv} per head"
    return Sketch(
        (
            DrawNode("q", lines(f"Linear q {a} → {a}", f"split {b.heads} heads")),
            DrawEdge(src, "q", s.size(flow.grid_q, a)),
            DrawNode("sr", lines("spatial reduction", how), {"fillcolor": "#fde0c5"}),
            DrawEdge(src, "sr", s.size(flow.grid_q, a)),
            DrawNode("kv", f"Linear kv {a} → 2×{a}"),
            DrawEdge("sr", "kv", s.size(flow.grid_kv, a)),
            DrawNode(
                "mix", lines(f"softmax(Q Kᵀ / √{b.head_dim}) V", size), {"fillcolor": "#fff2b3"}
            ),  # fmt: skip
            DrawEdge("q", "mix", s.size(flow.grid_q, f"{b.heads}×{b.head_dim}")),
            DrawEdge("kv", "mix", s.size(flow.grid_kv, f"2×{b.heads}×{b.head_dim}")),
            DrawNode("proj", f"Linear proj {a} → {a}"),
            DrawEdge("mix", "proj", s.size(flow.grid_q, a)),
        ),
        "proj",
        a,
    )


def period(block: Block, op: ReductionAttention) -> Dims3:
    """The embedding's stride times the reduction: the K/V grid stays exact."""
    side = 1 if op.linear else op.reduce
    q = op.pool_q.stride
    return lcm3(q, (q[0], q[1] * side, q[2] * side))


def row(block: Block, op: ReductionAttention, flow: BlockFlow) -> dict[str, Any]:
    return {"attention": (flow.len_q, flow.len_kv)}


RULES = Rules(
    kind="reduction_attention",
    record=ReductionAttention,
    flow=flow,
    period=period,
    costs=costs,
    saved=saved,
    shapes=shapes,
    check=check,
    row=row,
    emit={"attend": emit_attend},
    draw={"attend": draw_attend},
    slot="attention",
    make=make,
)
