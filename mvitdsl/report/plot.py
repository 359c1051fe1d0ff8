"""The sweep's design front as an SVG written by hand (not matplotlib), so that every point can
be a link to its row in the variant table: params (millions) across, GMACs (matmul-only) up,
the Pareto rows joined by a line and labelled with their ids."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .page import esc
from .sweep import row_key

W, H = 720, 440
LEFT, RIGHT, TOP, BOTTOM = 70, 90, 20, 50  # room on the right for the last point's label
LABEL_ALL = 30  # label every point up to this many; beyond, only the front's


def ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About n round numbers spanning [lo, hi]."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if m * step >= raw)
    first = math.ceil(lo / step) * step
    return [first + k * step for k in range(int((hi - first) / step + 1e-9) + 1)]


def _span(values: Sequence[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.08 or abs(hi) * 0.1 or 1.0
    return lo - pad, hi + pad


def front_svg(points: Sequence[dict[str, Any]]) -> str:
    """The plot; `points` have numbers under params and gmacs, and ids (safe words)."""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="11" role="img">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
    ]
    if not points:
        parts.append(f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no variant has '
                     "costs to plot</text></svg>")  # fmt: skip
        return "".join(parts)
    xs = [p["params"] / 1e6 for p in points]
    ys = [float(p["gmacs"]) for p in points]
    (x0, x1), (y0, y1) = _span(xs), _span(ys)

    def sx(v: float) -> float:
        return LEFT + (v - x0) / (x1 - x0) * (W - LEFT - RIGHT)

    def sy(v: float) -> float:
        return H - BOTTOM - (v - y0) / (y1 - y0) * (H - TOP - BOTTOM)

    parts += _axes(x0, x1, y0, y1, sx, sy)
    front = sorted((x, y) for x, y, p in zip(xs, ys, points) if p["pareto"])
    if len(front) > 1:
        line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in front)
        parts.append(f'<polyline points="{line}" fill="none" stroke="#c0392b" stroke-width="1.5"/>')
    parts.append(LEGEND)
    label_all = len(points) <= LABEL_ALL
    for x, y, p in zip(xs, ys, points):
        parts.append(_point(sx(x), sy(y), p, label_all or p["pareto"]))
    parts.append("</svg>")
    return "".join(parts)


LEGEND = "".join(
    f'<circle cx="{LEFT + 14}" cy="{TOP + 12 + 16 * k}" r="4.5" fill="{fill}" stroke="{stroke}"/>'
    f'<text x="{LEFT + 24}" y="{TOP + 16 + 16 * k}">{text}</text>'
    for k, (fill, stroke, text) in enumerate(
        (
            ("#c0392b", "#c0392b", "on the Pareto front"),
            ("#2c6fbb", "#2c6fbb", "kept"),
            ("white", "#2c6fbb", "refused (a budget or a rule)"),
        )
    )
)


def _axes(x0: float, x1: float, y0: float, y1: float, sx: Any, sy: Any) -> list[str]:
    out = [
        f'<line x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - RIGHT}" y2="{H - BOTTOM}" stroke="#333"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{H - BOTTOM}" stroke="#333"/>',
    ]
    for t in ticks(x0, x1):
        out.append(
            f'<line x1="{sx(t):.1f}" y1="{TOP}" x2="{sx(t):.1f}" y2="{H - BOTTOM}" stroke="#eee"/>'
            f'<text x="{sx(t):.1f}" y="{H - BOTTOM + 15}" text-anchor="middle">{t:g}</text>'
        )
    for t in ticks(y0, y1):
        out.append(
            f'<line x1="{LEFT}" y1="{sy(t):.1f}" x2="{W - RIGHT}" y2="{sy(t):.1f}" stroke="#eee"/>'
            f'<text x="{LEFT - 6}" y="{sy(t) + 4:.1f}" text-anchor="end">{t:g}</text>'
        )
    out.append(
        f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 12}" text-anchor="middle">'
        "parameters (millions)</text>"
        f'<text transform="translate(16 {(TOP + H - BOTTOM) / 2}) rotate(-90)" '
        'text-anchor="middle">GMACs (matmul-only)</text>'
    )
    return out


def _point(x: float, y: float, p: dict[str, Any], label: bool) -> str:
    """One variant: a dot (red on the front, hollow when refused) linking to its row."""
    ident = esc(row_key(p))
    colour = "#c0392b" if p["pareto"] else "#2c6fbb"
    fill = colour if p["ok"] else "white"
    text = f'<text x="{x + 6:.1f}" y="{y - 6:.1f}" fill="{colour}">{ident}</text>' if label else ""
    return (
        f'<a href="#row-{ident}" class="point"><title>{ident}: {p["params"]:,} params, '
        f"{float(p['gmacs']):.3f} GMACs</title>"
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{fill}" stroke="{colour}"/>{text}</a>'
    )
