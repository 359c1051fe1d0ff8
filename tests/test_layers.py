"""The house's import rules, read from the source (every import statement: module level,
function level and under TYPE_CHECKING), so a lazy or type-only import cannot slip past.

Layers, in the direction data flows:
    0  diagnostics, ir                 shared types (import nothing of ours but each other)
    1  language/                       text -> IR
    2  analysis/                       IR -> facts
    3  backend/, draw/                 IR + facts -> torch / graphviz (draw may ask backend for
                                       the traced op graph; backend never imports draw)
    4  spec, cli, __init__, __main__   the driver: the only modules that reach forward
torch (and its satellites) only in backend/; graphviz only in draw/. The driver may name torch
types under TYPE_CHECKING (the signature of `build`), nothing more.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mvitdsl"

TORCH = ("torch", "torchvision", "timm", "safetensors", "onnx", "onnxscript", "onnxruntime")
GRAPHVIZ = ("graphviz",)

LAYER = {
    "diagnostics": 0,
    "ir": 0,
    "language": 1,
    "analysis": 2,
    "backend": 3,
    "draw": 3,
    "spec": 4,
    "cli": 4,
    "__init__": 4,
    "__main__": 4,
    "catalog": 0,  # the shipped spec files by name: below spec, imports nothing of ours
    "explore": 4,  # sweeps: a driver of many variants (language, analysis, spec)
    "pytest_plugin": 4,  # checks specs through the driver
    "lsp": 4,  # the language server: a driver over load_spec, fmt and the settings table
}
# Same-layer imports that are allowed, (importer, imported): everything else within a layer is.
FORBIDDEN_SIBLINGS = {("backend", "draw"), ("diagnostics", "ir")}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. "analysis.check"
    target: str  # what it imports, absolute: "mvitdsl.spec", "torch.fx"
    line: int
    type_only: bool  # under `if TYPE_CHECKING:`


def part(module: str) -> str:
    """The layer key of a module: its subpackage, or itself at the top."""
    return module.split(".")[0]


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" and len(rel.parts) > 1 else rel.parts
    return ".".join(parts)


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute name of a relative import `from .{level}name import ...` in `module`."""
    base = ["mvitdsl", *module.split(".")]
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, *([name] if name else [])])


def _member(root: Path, base: str, name: str) -> str:
    """base.name when that is a module or package under root, else base (a name in it)."""
    where = root.joinpath(*base.split(".")[1:], name)
    return f"{base}.{name}" if where.with_suffix(".py").is_file() or where.is_dir() else base


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                for sub in ast.walk(inner):
                    if hasattr(sub, "lineno"):
                        lines.add(sub.lineno)
    return lines


