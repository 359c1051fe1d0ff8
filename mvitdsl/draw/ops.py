"""The op level: the emitted fx graph of one block, for debugging.

The nodes come from mvitdsl.backend.trace (which emits on the meta device); this module draws
them and imports no torch itself.
"""

from __future__ import annotations

import graphviz

from ..analysis.analyze import Report
from .diagram import lines, new_graph

OP_FILL = {
    "placeholder": "#eeeeee",
    "output": "#eeeeee",
    "call_module": "#dbe9f6",
    "call_function": "#fff2b3",
    "call_method": "white",
    "get_attr": "#f2d7ee",
}


def op_graph(report: Report, index: int, rankdir: str = "TB") -> graphviz.Digraph:
    """The emitted fx graph of one block, shapes from ShapeProp on the meta device (debugging)."""
    from ..backend.trace import block_ops  # imports torch: only the op level needs it

    g = new_graph(
        f"{report.name}_block{index}_ops",
        rankdir,
        f"{report.name} block {index}: emitted fx graph (shapes with batch 1)",
    )
    for op in block_ops(report.model, index, report.flows or None):
        g.node(f"op_{op.name}", lines(op.name, op.text), fillcolor=OP_FILL.get(op.op, "white"))
        for name, shape in op.inputs:
            g.edge(f"op_{name}", f"op_{op.name}", label=shape)
    return g
