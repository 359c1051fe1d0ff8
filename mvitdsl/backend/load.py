"""Weights into a built model: find them, convert their names, resize position tables, load
strictly, and say what happened in a one-screen load report.

    gm, report = load_into(gm, model, "mvit_b_k400.pth")        # or a state_dict, or
    gm, report = load_into(gm, model, "torchvision:MViT_V1_B_Weights.KINETICS400_V1")

A checkpoint that does not fit raises WeightsError with `check --against`'s report, before
anything is loaded. Named torchvision weights go through torchvision's weights enum and
torch.hub's cache ($TORCH_HOME/hub/checkpoints): downloaded once where the network allows.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from math import prod
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from ..analysis import shapes
from ..analysis.naming import outside
from ..ir import Model
from ..ops import positions
from .resize import is_position, resize_entry
from .weights import (
    SOURCES,
    Shape,
    Source,
    compare_shapes,
    convert_state_dict,
    detect_source,
    expected_shapes,
    load_checkpoint,
)

Action = Literal["loaded", "resized", "initialised", "ignored"]
TORCHVISION_PREFIX = "torchvision:"


class WeightsError(ValueError):
    """A checkpoint that does not fit the spec; the message is the mismatch report, `found`
    the checkpoint's shapes in our (torchvision) names."""

    def __init__(self, message: str, found: dict[str, Shape] | None = None) -> None:
        super().__init__(message)
        self.found = found or {}


@dataclass(frozen=True)
class LoadEntry:
    """What happened to one tensor, and why."""

    action: Action
    name: str
    old: Shape | None
    new: Shape | None
    reason: str = ""


@dataclass(frozen=True)
class Weights:
    """A state_dict with where it came from and what the source says about it."""

    state: dict[str, Any]
    origin: str
    dialect: Source | None = None
    sha256: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadReport:
    """Tensors loaded, resized (old -> new shape), newly initialised and ignored, with reasons."""

    origin: str
    dialect: str
    model: str
    entries: tuple[LoadEntry, ...]
    sha256: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def of(self, action: Action) -> list[LoadEntry]:
        return [e for e in self.entries if e.action == action]

    def render(self) -> str:
        loaded = self.of("loaded")
        params = sum(prod(e.new or ()) for e in loaded)
        lines = [
            f"weights {self.origin} ({self.dialect} names) -> {self.model}",
            f"  loaded       {len(loaded)} tensors, {params:,} values, as they are",
        ]
        for action in ("resized", "initialised", "ignored"):
            for name, e, n in _folded(self.of(action)):
                shape = (
                    f"{_fmt(e.old)} -> {_fmt(e.new)}"
                    if action == "resized"
                    else _fmt(e.new if action == "initialised" else e.old)
                )
                count = f" ({n} tensors)" if n > 1 else ""
                lines.append(f"  {action:<12} {name} {shape}: {e.reason}{count}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "dialect": self.dialect,
            "model": self.model,
            "sha256": self.sha256,
            "meta": self.meta,
            "entries": [
                {
                    "action": e.action,
                    "name": e.name,
                    "old": list(e.old) if e.old else None,
                    "new": list(e.new) if e.new else None,
                    "reason": e.reason,
                }
                for e in self.entries
            ],
        }


def _folded(entries: list[LoadEntry]) -> list[tuple[str, LoadEntry, int]]:
    """Entries alike but for their block index, as one line each: `blocks.{0..15}.attn.x`
    (or `blocks.{0,2,5}...`), the first entry, and how many there are."""
    groups: dict[tuple[str, Shape | None, Shape | None, str], list[LoadEntry]] = {}
    for e in entries:
        key = re.sub(r"^blocks\.\d+\.", "blocks.*.", e.name)
        groups.setdefault((key, e.old, e.new, e.reason), []).append(e)
    out = []
    for (key, *_), alike in groups.items():
        if len(alike) == 1:
            out.append((alike[0].name, alike[0], 1))
            continue
        index = [int(e.name.split(".")[1]) for e in alike]
        span = (
            f"{index[0]}..{index[-1]}"
            if index == list(range(index[0], index[-1] + 1))
            else ",".join(map(str, index))
        )
        out.append((key.replace("*", "{" + span + "}", 1), alike[0], len(alike)))
    return out


def _fmt(shape: Shape | None) -> str:
    return "[" + ", ".join(map(str, shape or ())) + "]"


# ---------------------------------------------------------------- finding weights


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve_weights(weights: Any, source: str | None = None) -> Weights:
    """A Weights from a state_dict, a .pt/.pth/.safetensors path, or `torchvision:ENUM.NAME`."""
    if isinstance(weights, Weights):
        return weights
    if source is not None and source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    dialect: Source | None = source
    if isinstance(weights, dict):
        return Weights(dict(weights), "<state_dict>", dialect)
    text = str(weights)
    if text.startswith(TORCHVISION_PREFIX):
        return torchvision_weights(text[len(TORCHVISION_PREFIX) :])
    path = Path(text)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return Weights(load_checkpoint(path), str(path), dialect, sha256_file(path))


