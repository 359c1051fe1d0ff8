"""load_spec: read a .mv file or text, resolve `extends`, lower to IR and check shapes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import ir
from .diagnostics import Reporter, SpecError
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
    spec = Spec(lowered, model, statements, sources)
    if check:
        check_spec(spec)
    return spec


def resize(spec: Spec, size: tuple[int, ...]) -> Spec:
    """The spec at another input size, shape-checked again (raises SpecError if it cannot run)."""
    resized = Spec(with_input(spec.model, size), spec.ast, spec.statements, spec.sources)
    check_spec(resized)
    return resized


def check_spec(spec: Spec) -> None:
    """The shape rules, then, on a model whose shapes hold, the budget rule on its cost model."""
    from .analysis.analyze import analyze
    from .analysis.budget import check_budget
    from .analysis.check import check_model

    check_model(spec.model, spec.sources)
    check_budget(spec.model, analyze(spec.model), spec.sources)


def with_input(model: ir.Model, size: tuple[int, ...]) -> ir.Model:
    """The same model at another input size: (C, T, H, W) for video, (C, H, W) for images."""
    if model.input.kind == "video":
        c, grid = size[0], (size[1], size[2], size[3])
    else:
        c, grid = size[0], (1, size[-2], size[-1])
    new_input = model.input.model_copy(update={"channels": c, "size": grid})
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
    if parent.file is None:
        if parent.name != model.name:
            reporter.error(
                "E209",
                f"no model '{parent.name}' to extend",
                parent.span,
                'name the parent\'s file: extends "mvit_b.mv" mvit_b',
            )
        else:
            reporter.error("E209", f"model '{model.name}' extends itself", parent.span)
        reporter.raise_if_any()
    assert parent.file is not None
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
