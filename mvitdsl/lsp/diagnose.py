"""The pipeline's diagnostics as LSP diagnostics, and `fmt` as a formatting edit.

All of a spec's diagnostics go out at once, as `mvitdsl check` reports them: code, message, the
hint on a line of its own, and, for a problem found in a parent file, the document's `extends`
clause as the place with the parent's line as related information.
"""

from __future__ import annotations

from lsprotocol import types as lsp

from ..diagnostics import Diagnostic, SpecError
from ..language.fmt import format_text
from .document import Document, path_to_uri
from .positions import lines_of, to_range, whole_range

SOURCE = "mvitdsl"
_SEVERITY = {"error": lsp.DiagnosticSeverity.Error, "warning": lsp.DiagnosticSeverity.Warning}
_START = lsp.Range(start=lsp.Position(line=0, character=0), end=lsp.Position(line=0, character=0))


def lsp_diagnostics(doc: Document) -> list[lsp.Diagnostic]:
    """Every diagnostic of the document, placed in it."""
    return [lsp_diagnostic(doc, d) for d in doc.diagnostics]


def lsp_diagnostic(doc: Document, d: Diagnostic) -> lsp.Diagnostic:
    """One diagnostic; one found in another file is shown on the `extends` clause."""
    message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
    related: list[lsp.DiagnosticRelatedInformation] | None = None
    if d.span is None:
        where = _START
    elif (other := doc.file_of(d.span.file)) is None:
        where = to_range(doc.lines, d.span)
    else:
        where = _extends_range(doc)
        message = f"in {d.span.file}:{d.span.line}:{d.span.column}: {message}"
        lines = lines_of(doc.sources.get(d.span.file, ""))
        place = lsp.Location(uri=path_to_uri(other), range=to_range(lines, d.span))
        related = [lsp.DiagnosticRelatedInformation(location=place, message=d.message)]
    return lsp.Diagnostic(
        range=where,
        message=message,
        severity=_SEVERITY.get(d.severity, lsp.DiagnosticSeverity.Error),
        code=d.code,
        source=SOURCE,
        related_information=related,
    )


def _extends_range(doc: Document) -> lsp.Range:
    if doc.ast is not None and doc.ast.parent is not None:
        return to_range(doc.lines, doc.ast.parent.span)
    return _START


def format_edits(text: str) -> list[lsp.TextEdit]:
    """The edit that gives the text `mvitdsl fmt`'s layout; none when it has it already or when
    it does not parse (its diagnostics say why)."""
    try:
        formatted = format_text(text)
    except SpecError:
        return []
    if formatted == text:
        return []
    return [lsp.TextEdit(range=whole_range(lines_of(text)), new_text=formatted)]
