"""Undoable graph edits for the CPU optimisation layer: a retargeted call remembers its semantic
target and arguments in its node's meta, an inserted call is marked, and `undo` restores the
semantic graph from those marks alone (so a deep copy or a re-optimised module undoes too)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import fx

SEMANTIC = "mvitdsl_semantic_target"  # meta: (target, args, kwargs) before the layer
INSERTED = "mvitdsl_inserted"  # meta: a call the layer put in front of its first argument's users


@dataclass(frozen=True)
class _Ref:
    """A node argument recorded by name: a copied graph (deepcopy) has new nodes, same names."""

    name: str


def _by_name(args: Any) -> Any:
    return fx.node.map_arg(args, lambda n: _Ref(n.name))  # type: ignore[arg-type,return-value]


def _resolved(args: Any, nodes: dict[str, fx.Node]) -> Any:
    return fx.node.map_aggregate(args, lambda a: nodes[a.name] if isinstance(a, _Ref) else a)


def retarget(node: fx.Node, target: Any, args: Any = None, kwargs: Any = None) -> None:
    """Point `node` at the layer's `target` (with new args/kwargs when given), recording the
    semantic call; a node already retargeted keeps its first record."""
    node.meta.setdefault(SEMANTIC, (node.target, _by_name(node.args), _by_name(node.kwargs)))
    node.target = target
    if args is not None:
        node.args = args
    if kwargs is not None:
        node.kwargs = kwargs


def insert_call(graph: fx.Graph, before: fx.Node, target: Any, args: tuple[Any, ...]) -> fx.Node:
    """A marked call of `target(*args)` just before `before`; undo replaces it by args[0]."""
    with graph.inserting_before(before):
        node = graph.call_function(target, args)
    node.meta[INSERTED] = True
    return node


def is_rewritten(graph: fx.Graph) -> bool:
    return any(SEMANTIC in n.meta or INSERTED in n.meta for n in graph.nodes)


def undo(graph: fx.Graph) -> bool:
    """Restore the semantic calls and drop the inserted ones; whether anything changed."""
    changed = False
    nodes = {n.name: n for n in graph.nodes}
    for node in list(graph.nodes):
        if INSERTED in node.meta:
            node.replace_all_uses_with(node.args[0])
            graph.erase_node(node)
            changed = True
        elif SEMANTIC in node.meta:
            target, args, kwargs = node.meta.pop(SEMANTIC)
            node.target, node.args, node.kwargs = (
                target,
                _resolved(args, nodes),
                _resolved(kwargs, nodes),
            )
            changed = True
    return changed
