"""Finding one's way: go-to-definition (`extends` to the parent file, a child's stage row to the
parent's row), document symbols (the model, its settings and stages), and inlay hints with each
stage's output size, parameters and GMACs at the end of its row."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types as lsp

from ..diagnostics import Span
from ..language.syntax import Setting, Table
from .document import Document, load_parent, parent_file, path_to_uri, row_name, table
from .hover import size_text, stage_at
from .positions import lines_of, to_offset, to_position, to_range

Symbol = lsp.SymbolKind


def definition(doc: Document, position: lsp.Position) -> lsp.Location | None:
    """Where the thing under the cursor is defined: the parent spec, or the parent's row."""
    if doc.ast is None or doc.ast.parent is None:
        return None
    row, _ = to_offset(doc.lines, position)
    if row + 1 == doc.ast.parent.span.line:
        path = parent_file(doc)
        if path is None or not path.is_file():
            return None
        start = lsp.Position(line=0, character=0)
        return lsp.Location(uri=path_to_uri(path), range=lsp.Range(start=start, end=start))
    own = table(doc.ast.statements)
    mine = [r for r in (own.rows if own else ()) if r.span.line == row + 1]
    parent = load_parent(doc) if mine else None
    theirs = table(parent.statements) if parent is not None else None
    if not mine or parent is None or theirs is None:
        return None
    found = [r for r in theirs.rows if row_name(r) == row_name(mine[0])]
    if not found:
        return None
    span = found[0].span
    file = Path(span.file)  # the parent's spans name its file as load_spec was given it
    uri = path_to_uri(file if file.is_absolute() else doc.folder / file)
    return lsp.Location(uri=uri, range=to_range(lines_of(parent.sources.get(span.file, "")), span))


def symbols(doc: Document) -> list[lsp.DocumentSymbol]:
    """The model, with its settings and its stage table's rows beneath it."""
    if doc.ast is None:
        return []
    model = doc.ast
    children = []
    for s in model.statements:
        rows = s.rows if isinstance(s, Table) else ()
        kids = [_symbol(row_name(r), Symbol.Class, doc, r.span, r.span) for r in rows]
        kind = Symbol.Struct if isinstance(s, Table) else Symbol.Property
        detail = (
            " ".join(a.text for c in s.clauses for a in c.atoms) if isinstance(s, Setting) else ""
        )
        children.append(_symbol(s.key, kind, doc, s.span, s.key_span, kids, detail))
    return [_symbol(model.name, Symbol.Module, doc, model.span, model.span, children)]


def _symbol(
    name: str,
    kind: lsp.SymbolKind,
    doc: Document,
    span: Span,
    selection: Span,
    children: list[lsp.DocumentSymbol] | None = None,
    detail: str = "",
) -> lsp.DocumentSymbol:
    whole, chosen = to_range(doc.lines, span), to_range(doc.lines, selection)
    return lsp.DocumentSymbol(
        name=name or "?",
        kind=kind,
        range=whole,
        selection_range=chosen,
        detail=detail[:80] or None,
        children=children or None,
    )


def inlay_hints(doc: Document, within: lsp.Range | None = None) -> list[lsp.InlayHint]:
    """Per-stage figures at the end of each stage row of the document."""
    if doc.ast is None or doc.spec is None:
        return []
    own = table(doc.ast.statements)
    hints = []
    for r in own.rows if own else ():
        line = r.span.end_line - 1
        if within is not None and not within.start.line <= line <= within.end.line:
            continue
        stage = stage_at(doc, r.span.line - 1)
        if stage is None:
            continue
        label = (
            f"{stage.params:,} params · {stage.macs / 1e9:.3f} GMACs · "
            f"{size_text(stage, doc.spec.model.video)}"
        )
        hints.append(
            lsp.InlayHint(
                position=to_position(doc.lines, r.span.end_line, r.span.end_column),
                label=label,
                padding_left=True,
            )
        )
    return hints
