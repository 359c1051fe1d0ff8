"""The unrolled token order (issue 22): the functions that the unroll pass (passes/unroll.py)
puts in place of Hiera's partition, merge and max pools, and the two reorders around them.

In raster order a mask-unit block partitions q, k and v into windows (three copies) and merges
the output back, and a Q max pool reads a strided grid. In the unrolled order the tokens are
sorted window first, then by the offsets each later Q stride pools away, first stride
outermost, then what is left of the window: per axis, a coordinate y of a grid whose mask unit
is m and whose strides are s1..sk is y = W*m + ((R*sk + ok)*...*s2 + o2)*s1 + o1, and the
token order is (W | o1 | o2 | ... | ok | R), the three axes interleaved at each level. Then:

- a window is a contiguous run of tokens: partition and merge are views (no copy);
- a Q max pool with kernel = stride s1 is a max over the o1 digit of each window, and what it
  leaves is again in this order, for the next stride (the window now m / s1).

Every function here computes the semantic function's numbers in the unrolled order (the max
pool's gradient goes to the first maximum in raster order, as max_pool's does).
"""

from __future__ import annotations

from math import prod
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from . import runtime

Dims3 = tuple[int, int, int]


def _digits(grid: Dims3, unit: Dims3, strides: list[Dims3]) -> list[list[int]]:
    """Per axis, the mixed-radix digits of a coordinate, most significant first:
    windows, the rest R of the window, then the strides' offsets, last stride first."""
    axes = []
    for a in range(3):
        pooled = prod([s[a] for s in strides])
        if grid[a] % unit[a] or unit[a] % pooled:
            raise ValueError(
                f"unrolled order: grid {grid} does not split into mask units {unit} "
                f"pooled by {strides}"
            )
        axes.append([grid[a] // unit[a], unit[a] // pooled, *[s[a] for s in reversed(strides)]])
    return axes


def _permutation(k: int) -> list[int]:
    """Axis order (W | o1 | ... | ok | R) over the view (B, t digits, h digits, w digits, C),
    each axis having k + 2 digits (W, R, ok, ..., o1)."""
    n = k + 2
    at = [[1 + a * n + i for a in range(3)] for i in range(n)]  # at[i]: digit i of each axis
    order = [0, *at[0]]  # batch, windows
    for j in range(k):  # o1 (last digit) first
        order += at[n - 1 - j]
    return [*order, *at[1], 1 + 3 * n]  # R, then channels


def to_unrolled(x: Tensor, grid: Any, unit: Dims3, strides: list[Dims3]) -> Tensor:
    """Raster tokens (B, T*H*W, C) -> the unrolled order (one copy)."""
    B, L, C = x.shape
    digits = _digits(tuple(grid), unit, strides)
    x = x.reshape(B, *digits[0], *digits[1], *digits[2], C)  # (B, t digits, h, w, C)
    return x.permute(_permutation(len(strides))).reshape(B, L, C)


def from_unrolled(x: Tensor, grid: Any, unit: Dims3, strides: list[Dims3]) -> Tensor:
    """to_unrolled's inverse: unrolled tokens (B, L, C) -> raster (one copy)."""
    B, L, C = x.shape
    digits = _digits(tuple(grid), unit, strides)
    perm = _permutation(len(strides))
    shape = [B, *digits[0], *digits[1], *digits[2], C]
    x = x.reshape([shape[i] for i in perm])
    inverse = sorted(range(len(perm)), key=perm.__getitem__)
    return x.permute(inverse).reshape(B, L, C)


def _windows(grid: Any, window: Any) -> int:
    return prod([n // w for n, w in zip(grid, window)])


def unrolled_partition(x: Tensor, grid: Any, window: Any) -> Tensor:
    """`runtime.window_partition` in the unrolled order: (B, heads, L, d) ->
    (B * n_windows, heads, N, d), a view when x is a view of the qkv projection."""
    B, heads, L, d = x.shape
    n = _windows(grid, window)
    x = x.reshape(B, heads, n, L // n, d).transpose(1, 2)  # (B, n, heads, N, d)
    return x.reshape(B * n, heads, L // n, d)


def unrolled_merge(x: Tensor, heads: int, grid: Any, window: Any) -> Tensor:
    """`runtime.window_merge` in the unrolled order: (B * n_windows, heads, N, d) ->
    (B, heads, L, d), laid out as (B, L, heads, d) so that the next head merge copies nothing."""
    n = _windows(grid, window)
    Bn, _, N, d = x.shape
    x = x.reshape(Bn // n, n, heads, N, d).permute(0, 1, 3, 2, 4)  # (B, n, N, heads, d)
    return x.reshape(Bn // n, n * N, heads, d).transpose(1, 2)


def unrolled_max_pool(
    x: Tensor, kernel: Any, stride: Any, padding: Any, unit: tuple[int, ...]
) -> Tensor:
    """`F.max_pool2d/3d(x, kernel, stride, 0)` with kernel = stride on the unrolled order:
    x is (B, C, *grid) over unrolled tokens, `unit` the mask unit at this grid; the max over
    the first offset digit of each window. Returns (B, C, *pooled grid) the same way."""
    B, C = x.shape[:2]
    grid = x.shape[2:]
    n = prod([g // u for g, u in zip(grid, unit)])
    size = prod(stride)
    tokens = x.flatten(2).transpose(1, 2).reshape(B, n, size, -1, C)  # (B, n, s, rest, C)
    if runtime.records_grad(x):
        # max_pool2d over the rows of (B, C, n*s, rest) with kernel (s, 1): its gradient goes
        # to the first maximum, as the semantic pool's (and max(dim) with indices is slower)
        rows = tokens.reshape(B, n * size, -1, C).permute(0, 3, 1, 2)
        pooled = F.max_pool2d(rows, (size, 1), (size, 1)).permute(0, 2, 3, 1)  # (B, n, rest, C)
    else:
        pooled = tokens.amax(2)
    out = [g // s for g, s in zip(grid, stride)]
    return pooled.reshape(B, -1, C).transpose(1, 2).reshape(B, C, *out)  # a view: (B, C, L')


def dense(x: Tensor, memory_format: torch.memory_format = torch.contiguous_format) -> Tensor:
    """`torch.clone(x, memory_format=)` where x is not written to afterwards: no copy when x
    is laid out so already (the head merge after `unrolled_merge`)."""
    return x.contiguous(memory_format=memory_format)
