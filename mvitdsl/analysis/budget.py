"""The budget rule (E306): refuse, before anything is allocated, a model above its parameter or
activation-memory budget. Runs after the shape checks, on analyze's cost model; never imports torch.
"""

from __future__ import annotations

from math import ceil, floor, log10
from typing import TYPE_CHECKING

from ..diagnostics import Reporter
from ..ir import Model
from .check import setting_span

if TYPE_CHECKING:
    from .analyze import Report


def round_up(value: float) -> str:
    """Two significant digits, rounded up, as the spec language writes numbers: 3.7e7, 2."""
    exp = max(floor(log10(value)) - 1, 0) if value > 0 else 0
    mantissa = ceil(value / 10**exp)
    return f"{mantissa}e{exp}" if exp else str(mantissa)


def check_budget(model: Model, report: Report, sources: dict[str, str] | None = None) -> None:
    """Raise SpecError with each budget the analysed model exceeds, or return quietly."""
    r = Reporter(sources or {})
    limits = model.budget
    gib = report.activation_bytes / 2**30
    raised = "budget" in model.where
    if report.params > limits.params:
        r.error(
            "E306",
            f"model has {report.params:,} parameters; the budget is {limits.params:,.0f}",
            setting_span(model, "budget"),
            f"raise it explicitly: 'budget params {round_up(report.params)}'",
        )
    if gib > limits.activation_gib:
        r.error(
            "E306",
            f"a training step at batch 1 (fp32) keeps about {gib:,.1f} GiB "
            f"of activations; the budget is {limits.activation_gib:g} GiB",
            setting_span(model, "budget" if raised else "input"),
            f"use a smaller input, or raise it: 'budget activation_gib {round_up(gib)}'",
        )
    r.raise_if_any()