def imports_of(path: Path, root: Path) -> list[Import]:
    """Every import in one file, wherever it stands."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = module_name(path, root)
    is_package = path.name == "__init__.py"
    typed = _type_checking_lines(tree)
    out: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [Import(module, a.name, node.lineno, node.lineno in typed) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _resolve(module, is_package, node.level, node.module)
                # `from . import shapes` imports the submodule base.shapes; `from .. import build`
                # imports a name of the package base
                targets = (
                    [base] if node.module else [_member(root, base, a.name) for a in node.names]
                )
            else:
                targets = [node.module or ""]
            out += [Import(module, t, node.lineno, node.lineno in typed) for t in targets]
    return out


def violations(root: Path) -> list[str]:
    """Every import that breaks a rule, as `file:line: why`."""
    bad: list[str] = []
    for path in sorted(root.rglob("*.py")):
        for imp in imports_of(path, root):
            where = f"{path.relative_to(root.parent)}:{imp.line}: {imp.module} imports {imp.target}"
            why = _rule(imp)
            if why:
                bad.append(f"{where}: {why}")
    return bad


def _rule(imp: Import) -> str | None:
    me = part(imp.module) if imp.module else "__init__"
    top = imp.target.split(".")[0]
    if top in TORCH and me != "backend" and not (LAYER[me] == 4 and imp.type_only):
        return "torch is imported only in backend/"
    if top in GRAPHVIZ and me != "draw":
        return "graphviz is imported only in draw/"
    if top != "mvitdsl":
        return None
    rest = imp.target.split(".")[1:]
    if not rest:  # `from .. import build`: the package itself is the driver
        return None if LAYER[me] == 4 else "only the driver imports the package's front door"
    them = rest[0]
    if them not in LAYER:
        return f"unknown module {them}: add it to the layer table"
    if (me, them) in FORBIDDEN_SIBLINGS:
        return f"{me} never imports {them}"
    if LAYER[them] > LAYER[me]:
        return f"{me} (layer {LAYER[me]}) reaches forward to {them} (layer {LAYER[them]})"
    return None


def graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package modules it imports (any kind of import), for the cycle check."""
    edges: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        for imp in imports_of(path, root):
            if imp.target.startswith("mvitdsl."):
                edges.setdefault(imp.module, set()).add(imp.target.removeprefix("mvitdsl."))
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Cycles between subpackages / top modules (a module's own package excluded)."""
    parts: dict[str, set[str]] = {}
    for src, targets in edges.items():
        for t in targets:
            a, b = part(src) or "__init__", part(t)
            if a != b and LAYER.get(a, 4) < 4:  # the driver reaches everywhere by design
                parts.setdefault(a, set()).add(b)
    found: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        for nxt in sorted(parts.get(node, ())):
            if nxt in trail:
                found.append([*trail[trail.index(nxt) :], nxt])
            elif len(trail) < 12:
                visit(nxt, [*trail, nxt])

    for start in sorted(parts):
        visit(start, [start])
    return found


# ---------------------------------------------------------------- the tests


def test_the_package_keeps_its_import_rules() -> None:
    assert violations(PACKAGE) == []


def test_no_circles_between_the_layers() -> None:
    assert cycles(graph(PACKAGE)) == []


def test_every_module_has_a_layer() -> None:
    tops = {part(module_name(p, PACKAGE)) or "__init__" for p in PACKAGE.rglob("*.py")}
    assert tops <= set(LAYER)


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "mvitdsl"
    for path in PACKAGE.rglob("*.py"):
        dest = root / path.relative_to(PACKAGE)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("where", "code", "why"),
    [
        ("language/offender.py", "import torch\n", "torch is imported only in backend/"),
        (
            "analysis/offender.py",
            "def f():\n    from torch import fx\n    return fx\n",
            "torch is imported only in backend/",
        ),
        (
            "analysis/offender.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..spec import Spec\n",
            "reaches forward",
        ),
        ("language/offender.py", "from ..analysis import shapes\n", "reaches forward"),
        ("backend/offender.py", "import graphviz\n", "graphviz is imported only in draw/"),
        ("backend/offender.py", "from ..draw import render\n", "backend never imports draw"),
        ("draw/offender.py", "def f():\n    from .. import build\n", "front door"),
    ],
)
def test_an_offending_import_is_caught(tmp_path: Path, where: str, code: str, why: str) -> None:
    root = _copy(tmp_path)
    (root / where).write_text(code, encoding="utf-8")
    found = violations(root)
    assert len(found) == 1 and why in found[0], found


def test_a_circle_is_caught() -> None:
    edges = {"language.read": {"analysis.shapes"}, "analysis.shapes": {"language.read"}}
    assert cycles(edges)


def test_emission_lints_its_graphs(monkeypatch: pytest.MonkeyPatch) -> None:
    """graph.lint() runs on every emitted graph (the model's and each block's)."""
    import torch.fx

    from mvitdsl.backend.emit import emit
    from mvitdsl.spec import load_spec

    linted: list[int] = []
    real = torch.fx.Graph.lint

    def lint(graph: torch.fx.Graph) -> None:
        linted.append(1)
        real(graph)

    monkeypatch.setattr(torch.fx.Graph, "lint", lint)
    model = load_spec(PACKAGE.parent / "examples" / "tiny.mv").model
    with torch.device("meta"):
        emit(model)
    assert len(linted) == len(model.blocks) + 1


def test_every_ir_field_is_in_the_glossary() -> None:
    """docs/ARCHITECTURE.md's glossary names each IR field as `Class.field`."""
    from pydantic import BaseModel

    from mvitdsl import ir

    doc = (PACKAGE.parent / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    glossary = doc.split("## Glossary", 1)[1].split("\n## ", 1)[0]
    classes = [c for c in vars(ir).values() if isinstance(c, type) and issubclass(c, BaseModel)]
    missing = [
        f"{c.__name__}.{f}"
        for c in classes
        if c is not ir.Node
        for f in c.model_fields
        if f"`{c.__name__}.{f}`" not in glossary
    ]
    assert missing == []
