"""load_spec: read a .mv file or text, resolve `extends`, lower to IR and check shapes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import ir
from .analysis.analyze import Report, analyze
from .analysis.budget import check_budget
from .analysis.check import check_model
from .analysis.expect import check_expectations
from .diagnostics import Diagnostic, Reporter, SpecError
from .language.expect import Expectation, read_expect, split_expect
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
    expectations: tuple[Expectation, ...] = ()  # the spec's own `expect`, checked at its input
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
    path_or_text: str | Path | None = None,
    *,
    input_size: tuple[int, ...] | None = None,
    check: bool = True,
    name: str | None = None,
) -> Spec:
    """Parse, resolve inheritance, lower and (by default) shape-check one spec.

    `name="mvit_b"` loads a shipped spec (`mvitdsl list`) instead of a file or text.
    Raises SpecError carrying every diagnostic found. Never imports torch.
    """
    if name is not None:
        path_or_text = shipped(name)
    if path_or_text is None:
        raise TypeError("load_spec: give a file, spec text, or name= of a shipped spec")
    text, file = read_source(path_or_text)
    model, expect = split_expect(parse(text, file))  # `expect` is the child's own: not merged
    sources = {file: text}
    statements = resolve(model, sources, depth=0)
    lowering = Lowering(model, statements, sources)
    lowered = lowering.run()
    lowering.r.raise_if_any()
    assert lowered is not None
    expectations = read_expect(expect, sources)
    if input_size is not None:  # the figures stated hold at the spec's own input only
        lowered, expectations = with_input(lowered, input_size), ()
    spec = Spec(lowered, model, statements, sources, expectations, tuple(lowering.r.warnings))
    return replace(spec, report=check_spec(spec)) if check else spec


def shipped(name: str) -> Path:
    """The file of the shipped spec `name`; FileNotFoundError naming the shipped ones if none."""
    from .catalog import names, shipped_path

    path = shipped_path(name)
    if path is None:
        raise FileNotFoundError(f"no shipped spec {name!r}; shipped: {', '.join(names())}")
    return path


def resize(spec: Spec, size: tuple[int, ...]) -> Spec:
    """The spec at another input size, shape-checked again (raises SpecError if it cannot run)."""
    resized = replace(spec, model=with_input(spec.model, size), report=None, expectations=())
    return replace(resized, report=check_spec(resized))


def check_spec(spec: Spec) -> Report:
    """The shape rules, then, on a model whose shapes hold, the budget rule on its cost model
    and the figures the spec states (`expect`); returns that cost model (the report at batch 1,
    fp32), or raises SpecError."""
    check_model(spec.model, spec.sources)
    report = analyze(spec.model)
    check_budget(spec.model, report, spec.sources)
    check_expectations(spec, report)
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
        base, _ = split_expect(parse(text, str(path)))  # a parent's `expect` is not inherited
    except SpecError as e:
        e.sources.update(sources)
        raise
    if base.name != parent.name:
        reporter.error(
            "E209", f"'{parent.file}' defines model '{base.name}', not '{parent.name}'", parent.span
        )
        reporter.raise_if_any()
    return merge(resolve(base, sources, depth + 1), model.statements)
