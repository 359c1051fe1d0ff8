"""IR -> a GraphModule on a device, in a dtype, with chosen blocks checkpointed: what
`mvitdsl.build` runs once the driver has a checked model.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import torch
from torch import fx

from ..ir import Model
from .emit import emit
from .features import to_features
from .finetune import indexable_head
from .load import load_into
from .passes import checkpoint_blocks, checkpointed_blocks


def build_module(
    model: Model,
    *,
    device: Any = None,
    dtype: torch.dtype | None = None,
    checkpoint: Any = False,
    weights: Any = None,
    source: str | None = None,
    new_head: bool = False,
    features: Any = None,
    feature_norm: bool | None = None,
) -> fx.GraphModule:
    """Emit `model` with fresh weights (or `weights`, converted and resized: see build's doc);
    on "meta" a 667M-parameter model costs nothing."""
    # Create the parameters where they will live.
    with torch.device(device) if device is not None else contextlib.nullcontext():
        gm = emit(model)
    gm = finish(gm, model, weights, source, new_head, features, feature_norm)
    if device is not None or dtype is not None:
        gm = gm.to(device=device, dtype=dtype)
    if checkpoint is not False:
        gm = checkpoint_blocks(gm, checkpointed_blocks(model, checkpoint))
    return gm


def finish(
    gm: fx.GraphModule,
    model: Model,
    weights: Any,
    source: str | None,
    new_head: bool,
    features: Any,
    feature_norm: bool | None,
) -> fx.GraphModule:
    """Indexable head, feature outputs, then weights (a feature model ignores the head's)."""
    outputs = model.outputs
    if features is None and outputs is not None:
        features = list(outputs.stages)
    if feature_norm is None:
        feature_norm = outputs is not None and outputs.norm
    if features is not None and features is not False:
        gm = to_features(gm, model, features, norm=feature_norm)
    else:
        indexable_head(gm)
    if weights is not None:
        report = load_into(gm, model, weights, source, new_head=new_head)
        gm.load_report = report  # type: ignore[assignment]
        logging.getLogger("mvitdsl").info("%s", report.render())
    return gm
