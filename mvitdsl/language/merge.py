"""`extends`: a child model's statements merged over its parent's, AST to AST."""

from __future__ import annotations

from typing import Any

from .read import RENAMED_OPTIONS
from .syntax import Clause, Setting, Table

# Flags that exclude each other: a child's `cls` replaces the parent's `no_cls`, and so on.
_EXCLUSIVE = {"tokens": (("cls", "no_cls"),), "head": (("cls", "mean"), ("norm", "no_norm"))}


def merge(parent: tuple[Any, ...], child: tuple[Any, ...]) -> tuple[Any, ...]:
    """Child statements override the parent's: a setting clause by its first word, a table row by
    its name; everything else is inherited, keeping the span of whoever set it."""
    out: dict[str, Any] = {s.key: s for s in parent}
    for statement in child:
        base = out.get(statement.key)
        if isinstance(statement, Setting) and isinstance(base, Setting):
            out[statement.key] = _merge_setting(base, statement)
        elif isinstance(statement, Table) and isinstance(base, Table):
            out[statement.key] = _merge_table(base, statement)
        else:
            out[statement.key] = statement
    return tuple(out.values())


def _clause_key(clause: Clause) -> str:
    first = clause.atoms[0]
    word = str(first.value)
    return RENAMED_OPTIONS.get(word, word) if first.kind == "name" else f"#{first.text}"


def _merge_setting(base: Setting, child: Setting) -> Setting:
    clauses = {_clause_key(c): c for c in base.clauses}
    groups = _EXCLUSIVE.get(base.key, ())
    for c in child.clauses:
        for group in groups:
            if _clause_key(c) in group:
                for other in group:
                    clauses.pop(other, None)
        clauses[_clause_key(c)] = c
    return Setting(base.key, child.key_span, tuple(clauses.values()), child.span)


def _merge_table(base: Table, child: Table) -> Table:
    rows = {str(r.atoms[0].value): r for r in base.rows}
    rows.update({str(r.atoms[0].value): r for r in child.rows})
    return Table(base.key, child.key_span, tuple(rows.values()), child.span)
