"""The residual add and the GELU fused into the Linear before them (part of the optimize pass,
undone by `semantic`): `x + linear(y)` becomes `linear(y, x)` and `gelu(linear(y))` becomes
`linear(y, gelu=True)` (kernels.Linear: in inference one oneDNN matmul with the add or GELU as
its post-op, else the same op after it), and the add or GELU node `kernels.added` of it: one
pass over the output and one parallel region less per fused op."""

from __future__ import annotations

import operator
from typing import Any

from torch import fx, nn

from .. import kernels
from .rewrite import retarget


def fuse_residual(gm: fx.GraphModule) -> bool:
    """Fuse every eligible residual add and GELU of gm's own graph (in place); whether any
    was."""
    order = {node: i for i, node in enumerate(gm.graph.nodes)}
    changed = False
    for node in list(gm.graph.nodes):
        if _gelu_of_linear(gm, node):
            linear = node.args[0]
            assert isinstance(linear, fx.Node)
            retarget(linear, linear.target, kwargs={"gelu": True})
        elif (found := _linear_and_residual(gm, node, order)) is not None:
            linear, residual = found
            retarget(linear, linear.target, args=(linear.args[0], residual))
        else:
            continue
        retarget(node, kernels.added, args=(linear,), kwargs={}, op="call_function")
        changed = True
    return changed


def _lone_linear(gm: fx.GraphModule, node: Any) -> bool:
    """A kernels.Linear called on one argument, its output used once (by the op to fuse)."""
    return (
        isinstance(node, fx.Node)
        and node.op == "call_module"
        and type(gm.get_submodule(str(node.target))) is kernels.Linear
        and len(node.args) == 1
        and not node.kwargs
        and len(node.users) == 1
    )


def _gelu_of_linear(gm: fx.GraphModule, node: fx.Node) -> bool:
    """An exact nn.GELU called on a lone Linear's output."""
    if node.op != "call_module" or len(node.args) != 1 or node.kwargs:
        return False
    module = gm.get_submodule(str(node.target))
    exact = type(module) is nn.GELU and module.approximate == "none"
    return exact and _lone_linear(gm, node.args[0])


def _linear_and_residual(
    gm: fx.GraphModule, node: fx.Node, order: dict[fx.Node, int]
) -> tuple[fx.Node, fx.Node] | None:
    """For `residual + linear(y)` (either order): the lone Linear's node and the residual,
    computed before the Linear is called."""
    if node.op != "call_function" or node.target is not operator.add or node.kwargs:
        return None
    if len(node.args) != 2 or not all(isinstance(a, fx.Node) for a in node.args):
        return None
    for linear, residual in (node.args, node.args[::-1]):
        assert isinstance(linear, fx.Node) and isinstance(residual, fx.Node)
        if _lone_linear(gm, linear) and residual is not linear and order[residual] < order[linear]:
            return linear, residual
    return None
