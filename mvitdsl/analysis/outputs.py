"""Feature outputs (`outputs` setting, `build(features=...)`) from the IR alone: which stages,
and each map's channels, spatial reduction, temporal stride and grid. Never imports torch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..ir import Model
from ..ops.base import BlockFlow
from .graph import with_flows

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


def feature_info(
    model: Model, stages: list[str], flows: tuple[BlockFlow, ...] | None = None
) -> list[dict[str, Any]]:
    """Channels, spatial reduction and temporal stride of each output (timm's keys), the block
    it is taken after (`module`) and its grid."""
    by_index = {b.index: f for b, f in with_flows(model, flows)}
    t_in, h_in, _ = model.input.size
    out = []
    for stage in model.stages:
        if stage.name not in stages:
            continue
        last = stage.first + stage.depth - 1
        grid = by_index[last].grid_out
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


def spec_outputs(model: Model, flows: tuple[BlockFlow, ...] | None = None) -> list[dict[str, Any]]:
    """feature_info of the spec's `outputs` setting ([] without one)."""
    return feature_info(model, list(model.outputs.stages), flows) if model.outputs else []
