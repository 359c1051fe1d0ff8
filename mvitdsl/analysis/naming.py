"""Our state_dict names (torchvision's) and their shapes, computed from the IR, and the SlowFast
and timm dialects renamed into them. One home for the naming: the emitter names its modules with
these constants, `check --against` and the weight converter use the same. Never imports torch.
"""

from __future__ import annotations

import re
from typing import Literal

from .. import ops
from ..ir import Block, Model
from ..ops import attention, head, mlp, patch, pools, positions, project
from ..ops import block as ops_block
from ..ops.base import BlockFlow
from ..ops.base import Shape as Shape
from .graph import with_flows

# ---------------------------------------------------------------- our names

# The names are each op's own (ops/); these are the ones other modules use.
CONV_PROJ = patch.CONV_PROJ
CLASS_TOKEN, POS_EMBED, CLASS_POS = positions.CLASS_TOKEN, positions.POS_EMBED, positions.CLASS_POS
SPATIAL_POS, TEMPORAL_POS = positions.SPATIAL_POS, positions.TEMPORAL_POS
NORM, HEAD_DROPOUT, HEAD_FC = head.NORM, head.HEAD_DROPOUT, head.HEAD_FC
NORM1, NORM2, DROP_PATH = ops_block.NORM1, mlp.NORM2, ops_block.DROP_PATH
QKV, ATTN_PROJECT, ATTN_DROPOUT = attention.QKV, attention.ATTN_PROJECT, attention.ATTN_DROPOUT
MLP_FC1, MLP_FC2, PROJECT = mlp.MLP_FC1, mlp.MLP_FC2, project.PROJECT
POOL_CONV, POOL_NORM = pools.POOL_CONV, pools.POOL_NORM
pool, rel_pos = pools.pool_name, attention.rel_pos_name


def block(index: int) -> str:
    return f"blocks.{index}"


def is_position_table(name: str) -> bool:
    """Absolute position embeddings and relative-position tables (initialised like linears)."""
    return name.startswith("pos_encoding.") or ".rel_pos_" in name


Source = Literal["torchvision", "slowfast", "timm", "hiera", "pytorchvideo", "detectron2", "sam2"]
SOURCES: tuple[Source, ...] = (
    "torchvision",
    "slowfast",
    "timm",
    "hiera",
    "pytorchvideo",
    "detectron2",
    "sam2",
)
# detectron2: a detector's checkpoint; the backbone the spec makes is under this prefix, in
# SlowFast's block names; the FPN, heads and the rest are not the spec's (ignored, listed).
DETECTRON2_PREFIX = "backbone.bottom_up."
# facebookresearch/sam2 checkpoints: the image encoder's trunk under this prefix (timm's names,
# but `mlp.layers.0/1` for fc1/fc2); the neck, memory and decoders are not the trunk.
SAM2_TRUNK = "image_encoder.trunk."
# the part of a whole-model checkpoint that the spec makes, per source
_WITHIN = {"detectron2": DETECTRON2_PREFIX, "sam2": SAM2_TRUNK}
# facebookresearch/hiera: MAE checkpoints carry the pretraining decoder and mask token, which
# the encoder the spec makes does not have; they are left out, not reported.
_HIERA_DROPPED = ("decoder_", "mask_token", "multi_scale_fusion_heads.")


# ---------------------------------------------------------------- what the spec makes


def expected_shapes(model: Model, flows: tuple[BlockFlow, ...] | None = None) -> dict[str, Shape]:
    """Every state_dict entry the emitted module will have, in torchvision naming, with shapes
    (`flows`: the block flows, when already computed)."""
    out = stem_shapes(model)
    for b, flow in with_flows(model, flows):
        for name, shape in block_param_shapes(model, b, flow).items():
            out[f"{block(b.index)}.{name}"] = shape
    return out | head.shapes(model)


def stem_shapes(model: Model) -> dict[str, Shape]:
    """The patch embedding's, then the positions' (a fixed sincos buffer, the cls token and the
    learned tables)."""
    return patch.shapes(model) | positions.buffer_shapes(model) | positions.learned_shapes(model)


def position_shapes(model: Model) -> dict[str, Shape]:
    """The cls token and the learned position tables (ops/positions.py lays them out)."""
    return positions.learned_shapes(model)


def block_param_shapes(model: Model, b: Block, flow: BlockFlow) -> dict[str, Shape]:
    """One block's entries, names relative to `blocks.{i}.`: its ops' (ops/)."""
    return ops_block.shapes(model, b, flow)


# ---------------------------------------------------------------- renaming

# Each op module states its reference names (SlowFast and timm share those inside a block; ours
# are torchvision's): the stem's and head's, the block ops' `names` and, for the ops a timm stage
# holds once, their `stage_names`. What is left here is the dialects'.
_STEM_RULES: dict[str, str] = (
    patch.REFERENCE_NAMES | positions.REFERENCE_NAMES | head.REFERENCE_NAMES
)


# pytorchvideo's create_multiscale_vision_transformers: its own stem, position and head names;
# inside a block SlowFast's (separate attn.q / attn.k / attn.v, as ours with `qkv separate`).
_PYTORCHVIDEO_RULES: dict[str, str] = {
    "patch_embed.patch_model.weight": "conv_proj.weight",
    "patch_embed.patch_model.bias": "conv_proj.bias",
    "cls_positional_encoding.cls_token": "pos_encoding.class_token",
    "cls_positional_encoding.pos_embed": "pos_encoding.pos_embed",
    "cls_positional_encoding.pos_embed_spatial": "pos_encoding.spatial_pos",
    "cls_positional_encoding.pos_embed_temporal": "pos_encoding.temporal_pos",
    "cls_positional_encoding.pos_embed_class": "pos_encoding.class_pos",
    "norm_embed.weight": "norm.weight",
    "norm_embed.bias": "norm.bias",
    "head.proj.weight": "head.1.weight",
    "head.proj.bias": "head.1.bias",
}


