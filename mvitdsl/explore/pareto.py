"""Pareto fronts: a running front (memory: the front only) and a brute-force reference.

An objective is a column and a direction: `params:min`, `accuracy:max`. A point dominates another
when it is no worse in every objective and better in at least one; equal points do not dominate
each other, so both stay on the front.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Columns better when larger (joined scores, bench throughput); every other column is minimised.
MAXIMISED = ("acc", "top1", "top5", "map", "throughput", "clips_per_s", "mfu", "tflops")


@dataclass(frozen=True)
class Objective:
    column: str
    maximise: bool

    def __str__(self) -> str:
        return f"{self.column}:{'max' if self.maximise else 'min'}"


def parse_objectives(text: str) -> tuple[Objective, ...]:
    """`params,gmacs` or `gmacs:min,accuracy:max`; costs are minimised, accuracy maximised."""
    out = []
    for part in text.split(","):
        column, _, direction = part.strip().partition(":")
        if not column or direction not in ("", "min", "max"):
            raise ValueError(f"'{part}': write COLUMN, COLUMN:min or COLUMN:max")
        default = any(column.lower().startswith(w) for w in MAXIMISED)
        out.append(Objective(column, direction == "max" if direction else default))
    if len(out) < 1:
        raise ValueError("name at least one objective")
    return tuple(out)


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """a dominates b, every objective already turned into 'smaller is better'."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


class RunningFront:
    """The non-dominated points seen so far, by id; points enter one at a time."""

    def __init__(self) -> None:
        self.points: dict[str, tuple[float, ...]] = {}

    def add(self, key: str, point: Sequence[float]) -> bool:
        p = tuple(point)
        if any(dominates(q, p) for q in self.points.values()):
            return False
        for other in [k for k, q in self.points.items() if dominates(p, q)]:
            del self.points[other]
        self.points[key] = p
        return True


def brute_force(points: Iterable[tuple[str, Sequence[float]]]) -> set[str]:
    """The front by comparing every pair: the reference the running front is tested against."""
    items = list(points)
    return {k for k, p in items if not any(dominates(q, p) for _, q in items)}


def oriented(values: Sequence[float], objectives: Sequence[Objective]) -> tuple[float, ...]:
    return tuple(-v if o.maximise else v for v, o in zip(values, objectives))
