"""IR -> a GraphModule on a device, in a dtype, with chosen blocks checkpointed: what
`mvitdsl.build` runs once the driver has a checked model.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import fx

from ..ir import Model
from .emit import emit
from .passes import checkpoint_blocks, checkpointed_blocks


def build_module(
    model: Model,
    *,
    device: Any = None,
    dtype: torch.dtype | None = None,
    checkpoint: Any = False,
) -> fx.GraphModule:
    """Emit `model` with fresh weights; on "meta" a 667M-parameter model costs nothing."""
    # Create the parameters where they will live.
    with torch.device(device) if device is not None else contextlib.nullcontext():
        gm = emit(model)
    if device is not None or dtype is not None:
        gm = gm.to(device=device, dtype=dtype)
    if checkpoint is not False:
        gm = checkpoint_blocks(gm, checkpointed_blocks(model, checkpoint))
    return gm
