"""The sections of a report for specs: each spec's stage table (the Table-2 rows of
analysis.table), its diagrams at the model, stage and block levels, the input size and memory at
a batch, the block table and the highlighted listing; a spec that fails shows its diagnostics
with carets instead. Several specs share one figure of per-stage cost bars."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..analysis.analyze import Report, analyze
from ..analysis.sizes import size_rule
from ..analysis.table import table_rows
from ..catalog import shipped_path
from ..diagnostics import SpecError
from ..draw.diagram import Shapes
from ..draw.table import table_cells_of
from ..spec import Spec, load_spec
from .page import Cell, esc, figure, table
from .svg import inline_svg

LEVELS = ("model", "stage", "block")


@dataclass(frozen=True)
class Entry:
    """One spec named on the command line: checked (`spec`, `report`) or failed (`error`)."""

    label: str  # what the command line named: a file or a shipped spec's name
    file: str
    source: str  # the spec's text, for the listing
    spec: Spec | None = None
    report: Report | None = None  # at the report's batch and dtype
    error: SpecError | None = None

    @property
    def name(self) -> str:
        return self.spec.name if self.spec else Path(self.file).stem


def load_entry(arg: str, input_size: tuple[int, ...] | None, batch: int, dtype: str) -> Entry:
    """A spec file or a shipped spec's name, checked; a SpecError is kept for the page,
    a missing file raises FileNotFoundError."""
    path = Path(arg)
    if not path.exists():
        found = shipped_path(arg)
        if found is None:
            raise FileNotFoundError(f"no spec file or shipped spec called '{arg}'")
        path = found
    if path.is_dir():
        raise IsADirectoryError(f"'{arg}' is a folder, not a spec file")
    source = path.read_text(encoding="utf-8", errors="replace")
    try:
        spec = load_spec(path, input_size=input_size)
    except SpecError as e:
        return Entry(arg, str(path), source, error=e)
    return Entry(arg, str(path), source, spec, analyze(spec, batch=batch, dtype=dtype))


def entry_data(e: Entry) -> dict[str, Any]:
    """What the page embeds as JSON for one spec."""
    return {
        "name": e.name,
        "file": e.file,
        "ok": e.error is None,
        "report": e.report.to_dict() if e.report else None,
        "diagnostics": [d.to_json() for d in e.error.diagnostics] if e.error else [],
    }


def entry_section(e: Entry, prefix: str) -> str:
    """One spec's section; ids start with `prefix`."""
    named = f" <small>{esc(e.label)}</small>" if e.label != e.name else ""
    title = f'<h2 id="{prefix}">{esc(e.name)}{named}</h2>'
    if e.error is not None or e.spec is None or e.report is None:
        n = len(e.error.diagnostics) if e.error else 0
        rendered = e.error.render() if e.error else ""
        return (
            f'{title}<p class="bad">{n} error{"s" * (n != 1)}: the spec does not check.</p>'
            f'<pre class="diagnostics" id="{prefix}-diagnostics">{esc(rendered)}</pre>'
            + listing(e.source, prefix)
        )
    r = e.report
    return "".join(
        (
            title,
            f"<p>{r.params:,} params, {r.macs / 1e9:.3f} GMACs matmul-only, "
            f"{r.macs_fvcore / 1e9:.3f} GMACs fvcore (LayerNorm counted)</p>",
            "<h3>Stages</h3>",
            stage_table(r, f"{prefix}-stages"),
            memory_lines(r),
            "<h3>Diagrams</h3>",
            '<div class="figures">',
            *(diagram(e.spec, level, f"{prefix}-{level}") for level in LEVELS),
            "</div>",
            "<h3>Blocks</h3>",
            block_table(r, f"{prefix}-blocks"),
            listing(e.source, prefix),
        )
    )


