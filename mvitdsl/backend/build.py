"""IR -> a GraphModule on a device, in a dtype, with chosen blocks checkpointed: what
`mvitdsl.build` runs once the driver has a checked model. The graph rewrites are the passes of
`passes/` (features, checkpoint, optimize), each `pass(gm) -> gm`.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from math import prod
from typing import Any

import torch
from torch import fx

from ..analysis.graph import BlockFlow
from ..analysis.naming import expected_shapes
from ..ir import Model
from .emit import emit
from .finetune import indexable_head
from .load import load_into
from .passes.checkpoint import checkpoint as checkpoint_pass
from .passes.checkpoint import checkpointed_blocks
from .passes.compiled import compile_arg, compiled
from .passes.features import features as features_pass
from .passes.optimize import optimize as optimize_pass
from .passes.optimize import wanted


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
    optimize: bool | str = "auto",
    flows: tuple[BlockFlow, ...] | None = None,
    compile: Any = False,  # noqa: A002
) -> fx.GraphModule:
    """Emit `model` with fresh weights (or `weights`, converted and resized: see build's doc);
    on "meta" a 667M-parameter model costs nothing. Bad arguments: TypeError / ValueError.
    `flows`: the block flows of the spec's report (computed here when None)."""
    mode = compile_arg(compile)
    device = _device_arg(device)
    dtype = _dtype_arg(dtype)
    _checkpoint_arg(checkpoint)
    chosen = checkpointed_blocks(model, checkpoint) if checkpoint is not False else []
    if _big(model, flows):
        print(f"mvitdsl: building {model.name} ...", file=sys.stderr, flush=True)
    # Create the parameters where they will live.
    with torch.device(device) if device is not None else contextlib.nullcontext():
        gm = emit(model, flows)  # the block flows of the spec's report, handed down
    gm = finish(gm, model, weights, source, new_head, features, feature_norm)
    if device is not None or dtype is not None:
        gm = gm.to(device=device, dtype=dtype)
    if checkpoint is not False:
        gm = checkpoint_pass(chosen)(gm)
    if wanted(optimize, device):  # the CPU optimisation layer over the semantic graph
        gm = optimize_pass(gm)
    return compiled(mode)(gm)  # last: it compiles the graph the passes left


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
        gm = features_pass(model, features, norm=feature_norm)(gm)
    else:
        indexable_head(gm)
    if weights is not None:
        report = load_into(gm, model, weights, source, new_head=new_head)
        gm.load_report = report  # type: ignore[assignment]
        logging.getLogger("mvitdsl").info("%s", report.render())
    return gm


BIG_MODEL_PARAMS = 100_000_000  # building takes seconds from here on: say so on stderr


def _big(model: Model, flows: tuple[BlockFlow, ...] | None) -> bool:
    return sum(prod(s) for s in expected_shapes(model, flows).values()) >= BIG_MODEL_PARAMS


def _device_arg(device: Any) -> Any:
    """A torch.device that exists here; ValueError / TypeError with a message otherwise."""
    if device is None:
        return None
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device= must be a str or torch.device, not {type(device).__name__}")
    try:
        device = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise ValueError(f"device={device!r} is not a device: {_first_line(e)}") from None
    if device.type not in ("cpu", "meta"):
        try:
            torch.empty(0, device=device)
        except Exception as e:  # no CUDA, no such index, a backend not built in
            raise ValueError(f"device {device} is not available: {_first_line(e)}") from None
    return device


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def _dtype_arg(dtype: Any) -> Any:
    if dtype is None:
        return None
    allowed = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
    if not any(dtype is d for d in allowed):
        raise TypeError(
            f"dtype= must be one of torch.float32, torch.bfloat16, torch.float16, "
            f"torch.float64; not {dtype!r}"
        )
    return dtype


def _checkpoint_arg(checkpoint: Any) -> None:
    ok = isinstance(checkpoint, (bool, str, int)) or (
        isinstance(checkpoint, (list, tuple, set, frozenset))
        and all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in checkpoint)
    )
    if not ok or checkpoint is None:
        raise TypeError(
            "checkpoint= takes True/False, a stage name, a block index, or a list of them; "
            f"got {checkpoint!r}"
        )
