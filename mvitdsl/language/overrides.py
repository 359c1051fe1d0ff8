"""Overrides on the syntax tree: a PATH (`scale4.blocks`, `attention.mlp_ratio`) names one value
of a resolved spec; `apply` replaces it, and `child_text` writes the spec that extends the base
with only the changed setting clauses and stage rows (so `extends` + merge give the same tree).

PATH words: `STAGE.COLUMN` for a stage row (columns: blocks, dim, heads, stride_q, stride_kv) and
`SETTING.OPTION` for a setting (`attention.mlp_ratio`, `train.drop_path`, `head.classes`), with
these names for values that have no word of their own: `input.size` (the size after the input's
kind), `patch.dim` (the width after '->'), `patch.kernel` (after 'conv'), `patch.padding`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from ..diagnostics import Span, did_you_mean
from . import syntax
from .syntax import Atom, Clause, Row, Setting, Table

# Per-stage `key=value` cells after a row's columns (`scale3 2 192 2 1x2x2 mlp_ratio=2`), where
# the language has them: `scale3.mlp_ratio` then names the cell, written or not.
_CELL: Any = getattr(syntax, "Cell", None)

STAGE_COLUMNS = ("blocks", "dim", "heads", "stride_q", "stride_kv")
# Older words still understood (GLOSSARY.md): the stride columns, and two attention options.
_COLUMN_ALIASES = {"pool_q": "stride_q", "pool_kv": "stride_kv"}  # rename_vocab: keep
_SPELLINGS = {  # rename_vocab: off
    "stride_kv": ("stride_kv", "kv_stride"),
    "kv_stride": ("stride_kv", "kv_stride"),
    "pool_q_blocks": ("pool_q_blocks", "pool_q"),
    "pool_q": ("pool_q_blocks", "pool_q"),
}  # rename_vocab: on
# Options written as one clause of several words: where one option's value ends.
_CLAUSE_WORDS = {"patch": ("conv", "stride", "pad", "->")}
# PATH words for values without a word of their own: (setting, name) -> option word.
_ALIASES = {("patch", "dim"): "->", ("patch", "kernel"): "conv", ("patch", "padding"): "pad"}
_SIZE = re.compile(r"^[0-9]+([x×][0-9]+)+$")
_NUMBER = re.compile(r"^[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class PathError(ValueError):
    """A PATH that names nothing in the spec, or a value that is not one word of the language."""


@dataclass(frozen=True)
class Target:
    """Where a PATH points: a stage row's column or a setting's option."""

    path: str
    kind: Literal["column", "cell", "option"]
    key: str  # the stage's name, or the setting's key
    word: str  # the column, or the option word as the spec writes it ('->' for patch.dim)


def make_atom(text: str, span: Span) -> Atom:
    """One word of the spec language from its text: a size, a number or a name."""
    text = text.strip()
    if _SIZE.match(text):
        return Atom("size", tuple(int(p) for p in text.replace("×", "x").split("x")), text, span)
    if _NUMBER.match(text):
        value: Any = float(text) if any(c in text for c in ".eE") else int(text)
        return Atom("number", value, text, span)
    if _NAME.match(text):
        return Atom("name", text, text, span)
    raise PathError(f"'{text}' is not a value of the spec language (a number, a size or a word)")


def _table(statements: tuple[Any, ...], key: str) -> Table | None:
    for s in statements:
        if isinstance(s, Table) and s.key == key:
            return s
    return None


def _setting(statements: tuple[Any, ...], key: str) -> Setting | None:
    for s in statements:
        if isinstance(s, Setting) and s.key == key:
            return s
    return None


def _row(table: Table, name: str) -> Row | None:
    for row in table.rows:
        if row.atoms and row.atoms[0].value == name:
            return row
    return None


def resolve(path: str, statements: tuple[Any, ...]) -> Target:
    """The Target a PATH names in these (resolved) statements; PathError with a hint if none."""
    head, dot, word = path.partition(".")
    if not dot or not head or not word or "." in word:
        raise PathError(f"'{path}' is not a PATH: write STAGE.COLUMN or SETTING.OPTION")
    stages = _table(statements, "stages")
    if stages is not None and _row(stages, head) is not None:
        word = _COLUMN_ALIASES.get(word, word)
        if word in STAGE_COLUMNS:
            return Target(path, "column", head, word)
        near = did_you_mean(word, STAGE_COLUMNS)
        if _CELL is not None and near is None and _NAME.match(word):
            return Target(path, "cell", head, word)  # the reader says whether the key exists
        hint = near or "columns are " + ", ".join(STAGE_COLUMNS)
        raise PathError(f"'{path}': stage '{head}' has no column '{word}'; {hint}")
    if head == "input" and word == "kind":
        raise PathError("'input.kind' cannot be varied: a sweep keeps the kind of input")
    settings = [s.key for s in statements if isinstance(s, Setting)]
    rows = [str(r.atoms[0].value) for r in stages.rows] if stages is not None else []
    known = ("input", "patch", "tokens", "attention", "head", "train", "norm", "budget")
    if head not in settings and head not in known:
        hint = did_you_mean(head, [*rows, *settings]) or "stages are " + ", ".join(rows)
        raise PathError(f"'{path}': no stage or setting '{head}'; {hint}")
    return Target(path, "option", head, _ALIASES.get((head, word), word))


def _option_run(key: str, clause: Clause, word: str) -> tuple[int, int] | None:
    """(start, end) of the atoms holding `word`'s value in the clause, or None if it is absent."""
    atoms = clause.atoms
    if key == "input" and word == "size":
        return (1, len(atoms)) if atoms and atoms[0].kind == "name" else None
    spellings = _SPELLINGS.get(word, (word,))
    for i, atom in enumerate(atoms):
        if atom.kind in ("name", "arrow") and atom.text in spellings:
            end = i + 1
            stops = _CLAUSE_WORDS.get(key, ())
            while end < len(atoms) and not (stops and atoms[end].text in stops):
                end += 1
            return i + 1, end
    return None


