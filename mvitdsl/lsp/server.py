"""The language server: pygls over stdio, each handler a thin call into the pure functions.

Diagnostics are published per file after the user stops typing (DEBOUNCE_S), with the document
version they were computed from. The pipeline runs on one worker thread, so the protocol is read
while a spec is checked. Every handler is guarded: whatever a document holds, the server answers
(None at worst) and keeps running; nothing but the protocol goes to stdout.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol, lsp_method

from .. import __version__
from .complete import complete
from .diagnose import format_edits, lsp_diagnostics
from .document import Document, check_document, uri_to_path
from .hover import hover
from .navigate import definition, inlay_hints, symbols
from .worker import Worker

DEBOUNCE_S = 0.3
log = logging.getLogger("mvitdsl.lsp")
R = TypeVar("R")
P = TypeVar("P")


@dataclass(frozen=True)
class Checked:
    """A document checked at one version of its text."""

    version: int | None
    text: str
    doc: Document


class SpecProtocol(LanguageServerProtocol):
    """pygls' protocol, always in UTF-16 positions: every client speaks them, positions.py
    converts the spans to them (pygls would take a client's first choice, e.g. Neovim's utf-8)."""

    @lsp_method(lsp.INITIALIZE)
    def lsp_initialize(
        self, params: lsp.InitializeParams
    ) -> Generator[Any, Any, lsp.InitializeResult]:
        if params.capabilities.general is not None:
            params.capabilities.general.position_encodings = None
        return (yield from super().lsp_initialize(params))


class SpecServer(LanguageServer):
    """The pygls server, with the last checked version of each open file."""

    def __init__(self) -> None:
        super().__init__("mvitdsl", __version__, protocol_cls=SpecProtocol)
        self.checked: dict[str, Checked] = {}
        self.pending: dict[str, asyncio.Task[None]] = {}
        self.worker = Worker()

    async def check(self, uri: str) -> Checked | None:
        """The open document at `uri`, checked once per version; None if it is not open."""
        if uri not in self.workspace.text_documents:
            return None
        text_document = self.workspace.get_text_document(uri)
        text, version = text_document.source, text_document.version
        cached = self.checked.get(uri)
        if cached is not None and (cached.version, cached.text) == (version, text):
            return cached
        doc = await self.worker.run(check_document, text, uri_to_path(uri))
        checked = Checked(version, text, doc)
        if uri in self.workspace.text_documents:  # not closed meanwhile
            self.checked[uri] = checked
        return checked


def guarded(
    fn: Callable[[SpecServer, P], Awaitable[R]],
) -> Callable[[SpecServer, P], Awaitable[R | None]]:
    """The handler, answering None (and logging to stderr) instead of raising."""

    @functools.wraps(fn)
    async def run(ls: SpecServer, params: P) -> R | None:
        try:
            return await fn(ls, params)
        except asyncio.CancelledError:
            raise
        except Exception:  # one bad request must not end the session
            log.exception("%s failed", fn.__name__)
            return None

    return run


async def publish(ls: SpecServer, uri: str, delay: float) -> None:
    """After `delay` seconds, check the document and send all its diagnostics with its
    version (a newer change cancels this first)."""
    try:
        await asyncio.sleep(delay)
        checked = await ls.check(uri)
        if checked is None:
            return
        diagnostics = await ls.worker.run(lsp_diagnostics, checked.doc)
        params = lsp.PublishDiagnosticsParams(
            uri=uri, diagnostics=diagnostics, version=checked.version
        )
        ls.text_document_publish_diagnostics(params)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("checking %s failed", uri)
    finally:
        if ls.pending.get(uri) is asyncio.current_task():
            del ls.pending[uri]


def schedule(ls: SpecServer, uri: str, delay: float) -> None:
    """Publish after `delay` seconds unless the document changes again first."""
    if (old := ls.pending.pop(uri, None)) is not None:
        old.cancel()
    ls.pending[uri] = asyncio.ensure_future(publish(ls, uri, delay))


@guarded
async def did_open(ls: SpecServer, params: lsp.DidOpenTextDocumentParams) -> None:
    schedule(ls, params.text_document.uri, 0.0)


@guarded
async def did_change(ls: SpecServer, params: lsp.DidChangeTextDocumentParams) -> None:
    schedule(ls, params.text_document.uri, DEBOUNCE_S)


@guarded
async def did_close(ls: SpecServer, params: lsp.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    if (old := ls.pending.pop(uri, None)) is not None:
        old.cancel()
    ls.checked.pop(uri, None)
    ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


def _at(
    fn: Callable[[Document, lsp.Position], R],
) -> Callable[[SpecServer, lsp.TextDocumentPositionParams], Awaitable[R | None]]:
    """A handler of a request at a position in a document."""

    async def run(ls: SpecServer, params: lsp.TextDocumentPositionParams) -> R | None:
        checked = await ls.check(params.text_document.uri)
        if checked is None:
            return None
        return await ls.worker.run(fn, checked.doc, params.position)

    run.__name__ = fn.__name__
    return guarded(run)


@guarded
async def on_format(
    ls: SpecServer, params: lsp.DocumentFormattingParams
) -> list[lsp.TextEdit] | None:
    checked = await ls.check(params.text_document.uri)
    return await ls.worker.run(format_edits, checked.text) if checked is not None else None


@guarded
async def on_symbols(ls: SpecServer, params: lsp.DocumentSymbolParams) -> list[lsp.DocumentSymbol]:
    checked = await ls.check(params.text_document.uri)
    return symbols(checked.doc) if checked is not None else []


@guarded
async def on_inlay_hints(ls: SpecServer, params: lsp.InlayHintParams) -> list[lsp.InlayHint]:
    checked = await ls.check(params.text_document.uri)
    return inlay_hints(checked.doc, params.range) if checked is not None else []


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
