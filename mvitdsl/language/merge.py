"""`extends`: a child model's statements merged over its parent's, AST to AST.

A child's stage row overrides the parent's row of the same name. A row for a stage the parent
does not have is an error (E211, with the parent's names and a did-you-mean), unless it says so:
`add scale6 2 768 8 1x2x2` appends a stage, `drop scale5` removes one."""

from __future__ import annotations

from typing import Any

from ..diagnostics import Reporter, did_you_mean
from . import settings
from .syntax import Clause, Row, Setting, Table

ADD, DROP = "add", "drop"  # the words that start a child's row that adds or removes a stage


def merge(
    parent: tuple[Any, ...], child: tuple[Any, ...], reporter: Reporter | None = None
) -> tuple[Any, ...]:
    """Child statements override the parent's: a setting clause by its first word, a table row by
    its name; everything else is inherited, keeping the span of whoever set it. Rows naming a
    stage the parent lacks are reported (E211) unless they start with `add`."""
    reporter = reporter if reporter is not None else Reporter()
    out: dict[str, Any] = {s.key: s for s in parent}
    for statement in child:
        base = out.get(statement.key)
        if isinstance(statement, Setting) and isinstance(base, Setting):
            out[statement.key] = _merge_setting(base, statement)
        elif isinstance(statement, Table) and isinstance(base, Table):
            out[statement.key] = _merge_table(base, statement, reporter)
        else:
            out[statement.key] = own_statement(statement, reporter)
    return tuple(out.values())


def own_statements(statements: tuple[Any, ...], reporter: Reporter) -> tuple[Any, ...]:
    """A spec without a parent: `add` rows are plain rows, `drop` has nothing to remove."""
    return tuple(own_statement(s, reporter) for s in statements)


def own_statement(statement: Any, reporter: Reporter) -> Any:
    if not isinstance(statement, Table):
        return statement
    rows = []
    for row in statement.rows:
        word = _row_word(row)
        if word == DROP:
            reporter.error(
                "E211",
                f"'drop {row.atoms[1].text}' but there is no parent stage to drop",
                row.span,
                "'drop' removes a stage inherited with 'extends'",
            )
        else:
            rows.append(_without_word(row) if word == ADD else row)
    return Table(statement.key, statement.key_span, tuple(rows), statement.span)


def _row_word(row: Row) -> str | None:
    """'add' or 'drop' when the row starts with that word followed by a stage name."""
    atoms = row.atoms
    starts = len(atoms) >= 2 and atoms[0].kind == "name" and atoms[1].kind == "name"
    return str(atoms[0].value) if starts and atoms[0].value in (ADD, DROP) else None


def _without_word(row: Row) -> Row:
    return Row(row.atoms[1:], row.span)


def _row_name(row: Row) -> str:
    return str(row.atoms[0].value)


def _clause_key(clause: Clause) -> str:
    first = clause.atoms[0]
    word = str(first.value)
    return settings.RENAMED_OPTIONS.get(word, word) if first.kind == "name" else f"#{first.text}"


def _merge_setting(base: Setting, child: Setting) -> Setting:
    clauses = {_clause_key(c): c for c in base.clauses}
    # flags that exclude each other: a child's `cls` replaces the parent's `no_cls`, and so on
    known = settings.BY_KEY.get(base.key)
    groups = known.exclusive() if known is not None else ()
    for c in child.clauses:
        for group in groups:
            if _clause_key(c) in group:
                for other in group:
                    clauses.pop(other, None)
        clauses[_clause_key(c)] = c
    return Setting(base.key, child.key_span, tuple(clauses.values()), child.span)


def _merge_table(base: Table, child: Table, reporter: Reporter) -> Table:
    rows = {_row_name(r): r for r in base.rows}
    parent_names = list(rows)
    for row in child.rows:
        word = _row_word(row)
        name = _row_name(_without_word(row)) if word else _row_name(row)
        if word == ADD:
            if name in parent_names:
                reporter.error(
                    "E211",
                    f"'add {name}' but the parent already has a stage '{name}'",
                    row.span,
                    f"to change it, write the row without 'add': {name} ...",
                )
            rows[name] = _without_word(row)
        elif name not in parent_names:
            listed = ", ".join(parent_names)
            close = did_you_mean(name, parent_names)
            what = f"'{'drop ' if word == DROP else ''}{name}'"
            reporter.error(
                "E211",
                f"{what}: the parent has no stage '{name}'",
                row.span,
                f"the parent has {listed}"
                + (f"; {close}" if close else "")
                + ("" if word == DROP else f" (to add a stage, start its row with 'add {name}')"),
            )
        elif word == DROP:
            rows.pop(name, None)
        else:
            rows[name] = row
    return Table(base.key, child.key_span, tuple(rows.values()), child.span)
