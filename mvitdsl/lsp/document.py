"""One open .mv document checked by the public pipeline: its AST, its Spec, its diagnostics.

The editor's buffer is checked as `mvitdsl check` checks a file: `load_spec(text=...)`, with
`extends` resolved beside the document's file (the check runs in that folder), so a child spec
sees its parent before it is saved. Nothing here raises on the text: a spec that does not parse
gets the SpecError's diagnostics.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from ..catalog import shipped_path
from ..diagnostics import Diagnostic, SpecError
from ..language.parse import parse
from ..language.syntax import Model, Row, Table
from ..spec import Spec, load_spec

TEXT_FILE = "<spec>"  # the file name load_spec(text=...) gives the document's own spans
_CWD_LOCK = threading.Lock()  # the working folder is the process's: one check at a time


@dataclass(frozen=True)
class Document:
    """A document as the pipeline sees it; `spec` is None when the spec has errors."""

    text: str
    path: Path | None  # the file behind the URI; None for an unsaved buffer
    lines: list[str]
    ast: Model | None
    spec: Spec | None
    diagnostics: tuple[Diagnostic, ...] = ()
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        """Where `extends` looks for a parent file."""
        return self.path.parent if self.path is not None else Path.cwd()

    def file_of(self, name: str) -> Path | None:
        """The file a span's file name stands for; None for the document itself."""
        return None if name == TEXT_FILE else self.folder / name


def uri_to_path(uri: str) -> Path | None:
    """The local file of a file:// URI, else None."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return Path(url2pathname(parsed.path))


def path_to_uri(path: Path) -> str:
    """A file:// URI of a local path."""
    return path.resolve().as_uri()


@contextmanager
def _in_folder(folder: Path | None) -> Iterator[None]:
    """Run in `folder` (when it exists), so that `extends "x.mv"` is read beside the document."""
    with _CWD_LOCK:
        before = os.getcwd()
        move = folder is not None and folder.is_dir()
        if move:
            os.chdir(folder)  # type: ignore[arg-type]
        try:
            yield
        finally:
            if move:
                os.chdir(before)


def check_document(text: str, path: Path | None = None) -> Document:
    """Parse and check the text as `mvitdsl check` would; every diagnostic kept, none raised."""
    lines = [line.rstrip("\r") for line in text.split("\n")]
    try:
        ast: Model | None = parse(text, TEXT_FILE)
    except SpecError:
        ast = None
    with _in_folder(path.parent if path is not None else None):
        try:
            spec = load_spec(text=text)
        except SpecError as e:
            return Document(text, path, lines, ast, None, tuple(e.diagnostics), dict(e.sources))
    return Document(text, path, lines, ast, spec, spec.warnings, dict(spec.sources))


def parent_file(doc: Document) -> Path | None:
    """The file the document's `extends` reads: the one it names, or the shipped spec."""
    if doc.ast is None or doc.ast.parent is None:
        return None
    parent = doc.ast.parent
    return doc.folder / parent.file if parent.file else shipped_path(parent.name)


def load_parent(doc: Document) -> Spec | None:
    """The parent spec, resolved but not shape-checked; None when there is none or it fails."""
    path = parent_file(doc)
    if path is None or not path.is_file():
        return None
    try:
        return load_spec(path, check=False)
    except (SpecError, OSError, ValueError):
        return None


def table(statements: tuple[object, ...], key: str = "stages") -> Table | None:
    """The table `key` among statements (an AST's or a spec's resolved ones)."""
    found = [s for s in statements if isinstance(s, Table) and s.key == key]
    return found[-1] if found else None


def row_name(row: Row) -> str:
    """A stage row's name: its first column."""
    return row.atoms[0].text if row.atoms else ""
