"""A pytest plugin: every `*.mv` spec a test item that checks it (shapes, budgets, its `expect`
figures) and fails with the rendered diagnostics. Registered as the `pytest11` entry point
`mvitdsl`; off unless asked for: `pytest --mvitdsl` or `mvitdsl_specs = true` in the ini file.
Never imports torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .diagnostics import SpecError


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mvitdsl")
    group.addoption(
        "--mvitdsl",
        action="store_true",
        default=False,
        help="collect *.mv model specs as tests (mvitdsl check and their expect lines)",
    )
    parser.addini("mvitdsl_specs", "collect *.mv model specs as tests", type="bool", default=False)


def enabled(config: pytest.Config) -> bool:
    return bool(config.getoption("mvitdsl") or config.getini("mvitdsl_specs"))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix == ".mv" and enabled(parent.config):
        return SpecFile.from_parent(parent, path=file_path)
    return None


class SpecFile(pytest.File):
    """A .mv file: one item, `check`."""

    def collect(self) -> Iterator[pytest.Item]:
        yield SpecItem.from_parent(self, name="check")


class SpecItem(pytest.Item):
    """Loads the spec as `mvitdsl check` does: parse, lower, shape rules, budget, `expect`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # as pytest's own items (Function, DoctestItem) have: other plugins' runtest hooks read
        # it (pytest-lsp 1.0's hook wrapper fails every item that lacks it)
        self.funcargs: dict[str, object] = {}

    def runtest(self) -> None:
        from .spec import load_spec

        load_spec(self.shown_path())

    def shown_path(self) -> Path:
        """The spec's path as the user named it: relative to where pytest runs, when inside."""
        here = self.config.invocation_params.dir
        return self.path.relative_to(here) if self.path.is_relative_to(here) else self.path

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, SpecError):
            n = len(excinfo.value.diagnostics)
            return f"{excinfo.value.render()}\n{n} error{'s' * (n != 1)} in {self.shown_path()}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"mvitdsl check {self.path.name}"
