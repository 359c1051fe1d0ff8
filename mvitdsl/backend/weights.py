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
from typing import Any, Literal, Protocol

from ..analysis.naming import (
    SOURCES,
    Shape,
    Source,
    block_param_shapes,
    detect_source,
    expected_shapes,
    fits,
    rename,
    stem_shapes,
)
from ..ir import Loc, Model

__all__ = [  # the names computed from the IR live in mvitdsl.analysis.naming (no torch)
    "SOURCES",
    "Shape",
    "Source",
    "block_param_shapes",
    "compare_shapes",
    "convert_state_dict",
    "detect_source",
    "expected_shapes",
    "fits",
    "rename",
    "stem_shapes",
]


class HasModel(Protocol):
    """A checked spec (mvitdsl.spec.Spec), or anything else that carries a lowered model."""

    @property
    def model(self) -> Model: ...


def _model(spec: HasModel | Model) -> Model:
    return spec if isinstance(spec, Model) else spec.model


def _unwrap(state_dict: dict[str, Any]) -> dict[str, Any]:
    for key in ("model_state", "state_dict", "model"):
        inner = state_dict.get(key)
        if isinstance(inner, dict) and not hasattr(inner, "shape"):
            return inner
    return state_dict


def convert_state_dict(
    state_dict: dict[str, Any], source: Source | None = None, *, spec: HasModel | Model
) -> dict[str, Any]:
    """A torchvision / SlowFast / timm state_dict in mvitdsl's (torchvision) naming and shapes.

    Names the spec does not know are kept as they are, so a strict load names them.
    """
    model = _model(spec)
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
                    f"but {_fmt(shape)} in the spec ({about})" + _resizable(name),
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


def _resizable(name: str) -> str:
    """A note for position tables, which loading with weights= resizes (backend/resize.py)."""
    positions = ("pos_encoding.pos_embed", "pos_encoding.spatial_pos", "pos_encoding.temporal_pos")
    if name in positions or ".attn.rel_pos_" in name:
        return "; a position table: `compile --weights` and build(weights=) resize it"
    return ""


def comparison_data(
    spec: HasModel | Model, path: str | Path, source: Source | None
) -> dict[str, Any]:
    """What `check --against --format json` prints (beside `schema`, `kind` and `ok`)."""
    model = _model(spec)
    found = checkpoint_shapes(path)
    source, mismatches = compare_shapes(model, found, source)
    return {
        "model": model.name,
        "checkpoint": str(path),
        "source": source,
        "entries": len(found),
        "params": sum(prod(s) for s in expected_shapes(model).values()),
        "mismatches": [
            {
                "kind": m.kind,
                "name": m.name,
                "message": m.message,
                "file": m.loc.file if m.loc else None,
                "line": m.loc.line if m.loc else None,
            }
            for m in mismatches
        ],
    }


def render_comparison(
    spec: HasModel | Model, path: str | Path, source: Source | None
) -> tuple[str, int]:
    """The text `check --against` prints, and how many mismatches there are."""
    model = _model(spec)
    found = checkpoint_shapes(path)
    source, mismatches = compare_shapes(model, found, source)
    total = sum(prod(s) for s in expected_shapes(model).values())
    if not mismatches:
        return (
            f"{path}: all {len(found)} entries ({total:,} parameters, {source} names) match "
            f"{model.name}",
            0,
        )
    lines = [m.render() for m in mismatches]
    n = len(mismatches)
    lines.append(
        f"{path}: {n} mismatch{'es' * (n != 1)} against {model.name} (read as {source} names)"
    )
    return "\n".join(lines), n