def read(target: Target, statements: tuple[Any, ...]) -> Atom | None:
    """The atom the base spec holds at a target (None where the spec leaves it to a default)."""
    if target.kind == "cell":
        stages = _table(statements, "stages")
        row = _row(stages, target.key) if stages is not None else None
        cell = next((c for c in _cells(row) if c.key == target.word), None) if row else None
        return cell.value if cell is not None else None
    if target.kind == "column":
        stages = _table(statements, "stages")
        row = _row(stages, target.key) if stages is not None else None
        i = 1 + STAGE_COLUMNS.index(target.word)
        return row.atoms[i] if row is not None and i < len(row.atoms) else None
    setting = _setting(statements, target.key)
    if setting is None:
        return None
    for clause in setting.clauses:
        run = _option_run(target.key, clause, target.word)
        if run is not None and run[1] > run[0]:
            return clause.atoms[run[1] - 1]
    return None


def _replace_in_run(atoms: tuple[Atom, ...], start: int, end: int, new: Atom) -> tuple[Atom, ...]:
    """Replace the run's last atom of the new value's kind (`stride_kv adaptive 1x8x8` keeps
    `adaptive`); a run of one atom is replaced whatever its kind; an empty run gets the value."""
    if end == start:
        return (*atoms[:start], new, *atoms[start:])
    same = [i for i in range(start, end) if atoms[i].kind == new.kind]
    i = same[-1] if same else end - 1
    return (*atoms[:i], Atom(new.kind, new.value, new.text, atoms[i].span), *atoms[i + 1 :])


def _cells(row: Row | None) -> tuple[Any, ...]:
    return tuple(getattr(row, "cells", ()))


def row_words(row: Row) -> tuple[str, ...]:
    """A row as the spec writes it: its columns, then its `key=value` cells."""
    return (*(a.text for a in row.atoms), *(f"{c.key}={c.value.text}" for c in _cells(row)))


def _set_cell(row: Row, target: Target, new: Atom) -> Row:
    cells = list(_cells(row))
    for n, c in enumerate(cells):
        if c.key == target.word:
            cells[n] = replace(c, value=Atom(new.kind, new.value, new.text, c.value.span))
            break
    else:
        cells.append(
            _CELL(target.word, row.span, Atom(new.kind, new.value, new.text, row.span), row.span)
        )
    changes: dict[str, Any] = {"cells": tuple(cells)}
    return replace(row, **changes)