def torchvision_weights(name: str) -> Weights:
    """`MViT_V1_B_Weights.KINETICS400_V1` through torchvision's enum and torch.hub's cache."""
    import torchvision.models as tvm
    import torchvision.models.video as tvv

    enum_name, _, member = name.partition(".")
    enum = getattr(tvv, enum_name, None) or getattr(tvm, enum_name, None)
    if enum is None or not member or member not in enum.__members__:
        raise ValueError(f"no torchvision weights {name!r} (like MViT_V1_B_Weights.KINETICS400_V1)")
    w = enum[member]
    state = w.get_state_dict(progress=False)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(w.url)
    sha = sha256_file(cached) if cached.is_file() else None
    return Weights(state, f"torchvision:{name}", "torchvision", sha, torchvision_meta(w))


def torchvision_meta(w: Any) -> dict[str, Any]:
    """The preprocessing and class names a torchvision weights entry states."""
    meta: dict[str, Any] = {"url": w.url}
    keywords = getattr(w.transforms, "keywords", {}) or {}
    pre: dict[str, Any] = {k: list(v) for k, v in keywords.items() if isinstance(v, tuple)}
    m = dict(w.meta)
    if "min_temporal_size" in m:
        pre["frames"] = m["min_temporal_size"]
    rate = re.search(r"frame_rate=([0-9.]+)", m.get("_docs", ""))
    if rate:
        pre["frame_rate"] = float(rate.group(1))
    clip = re.search(r"clip_len=([0-9]+)", m.get("_docs", ""))
    if clip:
        pre["frames"] = int(clip.group(1))
    meta["preprocessing"] = pre
    if "categories" in m:
        meta["categories"] = list(m["categories"])
    return meta


# ---------------------------------------------------------------- planning and loading


def plan(
    model: Model,
    want: dict[str, Shape],
    weights: Weights,
    *,
    new_head: bool = False,
) -> tuple[dict[str, torch.Tensor], list[LoadEntry]]:
    """The tensors to load into a module whose state_dict shapes are `want`, and the report's
    entries; raises WeightsError listing every tensor that does not fit."""
    state = {k: v for k, v in weights.state.items() if isinstance(v, torch.Tensor)}
    dialect = weights.dialect or detect_source(list(state))
    converted = convert_state_dict(state, dialect, spec=model)
    whole = expected_shapes(model)
    out: dict[str, torch.Tensor] = {}
    entries = _left_out(state, dialect)
    bad: set[str] = set()
    for name, tensor in converted.items():
        placed = place(model, name, tensor, want.get(name), name in whole, new_head)
        if placed is None:
            bad.add(name)
            continue
        loaded, entry = placed
        entries.append(entry)
        if loaded is not None:
            out[name] = loaded
    for name, shape in want.items():
        if name not in out:
            initialised = fresh(name, shape, new_head)
            if initialised is None:
                bad.add(name)
            else:
                entries.append(initialised)
    if bad:
        found = {k: tuple(v.shape) for k, v in converted.items()}
        if dialect == "sam2":  # another SAM2 size: one line, not one per tensor
            raise WeightsError(sam2_mismatch(model, converted, bad, weights.origin), found)
        raise WeightsError(mismatch_report(model, converted, bad, weights.origin), found)
    return out, entries


def _left_out(state: dict[str, torch.Tensor], dialect: Source) -> list[LoadEntry]:
    """A whole-model checkpoint's entries outside what the spec makes (detectron2's backbone,
    SAM2's image-encoder trunk), listed as ignored."""
    why = _NOT_OURS.get(dialect)
    if why is None:
        return []
    return [
        LoadEntry("ignored", k, tuple(v.shape), None, why)
        for k, v in state.items()
        if outside(k, dialect)
    ]


_NOT_OURS = {
    "detectron2": "not the backbone (detectron2)",
    "sam2": "not the image encoder's trunk (SAM2)",
}


def sam2_mismatch(
    model: Model, converted: dict[str, torch.Tensor], bad: set[str], origin: str
) -> str:
    """One line for a SAM2 trunk that does not fit the spec: counts, the first tensor that
    differs, and the likely cause."""
    want = expected_shapes(model)
    both = [n for n in want if n in bad and n in converted]  # in the module's order
    first = both[0] if both else min(bad)
    got = tuple(converted[first].shape) if first in converted else None
    return (
        f"{origin}: {len(bad)} tensors do not fit {model.name}'s {len(want)} (first: {first} "
        f"{_fmt(got)} in the checkpoint, {_fmt(want.get(first))} in the spec): a SAM2 trunk of "
        "another size?; nothing loaded"
    )


