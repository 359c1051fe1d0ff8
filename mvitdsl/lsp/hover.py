"""Hover text: a setting's or option's doc, range, default and example (the settings table), a
stage row's figures (the analysis report), a diagnostic code's explanation (the code table)."""

from __future__ import annotations

import re

from lsprotocol import types as lsp

from ..analysis.analyze import StageRow
from ..diagnostics import CODES
from ..language import settings as S
from ..language.reference import KEY as REFERENCE
from ..language.reference import SOURCES as REFERENCE_SOURCES
from ..language.reference import WORDS as REFERENCE_WORDS
from .context import context_at
from .document import Document, row_name, table
from .positions import to_offset, to_position, word_at

CODE = re.compile(r"[EW][0-9]{3}")
# Keys the settings table does not hold (a table, the feature maps, the stated figures).
OTHER_KEYS = {
    "stages": "the stage table: one row per stage, "
    + ", ".join(column.word for column in S.COLUMNS)
    + ", then key=value cells",
    "outputs": "the stages (or `norm`) whose feature maps the model returns instead of logits",
    "expect": "figures the spec states about itself (params, gmacs, gmacs_fvcore, output), "
    "checked against the analysis (E308)",
    "reference": "the implementation the model equals ("
    + ", ".join(REFERENCE_SOURCES)
    + " and its model name), built beside it by `mvitdsl bench --against`",
}


def hover(doc: Document, position: lsp.Position) -> lsp.Hover | None:
    """The hover at a position, or None where there is nothing to say."""
    found = word_at(doc.lines, position)
    row, _ = to_offset(doc.lines, position)
    parts: list[str] = []
    if found is not None:
        word, row, start = found
        parts.append(_word_text(doc, word, row, start, doc.lines[row]))
    parts.append(stage_text(doc, row))  # anywhere on a stage row
    parts += [code_text(c) for c in _codes_at(doc, position)]
    body = "\n\n---\n\n".join(dict.fromkeys(p for p in parts if p))
    if not body:
        return None
    return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=body))


def _word_text(doc: Document, word: str, row: int, start: int, text: str) -> str:
    if CODE.fullmatch(word) and word in CODES:
        return code_text(word)
    if text[start + len(word) : start + len(word) + 1] == "=":
        cell = S.stage_cells().get(word)
        return option_text(cell[1], cell[0]) if cell else ""
    context = context_at(doc.lines, row, start)
    if context.where == "model" and context.first:
        return setting_text(word)
    if context.where == "setting" and context.key == REFERENCE and word in REFERENCE_WORDS:
        return f"**reference {word}**: {REFERENCE_WORDS[word]}"
    if context.where == "setting" and context.key in S.BY_KEY:
        options = S.BY_KEY[context.key].options
        match = [o for o in options if o.word == word] or [o for o in options if word in o.choices]
        return option_text(match[0], context.key) if match else ""
    return ""


def code_text(code: str) -> str:
    """A diagnostic code's explanation."""
    return f"**{code}**: {CODES[code]}" if code in CODES else ""


def setting_text(key: str) -> str:
    """A setting's doc, its example and its options with their defaults."""
    if key in OTHER_KEYS:
        return f"**{key}**: {OTHER_KEYS[key]}"
    setting = S.BY_KEY.get(key)
    if setting is None:
        return ""
    lines = [f"**{key}**: {setting.doc}" + (" (required)" if setting.required else "")]
    lines.append(f"\n    {setting.example}\n")
    lines += [f"- `{o.word}`: {o.doc}{_default(o)}" for o in setting.options]
    return "\n".join(lines)


def option_text(option: S.Option, key: str) -> str:
    """An option's doc, the values it takes, its default and an example."""
    lines = [f"**{key} {option.word}**: {option.doc}"]
    if option.choices:
        lines.append("one of: " + ", ".join(f"`{c}`" for c in option.choices))
    if option.range is not None:
        lines.append(f"range: {option.range}")
    if default := _default(option):
        lines.append(default.strip(" ;"))
    lines.append(f"\n    {option.example}")
    return "\n\n".join(lines)


def _default(option: S.Option) -> str:
    if option.default_text:
        return f"; default: {option.default_text}"
    if option.default is None or option.kind == "flag":
        return ""
    return f"; default: {option.default}"


def stage_text(doc: Document, row: int) -> str:
    """A stage row's output size, parameters and GMACs (when the spec checks)."""
    stage = stage_at(doc, row)
    if stage is None:
        return ""
    video = doc.spec.model.video if doc.spec is not None else True
    return (
        f"**{stage.name}**: {stage.blocks} blocks, {stage.heads} heads, {stage.operators}\n\n"
        f"- output size: {size_text(stage, video)}\n"
        f"- params: {stage.params:,}\n"
        f"- GMACs: {stage.macs / 1e9:.3f} matmul-only, {stage.macs_fvcore / 1e9:.3f} fvcore"
    )


def stage_at(doc: Document, row: int) -> StageRow | None:
    """The report's row for the stage written on line `row` (0-based) of the document."""
    if doc.ast is None or doc.spec is None or doc.spec.report is None:
        return None
    stages = table(doc.ast.statements)
    rows = [r for r in (stages.rows if stages else ()) if r.span.line == row + 1]
    if not rows:
        return None
    name = row_name(rows[0])
    return next((s for s in doc.spec.report.stages if s.name == name), None)


def size_text(stage: StageRow, video: bool) -> str:
    """The stage's output, CxTxHxW (video) or CxHxW (image), as `mvitdsl check` writes it."""
    t, h, w = stage.grid
    sizes = (stage.dim, t, h, w) if video else (stage.dim, h, w)
    return "×".join(map(str, sizes))


def _codes_at(doc: Document, position: lsp.Position) -> list[str]:
    """Codes of the document's own diagnostics whose lines hold the position."""
    row, _ = to_offset(doc.lines, position)
    out = []
    for d in doc.diagnostics:
        if d.span is None or doc.file_of(d.span.file) is not None:
            continue
        start = to_position(doc.lines, d.span.line, d.span.column)
        end = to_position(doc.lines, d.span.end_line, d.span.end_column)
        if start.line <= row <= end.line:
            out.append(d.code)
    return out
