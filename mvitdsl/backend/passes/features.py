"""The features pass: the built GraphModule rewired to return an ordered dict of feature maps.

    gm = mvitdsl.build(spec, features=["scale2", "scale3", "scale4", "scale5"])
    gm = features(model, ["scale2", "scale3"], norm=True)(gm)    # the pass build runs
    maps = gm(x)            # {"scale2": (B, C, T, H, W), ...}; (B, C, H, W) for images
    gm.feature_info         # [{"name", "module", "num_chs", "reduction", "temporal_stride"}]

Each map is taken after the stage's last block, prefix (cls) token dropped. In v1 models
(`dim_change mlp`) a stage's last block already projects to the next stage's width, so a map has
the width of its block's output (feature_info's num_chs says which). Blocks after the last output,
the final norm and the head are pruned. `norm=True` adds one LayerNorm per output, named
`{stage}_norm` (detectron2's `scale{k}_norm`), freshly initialised.
"""

from __future__ import annotations

import operator
from typing import Any

from torch import fx, nn

from ...analysis.outputs import Selection, feature_info, select_stages
from ...ir import Model
from ..emit import GRID_OUT
from ..runtime import spatial_of
from . import Pass


def features(model: Model, stages: Selection, *, norm: bool = False) -> Pass:
    """The pass rewiring a GraphModule built from `model` (in place) to return the maps after
    `stages` (names or indices); a bad selection is a ValueError here, before any graph."""
    infos = feature_info(model, select_stages(model, stages))

    def run(gm: fx.GraphModule) -> fx.GraphModule:
        return _rewire(gm, model, infos, norm)

    return run


def _rewire(
    gm: fx.GraphModule, model: Model, infos: list[dict[str, Any]], norm: bool
) -> fx.GraphModule:
    by_target = {n.target: n for n in gm.graph.nodes if n.op == "call_module"}
    g = gm.graph
    outputs: dict[str, fx.Node] = {}
    for info in infos:
        node = by_target[info["module"]]
        with g.inserting_after(node):
            x = node
            if norm:
                target = f"{info['name']}_norm"
                gm.add_submodule(target, nn.LayerNorm(info["num_chs"], eps=model.norm_eps))
                x = g.call_module(target, (x,))
            if model.tokens.cls:
                with g.inserting_after(x):
                    x = g.call_function(operator.getitem, (x, (slice(None), slice(1, None))))
            with g.inserting_after(x):
                x = g.call_method("transpose", (x, 1, 2))
            with g.inserting_after(x):
                size = g.call_function(spatial_of, (node.meta[GRID_OUT], model.spatial_dims))
            with g.inserting_after(size):
                x = g.call_method("unflatten", (x, 2, size))
        x.meta["stack_trace"] = node.meta.get("stack_trace", "")
        outputs[info["name"]] = x
    (out,) = [n for n in g.nodes if n.op == "output"]
    out.args = (outputs,)
    g.eliminate_dead_code()
    g.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    gm.feature_info = [dict(i) for i in infos]  # type: ignore[assignment]
    return gm
