"""Fine-tuning helpers that need only torch (copied into every artifact as finetune.py).

    groups = param_groups(gm, lr=1e-3, weight_decay=0.05, layer_decay=0.75)
    opt = torch.optim.AdamW(groups)

`no_weight_decay(name, p)`: positions, rel-pos tables, the cls token, norms and biases take no
weight decay (timm's `no_weight_decay`, SlowFast's ZERO_WD_1D_PARAM). `layer_id(name, n)`: 0 for
the stem (patch embedding, positions, cls token), i + 1 for `blocks.i`, n + 1 for the rest (final
norm, head, feature norms): the layer-wise learning-rate decay of SlowFast's LAYER_DECAY and
timm's `group_matcher`, scale = layer_decay ** (n + 1 - layer_id).
"""

from __future__ import annotations

import re
from typing import Any

from torch import nn

_BLOCK = re.compile(r"^blocks\.(\d+)\.")


def no_weight_decay(name: str, param: nn.Parameter) -> bool:
    """Whether a parameter is excluded from weight decay."""
    return (
        param.ndim <= 1
        or name.endswith(".bias")
        or name.startswith("pos_encoding.")
        or ".rel_pos_" in name
        or _is_norm(name)
    )


def _is_norm(name: str) -> bool:
    parts = name.split(".")
    return any(p.startswith("norm") or p.endswith("_norm") for p in parts[:-1])


def num_blocks(model: nn.Module) -> int:
    """How many `blocks.i` the model has (from its parameter names)."""
    ids = {int(m.group(1)) for n, _ in model.named_parameters() if (m := _BLOCK.match(n))}
    return max(ids) + 1 if ids else 0


def layer_id(name: str, blocks: int) -> int:
    """0 for the stem, i + 1 for blocks.i, blocks + 1 for everything after the blocks."""
    m = _BLOCK.match(name)
    if m is not None:
        return int(m.group(1)) + 1
    if name.startswith(("conv_proj.", "pos_encoding.")):
        return 0
    return blocks + 1


def param_groups(
    model: nn.Module,
    *,
    lr: float | None = None,
    weight_decay: float = 0.05,
    layer_decay: float | None = None,
) -> list[dict[str, Any]]:
    """Optimizer parameter groups: one per (layer id, decay or not); each has `params`,
    `weight_decay`, `layer_id`, `lr_scale`, `names`, and `lr` (= lr * lr_scale) when lr is given.
    Without layer_decay every group has lr_scale 1 and the groups are just (decay, no decay)."""
    blocks = num_blocks(model)
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        lid = layer_id(name, blocks) if layer_decay is not None else 0
        skip = no_weight_decay(name, p)
        group = groups.get((lid, skip))
        if group is None:
            scale = layer_decay ** (blocks + 1 - lid) if layer_decay is not None else 1.0
            group = {
                "params": [],
                "names": [],
                "weight_decay": 0.0 if skip else weight_decay,
                "layer_id": lid,
                "lr_scale": scale,
            }
            if lr is not None:
                group["lr"] = lr * scale
            groups[(lid, skip)] = group
        group["params"].append(p)
        group["names"].append(name)
    return [groups[k] for k in sorted(groups)]


def indexable_head(model: nn.Module) -> nn.Module:
    """Make `model.head` an nn.Sequential (dropout, linear) as torchvision's, so that
    `model.head[1] = nn.Linear(c, n)` swaps the classifier; the graph calls `head.1` by name."""
    head = getattr(model, "head", None)
    if isinstance(head, nn.Module) and not isinstance(head, nn.Sequential):
        model.head = nn.Sequential(*head.children())
    return model
