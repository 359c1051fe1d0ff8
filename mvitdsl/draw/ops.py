"""The op level: the emitted fx graph of one block, for debugging.

The only drawing code that imports torch, and only when op_graph is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import graphviz

from ..analysis import shapes
from ..analysis.analyze import Report
from .diagram import lines, new_graph

if TYPE_CHECKING:
    from ..spec import Spec

OP_FILL = {
    "placeholder": "#eeeeee",
    "output": "#eeeeee",
    "call_module": "#dbe9f6",
    "call_function": "#fff2b3",
    "call_method": "white",
    "get_attr": "#f2d7ee",
}


def op_graph(spec: Spec, report: Report, index: int, rankdir: str = "TB") -> graphviz.Digraph:
    """The emitted fx graph of one block, shapes from ShapeProp on the meta device (debugging)."""
    import torch
    from torch.fx.passes.shape_prop import ShapeProp

    from .. import build

    gm = build(spec, device="meta").get_submodule(f"blocks.{index}")
    assert isinstance(gm, torch.fx.GraphModule)  # the emitter builds every block as one
    row = report.blocks[index]
    length = shapes.tokens(row.grid_in, report.model.tokens.cls)
    ShapeProp(gm).propagate(torch.empty(1, length, row.dim_in, device="meta"))
    g = new_graph(
        f"{report.name}_block{index}_ops",
        rankdir,
        f"{report.name} block {index}: emitted fx graph (shapes with batch 1)",
    )
    for node in gm.graph.nodes:
        g.node(
            f"op_{node.name}",
            lines(node.name, op_text(gm, node)),
            fillcolor=OP_FILL.get(node.op, "white"),
        )
        for arg in node.all_input_nodes:
            g.edge(f"op_{arg.name}", f"op_{node.name}", label=shape_text(arg))
    return g


def op_text(gm: Any, node: Any) -> str:
    """What an fx node runs, left out where the node's name already says it."""
    if node.op == "call_module":
        kind = type(gm.get_submodule(node.target)).__name__
        return kind if node.target.replace(".", "_") == node.name else f"{kind} {node.target}"
    if node.op == "call_function":
        name = getattr(node.target, "__name__", str(node.target))
        if name == "getitem" and len(node.args) > 1:
            return index_text(node.args[1])
        return "" if node.name.startswith(name) else name
    if node.op == "call_method":
        return "" if node.name.startswith(node.target) else f".{node.target}()"
    return ""


def index_text(index: Any) -> str:
    """A subscript as Python writes it: [:, :, 1:] or [0]."""
    parts = index if isinstance(index, tuple) else (index,)

    def one(p: Any) -> str:
        if isinstance(p, slice):
            return ":".join("" if v is None else str(v) for v in (p.start, p.stop)) + (
                "" if p.step is None else f":{p.step}"
            )
        return str(p)

    return "[" + ", ".join(one(p) for p in parts) + "]"


def shape_text(node: Any) -> str:
    meta = node.meta.get("tensor_meta")
    shape = getattr(meta, "shape", None)
    return "×".join(str(v) for v in shape) if shape is not None else ""
