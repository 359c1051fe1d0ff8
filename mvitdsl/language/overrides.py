"""Overrides on the syntax tree: a PATH (`scale4.blocks`, `attention.mlp_ratio`) names one value
of a resolved spec; `locate` finds it, `written` is the atom the spec writes there, `apply`
replaces it, and `child_text` writes the spec that extends the base with only the changed
setting clauses and stage rows (so `extends` + merge give the same tree).

PATH words come from the one table (settings.py), never from a list of their own here:
`STAGE.COLUMN` for a stage row's column (settings.COLUMNS, and a column's older word),
`STAGE.CELL` for a per-stage `key=value` cell by its own name (`scale3.pool_kv`, written or not),
and `SETTING.OPTION` for a setting's option by its word, an older spelling, or the word the table
gives a value without a word of its own (`Option.path`: `input.size`, `patch.dim` for `->`,
`patch.kernel`, `patch.padding`). Flags that set one field are varied together by that field or
any of their words, with one of the words as the value (`tokens.cls=no_cls`, `head.pool=mean`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from ..diagnostics import Span, did_you_mean
from . import lexical, settings
from .read import value_extent
from .syntax import Atom, AtomKind, Cell, Clause, Row, Setting, Table


class PathError(ValueError):
    """A PATH that names nothing in the spec, or a value that is not one word of the language."""


@dataclass(frozen=True)
class Target:
    """Where a PATH points: a stage row's column or cell, or a setting's option."""

    path: str
    kind: Literal["column", "cell", "option"]
    key: str  # the stage's name, or the setting's key
    word: str  # the column, the cell's key, or the option's PATH word (`dim` for patch's `->`)


def make_atom(text: str, span: Span) -> Atom:
    """One word of the spec language from its text: a size, a number, a name, or a cell's list
    of block indexes (`2,4,6`)."""
    text = text.strip()
    if lexical.is_indexes(text):
        return Atom("indexes", lexical.indexes_parts(text), text, span)
    try:
        value = lexical.word_value(text)
    except ValueError as e:
        raise PathError(str(e)) from None
    if isinstance(value, tuple):
        return Atom("size", value, text, span)
    if isinstance(value, str):
        return Atom("name", value, text, span)
    return Atom("number", value, text, span)


def path_word(o: settings.Option) -> str:
    """The word a PATH names an option by: its `path`, a flag's field, else its word."""
    return o.path or (o.field if o.kind == "flag" else o.word)


def options_at(target: Target) -> tuple[settings.Option, ...]:
    """The options a setting target stands for (a flag group's words, or `video` and `image`)."""
    return tuple(o for o in settings.BY_KEY[target.key].options if path_word(o) == target.word)


def _table(statements: tuple[Any, ...], key: str) -> Table | None:
    return next((s for s in statements if isinstance(s, Table) and s.key == key), None)


def _setting(statements: tuple[Any, ...], key: str) -> Setting | None:
    return next((s for s in statements if isinstance(s, Setting) and s.key == key), None)


def _row(table: Table | None, name: str) -> Row | None:
    rows = table.rows if table is not None else ()
    return next((r for r in rows if r.atoms and r.atoms[0].value == name), None)


_COLUMNS = settings.COLUMNS[1:]  # the name column is how a PATH finds the row, not a value


def locate(path: str, statements: tuple[Any, ...]) -> Target:
    """The Target a PATH names in these (resolved) statements; PathError with a hint if none."""
    head, dot, word = path.partition(".")
    if not dot or not head or not word or "." in word:
        raise PathError(f"'{path}' is not a PATH: write STAGE.COLUMN or SETTING.OPTION")
    stages = _table(statements, "stages")
    if _row(stages, head) is not None:
        return _stage_target(path, head, word)
    if head == "input" and word == "kind":
        raise PathError("'input.kind' cannot be varied: a sweep keeps the kind of input")
    setting = settings.BY_KEY.get(head)
    if setting is None:
        rows = [str(r.atoms[0].value) for r in stages.rows] if stages is not None else []
        hint = did_you_mean(head, [*rows, *settings.BY_KEY]) or "stages are " + ", ".join(rows)
        raise PathError(f"'{path}': no stage or setting '{head}'; {hint}")
    word = setting.renamed().get(word, word)
    found = [o for o in setting.options if word in (o.word, path_word(o))]
    if not found:
        words = list(dict.fromkeys(path_word(o) for o in setting.options))
        hint = did_you_mean(word, words) or "options are " + ", ".join(words)
        raise PathError(f"'{path}': setting '{head}' has no option '{word}'; {hint}")
    return Target(path, "option", head, path_word(found[0]))


def _stage_target(path: str, stage: str, word: str) -> Target:
    for column in _COLUMNS:
        if word == column.word or word in column.old:
            return Target(path, "column", stage, column.word)
    cells = settings.stage_cells()
    if word in cells:
        return Target(path, "cell", stage, word)
    words = [*(c.word for c in _COLUMNS), *cells]
    hint = did_you_mean(word, words) or "columns are " + ", ".join(c.word for c in _COLUMNS)
    raise PathError(f"'{path}': stage '{stage}' has no column or cell '{word}'; {hint}")


