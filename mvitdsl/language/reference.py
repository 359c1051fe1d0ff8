"""`reference timm swin_tiny_patch4_window7_224`: the implementation a spec's model equals.

Like `expect`, the statement is taken out of a model's own AST before `extends` merges anything
(a child that changes its parent is another model: it states its own reference or none) and read
here into an `ir.Reference`; `mvitdsl bench --against SOURCE` and benchmarks/table.py build the
model it names beside the spec's (backend/reference.py).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import cast, get_args

from .. import ir
from ..diagnostics import Reporter, did_you_mean
from .read import loc
from .syntax import Atom, Clause, Model, Setting

KEY = "reference"
SOURCES: tuple[str, ...] = get_args(ir.ReferenceSource)
# what each source means (for messages, docs and the editor)
WORDS: dict[str, str] = {
    "torchvision": "a builder of torchvision.models.video (mvit_v1_b, mvit_v2_s)",
    "timm": "a model of timm.create_model (swin_tiny_patch4_window7_224, pvt_v2_b2, ...)",
}
assert set(WORDS) == set(SOURCES)
# the model names both libraries use: lower-case words, digits and underscores
MODEL_NAME = re.compile(r"[a-z][a-z0-9_]*")
EXAMPLE = "reference timm swin_tiny_patch4_window7_224"


def split_reference(model: Model) -> tuple[Model, tuple[Setting, ...]]:
    """The model without its `reference` statements, and those statements."""
    mine = tuple(s for s in model.statements if isinstance(s, Setting) and s.key == KEY)
    if not mine:
        return model, ()
    rest = tuple(s for s in model.statements if s not in mine)
    return replace(model, statements=rest), mine


def read_reference(statements: tuple[Setting, ...], sources: dict[str, str]) -> ir.Reference | None:
    """The reference stated, or None; raises SpecError for a statement without a clause, an
    unknown source, a malformed model name or a second reference."""
    r = Reporter(sources)
    found: ir.Reference | None = None
    for statement in statements:
        if not statement.clauses:
            r.error("E204", "'reference' names no model", statement.span, f"for example: {EXAMPLE}")
    for n, clause in enumerate(c for s in statements for c in s.clauses):
        if n > 0:
            r.error("E201", "'reference' given twice", clause.span, "a spec states one reference")
            continue
        found = _clause(clause, r, sources)
    r.raise_if_any()
    return found


def _clause(clause: Clause, r: Reporter, sources: dict[str, str]) -> ir.Reference | None:
    source, *rest = clause.atoms
    if source.kind != "name" or source.value not in SOURCES:
        known = "a reference source is one of " + ", ".join(SOURCES)
        hint = did_you_mean(source.text, SOURCES) or known
        r.error("E203", f"unknown reference source '{source.text}'", source.span, hint)
        return None
    said, hint = f"'reference {source.text}'", _name_hint(source.text)
    if not rest:
        r.error("E204", f"{said} names no model", clause.span, hint)
    elif len(rest) > 1:
        r.error("E204", f"{said} takes one model name", rest[1].span, hint)
    elif not _well_formed(rest[0]):
        r.error("E204", f"'{rest[0].text}' is not a {source.text} model name", rest[0].span, hint)
    else:
        at = loc(clause.span, sources.get(clause.span.file, ""))
        return ir.Reference(source=cast(ir.ReferenceSource, source.text), name=rest[0].text, loc=at)
    return None


def _well_formed(atom: Atom) -> bool:
    return atom.kind == "name" and MODEL_NAME.fullmatch(atom.text) is not None


def _name_hint(source: str) -> str:
    example = "mvit_v2_s" if source == "torchvision" else "swin_tiny_patch4_window7_224"
    return (
        f"a model name is lower-case letters, digits and '_', as {source} spells it: "
        f"reference {source} {example}"
    )
