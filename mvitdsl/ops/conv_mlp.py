"""The MLP with a depthwise conv (PVTv2, `mlp_conv on`): Linear to the hidden width, a 3x3
depthwise conv (with bias) over the token grid, GELU, Linear out; with `reduce_mode linear` a
ReLU before the conv. Its record, costs, names, emission and drawing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from ..nodes import Node
from . import mlp
from .base import (
    BlockFlow,
    Costs,
    Emits,
    Labels,
    Making,
    Rules,
    Shape,
    Sketch,
    Value,
    lines,
)

if TYPE_CHECKING:
    from ..ir import Block, Model

MLP_DWCONV = "mlp.dwconv"
KERNEL = 3  # PVTv2's depthwise kernel (padding 1: the grid is kept)


class ConvMlp(mlp.MlpOptions):
    """fc1, [ReLU], depthwise 3x3 conv, GELU, fc2."""

    kind: Literal["conv_mlp"] = "conv_mlp"
    relu: bool = False  # PVTv2-li's ReLU before the conv


def make(m: Making, made: tuple[Node, ...], current: mlp.Mlp) -> ConvMlp | None:
    """With `mlp_conv on`, the block's MLP (a ReLU before the conv with `reduce_mode linear`)."""
    if not m.opts["mlp_conv"]:
        return None
    return ConvMlp(hidden=current.hidden, relu=m.opts["reduce_mode"] == "linear")


def costs(model: Model, block: Block, op: ConvMlp, flow: BlockFlow) -> Costs:
    """The plain MLP's, and the depthwise conv's weights, bias and MACs over the grid."""
    taps = KERNEL * KERNEL
    conv = Costs(params=op.hidden * (taps + 1), mlp_macs=flow.len_q * op.hidden * taps)
    return mlp.costs(model, block, op, flow) + conv


def saved(block: Block, op: ConvMlp, flow: BlockFlow) -> int:
    """The hidden activations before and after the conv and after GELU."""
    return 3 * flow.len_q * op.hidden


def shapes(model: Model, block: Block, op: ConvMlp, flow: BlockFlow) -> dict[str, Shape]:
    out = mlp.shapes(model, block, op, flow)
    fc2 = {k: out.pop(k) for k in list(out) if k.startswith(mlp.MLP_FC2)}
    h = op.hidden
    return out | {f"{MLP_DWCONV}.weight": (h, 1, KERNEL, KERNEL), f"{MLP_DWCONV}.bias": (h,)} | fc2


def check(c: Any, block: Block, op: ConvMlp, flow: BlockFlow) -> bool:
    """The conv runs on the image's token grid: images without a cls token only (E210)."""
    if not c.model.video and not c.model.tokens.cls:
        return False
    c.r.error(
        "E210",
        f"block {block.index}: 'mlp_conv' convolves the token grid of an image without a cls token",
        c.setting_span("attention"),
        "write 'input image CxHxW' and 'tokens no_cls'",
    )
    return True


def emit_mlp(e: Emits, op: ConvMlp, x: Value, normed: Value) -> Value:
    """(B, L, A) -> (B, L, C_out); the conv runs on a channels-last view of the hidden tokens."""
    import torch
    from torch import nn

    from .pools import emit_grid, emit_map_size

    b, dropout, h = e.block, e.model.attention.dropout, op.hidden
    t = e.module(mlp.MLP_FC1, nn.Linear(b.dim_attn, h), normed)
    if op.relu:
        t = e.module("mlp.relu", nn.ReLU(), t)
    grid = emit_map_size(e, emit_grid(e, e.grid_node(), b.pool_q))
    t = e.method("unflatten", e.method("transpose", t, 1, 2), 2, grid)  # (B, h, H, W)
    conv = nn.Conv2d(h, h, KERNEL, padding=KERNEL // 2, groups=h)
    # a channels-last weight keeps the CPU's oneDNN conv channels-last: no reorder of the
    # hidden activations in and out (timm's layout: ~15x slower at stage 1, 56x56x512)
    t = e.module(MLP_DWCONV, conv.to(memory_format=torch.channels_last), t)
    t = e.method("transpose", e.method("flatten", t, 2), 1, 2)
    t = e.module(mlp.MLP_ACT, nn.GELU(), t)
    if dropout > 0:
        t = e.module(mlp.MLP_DROP1, nn.Dropout(dropout), t)
    t = e.module(mlp.MLP_FC2, nn.Linear(h, b.dim_out), t)
    if dropout > 0:
        t = e.module(mlp.MLP_DROP2, nn.Dropout(dropout), t)
    return t


def draw_mlp(block: Block, op: ConvMlp, flow: BlockFlow, s: Labels, src: str, dim: int) -> Sketch:
    b = block
    label = lines(
        f"MLP: Linear {b.dim_attn} → {op.hidden}",
        "ReLU" if op.relu else "",
        f"depthwise conv {KERNEL}×{KERNEL} on {s.grid(flow.grid_q)}",
        "GELU",
        f"Linear {op.hidden} → {b.dim_out}",
    )
    return Sketch.box("mlp", label, src, s.size(flow.grid_q, b.dim_attn), b.dim_out, fill="#dbe9f6")


RULES = Rules(
    kind="conv_mlp",
    record=ConvMlp,
    costs=costs,
    saved=saved,
    shapes=shapes,
    check=check,
    emit={"mlp": emit_mlp},
    draw={"mlp": draw_mlp},
    slot="mlp",
    make=make,
)
