"""The AST: what the user wrote, every node with its source span. No meaning attached yet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union

from ..diagnostics import Span

AtomKind = Literal["name", "number", "size", "arrow", "string", "indexes"]
AtomValue = Union[str, int, float, tuple[int, ...]]


@dataclass(frozen=True)
class Atom:
    """One word of a clause: a name, a number, a size like 3x7x7, '->', a string, or (a cell's
    value only) a list of block indexes like 2,4,6."""

    kind: AtomKind
    value: AtomValue
    text: str
    span: Span


@dataclass(frozen=True)
class Clause:
    """A comma-separated part of a setting: `stride_kv adaptive 1x8x8`."""

    atoms: tuple[Atom, ...]
    span: Span


@dataclass(frozen=True)
class Setting:
    """`key clause, clause, ...` on one line."""

    key: str
    key_span: Span
    clauses: tuple[Clause, ...]
    span: Span


@dataclass(frozen=True)
class Cell:
    """A `key=value` cell after a stage row's positional columns: `kernel_q=3x3x3`."""

    key: str
    key_span: Span
    value: Atom
    span: Span

    @property
    def text(self) -> str:
        return f"{self.key}={self.value.text}"


@dataclass(frozen=True)
class Row:
    """One line of a table: `scale3  2  192  2  1x2x2  mlp_ratio=2`."""

    atoms: tuple[Atom, ...]
    span: Span
    cells: tuple[Cell, ...] = ()


@dataclass(frozen=True)
class Table:
    """`key { row ... }`, e.g. the stages table."""

    key: str
    key_span: Span
    rows: tuple[Row, ...]
    span: Span


Statement = Union[Setting, Table]


@dataclass(frozen=True)
class Parent:
    """`extends "file.mv" name`; `extends name` without a file is an error (E209) at parse."""

    file: str
    name: str
    span: Span


@dataclass(frozen=True)
class Model:
    """A whole `model NAME [extends ...] { ... }` block."""

    name: str
    parent: Parent | None
    statements: tuple[Statement, ...]
    span: Span
    file: str
    source: str
