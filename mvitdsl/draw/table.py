"""The stage table laid out as the MViT paper's Table 2: rows, Markdown, and a graphviz image."""

from __future__ import annotations

import html

import graphviz

from ..analysis.analyze import Report, operators
from ..ir import Dims3
from .diagram import FONT, Shapes

TableRow = tuple[str, tuple[str, ...], str, str]


def table_rows(report: Report) -> list[TableRow]:
    """(stage, operator lines, repeat, output size) rows, laid out as the MViT paper's Table 2."""
    m, s = report.model, Shapes(report.model)
    p, h = m.patch, m.head

    def size(dim: int, grid: Dims3) -> str:
        return f"{dim}×{s.grid(grid)}"

    rows: list[TableRow] = [
        ("data", (m.input.kind,), "", size(m.input.channels, m.input.size)),
        (
            "patch",
            (f"conv {s.grid(p.kernel)}, {p.dim}", f"stride {s.grid(p.stride)}"),
            "",
            size(p.dim, report.blocks[0].grid_in),
        ),
    ]
    for st in report.stages:
        ops = tuple(operators(m, st.dim, st.name).split(", "))
        rows.append((st.name, ops, f"×{st.blocks}", size(st.dim, st.grid)))
    pool = "cls token" if h.pool == "cls" else "mean"
    steps = ", ".join(t for t in ("norm" if h.norm else "", pool, "linear") if t)
    rows.append(("head", (steps,), "", str(h.classes)))
    return rows


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
    for stage, ops, repeat, size in table_rows(report):
        text = f"[{', '.join(ops)}] {repeat}" if repeat else ", ".join(ops)
        out.append(f"| {stage} | {text} | {size} |")
    return "\n".join(out) + "\n"


def table_cells(row: TableRow, sides: str) -> str:
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
    rows = table_rows(report)
    for n, row in enumerate(rows):
        cells.append(table_cells(row, ' BORDER="1" SIDES="B"' if n == len(rows) - 1 else ""))
    g.node(
        "table",
        '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="6">'
        + "".join(cells)
        + "</TABLE>>",
    )
    return g
