"""The page itself: one self-contained HTML file (inline CSS and a few lines of JS for sorting,
no network loads), its generator tag (the command overwrites only files that carry it), tables
and figures as HTML text, and the data embedded as JSON."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

GENERATOR = "mvitdsl report"  # <meta name="generator">: what marks a file as ours to overwrite
DATA_ID = "mvitdsl-data"

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-variant-numeric: tabular-nums; }
th, td { padding: 0.2em 0.7em; border-bottom: 1px solid #e4e4e4; text-align: left; }
td.n, th.n { text-align: right; }
thead th { border-bottom: 2px solid #444; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[aria-sort=ascending]::after { content: " \\25B2"; }
table.sortable th[aria-sort=descending]::after { content: " \\25BC"; }
tr:target { background: #fff3b0; }
figure { margin: 1em 0; overflow-x: auto; } figure svg { max-width: 100%; height: auto; }
.figures { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 1.5em;
           align-items: start; }
.figures svg { width: 100%; }
figcaption { color: #555; font-size: 0.9em; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 13px; }
pre.diagnostics { background: #fff0f0; border-left: 4px solid #c00; }
.bad { color: #b00; } .front { font-weight: bold; }
"""

# Sort a table by the clicked header: numbers by value (a cell's data-v), words as text.
JS = """
document.querySelectorAll("table.sortable th").forEach(function (th, col) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0];
    var up = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", up ? "ascending" : "descending");
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var key = function (tr) {
      var td = tr.children[index], v = td ? td.getAttribute("data-v") : null;
      return v !== null && v !== "" && !isNaN(+v) ? +v : (td ? td.textContent : "");
    };
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a), y = key(b);
      var c = typeof x !== typeof y ? (typeof x === "number" ? -1 : 1)
        : x < y ? -1 : x > y ? 1 : 0;
      return up ? c : -c;
    });
    rows.forEach(function (tr) { body.appendChild(tr); });
  });
});
"""


@dataclass(frozen=True)
class Cell:
    """One table cell: its text, and for numbers the value it sorts by (right-aligned)."""

    text: str
    value: float | int | None = None
    html: bool = False  # text is already HTML (a link, a highlighted word)


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def table(
    heads: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    *,
    ident: str,
    sortable: bool = False,
    row_ids: Sequence[str] | None = None,
) -> str:
    """An HTML table; numeric columns right-aligned; `row_ids` give each row an id (links)."""
    numeric = [any(r[i].value is not None for r in rows) for i in range(len(heads))]
    head = "".join(f"<th{' class=n' * n}>{esc(h)}</th>" for h, n in zip(heads, numeric))
    body = []
    for k, row in enumerate(rows):
        rid = f' id="{esc(row_ids[k])}"' if row_ids else ""
        body.append(f"<tr{rid}>" + "".join(_cell(c) for c in row) + "</tr>")
    cls = ' class="sortable"' if sortable else ""
    return (
        f'<table id="{esc(ident)}"{cls}><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _cell(c: Cell) -> str:
    text = c.text if c.html else esc(c.text)
    if c.value is None:
        return f"<td>{text}</td>"
    return f'<td class="n" data-v="{c.value!r}">{text}</td>'


def figure(ident: str, content: str, caption: str) -> str:
    """A figure (an inline SVG, or a note where the picture could not be made)."""
    return (
        f'<figure id="{esc(ident)}" class="figure">{content}'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def data_script(data: Any) -> str:
    """The page's data as JSON in a script element; '<' escaped so no text can end it early."""
    text = json.dumps(data, indent=1, default=str, allow_nan=False).replace("<", "\\u003c")
    return f'<script type="application/json" id="{DATA_ID}">{text}</script>'


def document(title: str, body: str, data: Any, extra_css: str = "") -> str:
    """The whole page: head (generator tag, inline style, an empty icon so the browser asks for
    none), body, the data, the sorting script."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="generator" content="{GENERATOR}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{esc(title)}</title><style>{CSS}{extra_css}</style></head>\n"
        f"<body>\n{body}\n{data_script(data)}\n<script>{JS}</script>\n</body></html>\n"
    )


def is_ours(head: bytes) -> bool:
    """Whether a file's first bytes are a page this command wrote (its generator tag)."""
    return f'<meta name="generator" content="{GENERATOR}">'.encode() in head
