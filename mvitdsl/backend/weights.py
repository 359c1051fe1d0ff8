"""State_dict dialects: torchvision (ours), SlowFast and timm names -> ours, and the checkpoint
comparison behind `mvitdsl check SPEC --against CHECKPOINT`.

Names and shapes are computed from the IR alone, so a checkpoint is compared before anything is
built; torch is imported only to read a .pt/.pth file.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..analysis import shapes
from ..analysis.graph import blocks_in_order, build_graph
from ..ir import Block, Loc, Model

if TYPE_CHECKING:
    from ..spec import Spec

Source = Literal["torchvision", "slowfast", "timm", "pytorchvideo"]
Shape = tuple[int, ...]
SOURCES: tuple[Source, ...] = ("torchvision", "slowfast", "timm", "pytorchvideo")


# ---------------------------------------------------------------- what the spec makes


def expected_shapes(model: Model) -> dict[str, Shape]:
    """Every state_dict entry the emitted module will have, in torchvision naming, with shapes."""
    out = stem_shapes(model)
    for block, flow in blocks_in_order(build_graph(model)):
        for name, shape in block_param_shapes(model, block, flow.rel_pos).items():
            out[f"blocks.{block.index}.{name}"] = shape
    c = model.blocks[-1].dim_out
    if model.head.norm:
        out["norm.weight"], out["norm.bias"] = (c,), (c,)
    out["head.1.weight"], out["head.1.bias"] = (model.head.classes, c), (model.head.classes,)
    return out


def _grid(model: Model, dims: tuple[int, int, int]) -> Shape:
    return dims if model.spatial_dims == 3 else dims[1:]


def stem_shapes(model: Model) -> dict[str, Shape]:
    p, d = model.patch, model.patch.dim
    out: dict[str, Shape] = {
        "conv_proj.weight": (d, model.input.channels, *_grid(model, p.kernel)),
        "conv_proj.bias": (d,),
    }
    cls = model.tokens.cls
    if cls:
        out["pos_encoding.class_token"] = (d,)
    t, h, w = shapes.patch_nominal(model)
    if model.tokens.position in ("joint", "sincos"):  # sincos: a fixed buffer, same name
        out["pos_encoding.pos_embed"] = (1, t * h * w + int(cls), d)
    elif model.tokens.position == "separable":
        out["pos_encoding.spatial_pos"] = (h * w, d)
        out["pos_encoding.temporal_pos"] = (t, d)
        if cls:
            out["pos_encoding.class_pos"] = (d,)
    return out


def block_param_shapes(
    model: Model, b: Block, rel_pos: tuple[int, int, int] | None
) -> dict[str, Shape]:
    """One block's entries, names relative to `blocks.{i}.`."""
    hd, a, phd = b.head_dim, b.dim_attn, b.pool_head_dim
    out: dict[str, Shape] = {"norm1.weight": (b.dim_in,), "norm1.bias": (b.dim_in,)}
    for name, width in (("qkv", 3 * a),) if b.qkv == "fused" else (("q", a), ("k", a), ("v", a)):
        out[f"attn.{name}.weight"] = (width, b.dim_in)
        if b.qkv_bias:
            out[f"attn.{name}.bias"] = (width,)
    out["attn.project.0.weight"], out["attn.project.0.bias"] = (a, a), (a,)
    for which, pool in (("q", b.pool_q), ("k", b.pool_kv), ("v", b.pool_kv)):
        if pool.exists and pool.mode == "conv":
            out[f"attn.pool_{which}.pool.weight"] = (phd, 1, *_grid(model, pool.kernel))
            out[f"attn.pool_{which}.norm_act.0.weight"] = (phd,)
            out[f"attn.pool_{which}.norm_act.0.bias"] = (phd,)
    for axis, length in zip("thw", rel_pos or (0, 0, 0)):
        if length:
            out[f"attn.rel_pos_{axis}"] = (length, hd)
    out["norm2.weight"], out["norm2.bias"] = (a,), (a,)
    out["mlp.0.weight"], out["mlp.0.bias"] = (b.mlp_hidden, a), (b.mlp_hidden,)
    out["mlp.3.weight"], out["mlp.3.bias"] = (b.dim_out, b.mlp_hidden), (b.dim_out,)
    if b.has_project:
        out["project.weight"], out["project.bias"] = (b.dim_out, b.dim_in), (b.dim_out,)
    if b.layer_scale:
        out["gamma_1"], out["gamma_2"] = (a,), (b.dim_out,)
    return out


