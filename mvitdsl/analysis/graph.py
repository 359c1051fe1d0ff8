"""IR -> networkx DiGraph: one node per block (plus stem and head), shapes flowing along edges.

The graph holds what the checker and the analysis infer; the IR itself is never edited.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from ..ir import Block, Dims3, Model
from . import shapes


@dataclass(frozen=True)
class BlockFlow:
    """The shape flow through one block; grids are (T, H, W), lengths include the cls token."""

    grid_in: Dims3
    nominal_in: Dims3
    grid_q: Dims3
    grid_kv: Dims3
    grid_skip: Dims3
    nominal_out: Dims3
    len_in: int
    len_q: int
    len_kv: int
    rel_pos: tuple[int, int, int] | None

    @property
    def grid_out(self) -> Dims3:
        return self.grid_q


def block_flow(model: Model, block: Block, grid_in: Dims3, nominal_in: Dims3) -> BlockFlow:
    cls = model.tokens.cls
    grid_q = shapes.pooled(grid_in, block.pool_q)
    grid_kv = shapes.pooled(grid_in, block.pool_kv)
    grid_skip = shapes.pooled(grid_in, block.pool_skip) if block.has_skip_pool else grid_in
    rel = None
    if block.rel_pos == "decomposed":
        rel = shapes.rel_pos_sizes(block, nominal_in, model.video)
    return BlockFlow(
        grid_in=grid_in,
        nominal_in=nominal_in,
        grid_q=grid_q,
        grid_kv=grid_kv,
        grid_skip=grid_skip,
        nominal_out=shapes.nominal(nominal_in, block.pool_q.stride),
        len_in=shapes.tokens(grid_in, cls),
        len_q=shapes.tokens(grid_q, cls),
        len_kv=shapes.tokens(grid_kv, cls),
        rel_pos=rel,
    )


def build_graph(model: Model) -> nx.DiGraph:
    """A chain patch -> block0 -> ... -> head; each block node carries `block` and `shapes`."""
    g = nx.DiGraph(name=model.name)
    grid, nom = shapes.patch_grid(model), shapes.patch_nominal(model)
    g.add_node("patch", kind="patch", grid_out=grid, dim_out=model.patch.dim)
    previous = "patch"
    for block in model.blocks:
        flow = block_flow(model, block, grid, nom)
        name = f"block{block.index}"
        g.add_node(name, kind="block", block=block, shapes=flow)
        g.add_edge(previous, name, grid=grid, dim=block.dim_in, length=flow.len_in)
        previous, grid, nom = name, flow.grid_out, flow.nominal_out
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
    order = nx.topological_sort(g)
    return [
        (g.nodes[n]["block"], g.nodes[n]["shapes"]) for n in order if g.nodes[n]["kind"] == "block"
    ]
