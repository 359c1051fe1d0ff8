"""Where the cursor stands in a .mv text, read from the lines alone (the text may not parse).

Completion and hover ask this while the user types, when the AST is often missing: a brace count
tells the model body from a table, a line ending in ',' continues its setting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Where = Literal["top", "extends", "model", "setting", "table"]

_OPENS = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\b[^{]*\{")
_EXTENDS = re.compile(r"^\s*model\s+[A-Za-z_]\w*\s+extends\s+(\S*)$")
_FIRST = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Context:
    """The cursor's place: `key` is the setting's or table's key; `first` is True in a line's
    first word (where a setting name or a stage name goes)."""

    where: Where
    key: str = ""
    first: bool = False


def code(line: str) -> str:
    """A line without its comment (a '#' outside a string starts one)."""
    quoted = False
    for i, c in enumerate(line):
        if c == '"':
            quoted = not quoted
        elif c == "#" and not quoted:
            return line[:i]
    return line


@dataclass
class _State:
    depth: int = 0
    table: str = ""
    statement: str = ""  # the key of a setting whose line ended with ','


def _advance(state: _State, line: str) -> None:
    """Account for one whole line before the cursor's."""
    text = code(line)
    first = _FIRST.match(text)
    if state.depth == 0 and "{" in text:
        state.depth = 1
    elif state.depth == 1 and (opened := _OPENS.match(text)) and "}" not in text:
        state.depth, state.table, state.statement = 2, opened.group(1), ""
        return
    elif state.depth == 2 and "}" in text:
        state.depth, state.table = 1, ""
        return
    elif state.depth == 1 and text.strip().startswith("}"):
        state.depth = 0
    if state.depth == 1:
        if not state.statement and first and text.rstrip().endswith(","):
            state.statement = first.group(1)
        elif state.statement and not text.rstrip().endswith(","):
            state.statement = ""


def context_at(lines: list[str], row: int, col: int) -> Context:
    """The context of the cursor at (row, col), both 0-based, col in characters."""
    state = _State()
    for line in lines[: max(row, 0)]:
        _advance(state, line)
    current = lines[row] if 0 <= row < len(lines) else ""
    before = code(current[:col])
    first = not before.strip() or bool(re.fullmatch(r"\s*[A-Za-z_]\w*", before))
    if state.depth == 0:
        return Context("extends" if _EXTENDS.match(before) else "top", first=first)
    if state.depth == 2:
        return Context("table", state.table, first)
    if state.statement:
        return Context("setting", state.statement)
    if first:
        return Context("model", first=True)
    head = _FIRST.match(before)
    return Context("setting", head.group(1) if head else "")
