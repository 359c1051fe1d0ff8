"""Drawing: IR + report -> graphviz. The only modules that import graphviz.

Enters: the IR and the analysis report. Leaves: DOT graphs and rendered files at four levels
(`render`: model and stage levels, `draw()` and the `mvitdsl draw` command; `block`: one MHPA
block; `ops`: the emitted fx graph of one block) and the paper's stage table (`table`); `diagram`
holds the house style.
"""

from __future__ import annotations

from .block import default_block
from .diagram import node_count
from .render import default_out, draw, run_draw_command, write
from .table import table_graph, table_markdown

__all__ = [
    "default_block",
    "default_out",
    "draw",
    "node_count",
    "run_draw_command",
    "table_graph",
    "table_markdown",
    "write",
]
