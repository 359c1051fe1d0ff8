"""What a sweep varies: `--vary PATH[,PATH...]=VALUES` axes, `--set PATH=EXPR` derived values,
`--where EXPR` constraints, and the modes that turn axes into combinations (grid, random, zip).

VALUES is `a..b` (whole numbers, inclusive), `a..b:step`, or `v1,v2,...` (numbers, sizes such
as 1x2x2, or words). Combinations are produced lazily: a 10^6 grid is never held in memory.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from math import prod
from typing import Literal

from ..language import lexical
from .expr import Node, Value, parse_expr

Mode = Literal["grid", "random", "zip"]
MAX_RANGE = 1_000_000
_RANGE = re.compile(r"^\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*(?::\s*(\d+))?\s*$")


class AxisError(ValueError):
    """A --vary, --set or --where argument that cannot be read."""


@dataclass(frozen=True)
class Axis:
    """One `--vary`: the paths it sets (linked when several) and the value texts it takes."""

    label: str  # exactly as written: "scale4.blocks" or "scale2.dim,patch.dim"
    paths: tuple[str, ...]
    values: tuple[str, ...]


@dataclass(frozen=True)
class Derived:
    """One `--set PATH=EXPR`: a value computed from the variant's other values."""

    label: str
    path: str
    expr: Node
    text: str


@dataclass(frozen=True)
class Where:
    """One `--where EXPR` constraint; a variant it rejects is not evaluated."""

    text: str
    expr: Node


def value_of(text: str) -> Value:
    """The Python value of a value text: int, float, size tuple or word (lexical.py says which);
    a derived value below zero (`-3`) is a negative number, which the spec language refuses."""
    try:
        return lexical.word_value(text)
    except ValueError:
        pass
    if text.startswith("-") and lexical.is_number(text[1:]):
        return -lexical.number_value(text[1:])
    return text


def text_of(value: Value) -> str:
    """The spec language's text of a value (sizes joined by x, floats as short as exact)."""
    if isinstance(value, tuple):
        return lexical.size_text(value)
    if isinstance(value, float):
        return f"{value:g}" if float(f"{value:g}") == value else repr(value)
    return str(value)


def parse_values(text: str) -> tuple[str, ...]:
    """`a..b`, `a..b:step` or `v1,v2,...` -> the value texts, in order, without duplicates."""
    m = _RANGE.match(text)
    if m:
        lo, hi, step = int(m.group(1)), int(m.group(2)), int(m.group(3) or 1)
        if step < 1:
            raise AxisError(f"'{text}': the step must be at least 1")
        if hi < lo:
            raise AxisError(f"'{text}': the range is empty ({lo} > {hi})")
        if (hi - lo) // step + 1 > MAX_RANGE:
            raise AxisError(f"'{text}': more than {MAX_RANGE:,} values")
        return tuple(str(v) for v in range(lo, hi + 1, step))
    values = [v.strip() for v in text.split(",")]
    if not values or any(not v for v in values):
        raise AxisError(f"'{text}': empty value; write a..b, a..b:step or v1,v2,...")
    return tuple(dict.fromkeys(values))


def parse_vary(arg: str) -> Axis:
    """`PATH=VALUES` or `PATH,PATH=VALUES` (linked: one value sets every path)."""
    label, eq, values = arg.partition("=")
    if not eq:
        raise AxisError(f"--vary '{arg}': write PATH=VALUES, e.g. scale4.blocks=8..16:2")
    paths = tuple(p.strip() for p in label.split(","))
    if any(not p for p in paths):
        raise AxisError(f"--vary '{arg}': empty PATH")
    return Axis(label.strip(), paths, parse_values(values))


def parse_set(arg: str) -> Derived:
    """`PATH=EXPR`, e.g. `scale3.heads=scale3.dim/64`."""
    path, eq, text = arg.partition("=")
    if not eq or not path.strip():
        raise AxisError(f"--set '{arg}': write PATH=EXPR, e.g. scale3.heads=scale3.dim/64")
    return Derived(path.strip(), path.strip(), parse_expr(text), text.strip())


def parse_where(arg: str) -> Where:
    return Where(arg.strip(), parse_expr(arg))


def count(axes: Sequence[Axis], mode: Mode) -> int:
    """How many combinations the mode yields before sampling."""
    if not axes:
        return 1
    if mode == "zip":
        return len(axes[0].values)
    return prod(len(a.values) for a in axes)


def combinations(
    axes: Sequence[Axis], mode: Mode, samples: int | None = None, seed: int = 0
) -> Iterator[tuple[int, ...]]:
    """Index tuples (one index per axis) in the order the mode visits them.

    grid: every combination, the last axis fastest. zip: the i-th value of every axis (all axes
    must have the same length). random: `samples` distinct combinations of the grid, drawn
    without replacement by index (a 10^12 grid costs nothing), the same seed the same draw."""
    sizes = [len(a.values) for a in axes]
    if mode == "zip":
        if len(set(sizes)) > 1:
            listed = ", ".join(f"{a.label} has {len(a.values)}" for a in axes)
            raise AxisError(f"zip needs axes of one length: {listed}")
        yield from ((i,) * len(axes) for i in range(sizes[0] if sizes else 1))
        return
    if mode == "grid":
        yield from itertools.product(*(range(n) for n in sizes))
        return
    total = prod(sizes)
    n = total if samples is None else min(samples, total)
    for flat in random.Random(seed).sample(range(total), n):
        yield _unflatten(flat, sizes)


def _unflatten(flat: int, sizes: Sequence[int]) -> tuple[int, ...]:
    out = []
    for n in reversed(sizes):
        flat, i = divmod(flat, n)
        out.append(i)
    return tuple(reversed(out))
