"""The residual projection where a block changes width: a Linear on the normed input of the
attention branch (MViTv2, `dim_change attention`) or of the MLP branch (MViTv1, `mlp`)."""

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

PROJECT = "project"
# SlowFast's residual projection (v1: `proj`; v2: one per branch), timm's
REFERENCE_NAMES = ((r"^(proj|shortcut_proj_attn|shortcut_proj_mlp)\.", f"{PROJECT}."),)


class Project(Node):
    """dim_in -> dim_out on the shortcut of the attention branch or of the MLP branch."""

    kind: Literal["project"] = "project"
    branch: Literal["attention", "mlp"]


def costs(model: Model, block: Block, op: Project, flow: BlockFlow) -> Costs:
    rows = flow.len_in if op.branch == "attention" else flow.len_q
    p, m = linear(rows, block.dim_in, block.dim_out)
    return Costs(params=p, mlp_macs=m)


def shapes(model: Model, block: Block, op: Project, flow: BlockFlow) -> dict[str, Shape]:
    return {f"{PROJECT}.weight": (block.dim_out, block.dim_in), f"{PROJECT}.bias": (block.dim_out,)}


def emit_project(e: Emits, op: Project, x: Value, normed: Value) -> Value:
    """The shortcut becomes the projection of the branch's normed input."""
    from torch import nn

    return e.module(PROJECT, nn.Linear(e.block.dim_in, e.block.dim_out), normed)


def emit_attention_shortcut(e: Emits, op: Project, x: Value, normed: Value) -> Value:
    return emit_project(e, op, x, normed) if op.branch == "attention" else x


def emit_mlp_shortcut(e: Emits, op: Project, x: Value, normed: Value) -> Value:
    return emit_project(e, op, x, normed) if op.branch == "mlp" else x


def draw_attention_shortcut(
    block: Block, op: Project, flow: BlockFlow, s: Labels, src: str, dim: int
) -> Sketch:
    if op.branch != "attention":
        return Sketch((), src, dim)
    b = block
    return Sketch.box(
        "res_proj",
        lines("residual projection", f"Linear {b.dim_in} → {b.dim_out}"),
        "norm1",
        s.size(flow.grid_in, b.dim_in),
        b.dim_out,
    )


def draw_mlp_shortcut(
    block: Block, op: Project, flow: BlockFlow, s: Labels, src: str, dim: int
) -> Sketch:
    if op.branch != "mlp":
        return Sketch((), src, dim)
    b = block
    return Sketch.box(
        "mlp_proj",
        lines("residual projection", f"Linear {b.dim_attn} → {b.dim_out}"),
        "norm2",
        s.size(flow.grid_q, b.dim_attn),
        b.dim_out,
    )


RULES = Rules(
    kind="project",
    record=Project,
    costs=costs,
    shapes=shapes,
    emit={"shortcut_attention": emit_attention_shortcut, "shortcut_mlp": emit_mlp_shortcut},
    draw={"shortcut_attention": draw_attention_shortcut, "shortcut_mlp": draw_mlp_shortcut},
    names=REFERENCE_NAMES,
)
