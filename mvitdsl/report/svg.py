"""SVG pictures made inline: the XML prolog, doctype and comments dropped, and every id given the
figure's prefix (Graphviz names nodes node1, edge1 in every picture, matplotlib its clip paths),
with the references to them (`href="#..."`, `url(#...)`) rewritten to match."""

from __future__ import annotations

import re

_PROLOG = re.compile(r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>|<!--.*?-->", re.S)
_ID = re.compile(r'\bid="([^"]+)"')
_HREF = re.compile(r'(\b(?:xlink:)?href=")#([^"]+)"')
_URL = re.compile(r"url\(#([^)]+)\)")
_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def inline_svg(data: bytes | str, prefix: str) -> str:
    """The picture as an `<svg>` element to paste into HTML, its ids prefixed by `prefix-`."""
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"an SVG id prefix must be a word, not {prefix!r}")
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    text = _PROLOG.sub("", text).strip()
    start = text.find("<svg")
    if start < 0:
        raise ValueError("not an SVG picture: no <svg> element")
    text = text[start:]
    ids = set(_ID.findall(text))

    def named(name: str) -> str:
        return f"{prefix}-{name}" if name in ids else name

    text = _ID.sub(lambda m: f'id="{named(m.group(1))}"', text)
    text = _HREF.sub(lambda m: f'{m.group(1)}#{named(m.group(2))}"', text)
    return _URL.sub(lambda m: f"url(#{named(m.group(1))})", text)


def ids_of(svg: str) -> list[str]:
    """Every id in the picture, in order (tests: ids stay unique across figures)."""
    return _ID.findall(svg)
