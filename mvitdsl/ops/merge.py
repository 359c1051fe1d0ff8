"""Patch merging (Swin, `dim_change merge`): where a stage is strided, its first block first
concatenates each sh x sw neighbourhood of tokens, normalises the concatenation (LayerNorm) and
maps it to the stage's width (Linear, no bias); the block's residual branches then run on the
merged grid. Its record, shape rule, costs, names, checks, emission and drawing."""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING, Any, Literal

from ..nodes import Dims3, Node
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
    linear,
    lines,
    nominal,
)

if TYPE_CHECKING:
    from ..ir import Block, Model

MERGE = "merge"
MERGE_NORM, MERGE_REDUCTION = f"{MERGE}.norm", f"{MERGE}.reduction"
# timm's Swin holds a stage's merging as the stage's `layers.{s}.downsample`
STAGE_NAMES = (StageName("layers", "downsample", "first", MERGE),)


class PatchMerge(Node):
    """Concatenate each `stride` neighbourhood, LayerNorm, Linear to the block's width."""

    kind: Literal["patch_merge"] = "patch_merge"
    stride: Dims3


def make(m: Making, made: tuple[Node, ...], current: None) -> PatchMerge | None:
    """With `dim_change merge`, a block that strides or changes width merges patches first."""
    return PatchMerge(stride=m.stride_q) if m.opts["dim_change"] == "merge" and m.changes else None


def of(block: Block) -> PatchMerge | None:
    return next((op for op in block.ops if isinstance(op, PatchMerge)), None)


def entered(block: Block, grid: Dims3) -> Dims3:
    """The grid the block's branches see: merged when the block merges patches."""
    op = of(block)
    return grid if op is None else nominal(grid, op.stride)


def emit_entered(e: Emits) -> Value:
    """The run-time grid the block's branches see: its input grid, merged when it merges
    patches (floor divisions by the stride, which divides the grids of the size rule)."""
    from ..backend.runtime import pooled_grid

    op, grid = of(e.block), e.grid_node()
    if op is None:
        return grid
    key = ("merged", grid, op.stride)
    if key not in e.memo:
        e.memo[key] = e.fn(pooled_grid, grid, op.stride, op.stride, (0, 0, 0))
    return e.memo[key]


def flow(model: Model, block: Block, op: PatchMerge, grid: Dims3, nom: Dims3) -> dict[str, Any]:
    g = nominal(grid, op.stride)
    return {"grid_skip": g, "nominal_out": nominal(nom, op.stride), "grid_entered": g}


def concat_dim(block: Block, op: PatchMerge) -> int:
    return prod(op.stride) * block.dim_in


def costs(model: Model, block: Block, op: PatchMerge, flow: BlockFlow) -> Costs:
    c4 = concat_dim(block, op)
    red_p, red_m = linear(flow.len_q, c4, block.dim_attn, bias=False)
    return Costs(params=red_p + 2 * c4, mlp_macs=red_m, norm_elems=flow.len_q * c4)


def saved(block: Block, op: PatchMerge, flow: BlockFlow) -> int:
    """The concatenation before and after its norm."""
    return 2 * flow.len_q * concat_dim(block, op)


def shapes(model: Model, block: Block, op: PatchMerge, flow: BlockFlow) -> dict[str, Shape]:
    c4 = concat_dim(block, op)
    return {
        f"{MERGE_NORM}.weight": (c4,),
        f"{MERGE_NORM}.bias": (c4,),
        f"{MERGE_REDUCTION}.weight": (block.dim_attn, c4),
    }


def check(c: Any, block: Block, op: PatchMerge, flow: BlockFlow) -> bool:
    """A merge stride that does not divide the grid (E302, the checker's rule for strides)."""
    return bool(c.check_fit(block, flow.grid_in, op.stride))


def emit_enter(e: Emits, op: PatchMerge, x: Value, normed: Value) -> Value:
    """(B, H*W, C) -> (B, H/sh * W/sw, A)."""
    from torch import nn

    from ..backend.runtime import merge_patches

    b, c4 = e.block, concat_dim(e.block, op)
    x = e.fn(merge_patches, x, e.grid_node(), op.stride[1:])
    x = e.layer_norm(MERGE_NORM, c4, x)
    return e.module(MERGE_REDUCTION, nn.Linear(c4, b.dim_attn, bias=False), x)


def period(block: Block, op: PatchMerge) -> Dims3:
    """The merge's stride: the concatenation reshapes whole neighbourhoods (a stage of one
    merging block has no later block whose strides before it would count this one)."""
    return op.stride


def draw_enter(
    block: Block, op: PatchMerge, flow: BlockFlow, s: Labels, src: str, dim: int
) -> Sketch:
    c4 = concat_dim(block, op)
    label = lines(
        f"patch merging {s.grid(op.stride)}",
        f"concat → LayerNorm {c4} → Linear {c4} → {block.dim_attn}",
    )
    return Sketch.box(
        "merge", label, src, s.size(flow.grid_in, dim), block.dim_attn, fill="#d9f0d3"
    )


RULES = Rules(
    kind="patch_merge",
    record=PatchMerge,
    flow=flow,
    period=period,
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
