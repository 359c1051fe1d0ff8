"""What a sweep says about one variant: its values and verdict (`Outcome`), its stable id, the
limits it is held to (`Budgets`), the sweep's own reason codes; read by the engine, the sweep's
rows and the search."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..diagnostics import Diagnostic
from .axes import text_of, value_of
from .expr import Value
from .patch import Delta

# Codes of the sweep's own reasons (spec diagnostics keep theirs: E302, E306 ...).
SWEEP_CODES = {
    "S100": "a derived value is not a whole number",
    "S101": "a derived value or constraint cannot be evaluated",
    "S102": "a value is not a word of the spec language",
}


@dataclass(frozen=True)
class Budgets:
    """The sweep's limits (None: no limit); E306 when a variant exceeds one."""

    params: float | None = None
    gmacs: float | None = None
    activation_gib: float | None = None


@dataclass
class Outcome:
    """What one variant is: its values, its costs if it could be measured, its verdict."""

    id: str
    values: dict[str, Value]
    assigned: dict[str, str]  # PATH -> value text, every path the variant sets
    ok: bool = False
    params: int | None = None
    gmacs: float | None = None
    gmacs_fvcore: float | None = None
    activation_gib: float | None = None
    attention_share: float | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    statements: tuple[Any, ...] = ()


def variant_id(assigned: Mapping[str, str], canonical: Callable[[str], str] | None = None) -> str:
    """A stable id: the first 10 hex digits of the SHA-1 of the canonical overrides (paths
    sorted, values as the language writes them: `2.50` and `2.5` are one value); `canonical`
    writes a value text so (a sweep passes a memoised one)."""
    write = canonical or (lambda text: text_of(value_of(text)))
    items = sorted((path, write(text)) for path, text in assigned.items())
    text = json.dumps(items, separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()[:10]


class VariantIds:
    """variant_id, fast: each (path, text) is written as its JSON item once per sweep, and a
    variant's text is their join (the same bytes as json.dumps of the sorted items)."""

    def __init__(self, canonical: Callable[[str], str]) -> None:
        self.canonical = canonical
        self._items: dict[tuple[str, str], str] = {}

    def __call__(self, assigned: Mapping[str, str]) -> str:
        parts = []
        for path in sorted(assigned):  # paths are distinct: sorting them sorts the items
            text = assigned[path]
            item = self._items.get((path, text))
            if item is None:
                item = self._items[(path, text)] = json.dumps(
                    [path, self.canonical(text)], separators=(",", ":")
                )
            parts.append(item)
        return hashlib.sha1(f"[{','.join(parts)}]".encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Single:
    """What one value does on its own: diagnostics, or its changes to the base's draft."""

    diagnostics: list[Diagnostic]
    deltas: list[Delta]


def in_source_order(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """In source order, as SpecError lists them."""
    return sorted(
        diagnostics,
        key=lambda d: (d.span.file, d.span.line, d.span.column) if d.span else ("", 0, 0),
    )


def over_budget(b: Budgets, out: Outcome) -> list[Diagnostic]:
    """E306 for each limit the variant exceeds."""
    diags = []
    checks = (
        ("params", out.params, b.params, "parameters"),
        ("gmacs", out.gmacs, b.gmacs, "GMACs (matmul-only)"),
        ("activation_gib", out.activation_gib, b.activation_gib, "GiB of activations"),
    )
    for name, value, limit, words in checks:
        if limit is not None and value is not None and value > limit:
            amount = f"{value:,.0f}" if name == "params" else f"{value:,.4g}"
            message = f"over the {name} budget: {amount} {words} > {limit:,.6g}"
            diags.append(Diagnostic("E306", message))
    return diags
