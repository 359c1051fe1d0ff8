"""Positions: the DSL's spans (1-based lines, columns in characters) and LSP's (0-based, UTF-16).

The parser counts lines at '\\n' only, so these functions do too; every position past the end of
a line or of the text is clamped, never an error.
"""

from __future__ import annotations

import re

from lsprotocol import types as lsp

from ..diagnostics import Span

WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def utf16_len(text: str) -> int:
    """How many UTF-16 code units `text` takes (a character past U+FFFF takes two)."""
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def lines_of(text: str) -> list[str]:
    """The text's lines as the parser counts them (at '\\n'), without their ending."""
    return [line.rstrip("\r") for line in text.split("\n")]


def to_position(lines: list[str], line: int, column: int) -> lsp.Position:
    """LSP position of a 1-based (line, column) in characters, clamped to the text."""
    row = min(max(line - 1, 0), max(len(lines) - 1, 0))
    text = lines[row] if lines else ""
    col = min(max(column - 1, 0), len(text))
    return lsp.Position(line=row, character=utf16_len(text[:col]))


def to_range(lines: list[str], span: Span) -> lsp.Range:
    """LSP range of a span of this text."""
    return lsp.Range(
        start=to_position(lines, span.line, span.column),
        end=to_position(lines, span.end_line, span.end_column),
    )


def to_offset(lines: list[str], position: lsp.Position) -> tuple[int, int]:
    """(0-based line, character index) of an LSP position, clamped to the text."""
    row = min(max(position.line, 0), max(len(lines) - 1, 0))
    text = lines[row] if lines else ""
    units = 0
    for index, c in enumerate(text):
        if units >= position.character:
            return row, index
        units += 2 if ord(c) > 0xFFFF else 1
    return row, len(text)


def word_at(lines: list[str], position: lsp.Position) -> tuple[str, int, int] | None:
    """The word under (or just before) the position: (word, line, start index), or None."""
    row, col = to_offset(lines, position)
    text = lines[row] if lines else ""
    for m in WORD.finditer(text):
        if m.start() <= col <= m.end():
            return m.group(), row, m.start()
    return None


def whole_range(lines: list[str]) -> lsp.Range:
    """The range of the whole text (for a formatting edit)."""
    last = len(lines) - 1
    return lsp.Range(
        start=lsp.Position(line=0, character=0),
        end=lsp.Position(line=max(last, 0), character=utf16_len(lines[last]) if lines else 0),
    )
