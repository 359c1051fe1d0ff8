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
from collections.abc import Sequence
from typing import Any

from torch import fx, nn

from ..analysis.graph import blocks_in_order, build_graph
from ..ir import Model

Selection = Sequence[str | int] | int


def select_stages(model: Model, features: Selection) -> list[str]:
    """Stage names from names, indices (negative too, as timm's out_indices), or a count n
    (the last n stages, as timm's `indices=n`); in network order."""
    names = [s.name for s in model.stages]
    if isinstance(features, int):
        if not 1 <= features <= len(names):
            raise ValueError(f"features={features}: the model has {len(names)} stages")
        return names[-features:]
    chosen: list[str] = []
    for f in features:
        if isinstance(f, int):
            if not -len(names) <= f < len(names):
                raise ValueError(f"no stage {f}: the model has {len(names)} stages ({names})")
            chosen.append(names[f])
        elif f in names:
            chosen.append(f)
        else:
            raise ValueError(f"no stage {f!r}; the stages are {', '.join(names)}")
    if not chosen:
        raise ValueError("features: name at least one stage")
    return sorted(set(chosen), key=names.index)


def feature_info(model: Model, stages: list[str]) -> list[dict[str, Any]]:
    """Channels, spatial reduction and temporal stride of each output (timm's keys)."""
    flows = {b.index: f for b, f in blocks_in_order(build_graph(model))}
    t_in, h_in, _ = model.input.size
    out = []
    for stage in model.stages:
        if stage.name not in stages:
            continue
        last = stage.first + stage.depth - 1
        grid = flows[last].grid_out
        info: dict[str, Any] = {
            "name": stage.name,
            "module": f"blocks.{last}",
            "num_chs": model.blocks[last].dim_out,
            "reduction": h_in // grid[1],
        }
        if model.input.kind == "video":
            info["temporal_stride"] = t_in // grid[0]
        info["grid"] = list(grid if model.input.kind == "video" else grid[1:])
        out.append(info)
    return out


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
