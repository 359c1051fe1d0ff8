"""The stage table laid out as the MViT paper's Table 2 (rows from analysis.table): Markdown,
and a graphviz image."""

from __future__ import annotations

import html

import graphviz

from ..analysis.analyze import Report
from ..analysis.table import TableRow, table_rows
from .diagram import FONT, Shapes

Cells = tuple[str, tuple[str, ...], str, str]  # stage, operator lines, repeat, output size


def table_cells_of(row: TableRow, s: Shapes) -> Cells:
    """One row of analysis.table laid out as the paper draws it: a stage's operators one per
    line with its repeat beside them; the patch conv's kernel, width and stride."""
    ops: tuple[str, ...]
    if row.kernel is not None and row.stride is not None:
        ops = (f"conv {s.grid(row.kernel)}, {row.channels}", f"stride {s.grid(row.stride)}")
    elif row.blocks is not None:
        ops = row.operators
    else:
        ops = (", ".join(row.operators),)
    repeat = "" if row.blocks is None else f"×{row.blocks}"
    size = str(row.channels) if row.grid is None else f"{row.channels}×{s.grid(row.grid)}"
    return row.stage, ops, repeat, size


def _rows(report: Report) -> list[Cells]:
    s = Shapes(report.model)
    return [table_cells_of(row, s) for row in table_rows(report)]


def table_caption(report: Report) -> str:
    return (
        f"{report.name}: {report.params:,} params, {report.macs / 1e9:.3f} GMACs "
        f"(matmul-only), {report.macs_fvcore / 1e9:.3f} GMACs (fvcore)"
    )


def table_markdown(report: Report) -> str:
    """The stage table as Markdown."""
    out = [
        f"**{table_caption(report)}**",
        "",
        "| stage | operators | output sizes |",
        "|---|---|---|",
    ]
    for stage, ops, repeat, size in _rows(report):
        text = f"[{', '.join(ops)}] {repeat}" if repeat else ", ".join(ops)
        out.append(f"| {stage} | {text} | {size} |")
    return "\n".join(out) + "\n"


def table_cells(row: Cells, sides: str) -> str:
    """One HTML-like table row; a repeated stage gets the paper's brackets (cell ruled L and R)."""
    stage, ops, repeat, size = row
    text = "".join(f'{html.escape(o)}<BR ALIGN="LEFT"/>' for o in ops)
    if repeat:
        text = "<BR/>".join(html.escape(o) for o in ops)
        text = (
            '<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3"><TR>'
            f'<TD BORDER="1" SIDES="LR">{text}</TD></TR></TABLE>'
        )
    cells = (html.escape(stage), text, html.escape(repeat), html.escape(size))
    return "<TR>" + "".join(f'<TD{sides} ALIGN="LEFT">{c}</TD>' for c in cells) + "</TR>"


def table_graph(report: Report) -> graphviz.Digraph:
    """The stage table as an image: one HTML-like table node with booktabs-style rules."""
    g = graphviz.Digraph(name=f"{report.name}_table")
    g.attr(fontname=FONT, fontsize="12")
    g.attr("node", shape="plaintext", fontname=FONT, fontsize="12")
    head = ("<B>stage</B>", "<B>operators</B>", "", "<B>output sizes</B>")
    cells = [
        f'<TR><TD COLSPAN="4"><B>{html.escape(table_caption(report))}</B></TD></TR>',
        "<TR>"
        + "".join(f'<TD BORDER="1" SIDES="TB" ALIGN="LEFT">{h}</TD>' for h in head)
        + "</TR>",
    ]
    rows = _rows(report)
    for n, row in enumerate(rows):
        cells.append(table_cells(row, ' BORDER="1" SIDES="B"' if n == len(rows) - 1 else ""))
    g.node(
        "table",
        '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="6">'
        + "".join(cells)
        + "</TABLE>>",
    )
    return g
