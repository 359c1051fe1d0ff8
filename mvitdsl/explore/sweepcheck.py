"""The checker's rules as a sweep runs them: over flows computed once per distinct block (the
engine's), not over a fresh networkx graph per variant."""

from __future__ import annotations

from .. import ir
from ..analysis.check import Checker
from ..analysis.graph import BlockFlow
from ..spec import Spec


class SweepChecker(Checker):
    """The checker's rules, run over flows computed once per distinct block instead of over a
    fresh networkx graph; a block whose rules passed before on the same fields is not re-run."""

    def __init__(
        self,
        spec: Spec,
        flows: list[tuple[ir.Block, BlockFlow, int]],
        passed: set[int],
    ) -> None:
        super().__init__(spec.model, spec.sources)
        self.flows, self.passed = flows, passed

    def run(self) -> None:
        flow_ok = True  # as Checker.run: after one broken grid, later grids are consequences
        for block, flow, key in self.flows:
            self.check_heads(block)
            if flow_ok and key not in self.passed:
                errors = len(self.r.diagnostics)
                self.check_block(block, flow)
                flow_ok = len(self.r.diagnostics) == errors
                if flow_ok:
                    self.passed.add(key)
