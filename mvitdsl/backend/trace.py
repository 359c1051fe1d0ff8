"""The emitted fx graph of one block as plain data, with shapes from ShapeProp on the meta
device: what the drawing's op level shows. Returns no torch objects, so its caller needs no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.fx.passes.shape_prop import ShapeProp

from ..analysis import shapes
from ..analysis.graph import BlockFlow, with_flows
from ..ir import Model
from .emit import emit


@dataclass(frozen=True)
class Op:
    """One fx node: its name, kind (`call_module`, ...), what it runs, and its inputs' shapes."""

    name: str
    op: str
    text: str
    inputs: tuple[tuple[str, str], ...]  # (input node's name, its shape as 1×8×96 or "")


def block_ops(
    model: Model, index: int, flows: tuple[BlockFlow, ...] | None = None
) -> tuple[Op, ...]:
    """The nodes of block `index`'s emitted graph, shapes propagated with batch 1 on meta
    (`flows`: the report's block flows, handed down)."""
    with torch.device("meta"):
        gm = emit(model, flows).get_submodule(f"blocks.{index}")
    assert isinstance(gm, torch.fx.GraphModule)  # the emitter builds every block as one
    block, flow = with_flows(model, flows)[index]
    length = shapes.tokens(flow.grid_in, model.tokens.cls)
    ShapeProp(gm).propagate(torch.empty(1, length, block.dim_in, device="meta"))
    return tuple(
        Op(
            node.name,
            node.op,
            op_text(gm, node),
            tuple((arg.name, shape_text(arg)) for arg in node.all_input_nodes),
        )
        for node in gm.graph.nodes
    )


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