def _block_inner(name: str) -> str:
    """Ours for a name inside a block: the registered ops' `names` (read per call: the registry
    may grow), the first that matches (they are disjoint)."""
    for rules in ops.REGISTRY.values():
        for pattern, repl in rules.names:
            if re.match(pattern, name):
                return re.sub(pattern, repl, name, count=1)
    return name


def _stage_offsets(model: Model) -> list[int]:
    return [s.first for s in model.stages]


def rename(name: str, source: Source, model: Model) -> str:
    """Our (torchvision) name for one entry of a `source` state_dict; unknown names pass through."""
    if source == "torchvision":
        return name
    if source == "detectron2":
        return rename(name.removeprefix(DETECTRON2_PREFIX), "slowfast", model)
    if source == "sam2":
        name = re.sub(r"\.mlp\.layers\.([01])\.", lambda m: f".mlp.fc{int(m[1]) + 1}.", name)
        return rename(name.removeprefix(SAM2_TRUNK), "timm", model)
    if source == "hiera" and name.startswith("encoder_norm."):
        return "norm." + name.removeprefix("encoder_norm.")  # MAE checkpoints' final norm
    if source == "pytorchvideo" and name in _PYTORCHVIDEO_RULES:
        return _PYTORCHVIDEO_RULES[name]
    if name in _STEM_RULES:
        return _STEM_RULES[name]
    m = re.match(r"^(?:stages|layers)\.(\d+)\.blocks\.(\d+)\.(.*)$", name)
    m = m if source == "timm" else None
    if m is not None:
        offsets = _stage_offsets(model)
        stage, j = int(m.group(1)), int(m.group(2))
        if stage < len(offsets):
            return f"blocks.{offsets[stage] + j}.{_block_inner(m.group(3))}"
        return name
    staged = _stage_level(name, model) if source == "timm" else None
    if staged is not None:
        return staged
    m = re.match(r"^blocks\.(\d+)\.(.*)$", name)
    if m is not None:
        return f"blocks.{m.group(1)}.{_block_inner(m.group(2))}"
    return name


def _stage_level(name: str, model: Model) -> str | None:
    """timm's name of an op a stage holds once (`{parent}.{s}.{part}.*`, an op's `stage_names`):
    ours in the stage's first or last block; None for any other name."""
    m = re.match(r"^(\w+)\.(\d+)\.(\w+)\.(.*)$", name)
    if m is None or int(m.group(2)) >= len(model.stages):
        return None
    found = next(
        (
            n
            for rules in ops.REGISTRY.values()
            for n in rules.stage_names
            if (n.parent, n.part) == (m.group(1), m.group(3))
        ),
        None,
    )
    if found is None:
        return None
    stage = model.stages[int(m.group(2))]
    at = stage.first if found.block == "first" else stage.first + stage.depth - 1
    return f"blocks.{at}.{found.ours}.{m.group(4)}"


def dropped(name: str, source: Source) -> bool:
    """Entries of a source that the spec's model never has (Hiera's MAE decoder; what is not
    detectron2's backbone or SAM2's image-encoder trunk)."""
    return (source == "hiera" and name.startswith(_HIERA_DROPPED)) or outside(name, source)


def outside(name: str, source: Source) -> bool:
    """Entries of a whole-model checkpoint outside the part the spec makes (detectron2's
    backbone, SAM2's trunk): not loaded, but listed."""
    prefix = _WITHIN.get(source)
    return prefix is not None and not name.startswith(prefix)


def _is_hiera(names: list[str]) -> bool:
    """facebookresearch/hiera: its MAE names, or `head.projection` over blocks with neither a
    cls token nor pooling convs (SlowFast's MViT has one or the other)."""
    if any(n.startswith(("encoder_norm.", "decoder_")) for n in names):
        return True
    return (
        "head.projection.weight" in names
        and "cls_token" not in names
        and not any(".attn.pool_" in n or ".attn.rel_pos" in n for n in names)
    )


def detect_source(names: list[str]) -> Source:
    """Guess a state_dict's dialect from its names."""
    if any(n.startswith(DETECTRON2_PREFIX) for n in names):
        return "detectron2"
    if any(n.startswith(SAM2_TRUNK) for n in names):
        return "sam2"
    if any(n.startswith(("stages.", "layers.")) for n in names) or "head.norm.weight" in names:
        return "timm"
    if any(n.startswith(("patch_embed.patch_model.", "cls_positional_encoding.")) for n in names):
        return "pytorchvideo"
    if _is_hiera(names):
        return "hiera"
    if any(n.startswith(("patch_embed.", "head.projection", "cls_token")) for n in names) or any(
        ".mlp.fc1." in n for n in names
    ):
        return "slowfast"
    return "torchvision"


def _squeezed(shape: Shape) -> Shape:
    i = 0
    while i < len(shape) - 1 and shape[i] == 1:
        i += 1
    return tuple(shape[i:])


def fits(found: Shape, want: Shape) -> bool:
    """Equal up to leading 1s: SlowFast's (1, 1, C) cls token is our (C,)."""
    return tuple(found) == tuple(want) or _squeezed(tuple(found)) == _squeezed(tuple(want))