# ---------------------------------------------------------------- renaming

# Inside a block, SlowFast and timm share names; ours are torchvision's.
_BLOCK_RULES: tuple[tuple[str, str], ...] = (
    (r"^attn\.proj\.", "attn.project.0."),
    (r"^attn\.pool_([qkv])\.", r"attn.pool_\1.pool."),
    (r"^attn\.norm_([qkv])\.", r"attn.pool_\1.norm_act.0."),
    (r"^mlp\.fc1\.", "mlp.0."),
    (r"^mlp\.fc2\.", "mlp.3."),
    (r"^(proj|shortcut_proj_attn|shortcut_proj_mlp)\.", "project."),
)

_STEM_RULES: dict[str, str] = {
    "patch_embed.proj.weight": "conv_proj.weight",
    "patch_embed.proj.bias": "conv_proj.bias",
    "cls_token": "pos_encoding.class_token",
    "pos_embed": "pos_encoding.pos_embed",
    "pos_embed_spatial": "pos_encoding.spatial_pos",
    "pos_embed_temporal": "pos_encoding.temporal_pos",
    "pos_embed_class": "pos_encoding.class_pos",
    "head.projection.weight": "head.1.weight",
    "head.projection.bias": "head.1.bias",
    "head.fc.weight": "head.1.weight",
    "head.fc.bias": "head.1.bias",
}


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
    for pattern, repl in _BLOCK_RULES:
        name = re.sub(pattern, repl, name)
    return name


def _stage_offsets(model: Model) -> list[int]:
    return [s.first for s in model.stages]


def rename(name: str, source: Source, model: Model) -> str:
    """Our (torchvision) name for one entry of a `source` state_dict; unknown names pass through."""
    if source == "torchvision":
        return name
    if source == "pytorchvideo" and name in _PYTORCHVIDEO_RULES:
        return _PYTORCHVIDEO_RULES[name]
    if name in _STEM_RULES:
        return _STEM_RULES[name]
    m = re.match(r"^stages\.(\d+)\.blocks\.(\d+)\.(.*)$", name) if source == "timm" else None
    if m is not None:
        offsets = _stage_offsets(model)
        stage, j = int(m.group(1)), int(m.group(2))
        if stage < len(offsets):
            return f"blocks.{offsets[stage] + j}.{_block_inner(m.group(3))}"
        return name
    m = re.match(r"^blocks\.(\d+)\.(.*)$", name)
    if m is not None:
        return f"blocks.{m.group(1)}.{_block_inner(m.group(2))}"
    return name


def detect_source(names: list[str]) -> Source:
    """Guess a state_dict's dialect from its names."""
    if any(n.startswith("stages.") for n in names):
        return "timm"
    if any(n.startswith(("patch_embed.patch_model.", "cls_positional_encoding.")) for n in names):
        return "pytorchvideo"
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


def _unwrap(state_dict: dict[str, Any]) -> dict[str, Any]:
    for key in ("model_state", "state_dict", "model"):
        inner = state_dict.get(key)
        if isinstance(inner, dict) and not hasattr(inner, "shape"):
            return inner
    return state_dict


def convert_state_dict(
    state_dict: dict[str, Any], source: Source | None = None, *, spec: Spec | Model
) -> dict[str, Any]:
    """A torchvision / SlowFast / timm / pytorchvideo state_dict in mvitdsl's (torchvision)
    naming and shapes.

    Names the spec does not know are kept as they are, so a strict load names them.
    """
    model = spec if isinstance(spec, Model) else spec.model
    state_dict = _unwrap(state_dict)
    source = source or detect_source(list(state_dict))
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    want = expected_shapes(model)
    out: dict[str, Any] = {}
    for name, tensor in state_dict.items():
        ours = rename(name, source, model)
        shape = want.get(ours)
        if shape is not None and tuple(tensor.shape) != shape and fits(tuple(tensor.shape), shape):
            tensor = tensor.reshape(shape)
        out[ours] = tensor
    return out


