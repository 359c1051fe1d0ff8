"""The residual add fused into the Linear before it (part of the optimize pass, undone by
`semantic`): `x + linear(y)` becomes `linear(y, x)` (kernels.Linear: in inference one oneDNN
matmul with the add as its post-op, else the same add after it) and the add node
`kernels.added` of it, so one pass over the output less and one parallel region less."""

from __future__ import annotations

import operator

from torch import fx

from .. import kernels
from .rewrite import retarget


def fuse_residual(gm: fx.GraphModule) -> bool:
    """Fuse every eligible residual add of gm's own graph (in place); whether any was."""
    order = {node: i for i, node in enumerate(gm.graph.nodes)}
    changed = False
    for node in list(gm.graph.nodes):
        found = _linear_and_residual(gm, node, order)
        if found is None:
            continue
        linear, residual = found
        retarget(linear, linear.target, args=(linear.args[0], residual))
        retarget(node, kernels.added, args=(linear,))
        changed = True
    return changed


def _linear_and_residual(
    gm: fx.GraphModule, node: fx.Node, order: dict[fx.Node, int]
) -> tuple[fx.Node, fx.Node] | None:
    """For `residual + linear(y)` (either order): the Linear's node, used only by this add and
    called on one argument, and the residual, computed before the Linear is called."""
    if node.op != "call_function" or node.target is not operator.add or node.kwargs:
        return None
    if len(node.args) != 2 or not all(isinstance(a, fx.Node) for a in node.args):
        return None
    for linear, residual in (node.args, node.args[::-1]):
        assert isinstance(linear, fx.Node) and isinstance(residual, fx.Node)
        if (
            linear.op == "call_module"
            and type(gm.get_submodule(str(linear.target))) is kernels.Linear
            and len(linear.args) == 1
            and not linear.kwargs
            and len(linear.users) == 1
            and residual is not linear
            and order[residual] < order[linear]
        ):
            return linear, residual
    return None
