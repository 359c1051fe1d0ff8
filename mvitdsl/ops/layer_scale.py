"""SlowFast's layer scale: each branch's output times a learned per-channel gamma."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ..nodes import Node
from .base import BlockFlow, Costs, Emits, Rules, Shape, Value

if TYPE_CHECKING:
    from ..ir import Block, Model

GAMMA_1, GAMMA_2 = "gamma_1", "gamma_2"


class LayerScale(Node):
    """Gammas on both branches, initialised to `init`."""

    kind: Literal["layer_scale"] = "layer_scale"
    init: float


def costs(model: Model, block: Block, op: LayerScale, flow: BlockFlow) -> Costs:
    return Costs(params=block.dim_attn + block.dim_out)


def shapes(model: Model, block: Block, op: LayerScale, flow: BlockFlow) -> dict[str, Shape]:
    return {GAMMA_1: (block.dim_attn,), GAMMA_2: (block.dim_out,)}


def emit_scale(e: Emits, target: str, dim: int, op: LayerScale, x: Value) -> Value:
    """x * gamma, gamma learned, initialised to the set value."""
    import operator

    import torch
    from torch import nn

    gamma = nn.Parameter(torch.full((dim,), op.init))
    return e.fn(operator.mul, x, e.attr(target, gamma))


def emit_attention_scale(e: Emits, op: LayerScale, x: Value, normed: Value) -> Value:
    return emit_scale(e, GAMMA_1, e.block.dim_attn, op, x)


def emit_mlp_scale(e: Emits, op: LayerScale, x: Value, normed: Value) -> Value:
    return emit_scale(e, GAMMA_2, e.block.dim_out, op, x)


RULES = Rules(
    kind="layer_scale",
    record=LayerScale,
    costs=costs,
    shapes=shapes,
    emit={"scale_attention": emit_attention_scale, "scale_mlp": emit_mlp_scale},
)
