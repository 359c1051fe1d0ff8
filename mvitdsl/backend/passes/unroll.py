"""The unroll pass: a Hiera-like model (mask-unit windows, max pools with kernel = stride) run in
the unrolled token order of backend/order.py, so that no block partitions, merges or pools a
strided grid: the tokens are reordered once before the first block, each window op and max pool
is retargeted to its unrolled twin, and every use of a block's output other than the next block
or the head's mean over tokens is given the tokens back in raster order.

The pass recognises the graph the emitter writes for such models and nothing else: any op in a
block it does not know (a padded window, a conv pool, relative positions, a token-wise op it has
not been told is order-free), windows that are not one mask unit pooled down, or a mask unit
that the strides do not divide, and the model keeps the semantic graph. Part of the optimize
pass (passes/optimize.py), whose `semantic` undoes it (passes/rewrite.py).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from math import prod
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from .. import order, runtime
from ..emit import GRID_OUT
from .rewrite import insert_call, retarget

Dims3 = tuple[int, int, int]

POOLS: dict[Any, int] = {F.max_pool2d: 2, F.max_pool3d: 3}  # max pools: their spatial dims
WINDOWS: dict[Any, Any] = {
    runtime.window_partition: order.unrolled_partition,
    runtime.window_merge: order.unrolled_merge,
}
# calls that treat each token alike, whatever the order (per-token maps, attention, reshapes of
# the head and channel axes, grid arithmetic): checked by `_free` with the spatial rule below
FREE_FUNCTIONS = {
    operator.add,
    operator.getitem,
    torch.clone,
    F.scaled_dot_product_attention,
    runtime.pooled_grid,
    runtime.spatial_of,
}
FREE_METHODS = {"transpose", "unflatten", "flatten", "unbind"}
FREE_MODULES = (nn.Linear, nn.LayerNorm, nn.GELU, nn.Identity, nn.Dropout, runtime.DropPath)


@dataclass
class BlockCall:
    """One block call of the top graph and what the pass found in its graph."""

    call: fx.Node  # the call in the top graph (call_module, or torch.utils.checkpoint)
    gm: fx.GraphModule
    stride: Dims3 | None = None  # its Q max pools' stride
    pools: list[fx.Node] = field(default_factory=list)
    windows: list[tuple[fx.Node, Dims3, bool]] = field(default_factory=list)  # node, window, pooled


@dataclass
class Plan:
    blocks: list[BlockCall]
    unit: Dims3  # the mask unit at the first block's grid
    strides: list[Dims3]


def unroll(gm: fx.GraphModule) -> fx.GraphModule:
    """Run gm in the unrolled token order where the pass recognises the model (in place)."""
    plan = _plan(gm)
    if plan is not None:
        _apply(gm, plan)
    return gm


# -- recognising the model


def _block_calls(gm: fx.GraphModule) -> list[BlockCall] | None:
    """The block calls in order, each fed by the one before; None when they are not a chain."""
    blocks: list[BlockCall] = []
    for node in gm.graph.nodes:
        target = _block_target(node)
        if target is None:
            continue
        sub = gm.get_submodule(target)
        x = _block_args(node)[0]
        if not isinstance(sub, fx.GraphModule) or (blocks and x is not blocks[-1].call):
            return None
        blocks.append(BlockCall(node, sub))
    return blocks or None


def _block_target(node: fx.Node) -> str | None:
    if node.op == "call_module" and str(node.target).startswith("blocks."):
        return str(node.target)
    if node.op == "call_function" and node.target is torch.utils.checkpoint.checkpoint:
        first = node.args[0]
        if isinstance(first, fx.Node) and first.op == "get_attr":
            return str(first.target)
    return None


def _block_args(node: fx.Node) -> tuple[Any, ...]:
    """(x, grid) of a block call, direct or through checkpoint."""
    return node.args if node.op == "call_module" else node.args[1:]


def _scan(block: BlockCall) -> bool:
    """Fill `block` from its graph; False at the first node the pass does not know."""
    grid = next(n for n in block.gm.graph.nodes if n.op == "placeholder" and n.name == "grid")
    for node in block.gm.graph.nodes:
        if node.op in ("placeholder", "output", "get_attr"):
            continue
        if node.op == "call_function" and node.target in POOLS:
            if not _pool(block, node):
                return False
        elif node.op == "call_function" and node.target in WINDOWS:
            grid_arg, window = node.args[-2], node.args[-1]
            block.windows.append((node, tuple(window), grid_arg is not grid))
        elif not _free(block.gm, node):
            return False
    return all(_spatial_use_ok(n) for n in block.gm.graph.nodes if n.target is runtime.spatial_of)


def _free(gm: fx.GraphModule, node: fx.Node) -> bool:
    if node.op == "call_function" and node.target is operator.getitem:
        return isinstance(node.args[1], int)  # an item of unbind's q, k, v; never a token slice
    if node.op == "call_function":
        return node.target in FREE_FUNCTIONS
    if node.op == "call_method":
        return node.target in FREE_METHODS
    if node.op == "call_module":
        return isinstance(gm.get_submodule(str(node.target)), FREE_MODULES)
    return False


def _spatial_use_ok(size: fx.Node) -> bool:
    """The grid's spatial sizes only unflatten tokens for a max pool (the one spatial op the
    unrolled order replaces)."""
    return all(
        u.target == "unflatten" and all(p.target in POOLS for p in u.users) for u in size.users
    )


def _pool(block: BlockCall, node: fx.Node) -> bool:
    """A max pool with kernel = stride, no padding, the block's one stride."""
    dims = POOLS[node.target]
    if len(node.args) != 4 or node.kwargs:
        return False
    kernel, stride, padding = (tuple(a) for a in node.args[1:] if isinstance(a, (tuple, list)))
    if kernel != stride or any(padding) or len(stride) != dims:
        return False
    s3: Dims3 = (1, stride[0], stride[1]) if dims == 2 else (stride[0], stride[1], stride[2])
    if block.stride not in (None, s3):
        return False
    block.stride = s3
    block.pools.append(node)
    return True


