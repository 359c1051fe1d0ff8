"""The classifier: LayerNorm (before or after pooling), the cls token or the mean of the patch
tokens, dropout, Linear. Its record, costs, names and emission."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ..nodes import Dims3, Loc, Node
from .base import Costs, EmitsModel, Shape, Value, linear, tokens

if TYPE_CHECKING:
    from ..ir import Model

NORM = "norm"  # the final norm
HEAD_DROPOUT, HEAD_FC = "head.0", "head.1"
# the reference dialects' names: SlowFast's `head.projection`, timm's `head.fc` (Hiera: mean,
# then `head.norm`), timm PVTv2's bare `head`
REFERENCE_NAMES = {
    f"{theirs}.{p}": f"{ours}.{p}"
    for theirs, ours in (
        ("head.projection", HEAD_FC),
        ("head.norm", NORM),
        ("head.fc", HEAD_FC),
        ("head", HEAD_FC),
    )
    for p in ("weight", "bias")
}


class Head(Node):
    """The classifier: LayerNorm, cls token or mean over the patch tokens, dropout, linear."""

    norm: bool
    pool: Literal["cls", "mean"]
    order: Literal["norm_pool", "pool_norm"] = "norm_pool"
    dropout: float
    classes: int
    loc: Loc


def costs(model: Model, grid: Dims3) -> Costs:
    """The head over the last block's `grid`: the norm sees every token, or one after pooling."""
    c = model.blocks[-1].dim_out
    fc_p, fc_m = linear(1, c, model.head.classes)
    norm_p = 2 * c if model.head.norm else 0
    normed = tokens(grid, model.tokens.cls) if model.head.order == "norm_pool" else 1
    norm_e = normed * c if model.head.norm else 0
    return Costs(params=fc_p + norm_p, other_macs=fc_m, norm_elems=norm_e)


def shapes(model: Model) -> dict[str, Shape]:
    c, classes = model.blocks[-1].dim_out, model.head.classes
    out: dict[str, Shape] = {}
    if model.head.norm:
        out[f"{NORM}.weight"], out[f"{NORM}.bias"] = (c,), (c,)
    out[f"{HEAD_FC}.weight"], out[f"{HEAD_FC}.bias"] = (classes, c), (classes,)
    return out


def emit(e: EmitsModel, x: Value) -> Value:
    """(B, L, C) -> (B, classes)."""
    import operator

    from torch import nn

    m = e.model
    c = m.blocks[-1].dim_out
    norm_first = m.head.order == "norm_pool"
    if m.head.norm and norm_first:
        x = e.layer_norm(NORM, c, x)
    if m.head.pool == "cls":
        x = e.fn(operator.getitem, x, (slice(None), 0))
    else:  # the mean over the patch tokens: the cls token is not averaged in (as timm)
        if m.tokens.cls:
            x = e.fn(operator.getitem, x, (slice(None), slice(1, None)))
        x = e.method("mean", x, 1)
    if m.head.norm and not norm_first:
        x = e.layer_norm(NORM, c, x)
    x = e.module(HEAD_DROPOUT, nn.Dropout(m.head.dropout), x)
    return e.module(HEAD_FC, nn.Linear(c, m.head.classes), x)
