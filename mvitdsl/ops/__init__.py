"""The op registry: one module per op kind a block can hold, each with its IR record and its
rule for every pipeline stage (shape flow, costs, state-dict names, checks, emission, drawing).

Adding an op kind: one module (record + rules), its record in `BlockOp`, one line in
`REGISTRY`, tests. The pipeline stages reach the ops through `ops.block` only."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from . import (
    attention,
    conv_mlp,
    embed,
    layer_scale,
    merge,
    mlp,
    pooled_window,
    project,
    reduce,
    skip,
    stage_norm,
    swin,
    window,
)
from .attention import PoolingAttention
from .base import SLOTS, Making, Rules
from .conv_mlp import ConvMlp
from .embed import StageEmbed
from .layer_scale import LayerScale
from .merge import PatchMerge
from .mlp import Mlp
from .pooled_window import PooledWindowAttention
from .project import Project
from .reduce import ReductionAttention
from .skip import SkipPool
from .stage_norm import StageNorm
from .swin import SwinAttention
from .window import WindowAttention

BlockOp = Annotated[
    PoolingAttention
    | WindowAttention
    | SwinAttention
    | PooledWindowAttention
    | ReductionAttention
    | PatchMerge
    | StageEmbed
    | SkipPool
    | Project
    | Mlp
    | ConvMlp
    | LayerScale
    | StageNorm,
    Field(discriminator="kind"),
]
AttentionOp = (
    PoolingAttention | WindowAttention | SwinAttention | PooledWindowAttention | ReductionAttention
)

# In this order a slot's makers are tried (ops/base.py SLOTS): Swin's shifted windows, asked for
# by their own settings, before the windows of `scope window`.
REGISTRY: dict[str, Rules] = {
    rules.kind: rules
    for rules in (
        attention.RULES,
        swin.RULES,
        window.RULES,
        pooled_window.RULES,
        reduce.RULES,
        merge.RULES,
        embed.RULES,
        skip.RULES,
        project.RULES,
        mlp.RULES,
        conv_mlp.RULES,
        layer_scale.RULES,
        stage_norm.RULES,
    )
}

__all__ = [
    "REGISTRY",
    "SLOTS",
    "AttentionOp",
    "BlockOp",
    "ConvMlp",
    "LayerScale",
    "Making",
    "Mlp",
    "PatchMerge",
    "PoolingAttention",
    "PooledWindowAttention",
    "Project",
    "ReductionAttention",
    "SkipPool",
    "StageEmbed",
    "StageNorm",
    "SwinAttention",
    "WindowAttention",
]
