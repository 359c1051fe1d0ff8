"""The MLP branch: LayerNorm (norm2), Linear to the hidden width, GELU, dropout, Linear out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ..nodes import Node
from .base import (
    BlockFlow,
    Costs,
    Emits,
    Labels,
    Rules,
    Shape,
    Sketch,
    Value,
    linear,
    lines,
)

if TYPE_CHECKING:
    from ..ir import Block, Model

NORM2 = "norm2"  # the MLP branch's pre-norm (the skeleton applies it)
MLP_FC1, MLP_ACT, MLP_DROP1, MLP_FC2, MLP_DROP2 = "mlp.0", "mlp.1", "mlp.2", "mlp.3", "mlp.4"
REFERENCE_NAMES = ((r"^mlp\.fc1\.", f"{MLP_FC1}."), (r"^mlp\.fc2\.", f"{MLP_FC2}."))


class MlpOptions(Node):
    """What every MLP kind holds: its hidden width."""

    hidden: int


class Mlp(MlpOptions):
    """Two Linears around a GELU: dim_attn -> hidden -> dim_out."""

    kind: Literal["mlp"] = "mlp"


def costs(model: Model, block: Block, op: MlpOptions, flow: BlockFlow) -> Costs:
    fc1_p, fc1_m = linear(flow.len_q, block.dim_attn, op.hidden)
    fc2_p, fc2_m = linear(flow.len_q, op.hidden, block.dim_out)
    return Costs(
        params=fc1_p + fc2_p + 2 * block.dim_attn,
        mlp_macs=fc1_m + fc2_m,
        norm_elems=flow.len_q * block.dim_attn,
    )


def saved(block: Block, op: MlpOptions, flow: BlockFlow) -> int:
    """The hidden activations before and after GELU."""
    return 2 * flow.len_q * op.hidden


def shapes(model: Model, block: Block, op: MlpOptions, flow: BlockFlow) -> dict[str, Shape]:
    a, h = block.dim_attn, op.hidden
    return {
        f"{NORM2}.weight": (a,),
        f"{NORM2}.bias": (a,),
        f"{MLP_FC1}.weight": (h, a),
        f"{MLP_FC1}.bias": (h,),
        f"{MLP_FC2}.weight": (block.dim_out, h),
        f"{MLP_FC2}.bias": (block.dim_out,),
    }


def emit_mlp(e: Emits, op: Mlp, x: Value, normed: Value) -> Value:
    from torch import nn

    b, dropout = e.block, e.model.attention.dropout
    h = e.module(MLP_FC1, nn.Linear(b.dim_attn, op.hidden), normed)
    h = e.module(MLP_ACT, nn.GELU(), h)
    if dropout > 0:
        h = e.module(MLP_DROP1, nn.Dropout(dropout), h)
    h = e.module(MLP_FC2, nn.Linear(op.hidden, b.dim_out), h)
    if dropout > 0:
        h = e.module(MLP_DROP2, nn.Dropout(dropout), h)
    return h


def draw_mlp(block: Block, op: Mlp, flow: BlockFlow, s: Labels, src: str, dim: int) -> Sketch:
    b = block
    label = lines(
        f"MLP: Linear {b.dim_attn} → {op.hidden}", "GELU", f"Linear {op.hidden} → {b.dim_out}"
    )
    return Sketch.box("mlp", label, src, s.size(flow.grid_q, b.dim_attn), b.dim_out, fill="#dbe9f6")


RULES = Rules(
    kind="mlp",
    record=Mlp,
    costs=costs,
    saved=saved,
    shapes=shapes,
    emit={"mlp": emit_mlp},
    draw={"mlp": draw_mlp},
    names=REFERENCE_NAMES,
)
