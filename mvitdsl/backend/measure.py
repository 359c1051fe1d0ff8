"""What `mvitdsl search` measures of one variant on a device: latency through bench's timing loop,
the peak memory of a training step in a fresh child process, and a user's function called with
the built model. Each record says where and how it was measured.

Peak memory on the CPU: the child (forked from a server that imported torch once, so each
measurement costs a fork, not an import) builds the model and the input, resets the kernel's RSS
high-water mark (/proc/self/clear_refs), runs one SGD step and reports the growth of VmHWM over
the RSS before the step: what the step itself added, without the allocator caches of earlier
variants. On CUDA it is the allocator's peak (memory.peak_memory_gib, the same function).
"""

from __future__ import annotations

import multiprocessing
import platform
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..ir import Model
from .bench import (
    DTYPES,
    BenchOptions,
    _device_name,
    _iqr,
    eval_step,
    peak_memory_gib,
    time_alternating,
    train_step,
)
from .export import input_shape


def versions() -> dict[str, str]:
    """The software a measurement ran on."""
    from importlib.metadata import version

    return {
        "mvitdsl": version("mvitdsl"),
        "torch": torch.__version__,
        "optuna": version("optuna"),
        "python": platform.python_version(),
    }


def _built(model: Model, device: str, batch: int) -> tuple[nn.Module, torch.Tensor]:
    from .build import build_module

    torch.manual_seed(0)
    gm = build_module(model, device=device)
    x = torch.randn(batch, *input_shape(model), device=device)
    return gm, x


def _where(model: Model, device: str, batch: int, dtype: str) -> dict[str, Any]:
    return {
        "device": _device_name(device),
        "batch": batch,
        "dtype": dtype,
        "input": list(input_shape(model)),
        "threads": torch.get_num_threads(),
        "versions": versions(),
    }


def latency(
    model: Model, device: str, batch: int, dtype: str, reps: int, warmup: int = 1
) -> dict[str, Any]:
    """Inference latency: the median of `reps` timed calls (bench's loop), with the spread."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r}: one of {', '.join(DTYPES)}")
    gm, x = _built(model, device, batch)
    fn = eval_step(gm, x, BenchOptions(device=device, dtype=dtype, batch=batch))
    t = time_alternating({"variant": fn}, reps, device, warmup=warmup)["variant"]
    return {
        "latency_ms": t.median * 1e3,
        "latency_ms_min": min(t.seconds) * 1e3,
        "latency_ms_max": max(t.seconds) * 1e3,
        "latency_ms_iqr": _iqr(t.seconds) * 1e3,
        "reps": reps,
        **_where(model, device, batch, dtype),
    }


def _peak_child(model: Model, device: str, batch: int, dtype: str) -> dict[str, Any]:
    gm, x = _built(model, device, batch)
    step = train_step(gm, x, BenchOptions(device=device, dtype=dtype, batch=batch, train=True))
    gib, source = peak_memory_gib(step, device)
    return {
        "peak_memory_gib": gib,
        "peak_memory_source": source,
        **_where(model, device, batch, dtype),
    }


def _call(conn: Any, fn: Callable[..., dict[str, Any]], args: tuple[Any, ...]) -> None:
    try:
        conn.send(("ok", fn(*args)))
    except Exception as e:  # the parent reports it in one line
        conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        conn.close()


def _context() -> Any:
    if sys.platform.startswith("linux"):
        ctx = multiprocessing.get_context("forkserver")
        # imported once by the server, not by every child: the optimiser's first use imports
        # torch._dynamo (seconds), the build and optuna (the record's versions) too
        ctx.set_forkserver_preload(
            ["mvitdsl.backend.measure", "mvitdsl.backend.build", "optuna", "torch._dynamo"]
        )
        return ctx
    return multiprocessing.get_context("spawn")


def peak_memory(model: Model, device: str, batch: int, dtype: str) -> dict[str, Any]:
    """The peak memory of one training step, measured in a fresh child process."""
    ctx = _context()
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_call, args=(child, _peak_child, (model, device, batch, dtype)))
    proc.start()
    child.close()
    try:
        status, payload = parent.recv()
    except EOFError:
        status, payload = "error", f"the measuring process died (exit {proc.exitcode})"
    proc.join()
    if status != "ok":
        raise RuntimeError(f"peak_memory: {payload}")
    return payload  # type: ignore[no-any-return]


def user_value(fn: Callable[[nn.Module], Any], model: Model, device: str) -> float:
    """A user's objective: `fn(built_model)` (fresh weights, seed 0, on `device`) as a float."""
    from .build import build_module

    torch.manual_seed(0)
    gm = build_module(model, device=device)
    return float(fn(gm))
