"""The house's import rules, read from the source (every import statement: module level,
function level and under TYPE_CHECKING), so a lazy or type-only import cannot slip past.

Layers, in the direction data flows:
    0  diagnostics, nodes, ir, ops     shared types (import nothing of ours but each other): the
                                       IR composes the op records of ops/, which build on nodes
    1  language/                       text -> IR
    2  analysis/                       IR -> facts
    3  backend/, draw/                 IR + facts -> torch / graphviz (draw may ask backend for
                                       the traced op graph; backend never imports draw)
    4  spec, cli, __init__, __main__   the driver: the only modules that reach forward (with
       explore/, lsp/, report/)
torch (and its satellites) only in backend/; graphviz only in draw/. The driver may name torch
types under TYPE_CHECKING (the signature of `build`), nothing more. ops/ may import torch and
backend.runtime only inside its emit functions (named emit*): an op module holds its emission
beside its other rules, and checking, analysis and drawing never import torch through it. ops/
imports ir only under TYPE_CHECKING (ir imports the op records), so ir and ops are one unit.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mvitdsl"

TORCH = ("torch", "torchvision", "timm", "safetensors", "onnx", "onnxscript", "onnxruntime")
GRAPHVIZ = ("graphviz",)

LAYER = {
    "diagnostics": 0,
    "nodes": 0,
    "ir": 0,
    "ops": 0,
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
    "report": 4,  # the HTML report: a driver over load_spec, the table rows and draw/
}
# Same-layer imports that are allowed, (importer, imported): everything else within a layer is.
FORBIDDEN_SIBLINGS = {
    ("backend", "draw"),
    ("diagnostics", "ir"),
    ("diagnostics", "ops"),
    ("diagnostics", "nodes"),
    ("nodes", "ir"),
    ("nodes", "ops"),
}
UNITS = {"ops": "ir"}  # the cycle check sees ir and its op records as one
OPS_EMIT_ONLY = TORCH + ("mvitdsl.backend.runtime",)  # what ops/ may import inside emit*


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. "analysis.check"
    target: str  # what it imports, absolute: "mvitdsl.spec", "torch.fx"
    line: int
    type_only: bool  # under `if TYPE_CHECKING:`
    function: str = ""  # the function the import stands in ("": module level)


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


def _functions(tree: ast.AST) -> dict[int, str]:
    """Line -> the name of the innermost function that holds it."""
    lines: dict[int, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for sub in ast.walk(node):
                if hasattr(sub, "lineno") and sub is not node:
                    # ast.walk is breadth-first: inner functions come later and win
                    lines[sub.lineno] = node.name
    return lines


def imports_of(path: Path, root: Path) -> list[Import]:
    """Every import in one file, wherever it stands."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = module_name(path, root)
    is_package = path.name == "__init__.py"
    typed = _type_checking_lines(tree)
    within = _functions(tree)
    out: list[Import] = []
    for node in ast.walk(tree):
        fn = within.get(node.lineno, "") if isinstance(node, ast.Import | ast.ImportFrom) else ""
        if isinstance(node, ast.Import):
            out += [
                Import(module, a.name, node.lineno, node.lineno in typed, fn) for a in node.names
            ]
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
            out += [Import(module, t, node.lineno, node.lineno in typed, fn) for t in targets]
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
    if me == "ops" and imp.target.startswith(OPS_EMIT_ONLY):
        inside = imp.function.startswith("emit")
        return None if inside else "ops import torch and backend.runtime only inside emit*"
    if me == "ops" and imp.target.startswith("mvitdsl.ir") and not imp.type_only:
        return "ops import ir only under TYPE_CHECKING (ir imports the op records)"
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
            if not edges.get(t):  # a leaf (backend.runtime: imports nothing of ours) closes none
                continue
            a, b = part(src) or "__init__", part(t)
            a, b = UNITS.get(a, a), UNITS.get(b, b)
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
        ("ops/offender.py", "def draw():\n    import torch\n", "only inside emit*"),
        ("ops/offender.py", "import torch\n", "only inside emit*"),
        (
            "ops/offender.py",
            "def shapes():\n    from ..backend.runtime import DropPath\n",
            "only inside emit*",
        ),
        ("ops/offender.py", "from ..ir import Model\n", "only under TYPE_CHECKING"),
        ("ops/offender.py", "from ..analysis import shapes\n", "reaches forward"),
        ("ops/offender.py", "import graphviz\n", "graphviz is imported only in draw/"),
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
    """docs/ARCHITECTURE.md's glossary names each IR field as `Class.field`: the models of ir.py
    and the record of every op kind in the registry (ops/)."""
    from pydantic import BaseModel

    from mvitdsl import ir, ops

    doc = (PACKAGE.parent / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    glossary = doc.split("## Glossary", 1)[1].split("\n## ", 1)[0]
    classes = [c for c in vars(ir).values() if isinstance(c, type) and issubclass(c, BaseModel)]
    classes += [rules.record for rules in ops.REGISTRY.values()]
    assert len(classes) > len(ops.REGISTRY) + 10
    missing = [
        f"{c.__name__}.{f}"
        for c in classes
        if c is not ir.Node
        for f in c.model_fields
        if f"`{c.__name__}.{f}`" not in glossary
    ]
    assert missing == []


# The flags that ops/ owns: a stage outside ops/ (and outside the language, which builds the op
# records from the written settings) that reads one is branching on an op instead of asking it.
OP_FLAG_READS = re.compile(
    r"\.(pool_first|layer_scale|residual_pool|scope_from|window|pool_head_dim)\b"
    r"|\.(qkv|scope|rel_pos|position)\s*[!=]="
)


def op_flag_reads(root: Path) -> list[str]:
    """`file:line: text` for every read of an op's flag outside ops/ and language/."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.relative_to(root).parts[0] in ("ops", "language"):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if OP_FLAG_READS.search(line.split("#", 1)[0]):
                found.append(f"{path.relative_to(root.parent)}:{number}: {line.strip()}")
    return found


def test_no_stage_outside_ops_branches_on_an_op_flag() -> None:
    assert op_flag_reads(PACKAGE) == []


@pytest.mark.parametrize(
    "code",
    [
        "def f(b):\n    return b.attention_op.pool_first\n",
        "def f(op):\n    return op.qkv == 'fused'\n",
        "def f(b):\n    return b.layer_scale\n",
        "def f(op):\n    return op.scope != 'global'\n",
        "def f(op):\n    return op.rel_pos == 'decomposed'\n",
        "def f(b):\n    return b.window is None\n",
        "def f(m):\n    return m.tokens.position == 'joint'\n",
    ],
)
def test_an_op_flag_read_is_caught(tmp_path: Path, code: str) -> None:
    root = _copy(tmp_path)
    (root / "analysis" / "offender.py").write_text(code, encoding="utf-8")
    (root / "ops" / "allowed.py").write_text(code, encoding="utf-8")
    found = op_flag_reads(root)
    assert len(found) == 1 and "analysis/offender.py:2" in found[0], found
