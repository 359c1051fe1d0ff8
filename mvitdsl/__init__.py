"""mvitdsl: a declarative language and compiler for Multiscale Vision Transformers.

    spec = mvitdsl.load_spec("specs/mvit_b.mv")     # parse + lower + shape-check (no torch)
    report = mvitdsl.analyze(spec)                  # shapes, params, MACs per stage and block
    gm = mvitdsl.build(spec)                        # torch.fx.GraphModule, torchvision names
    gm = mvitdsl.compile("specs/mvit_b.mv")         # all of the above in one call

Importing mvitdsl does not import torch; `build` and `compile` do.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .analysis.analyze import Report, analyze
from .backend.weights import convert_state_dict
from .diagnostics import Diagnostic, SpecError
from .spec import Spec, load_spec, resize

if TYPE_CHECKING:
    import torch
    from torch import fx

__version__ = "0.1.0"
__all__ = [
    "Diagnostic",
    "Report",
    "Spec",
    "SpecError",
    "analyze",
    "build",
    "compile",
    "convert_state_dict",
    "load_spec",
    "__version__",
]


def build(
    spec: Spec,
    *,
    device: Any = None,
    dtype: torch.dtype | None = None,
    input: tuple[int, ...] | None = None,
    checkpoint: Any = False,
    optimize: bool | str = "auto",
) -> fx.GraphModule:
    """Emit the GraphModule of a checked spec, with fresh weights, on `device` in `dtype`.

    `input` overrides the spec's input size, (C, T, H, W) for video or (C, H, W) for images.
    `checkpoint` recomputes blocks in backward: True, stage names ("scale4") or block indices.
    `optimize` applies the CPU optimisation layer (backend/optimize.py) over the semantic graph:
    "auto" when built for the CPU, True, or False for the semantic graph alone. Its choices
    are made on the tensors at run time, so `.to("cuda")` and autocast stay correct.
    """
    from .backend.emit import emit

    if input is not None:
        spec = resize(spec, input)
    import contextlib

    import torch

    # Create the parameters where they will live: on "meta" a 667M-parameter model costs nothing.
    with torch.device(device) if device is not None else contextlib.nullcontext():
        gm = emit(spec.model)
    if device is not None or dtype is not None:
        gm = gm.to(device=device, dtype=dtype)
    if checkpoint is not False:
        from .backend.passes import checkpoint_blocks, checkpointed_blocks

        gm = checkpoint_blocks(gm, checkpointed_blocks(spec.model, checkpoint))
    from .backend import optimize as layer

    if layer.wanted(optimize, device):
        gm = layer.optimize(gm)
    return gm


def compile(path_or_text: str | Path, **kw: Any) -> fx.GraphModule:  # noqa: A001
    """load_spec + build in one call; keyword arguments go to build."""
    return build(load_spec(path_or_text), **kw)
