"""The block level: one block drawn as in the MViT paper's Figure 3, shapes on every edge.

This module draws the pre-norm residual skeleton (input, norms, the two adds, output); each op
sketches its own part as plain data (ops/, `Rules.draw`), rendered here with graphviz."""

from __future__ import annotations

import graphviz

from ..analysis.analyze import BlockRow, Report
from ..ir import Model
from ..ops import block as ops_block
from ..ops import window
from ..ops.base import DrawEdge, DrawItem, DrawNode, SameRank
from .diagram import Shapes, lines, new_graph

ADD = {"shape": "circle", "style": "", "fontsize": "14", "width": "0.3", "fixedsize": "true"}


def default_block(model: Model) -> int:
    """The first block with a Q stride (the interesting one), else block 0."""
    return next((b.index for b in model.blocks if b.has_skip_pool), 0)


def block_graph(report: Report, index: int, rankdir: str = "TB") -> graphviz.Digraph:
    """One block in the style of the paper's Figure 3, with shapes on every edge."""
    m, s = report.model, Shapes(report.model)
    b, row, flow = m.blocks[index], report.blocks[index], report.flows[index]
    cls = "with cls token" if s.cls else "no cls token"
    g = new_graph(
        f"{m.name}_block{index}",
        rankdir,
        lines(
            f"{m.name} block {index} ({b.stage}): {b.dim_in} → {b.dim_out}, {b.heads} heads × "
            f"{b.head_dim}",
            f"edges: token grid · channels; L_Q×L_K = {row.len_q}×{row.len_kv} ({cls})",
        ),
    )
    g.node("x", "block input", shape="plaintext", style="")
    entry = ops_block.draw_hook(b, flow, s, "enter", "x", b.dim_in)  # e.g. patch merging
    render(g, entry.items)
    g.node("norm1", "LayerNorm")
    g.edge(entry.end, "norm1", label=s.size(flow.grid_branches, entry.dim))
    attend = ops_block.draw_hook(b, flow, s, "attend", "norm1", entry.dim)
    render(g, attend.items)
    shortcut = ops_block.draw_hook(b, flow, s, "shortcut_attention", entry.end, entry.dim)
    render(g, shortcut.items)
    g.node("add1", "+", **ADD)
    g.edge(attend.end, "add1", label=s.size(row.grid_q, b.dim_attn))
    # both branches meet at the attention width (a projection has made it so where they differ)
    g.edge(shortcut.end, "add1", label=s.size(row.grid_q, b.dim_attn))
    g.node("norm2", "LayerNorm")
    g.edge("add1", "norm2", label=s.size(row.grid_q, b.dim_attn))
    mlp = ops_block.draw_hook(b, flow, s, "mlp", "norm2", b.dim_attn)
    render(g, mlp.items)
    g.node("add2", "+", **ADD)
    g.edge(mlp.end, "add2", label=s.size(row.grid_q, b.dim_out))
    shortcut2 = ops_block.draw_hook(b, flow, s, "shortcut_mlp", "add1", b.dim_attn)
    render(g, shortcut2.items)
    g.edge(shortcut2.end, "add2", label=s.size(row.grid_q, b.dim_out))
    leave = ops_block.draw_hook(b, flow, s, "exit", "add2", b.dim_out)  # e.g. a stage's norm
    render(g, leave.items)
    g.node("y", "block output", shape="plaintext", style="")
    g.edge(leave.end, "y", label=s.size(row.grid_q, b.dim_out))
    return g


def render(g: graphviz.Digraph, items: tuple[DrawItem, ...]) -> None:
    """An op's sketch into the graph: nodes, edges, and nodes kept side by side in order."""
    for item in items:
        if isinstance(item, DrawNode):
            g.node(item.id, item.label, **item.attrs)
        elif isinstance(item, DrawEdge):
            g.edge(item.tail, item.head, label=item.label, **item.attrs)
        elif isinstance(item, SameRank):
            with g.subgraph() as same:
                same.attr(rank="same")
                for name in item.ids:
                    same.node(name)
                for left, right in zip(item.ids, item.ids[1:]):  # keep Q, K, V in reading order
                    same.edge(left, right, style="invis")


def window_text(row: BlockRow, s: Shapes) -> str:
    """A windowed block's windows (the report row's): empty when the block attends globally."""
    if row.window_kv is None or row.window_q is None:
        return ""
    lag = row.scope.endswith("+lag")
    kind = "padded" if row.scope.startswith("window") else "mask-unit"
    return window.window_text(row.windows, row.window_kv, row.window_q, lag, s, kind)
