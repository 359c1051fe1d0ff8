"""The HTML report (`mvitdsl report`): one self-contained page for specs or a sweep.

Enters: checked specs (or their SpecErrors) or a sweep's JSON Lines. Leaves: the page's text.
`specs` lays out a spec (stage table, diagrams, costs, blocks, memory, listing); `sweep` a sweep
(variant table, the front in `plot`); `page` the page around them; `svg` makes pictures inline;
`lexer` is the Pygments lexer of .mv files. A driver: draws through mvitdsl.draw, never torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .page import GENERATOR, document, esc, is_ours
from .specs import Entry, costs_figure, entry_data, entry_section, listing_css, load_entry
from .sweep import SweepError, read_sweep, sweep_section

__all__ = [
    "GENERATOR",
    "Entry",
    "SweepError",
    "is_ours",
    "load_entry",
    "read_sweep",
    "spec_page",
    "sweep_page",
]

SCHEMA = 1


def spec_page(entries: Sequence[Entry]) -> str:
    """The report of one or more specs; a failed spec shows its diagnostics."""
    names = [e.name for e in entries]
    good = [e.spec for e in entries if e.spec is not None]
    contents = "".join(f'<li><a href="#s{k}">{esc(n)}</a></li>' for k, n in enumerate(names))
    body = [
        f"<h1>mvitdsl report: {esc(', '.join(names))}</h1>",
        f"<ul>{contents}</ul>",
        '<h2 id="costs">Costs per stage</h2>' + costs_figure(good) if good else "",
        *(entry_section(e, f"s{k}") for k, e in enumerate(entries)),
    ]
    data: dict[str, Any] = {
        "schema": SCHEMA,
        "kind": "report",
        "specs": [entry_data(e) for e in entries],
    }
    return document(f"mvitdsl: {', '.join(names)}", "\n".join(body), data, listing_css())


def sweep_page(rows: Sequence[dict[str, Any]], file: str) -> str:
    """The report of a sweep: the front and the variant table."""
    body = "<h1>mvitdsl report: a sweep</h1>\n" + sweep_section(rows, file)
    data = {"schema": SCHEMA, "kind": "report", "sweep": {"file": file, "rows": list(rows)}}
    return document(f"mvitdsl: sweep {file}", body, data)
