"""Shape rules of the model's ends (patch grid, positions' bookkeeping grid), and the grid
arithmetic every op's shape rule uses (its home is ops/base.py). Pure integer arithmetic."""

from __future__ import annotations

from ..ir import Dims3, Model
from ..ir import default_kernel as default_kernel  # the skip pool's kernel rule, one home in ir
from ..ops import patch
from ..ops.base import grid_out as grid_out
from ..ops.base import nominal as nominal
from ..ops.base import pooled as pooled
from ..ops.base import tokens as tokens
from ..ops.base import window_out as window_out


def patch_grid(model: Model) -> Dims3:
    return patch.grid(model)


def patch_nominal(model: Model) -> Dims3:
    return patch.nominal_grid(model)
