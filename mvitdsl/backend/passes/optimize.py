"""The optimize pass: the semantic graph's calls retargeted to their CPU-tuned replacements
(backend/kernels.py), and `semantic`, the pass that undoes it.

`optimize(gm)` (applied by `build(..., optimize="auto")` when the model is built for the CPU)
records the semantic target in each retargeted node's meta, so `semantic(gm)` restores it:
artifacts and exports are written from the semantic graph (`semantic_graph(gm)` around both).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import fx

from .. import runtime
from ..kernels import pool_conv, rel_pos_bias

REPLACEMENTS: dict[Any, Any] = {
    runtime.depthwise_conv: pool_conv,
    runtime.rel_pos_bias: rel_pos_bias,
}
_SEMANTIC = "mvitdsl_semantic_target"


def wanted(optimize: bool | str, device: Any) -> bool:
    """Whether `build(..., optimize=)` applies the layer: "auto" for CPU builds only (the
    CUDA path is aten/cuDNN until a GPU measurement says otherwise)."""
    if optimize == "auto":
        return device is None or torch.device(device).type == "cpu"
    if isinstance(optimize, str):
        raise ValueError(f"optimize: expected True, False or 'auto', got {optimize!r}")
    return bool(optimize)


def _graphs(gm: fx.GraphModule) -> list[fx.GraphModule]:
    return [m for m in gm.modules() if isinstance(m, fx.GraphModule)]


def optimize(gm: fx.GraphModule) -> fx.GraphModule:
    """Swap the semantic calls for this layer's (in place); idempotent."""
    for sub in _graphs(gm):
        changed = False
        for node in sub.graph.nodes:
            if node.op == "call_function" and node.target in REPLACEMENTS:
                node.meta[_SEMANTIC] = node.target
                node.target = REPLACEMENTS[node.target]
                changed = True
        if changed:
            sub.recompile()
    return gm


def semantic(gm: fx.GraphModule) -> fx.GraphModule:
    """Undo `optimize` (in place): the graph of standard ops that artifacts and exports get."""
    for sub in _graphs(gm):
        changed = False
        for node in sub.graph.nodes:
            if _SEMANTIC in node.meta:
                node.target = node.meta.pop(_SEMANTIC)
                changed = True
        if changed:
            sub.recompile()
    return gm


def is_optimized(gm: fx.GraphModule) -> bool:
    return any(_SEMANTIC in n.meta for sub in _graphs(gm) for n in sub.graph.nodes)


@contextlib.contextmanager
def semantic_graph(gm: fx.GraphModule) -> Iterator[fx.GraphModule]:
    """gm as its semantic graph for the duration (writing an artifact, exporting), then as it
    was."""
    optimized = is_optimized(gm)
    semantic(gm)
    try:
        yield gm
    finally:
        if optimized:
            optimize(gm)
