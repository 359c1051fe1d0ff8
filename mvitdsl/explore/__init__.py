"""Design-space exploration: `mvitdsl sweep` (variants of a base spec with exact costs, budgets and
Pareto fronts). No torch; matplotlib only for --plot, in mvitdsl.draw."""

from __future__ import annotations

from .run import SweepRun, sweep

__all__ = ["SweepRun", "sweep"]
