"""The language server: pygls over stdio, each handler a thin call into the pure functions.

Diagnostics are published per file after the user stops typing (DEBOUNCE_S), with the document
version they were computed from. Every handler is guarded: whatever a document holds, the server
answers (None at worst) and keeps running; nothing but the protocol goes to stdout.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, BinaryIO, TypeVar

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from .. import __version__
from .complete import complete
from .diagnose import format_edits, lsp_diagnostics
from .document import Document, check_document, uri_to_path
from .hover import hover
from .navigate import definition, inlay_hints, symbols

DEBOUNCE_S = 0.3
log = logging.getLogger("mvitdsl.lsp")
R = TypeVar("R")
P = TypeVar("P")


class SpecServer(LanguageServer):
    """The pygls server, with the last checked Document of each open file."""

    def __init__(self) -> None:
        super().__init__("mvitdsl", __version__)
        self.checked: dict[str, tuple[int | None, str, Document]] = {}
        self.pending: dict[str, asyncio.TimerHandle] = {}

    def document(self, uri: str) -> Document | None:
        """The open document at `uri`, checked (once per version); None if it is not open."""
        if uri not in self.workspace.text_documents:
            return None
        text_document = self.workspace.get_text_document(uri)
        text, version = text_document.source, text_document.version
        cached = self.checked.get(uri)
        if cached is not None and cached[0] == version and cached[1] == text:
            return cached[2]
        doc = check_document(text, uri_to_path(uri))
        self.checked[uri] = (version, text, doc)
        return doc


def guarded(fn: Callable[[SpecServer, P], R]) -> Callable[[SpecServer, P], R | None]:
    """The handler, answering None (and logging to stderr) instead of raising."""

    @functools.wraps(fn)
    def run(ls: SpecServer, params: P) -> R | None:
        try:
            return fn(ls, params)
        except Exception:  # one bad request must not end the session
            log.exception("%s failed", fn.__name__)
            return None

    return run


def publish(ls: SpecServer, uri: str) -> None:
    """Check the document now and send all its diagnostics, with its version."""
    ls.pending.pop(uri, None)
    doc = ls.document(uri)
    if doc is None:
        return
    version = ls.checked[uri][0]
    params = lsp.PublishDiagnosticsParams(
        uri=uri, diagnostics=lsp_diagnostics(doc), version=version
    )
    ls.text_document_publish_diagnostics(params)


def schedule(ls: SpecServer, uri: str, delay: float) -> None:
    """Publish after `delay` seconds unless the document changes again first."""
    if (old := ls.pending.pop(uri, None)) is not None:
        old.cancel()
    loop = asyncio.get_running_loop()
    ls.pending[uri] = loop.call_later(delay, guarded(publish), ls, uri)


@guarded
def did_open(ls: SpecServer, params: lsp.DidOpenTextDocumentParams) -> None:
    schedule(ls, params.text_document.uri, 0.0)


@guarded
def did_change(ls: SpecServer, params: lsp.DidChangeTextDocumentParams) -> None:
    schedule(ls, params.text_document.uri, DEBOUNCE_S)


@guarded
def did_close(ls: SpecServer, params: lsp.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    if (old := ls.pending.pop(uri, None)) is not None:
        old.cancel()
    ls.checked.pop(uri, None)
    ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


def _at(
    fn: Callable[[Document, lsp.Position], R],
) -> Callable[[SpecServer, lsp.TextDocumentPositionParams], R | None]:
    """A handler of a request at a position in a document."""

    def run(ls: SpecServer, params: lsp.TextDocumentPositionParams) -> R | None:
        doc = ls.document(params.text_document.uri)
        return fn(doc, params.position) if doc is not None else None

    run.__name__ = fn.__name__
    return guarded(run)


@guarded
def on_format(ls: SpecServer, params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit] | None:
    doc = ls.document(params.text_document.uri)
    return format_edits(doc.text) if doc is not None else None


@guarded
def on_symbols(ls: SpecServer, params: lsp.DocumentSymbolParams) -> list[lsp.DocumentSymbol]:
    doc = ls.document(params.text_document.uri)
    return symbols(doc) if doc is not None else []


@guarded
def on_inlay_hints(ls: SpecServer, params: lsp.InlayHintParams) -> list[lsp.InlayHint]:
    doc = ls.document(params.text_document.uri)
    return inlay_hints(doc, params.range) if doc is not None else []


def make_server() -> SpecServer:
    """A server with every feature registered."""
    ls = SpecServer()
    features: list[tuple[str, Callable[..., Any], Any]] = [
        (lsp.TEXT_DOCUMENT_DID_OPEN, did_open, None),
        (lsp.TEXT_DOCUMENT_DID_CHANGE, did_change, None),
        (lsp.TEXT_DOCUMENT_DID_CLOSE, did_close, None),
        (lsp.TEXT_DOCUMENT_HOVER, _at(hover), None),
        (lsp.TEXT_DOCUMENT_COMPLETION, _at(complete), lsp.CompletionOptions([" ", "="])),
        (lsp.TEXT_DOCUMENT_DEFINITION, _at(definition), None),
        (lsp.TEXT_DOCUMENT_FORMATTING, on_format, None),
        (lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL, on_symbols, None),
        (lsp.TEXT_DOCUMENT_INLAY_HINT, on_inlay_hints, None),
    ]
    for method, handler, options in features:
        ls.feature(method, options)(handler)
    return ls


def _protocol_stdout() -> BinaryIO:
    """The real stdout for the protocol; fd 1 and sys.stdout then point at stderr, so a stray
    print (ours, a library's, a C extension's) cannot corrupt the stream."""
    out: BinaryIO
    try:
        out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # no real file descriptors (embedded)
        out = sys.stdout.buffer
    sys.stdout = sys.stderr
    return out


def main() -> int:
    """Serve the language server over stdio until `exit` or the end of input."""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="mvitdsl lsp: %(message)s")
    out = _protocol_stdout()
    make_server().start_io(sys.stdin.buffer, out)
    return 0
