"""IR -> networkx DiGraph: one node per block (plus stem and head), shapes flowing along edges.

The graph holds what the checker and the analysis infer; the IR itself is never edited.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..ir import Block, Dims3, Model
from ..ops import block as ops_block
from ..ops.base import BlockFlow as BlockFlow  # the flow record lives beside the op rules
from . import shapes

if TYPE_CHECKING:
    import networkx as nx


def block_flow(model: Model, block: Block, grid_in: Dims3, nominal_in: Dims3) -> BlockFlow:
    """The shapes through one block, from its ops' shape rules."""
    return ops_block.flow(model, block, grid_in, nominal_in)


def block_flows(model: Model) -> tuple[BlockFlow, ...]:
    """The shapes through every block, in order: computed once (spec.check_spec), then handed
    down to the checker, the analysis (Report.flows), naming, emission and drawing."""
    grid, nom = shapes.patch_grid(model), shapes.patch_nominal(model)
    out = []
    for block in model.blocks:
        flow = block_flow(model, block, grid, nom)
        out.append(flow)
        grid, nom = flow.grid_out, flow.nominal_out
    return tuple(out)


def build_graph(model: Model, flows: tuple[BlockFlow, ...] | None = None) -> nx.DiGraph:
    """A chain patch -> block0 -> ... -> head; each block node carries `block` and `shapes`."""
    import networkx as nx  # here, not at import: `check` and the sweep never build the graph

    flows = block_flows(model) if flows is None else flows
    g = nx.DiGraph(name=model.name)
    grid = shapes.patch_grid(model)
    g.add_node("patch", kind="patch", grid_out=grid, dim_out=model.patch.dim)
    previous = "patch"
    for block, flow in zip(model.blocks, flows):
        name = f"block{block.index}"
        g.add_node(name, kind="block", block=block, shapes=flow)
        g.add_edge(previous, name, grid=grid, dim=block.dim_in, length=flow.len_in)
        previous, grid = name, flow.grid_out
    g.add_node("head", kind="head", classes=model.head.classes)
    g.add_edge(
        previous,
        "head",
        grid=grid,
        dim=model.blocks[-1].dim_out if model.blocks else 0,
        length=shapes.tokens(grid, model.tokens.cls),
    )
    return g


def blocks_in_order(g: nx.DiGraph) -> list[tuple[Block, BlockFlow]]:
    import networkx as nx

    order = nx.topological_sort(g)
    return [
        (g.nodes[n]["block"], g.nodes[n]["shapes"]) for n in order if g.nodes[n]["kind"] == "block"
    ]


def with_flows(
    model: Model, flows: tuple[BlockFlow, ...] | None = None
) -> list[tuple[Block, BlockFlow]]:
    """Each block with its flow: the handed-down flows, else computed here."""
    return list(zip(model.blocks, block_flows(model) if flows is None else flows))
