"""State_dict dialects: torchvision (ours), SlowFast and timm names -> ours, and the checkpoint
comparison behind `mvitdsl check SPEC --against CHECKPOINT`.

Names and shapes are computed from the IR alone, so a checkpoint is compared before anything is
built; torch is imported only to read a .pt/.pth file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import Any, Literal

from ..analysis.naming import (
    SOURCES,
    Shape,
    Source,
    block_param_shapes,
    detect_source,
    dropped,
    expected_shapes,
    fits,
    rename,
    stem_shapes,
)
from ..ir import HasModel, Loc, Model

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
    """A torchvision / SlowFast / timm / pytorchvideo state_dict in mvitdsl's (torchvision)
    naming and shapes.

    Names the spec does not know are kept as they are, so a strict load names them.
    """
    model = spec if isinstance(spec, Model) else getattr(spec, "model", None)
    if not isinstance(model, Model):
        raise TypeError(f"spec= must be a Spec from load_spec, not {type(spec).__name__}")
    if not isinstance(state_dict, dict):
        raise TypeError(f"state_dict must be a dict of tensors, not {type(state_dict).__name__}")
    state_dict = _unwrap(state_dict)
    bad = [k for k in state_dict if not isinstance(k, str)]
    if bad:
        raise TypeError(f"state_dict names must be str; got {bad[0]!r}")
    state_dict = strip_ddp(state_dict)
    source = source or detect_source(list(state_dict))
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    want = expected_shapes(model)
    out: dict[str, Any] = {}
    for name, tensor in state_dict.items():
        if dropped(name, source):
            continue
        ours = rename(name, source, model)
        shape = want.get(ours)
        if not hasattr(tensor, "shape"):  # a step counter or the like: kept, a strict load names it
            out[ours] = tensor
            continue
        if shape is not None and tuple(tensor.shape) != shape and fits(tuple(tensor.shape), shape):
            tensor = tensor.reshape(shape)
        out[ours] = tensor
    return out


# ---------------------------------------------------------------- checkpoints


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read: one line naming the file and what is wrong."""


DDP_PREFIX = "module."


def strip_ddp(state_dict: dict[str, Any]) -> dict[str, Any]:
    """A DistributedDataParallel state_dict (every name starts with 'module.') without it."""
    if state_dict and all(isinstance(k, str) and k.startswith(DDP_PREFIX) for k in state_dict):
        return {k[len(DDP_PREFIX) :]: v for k, v in state_dict.items()}
    return state_dict


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__


def _readable(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint file {str(path)!r}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty, not a checkpoint")


@dataclass(frozen=True)
class CheckpointSummary:
    """What a check needs from a checkpoint: names and shapes, and which hold NaN or Inf."""

    shapes: dict[str, Shape]
    nonfinite: tuple[str, ...] = ()


def read_summary(path: str | Path) -> CheckpointSummary:
    """Names, shapes and non-finite entries of a checkpoint. .safetensors is read with the
    safetensors library (numpy, no torch); anything else with torch.load(weights_only=True).
    Raises CheckpointError (a ValueError) with one line for a file that is not a checkpoint."""
    path = Path(path)
    _readable(path)
    if path.suffix == ".safetensors":
        return _safetensors_summary(path)
    tensors = load_checkpoint(path)
    shapes = {k: tuple(v.shape) for k, v in tensors.items() if hasattr(v, "shape")}
    bad = tuple(k for k, v in tensors.items() if _torch_nonfinite(v))
    return CheckpointSummary(shapes, bad)


def _safetensors_summary(path: Path) -> CheckpointSummary:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            names = list(f.keys())
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in names}
            bad = tuple(k for k in names if _numpy_nonfinite(f, k))
    except PermissionError:
        raise
    except Exception as e:  # safetensors raises its own SafetensorError and others
        raise CheckpointError(
            f"{path}: not a readable .safetensors file ({_one_line(e)})"
        ) from None
    return CheckpointSummary(strip_ddp(shapes), tuple(_strip_name(k, names) for k in bad))


def _strip_name(name: str, names: list[str]) -> str:
    ddp = names and all(n.startswith(DDP_PREFIX) for n in names)
    return name[len(DDP_PREFIX) :] if ddp else name


def _numpy_nonfinite(f: Any, name: str) -> bool:
    import numpy as np

    try:
        array = f.get_tensor(name)
    except Exception:  # dtypes numpy lacks (bfloat16, float8): not checked
        return False
    return bool(np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all())


def _torch_nonfinite(value: Any) -> bool:
    if not hasattr(value, "is_floating_point") or not value.is_floating_point():
        return False
    import torch

    return not bool(torch.isfinite(value).all())


def checkpoint_shapes(path: str | Path) -> dict[str, Shape]:
    """Names and shapes in a checkpoint (see read_summary)."""
    return read_summary(path).shapes


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The tensors of a .pt/.pth (torch.load, weights_only=True) or .safetensors file, with a
    DDP 'module.' prefix stripped. Raises CheckpointError with one line for a broken file."""
    path = Path(path)
    _readable(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return strip_ddp(load_file(str(path)))
        except PermissionError:
            raise
        except Exception as e:
            raise CheckpointError(
                f"{path}: not a readable .safetensors file ({_one_line(e)})"
            ) from None
    import torch

    try:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:
            if "mmap" not in str(e):
                raise
            data = torch.load(path, map_location="cpu", weights_only=True)  # legacy format
    except PermissionError:
        raise
    except Exception as e:  # zip, pickle and weights_only errors of many types
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint ({_one_line(e)})"
        ) from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} holds a {type(data).__name__}, not a state_dict")
    return strip_ddp(_unwrap(data))


@dataclass(frozen=True)
class Mismatch:
    """One difference between a checkpoint and what the spec makes, in words."""

    kind: Literal["missing", "unexpected", "shape", "nonfinite"]
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
    ours = {rename(k, source, model): tuple(v) for k, v in found.items() if not dropped(k, source)}
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


def _nonfinite_mismatches(names: tuple[str, ...]) -> list[Mismatch]:
    return [
        Mismatch("nonfinite", n, f"{n} holds NaN or Inf values in the checkpoint") for n in names
    ]


def comparison_data(
    spec: HasModel | Model, path: str | Path, source: Source | None
) -> dict[str, Any]:
    """What `check --against --format json` prints (beside `schema`, `kind` and `ok`)."""
    model = _model(spec)
    summary = read_summary(path)
    found = summary.shapes
    source, mismatches = compare_shapes(model, found, source)
    mismatches += _nonfinite_mismatches(summary.nonfinite)
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
    summary = read_summary(path)
    found = summary.shapes
    source, mismatches = compare_shapes(model, found, source)
    mismatches += _nonfinite_mismatches(summary.nonfinite)
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
