"""Shape rules per op: pure integer arithmetic on (T, H, W) grids, shared by check and analyze."""

from __future__ import annotations

from math import prod

from ..ir import Block, Dims3, Model, Pool
from ..ir import default_kernel as default_kernel  # the skip pool's kernel rule, one home in ir


def window_out(n: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution or pooling window along one dim (PyTorch's floor rule)."""
    return (n + 2 * padding - kernel) // stride + 1


def grid_out(grid: Dims3, kernel: Dims3, stride: Dims3, padding: Dims3) -> Dims3:
    t, h, w = (window_out(n, k, s, p) for n, k, s, p in zip(grid, kernel, stride, padding))
    return (t, h, w)


def pooled(grid: Dims3, pool: Pool) -> Dims3:
    """The grid after a Q / K / V pooling; unchanged when the pooling does not exist."""
    return grid_out(grid, pool.kernel, pool.stride, pool.padding) if pool.exists else grid


def nominal(grid: Dims3, stride: Dims3) -> Dims3:
    """The reference implementations' bookkeeping grid, size // stride (used for positions)."""
    return (grid[0] // stride[0], grid[1] // stride[1], grid[2] // stride[2])


def patch_grid(model: Model) -> Dims3:
    p = model.patch
    return grid_out(model.input.size, p.kernel, p.stride, p.padding)


def patch_nominal(model: Model) -> Dims3:
    return nominal(model.input.size, model.patch.stride)


def tokens(grid: Dims3, cls: bool) -> int:
    return prod(grid) + int(cls)


def rel_pos_sizes(block: Block, nominal_in: Dims3, video: bool) -> tuple[int, int, int]:
    """Table lengths (t, h, w) of a block's decomposed relative positions, as torchvision and
    timm size them: from the bookkeeping grid, spatial size = max(H, W)."""
    size = max(nominal_in[1:])
    q_size = size // block.pool_q.stride[1]
    kv_size = size // block.pool_kv.stride[1]
    spatial = 2 * max(q_size, kv_size) - 1
    temporal = 2 * nominal_in[0] - 1 if video else 0
    return temporal, spatial, spatial
