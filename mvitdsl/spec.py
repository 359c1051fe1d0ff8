"""load_spec: read a .mv file or text, resolve `extends`, lower to IR and check shapes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import ir
from .analysis.analyze import Report, analyze
from .analysis.budget import check_budget
from .analysis.check import check_model
from .diagnostics import Diagnostic, Reporter, SpecError
from .language.lower import Lowering, merge
from .language.parse import parse
from .language.syntax import Model

MAX_INHERITANCE_DEPTH = 16


@dataclass(frozen=True)
class Spec:
    """A checked model spec: the IR, the resolved statements and the sources they came from."""

    model: ir.Model
    ast: Model
    statements: tuple[Any, ...]
    sources: dict[str, str] = field(default_factory=dict)
    warnings: tuple[Diagnostic, ...] = ()  # e.g. W001, an old spelling of a renamed word
    report: Report | None = field(default=None, compare=False)  # made by check_spec (batch 1)

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def path(self) -> str:
        return self.ast.file


def read_source(path_or_text: str | Path) -> tuple[str, str]:
    """(text, file name): a Path or an existing file name is read, anything else is spec text."""
    if isinstance(path_or_text, Path):
        return path_or_text.read_text(encoding="utf-8"), str(path_or_text)
    text = str(path_or_text)
    if "{" not in text and len(text) < 4096 and _is_file(text):
        return Path(text).read_text(encoding="utf-8"), text
    return text, "<spec>"


def _is_file(text: str) -> bool:
    """Whether text names a file; text that cannot be a file name (too long, NUL) is not one."""
    try:
        return Path(text).is_file()
    except (OSError, ValueError):
        return False


def load_spec(
    path_or_text: str | Path, *, input_size: tuple[int, ...] | None = None, check: bool = True
) -> Spec:
    """Parse, resolve inheritance, lower and (by default) shape-check one spec.

    Raises SpecError carrying every diagnostic found. Never imports torch.
    """
    text, file = read_source(path_or_text)
    model = parse(text, file)
    sources = {file: text}
    statements = resolve(model, sources, depth=0)
    lowering = Lowering(model, statements, sources)
    lowered = lowering.run()
    lowering.r.raise_if_any()
    assert lowered is not None
    if input_size is not None:
        lowered = with_input(lowered, input_size)
    spec = Spec(lowered, model, statements, sources, tuple(lowering.r.warnings))
    return replace(spec, report=check_spec(spec)) if check else spec


def resize(spec: Spec, size: tuple[int, ...]) -> Spec:
    """The spec at another input size, shape-checked again (raises SpecError if it cannot run)."""
    resized = replace(spec, model=with_input(spec.model, size), report=None)
    return replace(resized, report=check_spec(resized))


def check_spec(spec: Spec) -> Report:
    """The shape rules, then, on a model whose shapes hold, the budget rule on its cost model;
    returns that cost model (the report at batch 1, fp32), or raises SpecError."""
    check_model(spec)
    report = analyze(spec.model)
    check_budget(spec, report)
    return report


def with_input(model: ir.Model, size: tuple[int, ...]) -> ir.Model:
    """The same model at another input size: (C, T, H, W) for video, (C, H, W) for images."""
    c, t, h, w = ir.with_t(size, model.video)
    new_input = model.input.model_copy(update={"channels": c, "size": (t, h, w)})
    return model.model_copy(update={"input": new_input})


def resolve(model: Model, sources: dict[str, str], depth: int) -> tuple[Any, ...]:
    """The model's statements with every `extends` chain merged in, parent first."""
    if model.parent is None:
        return model.statements
    reporter = Reporter(sources)
    parent = model.parent
    if depth >= MAX_INHERITANCE_DEPTH:
        reporter.error(
            "E209",
            f"'extends' chain deeper than {MAX_INHERITANCE_DEPTH}",
            parent.span,
            "is there a cycle of specs extending each other?",
        )
        reporter.raise_if_any()
    path = Path(model.file).parent / parent.file
    if not path.is_file():
        reporter.error("E209", f"cannot find '{parent.file}' (looked at {path})", parent.span)
        reporter.raise_if_any()
    text = path.read_text(encoding="utf-8")
    sources[str(path)] = text
    try:
        base = parse(text, str(path))
    except SpecError as e:
        e.sources.update(sources)
        raise
    if base.name != parent.name:
        reporter.error(
            "E209", f"'{parent.file}' defines model '{base.name}', not '{parent.name}'", parent.span
        )
        reporter.raise_if_any()
    return merge(resolve(base, sources, depth + 1), model.statements)
