"""Sweep files: a sweep that belongs in a paper's repository, written in the spec language.

    # sweeps/depth_width.mv
    model depth_width extends "../specs/mvit_b.mv" mvit_b {
      attention  mlp_ratio 4                # settings here change the base of every variant
      sweep {
        vary        "scale4.blocks=6..16:2"
        vary        "scale3.dim=128,192,256"
        set         "scale3.heads=scale3.dim/64"
        where       "scale4.blocks >= 2*scale3.blocks"
        mode        grid                    # grid | random | zip
        samples     100                     # random mode
        seed        0
        max_params  40e6
        max_gmacs   80
        max_activation_gib 2
        pareto      "gmacs,params:max"
        base        "swin_t"                # more bases: a file beside this one, or a shipped name
      }
    }

The model's other statements, merged over its parent, are the base (its own `expect` figures are
checked on the base, its own `reference` is the base's, as in a spec); the `sweep` table says what
varies. Its mistakes are reported like a spec's, each under the word that is wrong. Emitted
variants extend the parent, with the sweep file's own changes written into each. With `base`
rows the sweep runs over several bases (explore/multi.py): the model itself, named by its own
name, and each other base as written, unchanged; `vary "swin_t:scale4.blocks=2,6"` names one.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..catalog import shipped_path
from ..diagnostics import Reporter, did_you_mean
from ..language import lexical
from ..language.expect import read_expect, split_expect
from ..language.lower import Lowering
from ..language.overrides import PathError, locate
from ..language.parse import parse
from ..language.reference import read_reference, split_reference
from ..language.syntax import Atom, Table
from ..spec import Spec, check_spec, load_spec
from ..spec import resolve as resolve_extends
from .axes import AxisError, parse_set, parse_vary, parse_where
from .expr import ExprError
from .expr import paths as expr_paths

_PREFIX = re.compile(rf"\s*({lexical.NAME})\s*:")  # `swin_t:scale4.blocks=2,6` (explore/multi.py)
# directive -> (keyword of SweepRun, kind of value)
DIRECTIVES = {
    "vary": ("vary", "string"),
    "set": ("set", "string"),
    "where": ("where", "string"),
    "mode": ("mode", "name"),
    "samples": ("samples", "number"),
    "seed": ("seed", "number"),
    "max_params": ("max_params", "number"),
    "max_gmacs": ("max_gmacs", "number"),
    "max_activation_gib": ("max_activation_gib", "number"),
    "pareto": ("pareto", "string"),
    "base": ("bases", "string"),
}
MODES = ("grid", "random", "zip")


def is_sweep_file(path: str | Path) -> bool:
    """Whether a .mv file holds a `sweep { ... }` table (a cheap look before parsing)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return False
    return any(line.split()[:2] == ["sweep", "{"] for line in text.splitlines() if line.strip())


def read_sweep_file(path: str | Path) -> dict[str, Any]:
    """The sweep's base Spec and its SweepRun keywords; SpecError with every located mistake."""
    file = str(path)
    text = Path(path).read_text(encoding="utf-8")
    model, expect = split_expect(parse(text, file))  # the base's own figures, checked below
    model, stated = split_reference(model)  # and its own reference, as a spec's
    sources = {file: text}
    reporter = Reporter(sources)
    tables = [s for s in model.statements if isinstance(s, Table) and s.key == "sweep"]
    base_ast = replace(model, statements=tuple(s for s in model.statements if s not in tables))
    statements = resolve_extends(base_ast, sources, depth=0)
    lowering = Lowering(base_ast, statements, sources)
    lowered = lowering.run()
    lowering.r.raise_if_any()
    assert lowered is not None
    expectations, reference = read_expect(expect, sources), read_reference(stated, sources)
    base = Spec(lowered, base_ast, statements, sources, expectations, reference=reference)
    check_spec(base)
    kw: dict[str, Any] = {"base": base, "bases": [], "vary": [], "set": [], "where": []}
    rows = [row.atoms for table in tables for row in table.rows]
    known = {base.name: statements}  # each base's statements, by name, to locate paths in
    for atoms in rows:  # the bases first: a path may name any of them
        if atoms[0].value == "base" and _well_formed(atoms, reporter):
            _base(atoms[1], file, kw, known, reporter)
    for atoms in rows:
        if atoms[0].value != "base":
            _directive(atoms, kw, known, reporter)
    if model.parent is not None and model.parent.file is not None:
        parent_path = Path(file).parent / model.parent.file
        parent_text = parent_path.read_text(encoding="utf-8")
        parent = parse(parent_text, str(parent_path))
        kw["emit_parent"] = (
            parent_path,
            model.parent.name,
            resolve_extends(parent, {str(parent_path): parent_text}, depth=0),
        )
    reporter.raise_if_any()
    return kw


