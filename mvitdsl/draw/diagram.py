"""The house style shared by every diagram: fills, labels, the graph defaults, shape texts.

Imported only by the drawing modules (it imports graphviz).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import graphviz

from ..analysis.analyze import Report
from ..ir import Dims3, Model, Pool, spatial

FONT = "Helvetica"
PALETTE = (
    "#dbe9f6",
    "#fde2c8",
    "#d9f0d3",
    "#f2d7ee",
    "#fff2b3",
    "#e0e0f8",
    "#cdeeee",
    "#f8d5d5",
    "#e8e8d0",
    "#d5e8f8",
    "#f6dcd0",
    "#dcefe4",
)


def colour(name: str) -> str:
    """A pastel fill derived from a name, the same on every run (sha1, not the salted hash())."""
    return PALETTE[hashlib.sha1(name.encode()).digest()[0] % len(PALETTE)]


def dims(values: Sequence[int], video: bool) -> str:
    """A grid, kernel or stride as people write it: T×H×W for video, H×W for images."""
    return "×".join(str(v) for v in spatial(tuple(values), video))


def lines(*parts: str) -> str:
    """A multi-line DOT label (graphviz's centred line break)."""
    return "\\n".join(p for p in parts if p)


def new_graph(name: str, rankdir: str, title: str) -> graphviz.Digraph:
    """A digraph with the house style: fonts of 10 pt and up so a PNG reads at natural size."""
    g = graphviz.Digraph(name=name)
    g.attr(
        rankdir=rankdir,
        label=title,
        labelloc="t",
        fontname=FONT,
        fontsize="16",
        nodesep="0.35",
        ranksep="0.4",
    )
    g.attr(
        "node",
        shape="box",
        style="rounded,filled",
        fillcolor="white",
        fontname=FONT,
        fontsize="12",
        margin="0.15,0.06",
    )
    g.attr("edge", fontname=FONT, fontsize="10", color="#555555")
    return g


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def title(report: Report) -> str:
    m = report.model
    cls = "counts include the cls token" if m.tokens.cls else "no cls token"
    return lines(
        f"{m.name}: {report.params:,} params, {report.macs / 1e9:.3f} GMACs",
        f"edges: token grid · channels ({cls})",
    )


class Shapes:
    """Edge and node texts of one model: grids in the model's own dimensionality."""

    def __init__(self, model: Model) -> None:
        self.video = model.video
        self.cls = model.tokens.cls

    def grid(self, grid: Sequence[int]) -> str:
        return dims(grid, self.video)

    def size(self, grid: Dims3, channels: int | str) -> str:
        return f"{self.grid(grid)} · {channels}"

    def pool(self, pool: Pool) -> str:
        return f"{pool.mode} {self.grid(pool.kernel)} stride {self.grid(pool.stride)}"


def node_count(g: graphviz.Digraph) -> int:
    """Nodes declared in a graph's DOT text (clusters, edges and defaults are not nodes)."""
    decl = re.compile(r'^\s*("(?:[^"\\]|\\.)*"|[\w.]+)\s*\[')
    return sum(
        1
        for line in g.source.splitlines()
        if (m := decl.match(line)) and m.group(1) not in ("graph", "node", "edge")
    )