def _runs(key: str, clause: Clause) -> list[tuple[settings.Option, int, int]]:
    """Each option written in the clause: (option, index of its word, end of its value)."""
    setting = settings.BY_KEY[key]
    renamed = setting.renamed()
    by_word = {o.word: o for o in setting.options}
    atoms, i, out = clause.atoms, 0, []
    while i < len(atoms) and atoms[i].kind in ("name", "arrow"):
        o = by_word.get(renamed.get(atoms[i].text, atoms[i].text))
        if o is None:
            break  # not an option: the reader reports it; nothing after it is located
        end = min(len(atoms), i + 1 + value_extent(o, atoms, i))
        out.append((o, i, end))
        i = end
    return out


def _option_run(target: Target, clause: Clause) -> tuple[int, int] | None:
    """(start, end) of the target's value in the clause; for a flag, its word; None if absent."""
    words = options_at(target)
    for o, i, end in _runs(target.key, clause):
        if o in words:
            return (i, i + 1) if o.kind == "flag" else (i + 1, end)
    return None


def written(target: Target, statements: tuple[Any, ...]) -> Atom | None:
    """The atom the base spec holds at a target (None where the spec leaves it to a default)."""
    if target.kind == "cell":
        row = _row(_table(statements, "stages"), target.key)
        cell = next((c for c in row.cells if c.key == target.word), None) if row else None
        return cell.value if cell is not None else None
    if target.kind == "column":
        row = _row(_table(statements, "stages"), target.key)
        i = settings.COLUMN_WORDS.index(target.word)
        return row.atoms[i] if row is not None and i < len(row.atoms) else None
    setting = _setting(statements, target.key)
    for clause in setting.clauses if setting is not None else ():
        run = _option_run(target, clause)
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
    return (*atoms[:i], _at(new, atoms[i].span), *atoms[i + 1 :])


def _at(atom: Atom, span: Span) -> Atom:
    return Atom(atom.kind, atom.value, atom.text, span)


def row_words(row: Row) -> tuple[str, ...]:
    """A row as the spec writes it: its columns, then its `key=value` cells."""
    return (*(a.text for a in row.atoms), *(c.text for c in row.cells))


def _set_cell(row: Row, target: Target, new: Atom) -> Row:
    cells = list(row.cells)
    for n, c in enumerate(cells):
        if c.key == target.word:
            cells[n] = replace(c, value=_at(new, c.value.span))
            break
    else:
        cells.append(Cell(target.word, row.span, _at(new, row.span), row.span))
    return replace(row, cells=tuple(cells))


def _set_column(row: Row, target: Target, new: Atom) -> Row:
    i = settings.COLUMN_WORDS.index(target.word)
    atoms = row.atoms
    if i < len(atoms):
        atoms = (*atoms[:i], _at(new, atoms[i].span), *atoms[i + 1 :])
    elif i == len(atoms):
        atoms = (*atoms, _at(new, row.span))
    else:
        raise PathError(f"'{target.path}': stage '{target.key}' has no earlier columns")
    return replace(row, atoms=atoms)  # its cells stay


def _set_stage(table: Table, target: Target, new: Atom) -> Table:
    rows = []
    for row in table.rows:
        if row.atoms[0].value == target.key:
            row = (
                _set_cell(row, target, new)
                if target.kind == "cell"
                else _set_column(row, target, new)
            )
        rows.append(row)
    return Table(table.key, table.key_span, tuple(rows), table.span)


def _set_option(setting: Setting, target: Target, new: Atom) -> Setting:
    options = options_at(target)
    flags = {o.word for o in options if o.kind == "flag"}
    if flags and (new.kind != "name" or new.value not in flags):
        raise PathError(f"'{target.path}' takes one of {', '.join(sorted(flags))}")
    clauses = list(setting.clauses)
    for n, clause in enumerate(clauses):
        run = _option_run(target, clause)
        if run is not None:
            atoms = _replace_in_run(clause.atoms, run[0], run[1], new)
            clauses[n] = Clause(atoms, clause.span)
            break
    else:
        if any(o.field == "kind" for o in options):  # a size is written after the kind
            raise PathError(f"'{target.path}': the input setting has no '{target.word}'")
        word = options[0].word
        value = _at(new, setting.span)
        kind: AtomKind = "arrow" if word == "->" else "name"
        written = (value,) if flags else (Atom(kind, word, word, setting.span), value)
        clauses.append(Clause(written, setting.span))
    return Setting(setting.key, setting.key_span, tuple(clauses), setting.span)


def apply(
    statements: tuple[Any, ...], values: Mapping[Target, str], model_span: Span
) -> tuple[Any, ...]:
    """The statements with each target's value replaced by the given text."""
    out = list(statements)
    for target, text in values.items():
        key = "stages" if target.kind != "option" else target.key
        index = next((i for i, s in enumerate(out) if s.key == key), None)
        new = make_atom(text, model_span)
        if target.kind in ("column", "cell"):
            if index is None or not isinstance(out[index], Table):
                raise PathError(f"'{target.path}': the spec has no stages table")
            out[index] = _set_stage(out[index], target, new)
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
