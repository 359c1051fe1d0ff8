"""The `expect` rule (E308): each figure a spec states about itself against the analysis, with
the computed value in the message when it differs. Never imports torch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..diagnostics import Reporter
from ..language.expect import Expectation

if TYPE_CHECKING:
    from .analyze import Report


class Stated(Protocol):
    """A spec's stated figures (`expect`) and its sources, for the carets (mvitdsl.spec.Spec
    has them)."""

    @property
    def sources(self) -> dict[str, str]: ...
    @property
    def expectations(self) -> tuple[Expectation, ...]: ...


def computed(what: str, report: Report) -> float | tuple[int, ...]:
    """The analysed value of one `expect` word."""
    if what == "params":
        return float(report.params)
    if what == "gmacs":
        return report.macs / 1e9
    if what == "gmacs_fvcore":
        return report.macs_fvcore / 1e9
    last = report.stages[-1]
    grid = last.grid if report.model.input.kind == "video" else last.grid[1:]
    return (last.dim, *grid)


def met(e: Expectation, value: float | tuple[int, ...]) -> bool:
    """Sizes equal; numbers within half a unit of the last digit written."""
    if isinstance(e.value, tuple) or isinstance(value, tuple):
        return e.value == value
    return abs(value - e.value) <= e.tolerance * (1 + 1e-9)


def written(e: Expectation, value: float | tuple[int, ...], more: int = 0) -> str:
    """The computed value written like the expectation: to its decimals (at least 3 for GMACs),
    plus `more`."""
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    if e.what == "params":
        return str(int(value))
    mantissa = e.text.lower().split("e")[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return f"{value:.{max(decimals, 3) + more}f}"


def check_expectations(spec: Stated, report: Report) -> None:
    """Raise SpecError naming each stated figure the analysis does not reproduce."""
    r = Reporter(spec.sources)
    for e in spec.expectations:
        value = computed(e.what, report)
        if met(e, value):
            continue
        exact = isinstance(value, tuple) or (e.what == "params" and e.tolerance <= 0.5)
        within = "" if exact else f" (the digits written allow ±{e.tolerance:g})"
        r.error(
            "E308",
            f"expected {e.what} {e.text}, computed {written(e, value, more=2)}{within}",
            e.span,
            f"if the change is intended, write 'expect {e.what} {written(e, value)}'",
        )
    r.raise_if_any()