def stage_table(r: Report, ident: str) -> str:
    """The paper's Table 2: the rows of analysis.table, laid out as the table drawing does."""
    s = Shapes(r.model)
    rows = []
    for row in table_rows(r):
        stage, ops, repeat, size = table_cells_of(row, s)
        gmacs = None if row.macs is None else row.macs / 1e9
        rows.append(
            [
                Cell(stage),
                Cell(
                    "<br>".join(esc(o) for o in ops) + (f" {esc(repeat)}" if repeat else ""),
                    html=True,
                ),
                Cell(size),
                _number(row.blocks),
                _number(row.heads),
                _number(row.params),
                Cell("" if gmacs is None else f"{gmacs:.3f}", gmacs),
            ]
        )
    heads = ("stage", "operators", "output size", "blocks", "heads", "params", "GMACs")
    return table(heads, rows, ident=ident)


def _number(value: int | None) -> Cell:
    return Cell("" if value is None else f"{value:,}", value)


def memory_lines(r: Report) -> str:
    """The input size the figures are for, the size rule (every size one built module runs
    at), and activation memory at the report's batch."""
    size = "x".join(str(v) for v in r.input_size if r.model.video or v != 1)
    return (
        f"<p>input size {esc(size)} ({esc(r.model.input.kind)}); size rule: "
        f"{esc(size_rule(r.model).text)}; activation memory for a "
        f"training step at batch {r.batch}, {esc(r.dtype)}: "
        f"<b>{r.activation_bytes / 2**30:.2f} GiB</b> (estimate)</p>"
    )


def block_table(r: Report, ident: str) -> str:
    """One row per block: widths, heads, grids, attention size, params, GMACs, memory."""
    s = Shapes(r.model)
    rows = [
        [
            Cell(str(b.index), b.index),
            Cell(b.stage),
            Cell(f"{b.dim_in}>{b.dim_out}"),
            Cell(str(b.heads), b.heads),
            Cell(s.grid(b.grid_in)),
            Cell(s.grid(b.grid_q)),
            Cell(s.grid(b.grid_kv)),
            Cell(f"{b.attention[0]}x{b.attention[1]}", b.attention[0] * b.attention[1]),
            Cell(f"{b.params:,}", b.params),
            Cell(f"{b.macs / 1e9:.3f}", b.macs / 1e9),
            Cell(f"{b.activation_bytes / 2**20:.1f}", b.activation_bytes / 2**20),
        ]
        for b in r.blocks
    ]
    heads = (
        "block", "stage", "C_in>C_out", "heads", "grid in", "Q grid", "K/V grid",
        "L_Q x L_K", "params", "GMACs", "act MiB",
    )  # fmt: skip
    return table(heads, rows, ident=ident, sortable=True)


def diagram(spec: Spec, level: str, prefix: str) -> str:
    """The spec drawn at `level` as inline SVG (ids prefixed); a note if Graphviz cannot."""
    from ..draw import DotFailed, DotMissing, draw, render

    try:
        content = inline_svg(render(draw(spec, level), "svg"), prefix)
    except DotMissing:
        content = '<p class="bad">Graphviz\'s <code>dot</code> is not installed.</p>'
    except DotFailed as e:
        content = f'<p class="bad">Graphviz failed: {esc(e)}</p>'
    return figure(f"{prefix}-figure", content, f"{spec.name}: {level} level")


def costs_figure(specs: Sequence[Spec]) -> str:
    """Per-stage bars of params, GMACs and memory for every spec that checked, side by side."""
    from ..draw.costs import costs_svg

    names = ", ".join(s.name for s in specs)
    return figure(
        "costs-figure", inline_svg(costs_svg(specs), "costs"), f"costs per stage: {names}"
    )


def listing(source: str, prefix: str) -> str:
    """The spec's text, highlighted by the mvitdsl Pygments lexer."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter

    from .lexer import MvitdslLexer

    text = highlight(source, MvitdslLexer(), HtmlFormatter(cssclass="hl"))
    return f'<details id="{prefix}-listing" open><summary>spec</summary>{text}</details>'


def listing_css() -> str:
    from pygments.formatters import HtmlFormatter

    return str(HtmlFormatter(cssclass="hl").get_style_defs(".hl"))
