"""Multi-scale feature outputs: the built GraphModule rewired to return an ordered dict of maps.

    gm = mvitdsl.build(spec, features=["scale2", "scale3", "scale4", "scale5"])
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

from torch import fx, nn

from ..analysis.outputs import Selection, feature_info, select_stages
from ..ir import Model

__all__ = ["feature_info", "select_stages", "to_features"]


def to_features(
    gm: fx.GraphModule, model: Model, features: Selection, *, norm: bool = False
) -> fx.GraphModule:
    """Rewire a GraphModule built from `model` (in place) to return the feature dict."""
    stages = select_stages(model, features)
    infos = feature_info(model, stages)
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
                x = g.call_method("unflatten", (x, 2, tuple(info["grid"])))
        x.meta["stack_trace"] = node.meta.get("stack_trace", "")
        outputs[info["name"]] = x
    (out,) = [n for n in g.nodes if n.op == "output"]
    out.args = (outputs,)
    g.eliminate_dead_code()
    g.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    gm.feature_info = infos  # type: ignore[assignment]
    return gm
