"""The patch embedding: a strided convolution that cuts the input into tokens (`conv_proj`).
Its record, shape rule, costs, names, checks and emission."""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING, Any

from ..nodes import Dims3, Loc, Node
from .base import Costs, EmitsModel, Shape, Value, grid_out, nominal

if TYPE_CHECKING:
    from ..ir import Model

CONV_PROJ = "conv_proj"
PATCH_NORM = "patch_norm"
# the reference dialects' names (SlowFast, timm; timm's Swin's norm)
REFERENCE_NAMES = {
    f"patch_embed.{part}.{p}": f"{ours}.{p}"
    for part, ours in (("proj", CONV_PROJ), ("norm", PATCH_NORM))
    for p in ("weight", "bias")
}


class Patch(Node):
    """The patch embedding: a strided convolution that cuts the input into tokens."""

    kernel: Dims3
    stride: Dims3
    padding: Dims3
    dim: int
    loc: Loc
    norm: bool = False  # a LayerNorm over the tokens (Swin)


def grid(model: Model) -> Dims3:
    """The token grid the convolution makes."""
    p = model.patch
    return grid_out(model.input.size, p.kernel, p.stride, p.padding)


def nominal_grid(model: Model) -> Dims3:
    """The reference implementations' bookkeeping grid, input size // patch stride."""
    return nominal(model.input.size, model.patch.stride)


def costs(model: Model) -> Costs:
    p, d, c = model.patch, model.patch.dim, model.input.channels
    params = c * d * prod(p.kernel) + d + (2 * d if p.norm else 0)
    normed = prod(grid(model)) * d if p.norm else 0
    return Costs(
        params=params, other_macs=prod(grid(model)) * d * c * prod(p.kernel), norm_elems=normed
    )


def shapes(model: Model) -> dict[str, Shape]:
    p, d = model.patch, model.patch.dim
    out: dict[str, Shape] = {
        f"{CONV_PROJ}.weight": (d, model.input.channels, *model.spatial(p.kernel)),
        f"{CONV_PROJ}.bias": (d,),
    }
    if p.norm:
        out[f"{PATCH_NORM}.weight"], out[f"{PATCH_NORM}.bias"] = (d,), (d,)
    return out


def check(c: Any) -> bool:
    """An empty token grid (E303); True when reported. `c` is the analysis.check.Checker."""
    m, g = c.model, grid(c.model)
    if min(g) >= 1:
        return False
    c.r.error(
        "E303",
        f"the patch embedding leaves a {c.fmt(g)} grid from a {c.fmt(m.input.size)} input",
        c.setting_span("patch"),
        "use a smaller kernel or stride, or a larger input",
    )
    return True


def emit(e: EmitsModel, x: Value) -> tuple[Value, Value]:
    """(B, C, T, H, W) -> (B, T'H'W', D), and the token grid (T', H', W') read at run time."""
    from torch import nn

    from ..backend.runtime import token_grid

    m, p = e.model, e.model.patch
    conv = nn.Conv3d if e.nd == 3 else nn.Conv2d
    made = conv(
        m.input.channels,
        p.dim,
        e.grid(p.kernel),
        stride=e.grid(p.stride),
        padding=e.grid(p.padding),
    )
    x = e.module(CONV_PROJ, made, x)
    e.graph_loc(x, p.loc)
    grid = e.fn(token_grid, x)
    # (B, D, T', H', W') -> (B, T'H'W', D)
    x = e.method("flatten", x, 2)
    x = e.method("transpose", x, 1, 2)
    if p.norm:  # a norm right after a conv: `pool_eps` (timm's PVTv2: 1e-5, its blocks 1e-6)
        eps = m.norm_eps if m.pool_norm_eps is None else m.pool_norm_eps
        x = e.module(PATCH_NORM, nn.LayerNorm(p.dim, eps=eps), x)
    return x, grid
