"""The budget rule (E306) runs after the shape checks, on the cost model, and check.py stays
ahead of analyze.py in the pipeline."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mvitdsl
from mvitdsl.analysis.budget import check_budget, round_up

TINY = """model tiny {
  input image 3x32x32
  patch conv 4x4 stride 4x4 -> 8
  budget params 1000 activation_gib 1e-6
  stages {
    s1  1   8  2  1x1
  }
}
"""


def diagnostics(text: str) -> list[mvitdsl.Diagnostic]:
    with pytest.raises(mvitdsl.SpecError) as info:
        mvitdsl.load_spec(text=text)
    return info.value.diagnostics


def test_both_budgets_are_reported_together_at_the_budget_line():
    params, memory = diagnostics(TINY)
    assert (params.code, params.line, memory.code, memory.line) == ("E306", 4, "E306", 4)
    assert params.message == "model has 10,288 parameters; the budget is 1,000"
    assert memory.hint == "use a smaller input, or raise it: 'budget activation_gib 1'"


def test_shape_errors_come_alone_without_the_budget():
    assert [d.code for d in diagnostics(TINY.replace("8  2  1x1", "8  3  1x1"))] == ["E300"]


def test_check_budget_takes_the_analysis_report():
    spec = mvitdsl.load_spec(text=TINY, check=False)
    report = mvitdsl.analyze(spec)
    with pytest.raises(mvitdsl.SpecError) as info:
        check_budget(spec.model, report, spec.sources)
    assert [d.code for d in info.value.diagnostics] == ["E306", "E306"]
    relaxed = TINY.replace("params 1000 activation_gib 1e-6", "params 2e4")
    relaxed_spec = mvitdsl.load_spec(text=relaxed)
    check_budget(relaxed_spec.model, report, relaxed_spec.sources)


def test_round_up_writes_two_significant_digits():
    assert [round_up(v) for v in (0.0, 0.04, 2, 10_288, 25.7e9)] == ["0", "1", "2", "11e3", "26e9"]


def test_check_imports_no_later_stage():
    tree = ast.parse((Path(mvitdsl.__file__).parent / "analysis" / "check.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    leaves = {m.rsplit(".", 1)[-1] for m in imported}
    later = {"analyze", "budget", "backend", "runtime", "emit", "artifact", "draw", "cli"}
    assert not (imported | leaves) & later
