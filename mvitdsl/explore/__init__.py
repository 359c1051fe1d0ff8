"""Design-space exploration: `mvitdsl sweep` (variants of a base spec, or of several with one
joint front, with exact costs, budgets and Pareto fronts). No torch; matplotlib only for
--plot, in mvitdsl.draw."""

from __future__ import annotations

from .multi import MultiSweep
from .run import SweepRun, sweep

__all__ = ["MultiSweep", "SweepRun", "sweep"]
