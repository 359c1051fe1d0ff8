"""`mvitdsl diff A.mv B.mv`: the settings and stage rows that differ (file:line on each side) and
the cost difference per stage and in total. Works on resolved specs, so inherited values count;
never imports torch."""

from __future__ import annotations

from typing import Any

from ..ir import SpecSource
from ..language.overrides import row_words
from ..language.syntax import Clause, Row, Setting, Table
from .analyze import Report, analyze

SCHEMA = 1  # the JSON shape's version; `kind` names the shape (GLOSSARY.md)
GIB = 2**30


def _text(atoms: Any) -> str:
    return " ".join(a.text for a in atoms)


def _clause_key(clause: Clause) -> str:
    first = clause.atoms[0]
    return str(first.value) if first.kind in ("name", "arrow") else f"#{first.text}"


def _at(span: Any) -> str:
    return f"{span.file}:{span.line}"


def _settings(spec: SpecSource) -> dict[tuple[str, str], tuple[str, str]]:
    """(setting, clause's first word) -> (clause text, file:line)."""
    out = {}
    for s in spec.statements:
        if isinstance(s, Setting):
            for c in s.clauses:
                out[(s.key, _clause_key(c))] = (_text(c.atoms), _at(c.span))
    return out


def _rows(spec: SpecSource) -> dict[str, tuple[str, str]]:
    """stage name -> (row text, file:line), in table order."""
    out: dict[str, tuple[str, str]] = {}
    for s in spec.statements:
        if isinstance(s, Table) and s.key == "stages":
            for r in s.rows:
                out[str(r.atoms[0].value)] = (_row_text(r), _at(r.span))
    return out


def _row_text(r: Row) -> str:
    """The row after its name: columns, then any `key=value` cells."""
    return " ".join(row_words(r)[1:])


def _changes(a: dict[Any, tuple[str, str]], b: dict[Any, tuple[str, str]]) -> list[dict[str, Any]]:
    out = []
    for key in dict.fromkeys([*a, *b]):
        ta, tb = a.get(key), b.get(key)
        if ta is None or tb is None or ta[0] != tb[0]:
            out.append(
                {
                    "key": key,
                    "a": ta[0] if ta else None,
                    "b": tb[0] if tb else None,
                    "a_at": ta[1] if ta else None,
                    "b_at": tb[1] if tb else None,
                }
            )
    return out


def _costs(params: int, macs: int, fvcore: int, act: int) -> dict[str, Any]:
    return {
        "params": params,
        "gmacs": macs / 1e9,
        "gmacs_fvcore": fvcore / 1e9,
        "activation_gib": act / GIB,
    }


def _delta(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any]:
    keys = ("params", "gmacs", "gmacs_fvcore", "activation_gib")
    za = a or dict.fromkeys(keys, 0)
    zb = b or dict.fromkeys(keys, 0)
    return {k: zb[k] - za[k] for k in keys}


def _stage_costs(report: Report) -> dict[str, dict[str, Any]]:
    return {
        s.name: _costs(s.params, s.macs, s.macs_fvcore, s.activation_bytes) for s in report.stages
    }


def diff_specs(a: SpecSource, b: SpecSource) -> dict[str, Any]:
    """What differs between two specs: settings, stage rows, and costs per stage and in total."""
    settings = _changes(_settings(a), _settings(b))
    for s in settings:
        s["setting"], s["option"] = s.pop("key")
    rows = _changes(_rows(a), _rows(b))
    for r in rows:
        r["stage"] = r.pop("key")
    ra, rb = analyze(a.model), analyze(b.model)
    ca, cb = _stage_costs(ra), _stage_costs(rb)
    stages = [
        {
            "stage": name,
            "a": ca.get(name),
            "b": cb.get(name),
            "delta": _delta(ca.get(name), cb.get(name)),
        }
        for name in dict.fromkeys([*ca, *cb])
    ]
    ta = _costs(ra.params, ra.macs, ra.macs_fvcore, ra.activation_bytes)
    tb = _costs(rb.params, rb.macs, rb.macs_fvcore, rb.activation_bytes)
    return {
        "schema": SCHEMA,
        "kind": "diff",
        "a": {"name": a.name, "file": a.path},
        "b": {"name": b.name, "file": b.path},
        "settings": settings,
        "stages": rows,
        "costs": {"stages": stages, "total": {"a": ta, "b": tb, "delta": _delta(ta, tb)}},
    }


def _signed(value: float, kind: str) -> str:
    if kind == "params":
        return f"{value:+,.0f}"
    return f"{value:+.3f}"


def _plain(value: float, kind: str) -> str:
    return f"{value:,.0f}" if kind == "params" else f"{value:.3f}"


def render_diff(d: dict[str, Any]) -> str:
    """The diff as text: changed lines with where each side sets them, then a cost table."""
    a, b = d["a"]["name"], d["b"]["name"]
    lines = [f"--- {a} ({d['a']['file']})", f"+++ {b} ({d['b']['file']})"]
    if not d["settings"] and not d["stages"]:
        lines.append("no setting or stage row differs")
    for s in d["settings"]:
        lines.append(f"{s['setting']}.{s['option']}:")
        if s["a"] is not None:
            lines.append(f"  - {s['a']:<44} {s['a_at']}")
        if s["b"] is not None:
            lines.append(f"  + {s['b']:<44} {s['b_at']}")
    for r in d["stages"]:
        lines.append(f"stages.{r['stage']}:")
        if r["a"] is not None:
            lines.append(f"  - {r['a']:<44} {r['a_at']}")
        if r["b"] is not None:
            lines.append(f"  + {r['b']:<44} {r['b_at']}")
    kinds = ("params", "gmacs", "gmacs_fvcore", "activation_gib")
    heads = ("params", "GMACs matmul", "GMACs fvcore", "act GiB")
    lines += ["", f"{'cost (B - A)':<10} " + " ".join(f"{h:>16}" for h in heads)]
    for s in d["costs"]["stages"]:
        lines.append(
            f"{s['stage']:<10} " + " ".join(f"{_signed(s['delta'][k], k):>16}" for k in kinds)
        )
    total = d["costs"]["total"]
    lines.append(
        f"{'total':<10} " + " ".join(f"{_signed(total['delta'][k], k):>16}" for k in kinds)
    )
    lines.append(f"{'  A':<10} " + " ".join(f"{_plain(total['a'][k], k):>16}" for k in kinds))
    lines.append(f"{'  B':<10} " + " ".join(f"{_plain(total['b'][k], k):>16}" for k in kinds))
    return "\n".join(lines)
