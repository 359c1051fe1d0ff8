"""The overlapping stage embedding (PVTv2, `dim_change embed`): where a stage is strided or
changes width, its first block first maps the token grid through a conv (kernel s+1, stride s,
padding k//2, with bias) to the stage's width, then a LayerNorm; the block's residual branches
run on the embedded grid. Its record, shape rule, costs, names, checks, emission and drawing."""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING, Any, Literal

from ..nodes import Dims3, Node, default_kernel
from .base import (
    BlockFlow,
    Costs,
    Emits,
    Labels,
    Making,
    Rules,
    Shape,
    Sketch,
    StageName,
    Value,
    grid_out,
    lines,
    nominal,
)

if TYPE_CHECKING:
    from ..ir import Block, Model

EMBED = "embed"
EMBED_PROJ, EMBED_NORM = f"{EMBED}.proj", f"{EMBED}.norm"
# timm's PVTv2 holds a stage's embedding as the stage's `stages.{s}.downsample`
STAGE_NAMES = (StageName("stages", "downsample", "first", EMBED),)


class StageEmbed(Node):
    """Conv `kernel` / `stride` / `padding` from the block input's width to its own, LayerNorm."""

    kind: Literal["stage_embed"] = "stage_embed"
    kernel: Dims3
    stride: Dims3
    padding: Dims3


def make(m: Making, made: tuple[Node, ...], current: None) -> StageEmbed | None:
    """With `dim_change embed`, a block that strides or changes width embeds its input first
    (the s+1 kernel rule, padding k//2)."""
    if m.opts["dim_change"] != "embed" or not m.changes:
        return None
    kernel = default_kernel(m.stride_q)
    padding = (kernel[0] // 2, kernel[1] // 2, kernel[2] // 2)
    return StageEmbed(kernel=kernel, stride=m.stride_q, padding=padding)


def embedded(op: StageEmbed, grid: Dims3) -> Dims3:
    return grid_out(grid, op.kernel, op.stride, op.padding)


def flow(model: Model, block: Block, op: StageEmbed, grid: Dims3, nom: Dims3) -> dict[str, Any]:
    g = embedded(op, grid)
    return {"grid_skip": g, "nominal_out": nominal(nom, op.stride), "grid_entered": g}


def costs(model: Model, block: Block, op: StageEmbed, flow: BlockFlow) -> Costs:
    taps, c, a = prod(op.kernel[1:]), block.dim_in, block.dim_attn
    return Costs(
        params=c * a * taps + a + 2 * a,
        mlp_macs=flow.len_q * c * a * taps,
        norm_elems=flow.len_q * a,
    )


def saved(block: Block, op: StageEmbed, flow: BlockFlow) -> int:
    """The conv's output before and after its norm."""
    return 2 * flow.len_q * block.dim_attn


def shapes(model: Model, block: Block, op: StageEmbed, flow: BlockFlow) -> dict[str, Shape]:
    a = block.dim_attn
    return {
        f"{EMBED_PROJ}.weight": (a, block.dim_in, *op.kernel[1:]),
        f"{EMBED_PROJ}.bias": (a,),
        f"{EMBED_NORM}.weight": (a,),
        f"{EMBED_NORM}.bias": (a,),
    }


def check(c: Any, block: Block, op: StageEmbed, flow: BlockFlow) -> bool:
    """Images only (E210); a stride that does not divide the grid (E302, the checker's rule
    for strides; `grid_rounding ceil` accepts it, as the conv rounds up)."""
    if c.model.video:
        c.r.error(
            "E210",
            f"block {block.index}: the stage embedding ('dim_change embed') is for images",
            c.setting_span("attention"),
            "write 'input image CxHxW'",
        )
        return True
    return bool(c.check_fit(block, flow.grid_in, op.stride))


def emit_enter(e: Emits, op: StageEmbed, x: Value, normed: Value) -> Value:
    """(B, H*W, C) -> (B, H'*W', A): the conv on a channels-last view of the tokens."""
    import torch
    from torch import nn

    from .pools import emit_map_size

    b = e.block
    t = e.method("transpose", x, 1, 2)
    t = e.method("unflatten", t, 2, emit_map_size(e, e.grid_node()))  # (B, C, H, W)
    conv = nn.Conv2d(
        b.dim_in, b.dim_attn, op.kernel[1:], stride=op.stride[1:], padding=op.padding[1:]
    )
    t = e.module(EMBED_PROJ, conv.to(memory_format=torch.channels_last), t)  # as conv_mlp's
    t = e.method("transpose", e.method("flatten", t, 2), 1, 2)
    eps = e.model.pool_norm_eps
    norm = nn.LayerNorm(b.dim_attn, eps=e.model.norm_eps if eps is None else eps)
    return e.module(EMBED_NORM, norm, t)


def draw_enter(
    block: Block, op: StageEmbed, flow: BlockFlow, s: Labels, src: str, dim: int
) -> Sketch:
    label = lines(
        f"stage embedding: conv {s.grid(op.kernel)} stride {s.grid(op.stride)}",
        f"{block.dim_in} → {block.dim_attn}, LayerNorm",
    )
    return Sketch.box(
        "embed", label, src, s.size(flow.grid_in, dim), block.dim_attn, fill="#d9f0d3"
    )


RULES = Rules(
    kind="stage_embed",
    record=StageEmbed,
    flow=flow,
    costs=costs,
    saved=saved,
    shapes=shapes,
    check=check,
    emit={"enter": emit_enter},
    draw={"enter": draw_enter},
    stage_names=STAGE_NAMES,
    slot="enter",
    make=make,
)
