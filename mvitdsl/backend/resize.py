"""Position tables of a checkpoint resized to a model built at another input size.

Done once, at load time, so the model then loads strictly and runs at its own size:

The functions are runtime.py's, so a module resized at load time and one that resizes at run
time (`runtime.joint_at`, `runtime.separable_positions`) give the same numbers.

- absolute positions, separable (torchvision/SlowFast `temporal_pos` (T, D) and `spatial_pos`
  (H*W, D)): time linearly, space bicubically with antialiasing, as timm's
  `resample_abs_pos_embed`; the class position (its own entry) is kept as it is.
- absolute positions, joint (`pos_embed` (1, [1 +] T*H*W, D)): the cls row kept, space bicubic
  per frame, then time linear per position (for images exactly timm's `resample_abs_pos_embed`).
- decomposed relative positions (`rel_pos_{t,h,w}` (2n - 1, head_dim)): linearly, as timm's
  mvitv2 `checkpoint_filter_fn` does at load.
"""

from __future__ import annotations

import math

from torch import Tensor

from .runtime import bicubic_grid, joint_at, linear_rows

__all__ = ["bicubic_grid", "linear_rows", "resize_entry", "resize_joint", "resize_separable"]

Grid = tuple[int, int, int]


def old_spatial(tokens: int, new: tuple[int, int]) -> tuple[int, int]:
    """The checkpoint's (H, W) from its token count: the new grid's aspect ratio, else square."""
    h, w = new
    scale = math.isqrt(tokens // (h * w)) if tokens % (h * w) == 0 else 0
    if scale and scale * scale * h * w == tokens:
        return h * scale, w * scale
    for k in range(1, tokens + 1):  # new = old * k
        if h % k == 0 and w % k == 0 and (h // k) * (w // k) == tokens:
            return h // k, w // k
    side = math.isqrt(tokens)
    if side * side != tokens:
        raise ValueError(f"cannot tell the spatial grid of a {tokens}-position table")
    return side, side


def resize_separable(temporal: Tensor, spatial: Tensor, new: Grid) -> tuple[Tensor, Tensor]:
    """torchvision's (T, D) temporal and (H*W, D) spatial tables at grid `new` (T, H, W)."""
    t, h, w = new
    old_hw = old_spatial(spatial.shape[0], (h, w))
    return linear_rows(temporal, t), bicubic_grid(spatial.unsqueeze(0), old_hw, (h, w))[0]


def resize_spatial(spatial: Tensor, new: Grid) -> Tensor:
    """A separable spatial table (H*W, D) at grid `new`."""
    old_hw = old_spatial(spatial.shape[0], new[1:])
    return bicubic_grid(spatial.unsqueeze(0), old_hw, new[1:])[0]


def old_joint_grid(tokens: int, new: Grid) -> Grid:
    """The checkpoint's (T, H, W) for a joint table: same T with another (H, W), else same (H, W)
    with another T."""
    t, h, w = new
    if tokens % t == 0:
        try:
            return (t, *old_spatial(tokens // t, (h, w)))
        except ValueError:
            pass
    if tokens % (h * w) == 0:
        return (tokens // (h * w), h, w)
    raise ValueError(f"cannot tell the grid of a {tokens}-position table for grid {new}")


def resize_joint(table: Tensor, new: Grid, cls: bool, old: Grid | None = None) -> Tensor:
    """A joint (1, [1 +] T*H*W, D) table at grid `new`: cls row kept, space bicubic, time linear
    (runtime.joint_at: the run-time resize is the same function)."""
    rest = table.shape[1] - int(cls)
    return joint_at(table, old or old_joint_grid(rest, new), new, cls)


def is_position(name: str) -> bool:
    """Whether a (torchvision-named) entry is a position table that resizing may change."""
    return (
        name
        in (
            "pos_encoding.pos_embed",
            "pos_encoding.spatial_pos",
            "pos_encoding.temporal_pos",
        )
        or ".attn.rel_pos_" in name
    )


def resize_entry(name: str, tensor: Tensor, want: tuple[int, ...], grid: Grid, cls: bool) -> Tensor:
    """One position entry at the shape `want` the model needs; `grid` is the model's nominal
    patch grid (T, H, W)."""
    if name == "pos_encoding.temporal_pos":
        return linear_rows(tensor, want[0])
    if name == "pos_encoding.spatial_pos":
        return resize_spatial(tensor, grid)
    if name == "pos_encoding.pos_embed":
        return resize_joint(tensor.reshape(1, -1, tensor.shape[-1]), grid, cls)
    if ".attn.rel_pos_" in name:
        return linear_rows(tensor, want[0])
    raise ValueError(f"{name} is not a position table")
