"""load_spec: read a .mv file (or text=...), resolve `extends`, lower to IR and check shapes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import ir
from .analysis.analyze import Report, analyze
from .analysis.budget import check_budget
from .analysis.check import check_model
from .analysis.expect import check_expectations
from .analysis.graph import block_flows
from .catalog import names, shipped_path
from .diagnostics import Diagnostic, Reporter, SpecError
from .language.atoms import MAX_INT
from .language.expect import Expectation, read_expect, split_expect
from .language.lower import Lowering, merge
from .language.merge import own_statements
from .language.parse import MAX_SOURCE_BYTES, decode_source, parse
from .language.reference import read_reference, split_reference
from .language.syntax import Model, Parent

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
    reference: ir.Reference | None = None  # the spec's own `reference` (bench --against)
    report: Report | None = field(default=None, compare=False)  # made by check_spec (batch 1)

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def path(self) -> str:
        return self.ast.file


def read_source(path: str | Path) -> tuple[str, str]:
    """(text, file name) of a spec file; its bytes must be UTF-8 text (else a located E104)."""
    if not isinstance(path, (str, Path)):
        raise TypeError(
            f"a spec file name must be a str or pathlib.Path, not {type(path).__name__}; "
            "pass spec text as load_spec(text=...)"
        )
    name = str(path)
    if not name or "\0" in name:
        raise ValueError(f"{name!r} is not a file name; pass spec text as load_spec(text=...)")
    file = Path(name)
    looks_like_text = "{" in name or "\n" in name
    hint = "; pass spec text as load_spec(text=...)" if looks_like_text else ""
    try:
        is_dir, is_file = file.is_dir(), file.is_file()
    except OSError:  # a name too long to be one
        is_dir, is_file = False, False
    if is_dir:
        raise ValueError(f"{name} is a folder, not a .mv file")
    if not is_file:
        shown = name if len(name) <= 200 else name[:200] + "..."
        raise FileNotFoundError(f"no spec file {shown!r}{hint}")
    size = file.stat().st_size
    if size > MAX_SOURCE_BYTES:
        data = file.read_bytes()[: MAX_SOURCE_BYTES + 1]  # E103 from parse names the limit
    else:
        data = file.read_bytes()
    return decode_source(data, name), name


def load_spec(
    path: str | Path | None = None,
    *,
    text: str | None = None,
    name: str | None = None,
    input_size: tuple[int, ...] | None = None,
    check: bool = True,
) -> Spec:
    """Parse, resolve inheritance, lower and (by default) shape-check one spec.

    `path` is always a file name (str or Path; FileNotFoundError if there is none); spec text
    goes through `text=` only; `name="mvit_b"` loads a shipped spec (`mvitdsl list`).
    `input_size` overrides the input: (C, T, H, W) for video, (C, H, W) for images. Raises
    SpecError carrying every diagnostic found, or ValueError / TypeError for a bad argument.
    Never imports torch.
    """
    text, file = _source(path, text, name)
    _check_bool("check", check)
    if input_size is not None:
        input_size = check_size_arg(input_size, "input_size")
    model, expect = split_expect(parse(text, file))  # `expect` is the child's own
    model, stated = split_reference(model)  # and so is `reference`
    sources = {file: text}
    statements = resolve(model, sources, depth=0)
    lowered, warnings = _lower(model, statements, sources)
    expectations = read_expect(expect, sources)
    reference = read_reference(stated, sources)
    if input_size is not None:  # the figures stated hold at the spec's own input only
        lowered, expectations = with_input(lowered, input_size), ()
    spec = Spec(lowered, model, statements, sources, expectations, warnings, reference)
    return replace(spec, report=check_spec(spec)) if check else spec


def _source(path: str | Path | None, text: str | None, name: str | None) -> tuple[str, str]:
    """(text, file name) of load_spec's one source: a file, text=... or a shipped spec's name."""
    if name is not None:
        if path is not None or text is not None:
            raise TypeError("load_spec takes a file name, text=... or name=..., one of them")
        path = shipped(name)
    if (path is None) == (text is None):
        raise TypeError("load_spec takes a file name, text=... or name=..., exactly one of them")
    if text is not None:
        if not isinstance(text, str):
            raise TypeError(f"text= must be a str, not {type(text).__name__}")
        return text, "<spec>"
    assert path is not None
    return read_source(path)


def _lower(
    model: Model, statements: tuple[Any, ...], sources: dict[str, str]
) -> tuple[ir.Model, tuple[Diagnostic, ...]]:
    """The IR of the resolved statements and the lowering's warnings; SpecError on any error."""
    lowering = Lowering(model, statements, sources)
    lowered = lowering.run()
    lowering.r.raise_if_any()
    assert lowered is not None
    return lowered, tuple(lowering.r.warnings)


def shipped(name: str) -> Path:
    """The file of the shipped spec `name`; FileNotFoundError naming the shipped ones if none."""
    path = shipped_path(name)
    if path is None:
        raise FileNotFoundError(f"no shipped spec {name!r}; shipped: {', '.join(names())}")
    return path


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name}= must be True or False, not {value!r}")


