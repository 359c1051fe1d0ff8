"""The MViT paper's Table 2 as one row model: facts per row, read from the Report, laid out by
each reader (the text report `report_text`, the table drawing `draw/table`, next an HTML report).
No text layout here: sizes stay numbers, operators stay words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..ir import Dims3

if TYPE_CHECKING:
    from .analyze import Report


@dataclass(frozen=True)
class TableRow:
    """One row: a stage's name, its operators, its output size and (where counted) its costs."""

    stage: str  # "data", "patch", a stage's name, "head"
    operators: tuple[str, ...]  # words: ("video",), ("MHPA(96)", "MLP(384)"), ("mean", "linear")
    channels: int  # the output's channels (the head: its classes)
    grid: Dims3 | None  # the output's (T, H, W) grid; None for the head
    blocks: int | None = None  # a stage's repeat; None for the other rows
    heads: int | None = None
    params: int | None = None  # None for the data row (it has no parameters to count)
    macs: int | None = None
    kernel: Dims3 | None = None  # the patch row's convolution
    stride: Dims3 | None = None


def table_rows(report: Report) -> list[TableRow]:
    """data, patch, one row per stage, head: the paper's Table 2 for `report`'s model."""
    m, p, h = report.model, report.model.patch, report.model.head
    rows = [
        TableRow("data", (m.input.kind,), m.input.channels, m.input.size),
        TableRow(
            "patch",
            ("conv",),
            p.dim,
            report.blocks[0].grid_in,
            params=report.stem.params,
            macs=report.stem.macs,
            kernel=p.kernel,
            stride=p.stride,
        ),
    ]
    rows += [
        TableRow(
            st.name,
            tuple(st.operators.split(", ")),
            st.dim,
            st.grid,
            blocks=st.blocks,
            heads=st.heads,
            params=st.params,
            macs=st.macs,
        )
        for st in report.stages
    ]
    pool = "cls token" if h.pool == "cls" else "mean"
    ops = tuple(t for t in ("norm" if h.norm else "", pool, "linear") if t)
    rows.append(
        TableRow("head", ops, h.classes, None, params=report.head.params, macs=report.head.macs)
    )
    return rows