def place(
    model: Model,
    name: str,
    tensor: torch.Tensor,
    new: Shape | None,
    known: bool,
    new_head: bool,
) -> tuple[torch.Tensor | None, LoadEntry] | None:
    """One checkpoint tensor: (what to load or None, its report entry), or None if it does not
    fit. `new` is the module's shape for it (None: the module has no such entry), `known`
    whether the whole classification model would have it."""
    old = tuple(tensor.shape)
    if new is None:
        if not (known or name.endswith("num_batches_tracked")):
            return None
        why = "the model has no head (features)" if known else "buffer not used"
        return None, LoadEntry("ignored", name, old, None, why)
    if new_head and name.startswith("head.1."):
        return None, LoadEntry("ignored", name, old, None, "the checkpoint's classifier, replaced")
    if old == new:
        return tensor, LoadEntry("loaded", name, old, new)
    if not is_position(name) or (
        name.startswith("pos_encoding.") and not positions.resized_at_load(model)
    ):
        return None
    if tensor.ndim > len(new) and all(n == 1 for n in old[: tensor.ndim - len(new)]):
        tensor = tensor.reshape(old[tensor.ndim - len(new) :])  # SlowFast's (1, L, D)
    resized = resize_entry(name, tensor, new, shapes.patch_nominal(model), model.tokens.cls)
    if tuple(resized.shape) != new:
        return None
    how = _how(name, model.tokens.cls)
    return resized, LoadEntry("resized", name, old, new, f"{how}, to the spec's input size")


def _how(name: str, cls: bool) -> str:
    """The interpolation a position table gets (backend/resize.py)."""
    if name.endswith("pos_embed"):
        return "bicubic in space, linear in time" + ("; cls row kept" if cls else "")
    return "linear" if "temporal" in name or "rel_pos" in name else "bicubic"


def fresh(name: str, shape: Shape, new_head: bool) -> LoadEntry | None:
    """A module tensor the checkpoint does not give: freshly initialised, or None (missing)."""
    if new_head and name.startswith("head.1."):
        why = f"a new classifier for {shape[0]} classes, freshly initialised"
        return LoadEntry("initialised", name, None, shape, why)
    if name.endswith(("_norm.weight", "_norm.bias")) and not name.startswith("blocks."):
        return LoadEntry("initialised", name, None, shape, "a feature map's LayerNorm")
    return None


def mismatch_report(
    model: Model, converted: dict[str, torch.Tensor], bad: set[str], origin: str
) -> str:
    """`check --against`'s lines for the tensors that do not fit."""
    found = {k: tuple(v.shape) for k, v in converted.items()}
    _, mismatches = compare_shapes(model, found, "torchvision")
    lines = [m.render() for m in mismatches if m.name in bad]
    lines += [f"unexpected: {n}" for n in sorted(bad - {m.name for m in mismatches})]
    n = len(lines)
    lines.append(f"{origin}: {n} tensor{'s' * (n != 1)} do not fit {model.name}; nothing loaded")
    return "\n".join(lines)


def load_into(
    gm: nn.Module, model: Model, weights: Any, source: str | None = None, *, new_head: bool = False
) -> LoadReport:
    """Load weights into a built module strictly (what is not loaded is listed as initialised)."""
    w = resolve_weights(weights, source)
    own = gm.state_dict()
    want = {k: tuple(v.shape) for k, v in own.items()}
    tensors, entries = plan(model, want, w, new_head=new_head)
    full = {k: tensors.get(k, v) for k, v in own.items()}
    gm.load_state_dict(full, strict=True)
    dialect = w.dialect or detect_source(list(w.state))
    meta = {k: v for k, v in w.meta.items() if not (new_head and k == "categories")}
    return LoadReport(w.origin, dialect, model.name, tuple(entries), w.sha256, meta)


def nonfinite_names(gm: nn.Module) -> list[str]:
    """The module's floating-point tensors that hold NaN or Inf (after loading weights)."""
    return [
        k
        for k, v in gm.state_dict().items()
        if v.is_floating_point() and not bool(torch.isfinite(v).all())
    ]


def plan_report(
    model: Model, weights: Any, source: str | None = None, *, new_head: bool = False
) -> LoadReport:
    """The load report of weights against a spec, without building it (`check --weights`)."""
    w = resolve_weights(weights, source)
    _, entries = plan(model, expected_shapes(model), w, new_head=new_head)
    dialect = w.dialect or detect_source(list(w.state))
    return LoadReport(w.origin, dialect, model.name, tuple(entries), w.sha256, w.meta)


def manifest_extra(report: LoadReport | None, feature_info: Any = None) -> dict[str, Any]:
    """What travels with the weights into an artifact: origin, sha256, preprocessing, classes,
    the load report, and the feature outputs."""
    out: dict[str, Any] = {}
    if report is not None:
        out["weights"] = {
            "origin": report.origin,
            "dialect": report.dialect,
            "sha256": report.sha256,
        }
        out["preprocessing"] = report.meta.get("preprocessing", {})
        if "categories" in report.meta:
            out["categories"] = report.meta["categories"]
        out["load_report"] = report.to_dict()["entries"]
        out["load_report"] = [e for e in out["load_report"] if e["action"] != "loaded"]
    if feature_info is not None:
        out["feature_info"] = list(feature_info)
    return out
