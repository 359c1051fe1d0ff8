"""What a search optimises: `NAME[:min|max]` objectives. Analytic costs (the sweep's columns),
`latency` and `peak_memory` measured on a device (backend/measure.py), or `module:function`,
a user's function called with the built model. No torch here: measuring imports the backend.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .. import ir
from .pareto import MAXIMISED, Objective

ANALYTIC = ("params", "gmacs", "gmacs_fvcore", "activation_gib", "attention_share")
MEASURED = {"latency": "latency_ms", "peak_memory": "peak_memory_gib"}  # name -> its column
_USER = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class SearchError(ValueError):
    """A search argument, storage or study that cannot be used: one line for the user."""


@dataclass(frozen=True)
class Goal:
    """One objective: its name, direction and kind (analytic, latency, peak_memory, user)."""

    name: str
    maximise: bool
    kind: str

    @property
    def column(self) -> str:
        """The row's column that holds its value."""
        return MEASURED.get(self.name, self.name)

    @property
    def objective(self) -> Objective:
        return Objective(self.column, self.maximise)

    def __str__(self) -> str:
        return f"{self.name}:{'max' if self.maximise else 'min'}"


def parse_goal(text: str) -> Goal:
    """`params`, `latency:min`, `mypkg.proxy:accuracy:max`: a known name or MODULE:FUNCTION,
    then an optional direction (costs are minimised; accuracy-like names maximised)."""
    body, direction = text.strip(), ""
    head, sep, tail = body.rpartition(":")
    if sep and tail in ("min", "max"):
        body, direction = head, tail
    if body in ANALYTIC:
        kind = "analytic"
    elif body in MEASURED:
        kind = body
    elif _USER.match(body):
        kind = "user"
    else:
        known = ", ".join((*ANALYTIC, *MEASURED))
        raise SearchError(
            f"unknown objective '{text.strip()}': one of {known}, or MODULE:FUNCTION "
            "(called with the built model), each with :min or :max"
        )
    short = body.rpartition(":")[2].lower()
    default = any(short.startswith(w) for w in MAXIMISED)
    return Goal(body, direction == "max" if direction else default, kind)


def parse_goals(texts: Sequence[str] | str) -> tuple[Goal, ...]:
    """Objectives from `--objective` flags (each may list several, comma-separated)."""
    items = [texts] if isinstance(texts, str) else list(texts)
    goals = tuple(parse_goal(p) for t in items for p in t.split(",") if p.strip())
    if not goals:
        raise SearchError("name at least one --objective (e.g. params, latency)")
    names = [g.name for g in goals]
    if len(set(names)) != len(names):
        raise SearchError(f"an objective is named twice: {', '.join(names)}")
    return goals


def user_function(name: str) -> Callable[[Any], Any]:
    """The function of a `module:function` objective, imported (a SearchError if it cannot be)."""
    module, _, attr = name.partition(":")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except Exception as e:  # any import failure is the user's to fix: one line
        raise SearchError(
            f"objective {name}: cannot import it ({type(e).__name__}: {e})".rstrip()
        ) from e
    if not callable(fn):
        raise SearchError(f"objective {name}: {module}.{attr} is not a function")
    return fn  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Bench:
    """Where and how measured objectives are measured."""

    device: str = "cpu"
    batch: int = 1
    dtype: str = "fp32"
    reps: int = 5
    warmup: int = 1


def measure(
    goals: Sequence[Goal], model: ir.Model, bench: Bench, users: dict[str, Callable[[Any], Any]]
) -> dict[str, Any]:
    """The measured objectives of one checked variant: a record per measured goal."""
    from ..backend import measure as m

    out: dict[str, Any] = {}
    for g in goals:
        if g.kind == "latency":
            out[g.name] = m.latency(
                model, bench.device, bench.batch, bench.dtype, bench.reps, bench.warmup
            )
        elif g.kind == "peak_memory":
            out[g.name] = m.peak_memory(model, bench.device, bench.batch, bench.dtype)
        elif g.kind == "user":
            try:
                out[g.name] = m.user_value(users[g.name], model, bench.device)
            except Exception as e:  # the user's code: reported in one line, the trial failed
                raise UserObjectiveError(
                    f"objective {g.name} raised {type(e).__name__}: {e}"
                ) from e
    return out


class UserObjectiveError(RuntimeError):
    """A user's objective function raised; the search stops with one line."""


def value(goal: Goal, costs: dict[str, Any], measured: dict[str, Any]) -> float:
    """The number Optuna is told for one goal."""
    if goal.kind == "analytic":
        return float(costs[goal.name])
    record = measured[goal.name]
    return float(record[goal.column] if isinstance(record, dict) else record)
