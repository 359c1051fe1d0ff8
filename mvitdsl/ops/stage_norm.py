"""The LayerNorm after a stage's last block (PVTv2, `stage_norm on`): it runs on the block's
output, after both residual adds (`exit`). Its record, costs, names, emission and drawing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ..nodes import Node
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
)

if TYPE_CHECKING:
    from ..ir import Block, Model

STAGE_NORM = "stage_norm"
# timm's PVTv2 holds it as the stage's `stages.{s}.norm`
STAGE_NAMES = (StageName("stages", "norm", "last", STAGE_NORM),)


class StageNorm(Node):
    """A LayerNorm over the block's output tokens, closing its stage."""

    kind: Literal["stage_norm"] = "stage_norm"


def make(m: Making, made: tuple[Node, ...], current: None) -> StageNorm | None:
    """With `stage_norm on`, the stage's last block closes it."""
    return StageNorm() if m.last and m.opts["stage_norm"] else None


def costs(model: Model, block: Block, op: StageNorm, flow: BlockFlow) -> Costs:
    return Costs(params=2 * block.dim_out, norm_elems=flow.len_q * block.dim_out)


def saved(block: Block, op: StageNorm, flow: BlockFlow) -> int:
    """Its input (the block output) is kept anyway; its output is the next block's input."""
    return flow.len_q * block.dim_out


def shapes(model: Model, block: Block, op: StageNorm, flow: BlockFlow) -> dict[str, Shape]:
    d = block.dim_out
    return {f"{STAGE_NORM}.weight": (d,), f"{STAGE_NORM}.bias": (d,)}


def emit_exit(e: Emits, op: StageNorm, x: Value, normed: Value) -> Value:
    return e.layer_norm(STAGE_NORM, e.block.dim_out, x)


def draw_exit(
    block: Block, op: StageNorm, flow: BlockFlow, s: Labels, src: str, dim: int
) -> Sketch:
    return Sketch.box(
        STAGE_NORM, f"LayerNorm (end of stage {block.stage})", src, s.size(flow.grid_q, dim), dim
    )


RULES = Rules(
    kind="stage_norm",
    record=StageNorm,
    costs=costs,
    saved=saved,
    shapes=shapes,
    emit={"exit": emit_exit},
    draw={"exit": draw_exit},
    stage_names=STAGE_NAMES,
    slot="exit",
    make=make,
)