def _set_column(table: Table, target: Target, new: Atom) -> Table:
    rows = []
    for row in table.rows:
        if row.atoms[0].value == target.key and target.kind == "cell":
            row = _set_cell(row, target, new)
        elif row.atoms[0].value == target.key:
            i = 1 + STAGE_COLUMNS.index(target.word)
            atoms = row.atoms
            if i < len(atoms):
                atoms = (
                    *atoms[:i],
                    Atom(new.kind, new.value, new.text, atoms[i].span),
                    *atoms[i + 1 :],
                )
            elif i == len(atoms):
                atoms = (*atoms, Atom(new.kind, new.value, new.text, row.span))
            else:
                raise PathError(f"'{target.path}': stage '{target.key}' has no earlier columns")
            row = replace(row, atoms=atoms)  # its cells, where the language has them, stay
        rows.append(row)
    return Table(table.key, table.key_span, tuple(rows), table.span)


def _set_option(setting: Setting, target: Target, new: Atom) -> Setting:
    clauses = list(setting.clauses)
    for n, clause in enumerate(clauses):
        run = _option_run(setting.key, clause, target.word)
        if run is not None:
            atoms = _replace_in_run(clause.atoms, run[0], run[1], new)
            clauses[n] = Clause(atoms, clause.span)
            break
    else:
        if setting.key == "input":
            raise PathError(f"'{target.path}': the input setting has no '{target.word}'")
        word = Atom(
            "arrow" if target.word == "->" else "name", target.word, target.word, setting.span
        )
        clauses.append(
            Clause((word, Atom(new.kind, new.value, new.text, setting.span)), setting.span)
        )
    return Setting(setting.key, setting.key_span, tuple(clauses), setting.span)


def apply(
    statements: tuple[Any, ...], values: Mapping[Target, str], model_span: Span
) -> tuple[Any, ...]:
    """The statements with each target's value replaced by the given text."""
    out = list(statements)
    for target, text in values.items():
        index = next(
            (
                i
                for i, s in enumerate(out)
                if s.key == ("stages" if target.kind != "option" else target.key)
            ),
            None,
        )
        new = make_atom(text, model_span)
        if target.kind in ("column", "cell"):
            if index is None or not isinstance(out[index], Table):
                raise PathError(f"'{target.path}': the spec has no stages table")
            out[index] = _set_column(out[index], target, new)
        elif index is None:
            blank = Setting(target.key, model_span, (), model_span)
            out.append(_set_option(blank, target, new))
        else:
            out[index] = _set_option(out[index], target, new)
    return tuple(out)


def _clause_text(clause: Clause) -> str:
    return " ".join(a.text for a in clause.atoms)


def child_text(
    name: str,
    parent_file: str,
    parent_name: str,
    base: tuple[Any, ...],
    changed: tuple[Any, ...],
    comment: str = "",
) -> str:
    """A spec that `extends` the parent with only the clauses and stage rows that differ."""
    before = {s.key: s for s in base}
    lines = [f"# {comment}"] if comment else []
    lines.append(f'model {name} extends "{parent_file}" {parent_name} {{')
    for s in changed:
        old = before.get(s.key)
        if isinstance(s, Setting):
            old_clauses = (
                {_clause_text(c) for c in old.clauses} if isinstance(old, Setting) else set()
            )
            new = [_clause_text(c) for c in s.clauses if _clause_text(c) not in old_clauses]
            if new:
                lines.append(f"  {s.key:<10} " + ", ".join(new))
        elif isinstance(s, Table):
            old_rows = {row_words(r) for r in old.rows} if isinstance(old, Table) else set()
            rows = [r for r in s.rows if row_words(r) not in old_rows]
            if rows:
                lines.append(f"  {s.key} {{")
                lines += ["    " + " ".join(f"{w:<8}" for w in row_words(r)).rstrip() for r in rows]
                lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"
