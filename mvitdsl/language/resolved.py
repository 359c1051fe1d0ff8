"""`mvitdsl check --resolved`: the spec with `extends` merged in, each value followed by the
file:line that set it, and the defaults it relies on spelled out. The text parses back to the
same model."""

from __future__ import annotations

from typing import Any

from ..ir import Model, SpecSource
from ..ops import window
from . import settings
from .syntax import Clause, Row, Setting, Table

KEY_WIDTH = 11
COMMENT_COLUMN = 60


def _num(value: float) -> str:
    return f"{value:g}"


# Settings a model may leave out entirely, in the order they are printed.
OPTIONAL = ("tokens", "attention", "head", "train", "norm")


def _value(model: Model, key: str, field: str) -> Any:
    """The value in effect of one option field of a setting, read from the IR."""
    if key == "train":
        return model.drop_path
    if key == "norm" and field == "pool_norm_eps":
        return model.pool_norm_eps if model.pool_norm_eps is not None else model.norm_eps
    if key == "norm":
        return model.norm_eps
    return getattr(getattr(model, key), field)


def _text(o: settings.Option, value: Any) -> str | None:
    """The clause that states `value` for option `o`; None where it has no single spelling."""
    if value is None:
        return None  # unset, and nothing to spell (`reduce`: no spatial reduction)
    if o.kind == "switch":
        return f"{o.word} {'on' if value else 'off'}"
    if o.kind == "word":
        return f"{o.word} {value}"
    if o.kind in ("number", "integer"):
        return f"{o.word} {_num(value)}"
    if o.word == "pool":
        return f"pool {value}"
    return None  # sizes and K/V strides: their default is a rule, spelled in the docs


def _defaults(key: str, written: set[str], model: Model) -> list[str]:
    """The clauses a setting leaves to its defaults: flags first (the one in effect of each
    group sharing a field), then options, as settings.py declares them."""
    setting = settings.BY_KEY.get(key)
    if setting is None:  # `outputs`: names only, no defaults
        return []
    flags = [o for o in setting.options if o.kind == "flag"]
    out = []
    for field in dict.fromkeys(o.field for o in flags):
        group = [o for o in flags if o.field == field]
        if not written & {o.word for o in group}:
            value = _value(model, key, field)
            out += [o.word for o in group if o.default == value][:1]
    for o in setting.options:
        if o.kind != "flag" and o.word not in written:
            text = _text(o, _value(model, key, o.field))
            if text is not None:
                out.append(text)
    return out


def _line(text: str, where: str) -> str:
    return f"{text:<{COMMENT_COLUMN - 1}} # {where}" if where else text


def _clause_text(clause: Clause) -> str:
    return " ".join(a.text for a in clause.atoms)


def _where(span_file: str, line: int) -> str:
    return f"{span_file}:{line}"


def render_setting(key: str, clauses: list[tuple[str, str]]) -> list[str]:
    """`key clause,` one clause per line, each with where it was set (or 'default')."""
    lines = []
    for i, (text, where) in enumerate(clauses):
        lead = f"  {key:<{KEY_WIDTH}}" if i == 0 else " " * (2 + KEY_WIDTH)
        comma = "," if i + 1 < len(clauses) else ""
        lines.append(_line(lead + text + comma, where))
    return lines


def _setting(s: Setting, model: Model) -> list[str]:
    clauses = [(_clause_text(c), _where(c.span.file, c.span.line)) for c in s.clauses]
    written = {str(a.value) for c in s.clauses for a in c.atoms if a.kind in ("name", "arrow")}
    clauses += [(text, "default") for text in _defaults(s.key, written, model)]
    return render_setting(s.key, clauses)


def _row(row: Row) -> str:
    cells = [f"{row.atoms[0].text:<10}"] + [f"{a.text:>6}" for a in row.atoms[1:]]
    cells += [c.text for c in row.cells]  # per-stage values, set on this row's line
    return _line("    " + " ".join(cells), _where(row.span.file, row.span.line))


def _table(t: Table) -> list[str]:
    head = _line(f"  {t.key} {{", _where(t.key_span.file, t.key_span.line))
    columns = " ".join(f"{c:>6}" for c in settings.COLUMN_WORDS[1:])
    return [head, f"    {'# name':<10} {columns}", *(_row(r) for r in t.rows), "  }"]


def _scopes(model: Model) -> list[str]:
    """Comment lines under the stage table: each windowed block's K/V and Q windows, and the
    blocks that keep the previous stage's scope (a stage's first block); none when all global."""
    windows = [window.of(b) for b in model.blocks]
    if all(w is None for w in windows):
        return []
    video = model.input.kind == "video"

    def size(v: tuple[int, int, int]) -> str:
        return "x".join(str(n) for n in (v if video else v[1:]))

    out = ["  # attention scope per block (a stage's first block keeps the previous stage's):"]
    for b, w in zip(model.blocks, windows):
        scope = (
            "global"
            if w is None
            else f"mask_unit, window K/V {size(w.window_kv)} Q {size(w.window_q)}"
        )
        lag = f" (scope of {w.scope_from})" if w is not None and w.scope_from else ""
        out.append(f"  #   block {b.index:<3} {b.stage:<10} {scope}{lag}")
    return out


def render_resolved(spec: SpecSource) -> str:
    """The resolved spec as text: every setting and stage row with the file:line that set it."""
    model = spec.model
    files = dict.fromkeys([spec.path, *(s.span.file for s in spec.statements)])
    lines = [
        f"# {spec.name}: inheritance resolved ({' <- '.join(files)}).",
        "# '# default' marks values no file sets; this text parses back to the same model.",
        f"model {spec.name} {{",
    ]
    present = set()
    for s in spec.statements:
        present.add(s.key)
        lines += _setting(s, model) if isinstance(s, Setting) else _table(s) + _scopes(model)
    for key in OPTIONAL:
        if key not in present:
            lines += render_setting(key, [(t, "default") for t in _defaults(key, set(), model)])
    lines.append("}")
    return "\n".join(lines)