def _plan(gm: fx.GraphModule) -> Plan | None:
    """The blocks, mask unit and strides, when every block is recognised and its windows are
    the mask unit pooled down; None otherwise."""
    blocks = _block_calls(gm)
    if blocks is None or not all(_scan(b) for b in blocks):
        return None
    strides: list[Dims3] = []
    units: set[Dims3] = set()
    for b in blocks:
        for _, window, pooled in b.windows:
            before = [*strides, b.stride] if pooled and b.stride else strides
            units.add(_times(window, _product(before)))
        if b.stride is not None:
            strides.append(b.stride)
    if len(units) != 1:  # no windows (nothing to gain), or windows that are not mask units
        return None
    (unit,) = units
    if any(u % p for u, p in zip(unit, _product(strides))) or not _whole_units(gm, unit):
        return None
    return Plan(blocks, unit, strides)


def _whole_units(gm: fx.GraphModule, unit: Dims3) -> bool:
    """Whether the size rule makes every token grid a whole number of mask units: the input's
    multiples (`check_size`) over the patch conv's stride, divided by the unit. A rule that
    allows other grids (windows padded at run time) keeps the semantic graph."""
    check = next((n for n in gm.graph.nodes if n.target is runtime.check_size), None)
    if check is None or len(check.users) != 1:
        return False
    (stem,) = check.users
    conv = gm.get_submodule(str(stem.target)) if stem.op == "call_module" else None
    if not isinstance(conv, (nn.Conv2d, nn.Conv3d)):
        return False
    multiple = tuple(check.args[1])
    strides = tuple(conv.stride)[-len(multiple) :]
    units = unit[3 - len(multiple) :]
    return all(m % (s * u) == 0 for m, s, u in zip(multiple, strides, units))


def _product(strides: list[Dims3]) -> Dims3:
    return (prod(s[0] for s in strides), prod(s[1] for s in strides), prod(s[2] for s in strides))


def _times(a: Dims3, b: Dims3) -> Dims3:
    return (a[0] * b[0], a[1] * b[1], a[2] * b[2])


def _over(a: Dims3, b: Dims3) -> Dims3:
    return (a[0] // b[0], a[1] // b[1], a[2] // b[2])


# -- rewriting


def _apply(gm: fx.GraphModule, plan: Plan) -> None:
    first = plan.blocks[0].call
    x, grid = _block_args(first)[:2]
    start = insert_call(gm.graph, first, order.to_unrolled, (x, grid, plan.unit, plan.strides))
    first.replace_input_with(x, start)
    level = 0
    for i, b in enumerate(plan.blocks):
        unit = _over(plan.unit, _product(plan.strides[:level]))
        _rewrite_block(b, unit)
        if b.stride is not None:
            level += 1
        after = plan.blocks[i + 1].call if i + 1 < len(plan.blocks) else None
        _raster_for_others(gm, b.call, after, plan, level)
    gm.graph.lint()
    gm.recompile()


def _rewrite_block(b: BlockCall, unit: Dims3) -> None:
    """Windows and pools to their unrolled twins; the head merge after a window merge reads
    the merge's (B, L, heads, d) layout without a copy."""
    for node in b.pools:
        dims = POOLS[node.target]
        retarget(node, order.unrolled_max_pool, (*node.args, unit[3 - dims :]))
    for node, _, _ in b.windows:
        if node.target is runtime.window_merge:
            _dense_after(node)
        retarget(node, WINDOWS[node.target])
    b.gm.graph.lint()
    b.gm.recompile()


def _dense_after(merge: fx.Node) -> None:
    for t in merge.users:
        for c in t.users:
            if c.target is torch.clone and c.kwargs.get("memory_format") is torch.contiguous_format:
                retarget(c, order.dense)


def _raster_for_others(
    gm: fx.GraphModule, call: fx.Node, after: fx.Node | None, plan: Plan, level: int
) -> None:
    """Every user of a block's output but the next block and a mean over tokens gets the
    tokens in raster order."""
    users = [u for u in call.users if u is not after and not _token_mean(u)]
    if not users:
        return
    unit = _over(plan.unit, _product(plan.strides[:level]))
    args = (call, call.meta[GRID_OUT], unit, plan.strides[level:])
    raster = insert_call(gm.graph, call.next, order.from_unrolled, args)  # right after the call
    raster.meta[GRID_OUT] = call.meta[GRID_OUT]
    for u in users:
        u.replace_input_with(call, raster)


def _token_mean(node: fx.Node) -> bool:
    return node.op == "call_method" and node.target == "mean" and node.args[1:] == (1,)
