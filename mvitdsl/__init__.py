"""mvitdsl: a declarative language and compiler for Multiscale Vision Transformers.

    spec = mvitdsl.load_spec("specs/mvit_b.mv")     # parse + lower + shape-check (no torch)
    spec = mvitdsl.load_spec(text="model ... { }")  # spec text goes through text= only
    report = mvitdsl.analyze(spec)                  # shapes, params, MACs per stage and block
    gm = mvitdsl.build(spec)                        # torch.fx.GraphModule, torchvision names
    gm = mvitdsl.compile("specs/mvit_b.mv")         # all of the above in one call

Importing mvitdsl does not import torch; `build` and `compile` do.
"""

from __future__ import annotations

import sys
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
    spec: Spec | str | Path,
    *,
    device: Any = None,
    dtype: torch.dtype | None = None,
    input: tuple[int, ...] | None = None,
    checkpoint: Any = False,
) -> fx.GraphModule:
    """Emit the GraphModule of a checked spec, with fresh weights, on `device` in `dtype`.

    `spec` is a Spec from load_spec, or a .mv file name (str or Path), which is loaded first.
    `input` overrides the spec's input size, (C, T, H, W) for video or (C, H, W) for images.
    `checkpoint` recomputes blocks in backward: True, stage names ("scale4") or block indices.
    Weights are initialised from torch's global RNG: seed it with torch.manual_seed first.
    Raises SpecError, or TypeError / ValueError with a message for an argument it cannot use.
    """
    from .backend.emit import emit

    if isinstance(spec, (str, Path)):
        spec = load_spec(spec)
    elif not isinstance(spec, Spec):
        raise TypeError(
            f"build takes a Spec (mvitdsl.load_spec(path)) or a .mv file name, "
            f"not {type(spec).__name__}"
        )
    import contextlib

    import torch

    device = _device_arg(device)
    dtype = _dtype_arg(dtype)
    _checkpoint_arg(checkpoint)
    if input is not None:
        spec = resize(spec, input)
    if checkpoint is not False:
        from .backend.passes import checkpointed_blocks

        chosen = checkpointed_blocks(spec.model, checkpoint)  # validates before building
    if _big(spec):
        print(f"mvitdsl: building {spec.name} ...", file=sys.stderr, flush=True)

    # Create the parameters where they will live: on "meta" a 667M-parameter model costs nothing.
    with torch.device(device) if device is not None else contextlib.nullcontext():
        gm = emit(spec.model)
    if device is not None or dtype is not None:
        gm = gm.to(device=device, dtype=dtype)
    if checkpoint is not False:
        from .backend.passes import checkpoint_blocks

        gm = checkpoint_blocks(gm, chosen)
    return gm


BIG_MODEL_PARAMS = 100_000_000  # building takes seconds from here on: say so on stderr


def _big(spec: Spec) -> bool:
    from math import prod

    from .backend.weights import expected_shapes

    return sum(prod(s) for s in expected_shapes(spec.model).values()) >= BIG_MODEL_PARAMS


def _device_arg(device: Any) -> Any:
    """A torch.device that exists here; ValueError / TypeError with a message otherwise."""
    if device is None:
        return None
    import torch

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
    import torch

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


def compile(  # noqa: A001
    path: str | Path | None = None,
    *,
    text: str | None = None,
    input: tuple[int, ...] | None = None,
    check: bool = True,
    device: Any = None,
    dtype: torch.dtype | None = None,
    checkpoint: Any = False,
) -> fx.GraphModule:
    """load_spec + build in one call: `path` is a .mv file name; spec text goes through `text=`.

    The other keywords are build's (`input` is load_spec's input_size, checked before building).
    """
    spec = load_spec(path, text=text, input_size=input, check=check)
    return build(spec, device=device, dtype=dtype, checkpoint=checkpoint)
