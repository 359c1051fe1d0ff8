"""The optimize pass: the semantic graph's calls retargeted to their CPU-tuned replacements
(backend/kernels.py), and `semantic`, the pass that undoes it.

`optimize(gm)` (applied by `build(..., optimize="auto")` when the model is built for the CPU)
records the semantic target in each retargeted node's meta and swaps the class of the modules in
MODULES (a subclass with the same parameters), so `semantic(gm)` restores both: artifacts and
exports are written from the semantic graph (`semantic_graph(gm)` around both).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from .. import kernels, runtime
from ..kernels import max_pool, pool_conv, rel_pos_bias
from .rewrite import is_rewritten, retarget, undo
from .unroll import unroll

REPLACEMENTS: dict[Any, Any] = {
    runtime.depthwise_conv: pool_conv,
    runtime.rel_pos_bias: rel_pos_bias,
    F.max_pool2d: max_pool,  # the skip pools (and Hiera's pools where it is not unrolled)
    F.max_pool3d: max_pool,
    F.scaled_dot_product_attention: kernels.attention,  # short sequences as plain ops
    runtime.window_attention: kernels.window_attention,  # Swin's windows, the same
}
POOLS = (F.max_pool2d, F.max_pool3d)
# module class -> its CPU-tuned subclass (the same parameters and state-dict names)
MODULES: dict[type[nn.Module], type[nn.Module]] = {nn.Linear: kernels.Linear}


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


def _swap_classes(gm: fx.GraphModule, table: dict[type[nn.Module], type[nn.Module]]) -> None:
    for m in gm.modules():
        if type(m) in table:
            m.__class__ = table[type(m)]


def optimize(gm: fx.GraphModule) -> fx.GraphModule:
    """Swap the semantic calls and modules for this layer's (in place), and put Hiera-like
    models in the unrolled token order (passes/unroll.py, first: it reads the semantic max
    pools); idempotent."""
    if is_optimized(gm):
        return gm
    _swap_classes(gm, MODULES)
    unroll(gm)
    for sub in _graphs(gm):
        changed = False
        for node in sub.graph.nodes:
            if _replaceable(node):
                retarget(node, REPLACEMENTS[node.target])
                changed = True
        if changed:
            sub.recompile()
    return gm


def _replaceable(node: fx.Node) -> bool:
    """A call with a replacement, a max pool only as the emitter writes it: (x, kernel,
    stride, padding)."""
    if node.op != "call_function" or node.target not in REPLACEMENTS:
        return False
    return node.target not in POOLS or (len(node.args) == 4 and not node.kwargs)


def semantic(gm: fx.GraphModule) -> fx.GraphModule:
    """Undo `optimize` (in place): the graph of standard ops that artifacts and exports get."""
    _swap_classes(gm, {fast: plain for plain, fast in MODULES.items()})
    for sub in _graphs(gm):
        if undo(sub.graph):
            sub.graph.lint()
            sub.recompile()
    return gm


def is_optimized(gm: fx.GraphModule) -> bool:
    fast = tuple(MODULES.values())
    return any(type(m) in fast for m in gm.modules()) or any(
        is_rewritten(sub.graph) for sub in _graphs(gm)
    )


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
