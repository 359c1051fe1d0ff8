"""The checkpoint pass: chosen blocks recomputed in backward (activation checkpointing); the
parameter names stay torchvision's because only the top graph's call changes.

    gm = checkpoint(checkpointed_blocks(model, "scale4"))(gm)
"""

from __future__ import annotations

from collections.abc import Iterable

import torch.utils.checkpoint
from torch import fx

from ...ir import Model
from . import Pass

Selection = bool | str | Iterable[str | int]


def checkpointed_blocks(model: Model, selection: Selection) -> set[int]:
    """Block indices for a selection: True/"all", stage names ("scale4"), or block indices."""
    if selection is False or selection is None:
        return set()
    if selection is True or selection == "all":
        return {b.index for b in model.blocks}
    items = [selection] if isinstance(selection, (str, int)) else list(selection)
    stages = {s.name: range(s.first, s.first + s.depth) for s in model.stages}
    chosen: set[int] = set()
    for item in items:
        if isinstance(item, int) and 0 <= item < len(model.blocks):
            chosen.add(item)
        elif isinstance(item, str) and item in stages:
            chosen.update(stages[item])
        else:
            raise ValueError(
                f"checkpoint: {item!r} is neither a stage of {model.name} "
                f"({', '.join(stages)}) nor a block index below {len(model.blocks)}"
            )
    return chosen


def checkpoint(indices: Iterable[int]) -> Pass:
    """The pass calling `blocks.{i}` for each index through torch.utils.checkpoint
    (non-reentrant, RNG state preserved)."""
    wanted = frozenset(f"blocks.{i}" for i in indices)

    def run(gm: fx.GraphModule) -> fx.GraphModule:
        return _checkpoint(gm, wanted)

    return run


def _checkpoint(gm: fx.GraphModule, wanted: frozenset[str]) -> fx.GraphModule:
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or node.target not in wanted:
            continue
        with gm.graph.inserting_before(node):
            block = gm.graph.get_attr(node.target)
            call = gm.graph.call_function(
                torch.utils.checkpoint.checkpoint, (block, *node.args), {"use_reentrant": False}
            )
        call.meta = dict(node.meta)
        node.replace_all_uses_with(call)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()
    return gm
