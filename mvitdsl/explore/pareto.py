"""Pareto fronts: a running front (memory: the front only) and a brute-force reference.

An objective is a column and a direction: `params:min`, `accuracy:max`. A point dominates another
when it is no worse in every objective and better in at least one; equal points do not dominate
each other, so both stay on the front.
"""

from __future__ import annotations

import itertools
import pickle
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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


def row_point(row: Mapping[str, Any], objectives: Sequence[Objective]) -> tuple[float, ...] | None:
    """A kept row's objective values, oriented for minimising; None for a rejected row or one
    missing a figure."""
    values = [row.get(o.column) for o in objectives]
    numbers = [float(v) for v in values if isinstance(v, (int, float))]
    if not row["ok"] or len(numbers) != len(values):
        return None
    return oriented(numbers, objectives)


def flag_front(
    rows: Iterable[dict[str, Any]],
    point: Callable[[dict[str, Any]], tuple[float, ...] | None],
    key: Callable[[dict[str, Any]], str],
    front: RunningFront,
    chunk: int = 4096,
) -> Iterator[dict[str, Any]]:
    """The rows with their final `pareto` flag: a first pass feeds `front` while the rows wait
    in a spool file, `chunk` at a time (memory: the front and one chunk); a second pass reads
    them back and flags them."""
    buffer: list[dict[str, Any]] = []
    with tempfile.TemporaryFile() as spool:
        spilled = 0
        for row in rows:
            p = point(row)
            if p is not None:
                front.add(key(row), p)
            buffer.append(row)
            if len(buffer) >= chunk:
                pickle.dump(buffer, spool, protocol=pickle.HIGHEST_PROTOCOL)
                spilled, buffer = spilled + 1, []
        spool.seek(0)
        for part in itertools.chain((pickle.load(spool) for _ in range(spilled)), [buffer]):
            for row in part:
                row["pareto"] = key(row) in front.points
                yield row
