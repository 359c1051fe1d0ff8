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

    from .explore.run import SweepRun

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
    "diff",
    "load_spec",
    "sweep",
    "__version__",
]


def build(
    spec: Spec,
    *,
    device: Any = None,
    dtype: torch.dtype | None = None,
    input: tuple[int, ...] | None = None,
    checkpoint: Any = False,
) -> fx.GraphModule:
    """Emit the GraphModule of a checked spec, with fresh weights, on `device` in `dtype`.

    `input` overrides the spec's input size, (C, T, H, W) for video or (C, H, W) for images.
    `checkpoint` recomputes blocks in backward: True, stage names ("scale4") or block indices.
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
    return gm


def compile(path_or_text: str | Path, **kw: Any) -> fx.GraphModule:  # noqa: A001
    """load_spec + build in one call; keyword arguments go to build."""
    return build(load_spec(path_or_text), **kw)


def sweep(base: Spec | str | Path, vary: Any = (), **kw: Any) -> SweepRun:
    """Rows (dicts) of a design-space sweep over a base spec; no torch. Keywords: `set`,
    `where`, `mode`, `samples`, `seed`, `max_variants`, `budgets`, `batch`, `dtype`, `pareto`,
    `join`, `emit` (see mvitdsl.explore.run.SweepRun).

        for row in mvitdsl.sweep("specs/mvit_b.mv", vary={"scale4.blocks": "8..16:2"}):
            print(row["id"], row["params"], row["gmacs"], row["pareto"])
    """
    from .explore.run import SweepRun

    return SweepRun(base, vary, **kw)


def diff(a: Spec | str | Path, b: Spec | str | Path) -> dict[str, Any]:
    """The settings, stage rows and per-stage costs that differ between two specs (JSON-ready)."""
    from .analysis.diff import diff_specs

    load = lambda s: s if isinstance(s, Spec) else load_spec(s)  # noqa: E731
    return diff_specs(load(a), load(b))
