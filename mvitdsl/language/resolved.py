"""`mvitdsl check --resolved`: the spec with `extends` merged in, each value followed by the
file:line that set it, and the defaults it relies on spelled out. The text parses back to the
same model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ..ir import Model
from .syntax import Clause, Row, Setting, Table


class Spec(Protocol):
    """What the printer reads (mvitdsl.spec.Spec has it); the language never imports the driver."""

    @property
    def model(self) -> Model: ...
    @property
    def statements(self) -> tuple[Any, ...]: ...
    @property
    def path(self) -> str: ...
    @property
    def name(self) -> str: ...


KEY_WIDTH = 11
COMMENT_COLUMN = 60

Default = Callable[[Model], str]


def _num(value: float) -> str:
    return f"{value:g}"


# Per setting: option word -> the clause that states the value in effect when it is not written.
DEFAULTS: dict[str, dict[str, Default]] = {
    "tokens": {"position": lambda m: f"position {m.tokens.position}"},
    "attention": {
        "pool": lambda m: f"pool {m.attention.pool_mode}",
        "pool_q_blocks": lambda m: f"pool_q_blocks {m.attention.pool_q_blocks}",
        "mlp_ratio": lambda m: f"mlp_ratio {_num(m.attention.mlp_ratio)}",
        "dim_change": lambda m: f"dim_change {m.attention.dim_change}",
        "rel_pos": lambda m: f"rel_pos {m.attention.rel_pos}",
        "residual_pool": lambda m: f"residual_pool {m.attention.residual_pool}",
        "qkv_bias": lambda m: f"qkv_bias {'on' if m.attention.qkv_bias else 'off'}",
        "dropout": lambda m: f"dropout {_num(m.attention.dropout)}",
    },
    "head": {
        "dropout": lambda m: f"dropout {_num(m.head.dropout)}",
        "classes": lambda m: f"classes {m.head.classes}",
    },
    "train": {"drop_path": lambda m: f"drop_path {_num(m.drop_path)}"},
    "norm": {"eps": lambda m: f"eps {_num(m.norm_eps)}"},
}

# Flags of which one is always in effect: (setting, words, the one in effect).
FLAGS: dict[str, tuple[tuple[str, ...], Callable[[Model], str]]] = {
    "tokens": (("cls", "no_cls"), lambda m: "cls" if m.tokens.cls else "no_cls"),
    "head": (("cls", "mean"), lambda m: m.head.pool),
}

# Settings a model may leave out entirely, in the order they are printed.
OPTIONAL = ("tokens", "attention", "head", "train", "norm")


def _line(text: str, where: str) -> str:
    return f"{text:<{COMMENT_COLUMN - 1}} # {where}" if where else text


def _clause_text(clause: Clause) -> str:
    return " ".join(a.text for a in clause.atoms)


def _where(span_file: str, line: int) -> str:
    return f"{span_file}:{line}"


def _defaults(key: str, written: set[str], model: Model) -> list[str]:
    out = []
    flags = FLAGS.get(key)
    if flags is not None and not written & set(flags[0]):
        out.append(flags[1](model))
    out += [fill(model) for word, fill in DEFAULTS.get(key, {}).items() if word not in written]
    return out


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
    return _line("    " + " ".join(cells), _where(row.span.file, row.span.line))


def _table(t: Table) -> list[str]:
    head = _line(f"  {t.key} {{", _where(t.key_span.file, t.key_span.line))
    columns = " ".join(f"{c:>6}" for c in ("blocks", "dim", "heads", "stride_q", "stride_kv"))
    return [head, f"    {'# name':<10} {columns}", *(_row(r) for r in t.rows), "  }"]


def render_resolved(spec: Spec) -> str:
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
        lines += _setting(s, model) if isinstance(s, Setting) else _table(s)
    for key in OPTIONAL:
        if key not in present:
            lines += render_setting(key, [(t, "default") for t in _defaults(key, set(), model)])
    lines.append("}")
    return "\n".join(lines)