def check_size_arg(size: object, name: str = "input") -> tuple[int, ...]:
    """An input size from the API: 3 or 4 whole numbers, each in [1, 1,000,000]."""
    if isinstance(size, (str, bytes)) or not isinstance(size, (tuple, list)):
        raise TypeError(
            f"{name}= must be a tuple of ints like (3, 16, 224, 224), not {type(size).__name__}"
        )
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in size):
        raise TypeError(f"{name}= must hold whole numbers, got {tuple(size)!r}")
    values = tuple(int(v) for v in size)
    if len(values) not in (3, 4):
        raise ValueError(
            f"{name}= has {len(values)} sizes {values}; give (C, T, H, W) for video "
            "or (C, H, W) for images"
        )
    bad = [v for v in values if not 1 <= v <= MAX_INT]
    if bad:
        raise ValueError(f"{name}= sizes must be between 1 and {MAX_INT:,}, got {values}")
    return values


def resize(spec: Spec, size: tuple[int, ...]) -> Spec:
    """The spec at another input size, shape-checked again (raises SpecError if it cannot run,
    ValueError / TypeError for a size that is not one)."""
    if not isinstance(spec, Spec):
        raise TypeError(f"resize takes a Spec from load_spec, not {type(spec).__name__}")
    resized = replace(spec, model=with_input(spec.model, size), report=None, expectations=())
    return replace(resized, report=check_spec(resized))


def check_spec(spec: Spec) -> Report:
    """The shape rules, then, on a model whose shapes hold, the budget rule on its cost model
    and the figures the spec states (`expect`); returns that cost model (the report at batch 1,
    fp32), or raises SpecError."""
    flows = block_flows(spec.model)  # the block graph's shapes, once: the later stages share them
    check_model(spec.model, spec.sources, flows)
    report = analyze(spec.model, flows=flows)
    check_budget(spec.model, report, spec.sources)
    check_expectations(spec, report)
    return report


def with_input(model: ir.Model, size: tuple[int, ...]) -> ir.Model:
    """The same model at another input size: (C, T, H, W) for video, (C, H, W) for images.

    Raises TypeError / ValueError when the size is not whole numbers >= 1 or has the wrong number
    of entries for the model's input kind."""
    size = check_size_arg(size)
    want = 4 if model.video else 3
    if len(size) != want:
        shape = "(C, T, H, W), e.g. 3x16x224x224" if want == 4 else "(C, H, W), e.g. 3x224x224"
        raise ValueError(
            f"{model.name} takes {model.input.kind} input {shape}; "
            f"got {len(size)} sizes {'x'.join(map(str, size))}"
        )
    if model.video:
        c, grid = size[0], (size[1], size[2], size[3])
    else:
        c, grid = size[0], (1, size[-2], size[-1])
    return model.model_copy(update={"input": model.input.at(grid, c)})


def parent_path(file: str, parent: Parent) -> Path:
    """The file `extends` reads: the one it names (beside the child), or the shipped spec."""
    if not parent.file:
        return shipped_path(parent.name) or Path(f"{parent.name}.mv")  # parse checked the name
    return Path(file).parent / parent.file


def resolve(model: Model, sources: dict[str, str], depth: int) -> tuple[Any, ...]:
    """The model's statements with every `extends` chain merged in, parent first."""
    reporter = Reporter(sources)
    if model.parent is None:
        own = own_statements(model.statements, reporter)
        reporter.raise_if_any()
        return own
    base = _read_parent(model.file, model.parent, sources, depth, reporter)
    merged = merge(resolve(base, sources, depth + 1), model.statements, reporter)
    reporter.raise_if_any()
    return merged


def _read_parent(
    file: str, parent: Parent, sources: dict[str, str], depth: int, reporter: Reporter
) -> Model:
    """The model `parent` names, parsed (its text added to `sources`); E209 if it is not there."""
    path = _parent_file(file, parent, depth, reporter)
    try:
        text = decode_source(path.read_bytes(), str(path))
        sources[str(path)] = text
        base, _ = split_expect(parse(text, str(path)))  # a parent's `expect` is not inherited
        base, _ = split_reference(base)  # nor its `reference`
    except SpecError as e:
        e.sources.update(sources)
        raise
    if base.name != parent.name:
        reporter.error(
            "E209", f"'{parent.file}' defines model '{base.name}', not '{parent.name}'", parent.span
        )
        reporter.raise_if_any()
    return base


def _parent_file(file: str, parent: Parent, depth: int, reporter: Reporter) -> Path:
    """The file `extends` reads; E209 for a chain too deep or a file that is not there."""
    if depth >= MAX_INHERITANCE_DEPTH:
        reporter.error(
            "E209",
            f"'extends' chain deeper than {MAX_INHERITANCE_DEPTH}",
            parent.span,
            "is there a cycle of specs extending each other?",
        )
        reporter.raise_if_any()
    path = parent_path(file, parent)
    if not path.is_file():
        shipped = shipped_path(parent.name) is not None
        hint = (
            f"'{parent.name}' is a shipped spec: write extends {parent.name}" if shipped else None
        )
        reporter.error("E209", f"cannot find '{parent.file}' (looked at {path})", parent.span, hint)
        reporter.raise_if_any()
    return path
