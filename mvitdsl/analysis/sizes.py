"""The size rule of a spec: which input sizes one built module runs at.

Every token grid is computed from the input at run time, so a module runs at every size whose
grids the model's strides and windows divide as they divide the spec's own input: along each
axis a multiple of the patch stride times the Q strides and windows before each block, at
least the smallest such multiple the checker accepts. Never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd, lcm
from typing import Any

from ..ir import Dims3, Model, spatial
from ..ops import block as ops_block
from ..ops import positions
from .check import Checker, strides_before

AXES = "THW"


@dataclass(frozen=True)
class SizeRule:
    """Legal sizes per axis (T, H, W): multiples of `multiple`, at least `least`."""

    multiple: Dims3
    least: Dims3
    video: bool

    def axes(self) -> list[tuple[str, int, int]]:
        """(axis letter, multiple, least) for the axes the input has."""
        rows = list(zip(AXES, self.multiple, self.least))
        return rows if self.video else rows[1:]

    @property
    def text(self) -> str:
        """E.g. "H and W: multiples of 32, at least 64"; video starts with T."""
        groups: list[tuple[list[str], int, int]] = []
        for axis, m, low in self.axes():
            if groups and groups[-1][1:] == (m, low) and axis != "H":
                groups[-1][0].append(axis)
            else:
                groups.append(([axis], m, low))
        return "; ".join(
            f"{' and '.join(names)}: multiples of {m}, at least {low}" for names, m, low in groups
        )

    def legal(self, size: Dims3) -> bool:
        return all(n % m == 0 and n >= low for n, m, low in zip(size, self.multiple, self.least))

    def nearest(self, size: Dims3) -> list[Dims3]:
        """The legal sizes nearest to `size`: each axis rounded down, then up (two at most)."""
        down = tuple(max(low, n // m * m) for n, m, low in zip(size, self.multiple, self.least))
        up = tuple(max(low, -(-n // m) * m) for n, m, low in zip(size, self.multiple, self.least))
        out: list[Dims3] = []
        for near in (down, up):
            grid: Dims3 = (near[0], near[1], near[2])
            if grid not in out:
                out.append(grid)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON data: the multiples and least sizes per input axis, and the text; `fixed` (a
        rule of the spec's own size only) is false for every spec since every op reads its
        grids at run time, and stays in the data for its readers."""
        return {
            "axes": [a for a, _, _ in self.axes()],
            "multiple": list(spatial(self.multiple, self.video)),
            "least": list(spatial(self.least, self.video)),
            "text": self.text,
            "fixed": False,
        }


def multiple(model: Model) -> Dims3:
    """Per axis, the lcm over blocks of patch stride x Q strides before x the block's period
    (with `grid_rounding ceil`, the patch stride alone)."""
    out = model.patch.stride
    if model.input.grid_rounding == "ceil":
        return out  # partial windows are padded: any grid of whole patches runs
    out = positions.size_multiple(model)  # a tiled window table: whole windows
    for block in model.blocks:
        before = strides_before(model, block)
        period = ops_block.period(block)
        need = tuple(p * b * q for p, b, q in zip(model.patch.stride, before, period))
        out = (lcm(out[0], need[0]), lcm(out[1], need[1]), lcm(out[2], need[2]))
    return out


def at(model: Model, size: Dims3) -> Model:
    """The same model at another (T, H, W) input (its written one remembered)."""
    return model.model_copy(update={"input": model.input.at(size)})


def accepts(model: Model, size: Dims3) -> bool:
    """Whether the checker passes the model at input `size`."""
    checker = Checker(at(model, size))
    checker.run()
    return not checker.r.diagnostics


def size_rule(model: Model) -> SizeRule:
    """The model's size rule (see the module doc). Computed from the strides and windows
    alone (no block flows: building stays one flow computation per spec); the least size is
    the first multiple that keeps every grid at least the strides after it (tests/test_sizes.py
    holds the checker to accepting it for every shipped spec)."""
    mult = multiple(model)
    reach = model.patch.stride
    for block in model.blocks:
        reach = tuple(r * s for r, s in zip(reach, block.pool_q.stride))  # type: ignore[assignment]
    # the spec's own size always runs: where it breaks the strides' rule (padded grids the
    # checker accepts), the rule widens to include it
    mult = tuple(m if n % m == 0 else gcd(m, n) for m, n in zip(mult, model.input.size))  # type: ignore[assignment]
    least = tuple(min(-(-r // m) * m, n) for r, m, n in zip(reach, mult, model.input.size))
    if not model.video:
        mult, least = (1, mult[1], mult[2]), (1, least[1], least[2])
    return SizeRule(mult, (least[0], least[1], least[2]), model.video)