# ---------------------------------------------------------------- checkpoints


def checkpoint_shapes(path: str | Path) -> dict[str, Shape]:
    """Names and shapes in a checkpoint: .safetensors read from its header (no torch), anything
    else with torch.load(weights_only=True)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        with path.open("rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        return {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    return {k: tuple(v.shape) for k, v in load_checkpoint(path).items() if hasattr(v, "shape")}


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The tensors of a .pt/.pth (torch.load, weights_only=True) or .safetensors file."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    import torch

    data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds a {type(data).__name__}, not a state_dict")
    return _unwrap(data)


@dataclass(frozen=True)
class Mismatch:
    """One difference between a checkpoint and what the spec makes, in words."""

    kind: Literal["missing", "unexpected", "shape"]
    name: str
    message: str
    loc: Loc | None = None

    def render(self) -> str:
        where = f"{self.loc.file}:{self.loc.line}: " if self.loc else ""
        return f"{where}{self.kind}: {self.message}"


def _fmt(shape: Shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def _owner(model: Model, name: str) -> tuple[Loc | None, str]:
    """Where the spec sets what an entry's shape depends on, and a few words about it."""
    m = re.match(r"^blocks\.(\d+)\.", name)
    if m and int(m.group(1)) < len(model.blocks):
        b = model.blocks[int(m.group(1))]
        return b.loc, (
            f"block {b.index}, stage '{b.stage}': {b.dim_in}->{b.dim_out} channels, "
            f"{b.heads} heads of {b.head_dim}"
        )
    if name.startswith(("conv_proj", "pos_encoding")):
        return model.patch.loc, f"patch embedding to {model.patch.dim} channels"
    if name.startswith(("head", "norm.")):
        return model.head.loc, f"head with {model.head.classes} classes"
    return None, ""


def compare_shapes(
    model: Model, found: dict[str, Shape], source: Source | None = None
) -> tuple[Source, list[Mismatch]]:
    """Rename a checkpoint's names and shapes into ours and list every difference."""
    source = source or detect_source(list(found))
    want = expected_shapes(model)
    ours = {rename(k, source, model): tuple(v) for k, v in found.items()}
    out: list[Mismatch] = []
    for name, shape in want.items():
        loc, about = _owner(model, name)
        if name not in ours:
            out.append(
                Mismatch(
                    "missing",
                    name,
                    f"the spec makes {name} {_fmt(shape)} "
                    f"({about}); the checkpoint has no such entry",
                    loc,
                )
            )
        elif not fits(ours[name], shape):
            out.append(
                Mismatch(
                    "shape",
                    name,
                    f"{name} is {_fmt(ours[name])} in the checkpoint "
                    f"but {_fmt(shape)} in the spec ({about})",
                    loc,
                )
            )
    for name, shape in ours.items():
        if name not in want:
            out.append(
                Mismatch(
                    "unexpected",
                    name,
                    f"the checkpoint has {name} {_fmt(shape)}, which the spec does not make",
                    None,
                )
            )
    return source, out


def render_comparison(spec: Spec, path: str | Path, source: Source | None) -> tuple[str, int]:
    """The text `check --against` prints, and how many mismatches there are."""
    found = checkpoint_shapes(path)
    source, mismatches = compare_shapes(spec.model, found, source)
    total = sum(prod(s) for s in expected_shapes(spec.model).values())
    if not mismatches:
        return (
            f"{path}: all {len(found)} entries ({total:,} parameters, {source} names) match "
            f"{spec.name}",
            0,
        )
    lines = [m.render() for m in mismatches]
    n = len(mismatches)
    lines.append(
        f"{path}: {n} mismatch{'es' * (n != 1)} against {spec.name} (read as {source} names)"
    )
    return "\n".join(lines), n