def _well_formed(atoms: tuple[Atom, ...], r: Reporter) -> bool:
    """A known directive with one value of its kind, else a located E203/E204."""
    head = atoms[0]
    if head.kind != "name" or head.value not in DIRECTIVES:
        r.error(
            "E203",
            f"unknown sweep directive '{head.text}'",
            head.span,
            did_you_mean(head.text, DIRECTIVES) or "directives are " + ", ".join(DIRECTIVES),
        )
        return False
    kind = DIRECTIVES[str(head.value)][1]
    if len(atoms) != 2 or atoms[1].kind != kind:
        example = {"string": '"scale4.blocks=8..16:2"', "name": "grid", "number": "40e6"}[kind]
        r.error("E204", f"'{head.text}' takes one {kind}, e.g. {example}", head.span)
        return False
    return True


def _base(value: Atom, file: str, kw: dict[str, Any], known: dict[str, Any], r: Reporter) -> None:
    """`base "FILE"`: a spec beside the sweep file, or a shipped spec's name; loaded once."""
    text = str(value.value)
    beside = Path(file).parent / text
    path = beside if beside.is_file() else shipped_path(text)
    if path is None:
        r.error("E203", f"no spec file '{text}'", value.span, "a file beside this one, or swin_t")
        return
    spec = load_spec(path)
    if spec.name in known:
        r.error("E203", f"base '{spec.name}' given twice", value.span)
        return
    known[spec.name] = spec.statements
    kw["bases"].append(spec)


def _directive(
    atoms: tuple[Atom, ...], kw: dict[str, Any], known: dict[str, Any], r: Reporter
) -> None:
    if not _well_formed(atoms, r):
        return
    key, kind = DIRECTIVES[str(atoms[0].value)]
    value = atoms[1]
    if kind == "name" and value.value not in MODES:
        hint = did_you_mean(value.text, MODES) or "modes are " + ", ".join(MODES)
        r.error("E203", f"unknown mode '{value.text}'", value.span, hint)
        return
    if key in ("vary", "set", "where"):
        try:
            _locate(key, str(value.value), known)
        except (AxisError, ExprError, PathError) as e:
            r.error("E203", str(e), value.span)
            return
        kw[key].append(str(value.value))
    elif key in ("samples", "seed"):
        kw[key] = int(value.value)  # type: ignore[arg-type]
    else:
        kw[key] = value.value


def split_prefix(text: str) -> tuple[str | None, str]:
    """(`base`, rest) of `base:rest`, or (None, text) when the text names no base."""
    m = _PREFIX.match(text)
    return (m.group(1), text[m.end() :]) if m else (None, text)


def _locate(key: str, text: str, known: dict[str, Any]) -> None:
    """The text's paths in the base its prefix names, or (none) in at least one base."""
    prefix, body = split_prefix(text)
    if prefix is not None and prefix not in known:
        hint = did_you_mean(prefix, known) or "bases are " + ", ".join(known)
        raise AxisError(f"no base '{prefix}'; {hint}")
    names = [prefix] if prefix is not None else list(known)
    errors = []
    for name in names:
        try:
            for p in paths_of(key, body):
                locate(p, known[name])
            return
        except PathError as e:
            errors.append(e)
    raise errors[0]


def paths_of(key: str, text: str) -> list[str]:
    """The paths a --vary, --set or --where text reads or sets."""
    if key == "vary":
        return list(parse_vary(text).paths)
    if key == "set":
        d = parse_set(text)
        return [d.path, *expr_paths(d.expr)]
    return expr_paths(parse_where(text).expr)
