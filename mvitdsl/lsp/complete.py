"""Completion: setting names at a line's start, option words inside a setting, the parent's stage
names (and the row cells) in a child's stage table, shipped spec names after `extends`."""

from __future__ import annotations

import os
from pathlib import Path

from lsprotocol import types as lsp

from ..catalog import describe, names, shipped_path
from ..language import settings as S
from ..language.expect import KEY as EXPECT
from ..language.expect import WORDS as EXPECT_WORDS
from ..language.reference import KEY as REFERENCE
from ..language.reference import WORDS as REFERENCE_WORDS
from .context import code, context_at
from .document import Document, load_parent, row_name, table
from .hover import OTHER_KEYS, option_text, setting_text
from .positions import WORD, to_offset

Kind = lsp.CompletionItemKind


def complete(doc: Document, position: lsp.Position) -> list[lsp.CompletionItem]:
    """The completion items at a position (an empty list where nothing fits)."""
    row, col = to_offset(doc.lines, position)
    context = context_at(doc.lines, row, col)
    if context.where == "extends":
        return shipped_items(doc, position, row, col)
    if context.where == "top":
        return [lsp.CompletionItem(label="model", kind=Kind.Keyword)] if context.first else []
    if context.where == "model":
        return setting_items()
    if context.where == "table" and context.key == "stages":
        return stage_items(doc) if context.first else cell_items()
    if context.where == "setting":
        before = code(doc.lines[row][:col])
        return option_items(context.key, WORD.findall(before))
    return []


def _doc(text: str) -> lsp.MarkupContent:
    return lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text)


def setting_items() -> list[lsp.CompletionItem]:
    """Every setting name, with its doc and example."""
    keys = [*S.BY_KEY, *OTHER_KEYS]
    return [
        lsp.CompletionItem(label=k, kind=Kind.Property, documentation=_doc(setting_text(k)))
        for k in keys
    ]


def option_items(key: str, words: list[str]) -> list[lsp.CompletionItem]:
    """The setting's option words; after an option that takes a word, its choices first."""
    if key == EXPECT:
        return [
            lsp.CompletionItem(label=w, kind=Kind.Field, detail=doc, insert_text=f"{w} ")
            for w, doc in EXPECT_WORDS.items()
        ]
    if key == REFERENCE:  # the source; the model name after it is the source's to know
        stated = any(w in REFERENCE_WORDS for w in words)
        return [
            lsp.CompletionItem(label=w, kind=Kind.EnumMember, detail=doc, insert_text=f"{w} ")
            for w, doc in ({} if stated else REFERENCE_WORDS).items()
        ]
    setting = S.BY_KEY.get(key)
    if setting is None:
        return []
    items = []
    last = next((o for o in setting.options if words and o.word == words[-1]), None)
    if last is not None:
        items += [
            lsp.CompletionItem(label=c, kind=Kind.EnumMember, sort_text=f"0{c}", detail=last.word)
            for c in last.choices
        ]
    items += [
        lsp.CompletionItem(
            label=o.word,
            kind=Kind.Field,
            sort_text=f"1{o.word}",
            detail=o.doc,
            documentation=_doc(option_text(o, key)),
        )
        for o in setting.options
    ]
    return items


def stage_items(doc: Document) -> list[lsp.CompletionItem]:
    """The parent spec's stage names (a child's row overrides the parent's row of that name)."""
    parent = load_parent(doc)
    stages = table(parent.statements) if parent is not None else None
    if stages is None:
        return []
    return [
        lsp.CompletionItem(
            label=row_name(r), kind=Kind.Class, detail=" ".join(a.text for a in r.atoms[1:])
        )
        for r in stages.rows
    ]


def cell_items() -> list[lsp.CompletionItem]:
    """The `key=value` cells a stage row takes."""
    return [
        lsp.CompletionItem(
            label=f"{word}=",
            kind=Kind.Field,
            detail=f"{key} {option.word}",
            documentation=_doc(option_text(option, key)),
        )
        for word, (key, option) in S.stage_cells().items()
    ]


def shipped_items(
    doc: Document, position: lsp.Position, row: int, col: int
) -> list[lsp.CompletionItem]:
    """The shipped specs, each inserted as `"path/to/name.mv" name` seen from the document."""
    line = doc.lines[row] if doc.lines else ""
    start = col
    while start > 0 and not line[start - 1].isspace():
        start -= 1
    edit_range = lsp.Range(
        start=lsp.Position(line=position.line, character=position.character - (col - start)),
        end=position,
    )
    items = []
    for name in names():
        path = shipped_path(name)
        if path is None:
            continue
        text = f'"{_relative(path, doc)}" {name}'
        items.append(
            lsp.CompletionItem(
                label=name,
                kind=Kind.Module,
                detail=describe(path),
                filter_text=name,
                text_edit=lsp.TextEdit(range=edit_range, new_text=text),
            )
        )
    return items


def _relative(path: Path, doc: Document) -> str:
    """The path as `extends` should write it: relative to the document's folder if saved."""
    if doc.path is None:
        return path.as_posix()
    try:
        return Path(os.path.relpath(path, doc.folder)).as_posix()
    except ValueError:  # another drive (Windows)
        return path.as_posix()
