"""Drawing: IR + report -> graphviz. The only modules that import graphviz.

Enters: the IR and the analysis report. Leaves: DOT graphs and rendered files at four levels
(`render`: model and stage levels, `draw()`, `render()` through `dot`; `block`: one MHPA
block; `ops`: the emitted fx graph of one block) and the paper's stage table (`table`); `diagram`
holds the house style. Every function takes plain arguments: the `mvitdsl draw` command is
cli/draw.py.
"""

from __future__ import annotations

from .block import default_block
from .diagram import node_count
from .render import DotFailed, DotMissing, draw, render
from .table import table_graph, table_markdown

__all__ = [
    "DotFailed",
    "DotMissing",
    "default_block",
    "draw",
    "node_count",
    "render",
    "table_graph",
    "table_markdown",
]
