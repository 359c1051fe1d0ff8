"""One canonical layout for .mv text, comments kept in place (`mvitdsl fmt`: cli/fmt.py).

The grammar ignores comments, so the layout is rebuilt from the AST's spans and the source text:
every statement on its own line, setting values in one column, a setting's continuation lines
(kept where the author broke them, or added past 100 characters) aligned under its first value,
stage-table columns aligned together with the comment header row just above the rows, sizes
written `3x7x7`, old spellings of option words (settings.py's `old`, read with warning W001)
rewritten to the current ones, one space between the words of a clause and `, ` between
clauses. Cells are taken from the source text, so any cell the grammar accepts (`key=value`
too) is just another cell.
The result is checked to parse to the same tree as the input before it is returned.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from lark import Token, Tree

from ..diagnostics import Span
from . import lexical, settings
from .parse import _parser, parse
from .syntax import Model, Setting, Table

WIDTH = 100
INDENT = "  "
KEY_WIDTH = 9  # values start in one column, at least past `attention`, the longest common key
NUMBER = lexical.NUMBER_RE
LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_./=-]*")


@dataclass(frozen=True)
class Line:
    """One output line of code: its text and the source lines whose tokens it holds."""

    text: str
    first: tuple[int, int]  # (line, column) of its first token, for ordering against comments
    lines: frozenset[int]
    kind: str = "code"  # "code", "open" (ends with '{'), "close" ('}'), "row", "header"


class Source:
    """The text with offsets per line, and where each line's comment starts."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.split("\n")
        self.starts = [0]
        for line in self.lines[:-1]:
            self.starts.append(self.starts[-1] + len(line) + 1)
        self.comments = {n: c for n, line in enumerate(self.lines, 1) if (c := _comment(line))}

    def slice(self, span: Span) -> str:
        a = self.starts[span.line - 1] + span.column - 1
        b = self.starts[span.end_line - 1] + span.end_column - 1
        return self.text[a:b]

    def code(self, n: int) -> str:
        """Line n without its comment."""
        line = self.lines[n - 1].rstrip("\r")
        c = self.comments.get(n)
        return (line[: line.rindex(c)] if c else line).strip()


def _comment(line: str) -> str | None:
    """The `# ...` part of a line (a '#' inside a quoted file name is not a comment)."""
    quoted = False
    for i, c in enumerate(line):
        if c == '"':
            quoted = not quoted
        elif c == "#" and not quoted:
            return line[i:].rstrip()
    return None


def canonical_word(word: str) -> str:
    """Sizes as `3x7x7` (also inside `key=value`); every other word as written."""
    return lexical.canonical_sizes(word) if '"' not in word else word


def renamed_words(key: str, words: list[str]) -> list[str]:
    """A setting clause's words with old spellings of its options in the current spelling."""
    setting = settings.BY_KEY.get(key)
    renamed = setting.renamed() if setting is not None else {}
    return [renamed.get(w, w) for w in words]


QUOTED_OR_WORD = re.compile(r'[^\s"]*"[^"\n]*"[^\s"]*|[^\s"]+')  # a "quoted string" is one word


def cells(text: str) -> list[str]:
    """The whitespace-separated words of a clause or row, `key = value` joined to `key=value`."""
    words: list[str] = []
    for word in QUOTED_OR_WORD.findall(text):
        if words and (word.startswith("=") or words[-1].endswith("=")):
            words[-1] += word
        else:
            words.append(word)
    return [canonical_word(w) for w in words]


def format_text(text: str, file: str = "<spec>") -> str:
    """The canonical layout of one .mv text; raises SpecError if it does not parse."""
    model = parse(text, file)
    src = Source(text)
    code = _model_lines(model, src)
    out = _weave(code, src, model)
    result = "\n".join(out).rstrip("\n") + "\n"
    if _tree(result) != _tree(text):  # an invariant: the layout never changes what was written
        raise AssertionError(f"mvitdsl fmt would change the meaning of {file}")
    return result


# ---------------------------------------------------------------- code lines


def _model_lines(model: Model, src: Source) -> list[Line]:
    head = f"model {model.name}"
    if model.parent is not None:
        file = f' "{model.parent.file}"' if model.parent.file else ""  # "": no file written
        head += f" extends{file} {model.parent.name}"
    first = (model.span.line, model.span.column)
    lines = [Line(head + " {", first, frozenset({model.span.line}), "open")]
    width = _key_width(model)
    for statement in model.statements:
        if isinstance(statement, Table):
            lines += _table_lines(statement, src)
        else:
            lines += _setting_lines(statement, src, width)
    end = (model.span.end_line, model.span.end_column - 1)
    lines.append(Line("}", end, frozenset({end[0]}), "close"))
    return lines


def _key_width(model: Model) -> int:
    keys = [len(s.key) for s in model.statements if isinstance(s, Setting)]
    return max([KEY_WIDTH, *keys])


def _setting_lines(s: Setting, src: Source, width: int) -> list[Line]:
    """`key  clause, clause,` with a continuation line wherever the author broke the setting
    (or where it would pass WIDTH), aligned under the first value."""
    if not s.clauses:
        return [Line(INDENT + s.key, _at(s.key_span), frozenset({s.key_span.line}))]
    lead = INDENT + s.key.ljust(width) + "  "
    groups: list[list[tuple[str, Span]]] = [[]]
    last_line = s.key_span.line
    for clause in s.clauses:
        if groups[-1] and clause.span.line > last_line:
            groups.append([])
        words = renamed_words(s.key, cells(src.slice(clause.span)))
        groups[-1].append((" ".join(words), clause.span))
        last_line = clause.span.end_line
    out: list[Line] = []
    for g, group in enumerate(groups):
        for chunk in _wrap(group, WIDTH - len(lead), g == len(groups) - 1):
            prefix = lead if not out else " " * len(lead)
            lines = {n for _, sp in chunk for n in range(sp.line, sp.end_line + 1)}
            first = _at(s.key_span) if not out else _at(chunk[0][1])
            if not out:
                lines.add(s.key_span.line)
            out.append(Line(prefix + ", ".join(t for t, _ in chunk), first, frozenset(lines)))
    # every line but the last ends with the comma that continues the setting
    return [Line(ln.text + ",", ln.first, ln.lines) for ln in out[:-1]] + out[-1:]


def _wrap(group: list[tuple[str, Span]], room: int, final: bool) -> list[list[tuple[str, Span]]]:
    """Clauses filled greedily into lines of at most `room` characters, counting the comma that
    ends every line but the setting's last (a clause longer than that stands alone)."""
    chunks: list[list[tuple[str, Span]]] = [[]]
    used = 0
    for i, (text, span) in enumerate(group):
        comma = 0 if final and i == len(group) - 1 else 1
        sep = 2 if chunks[-1] else 0
        if chunks[-1] and used + sep + len(text) + comma > room:
            chunks.append([])
            used, sep = 0, 0
        chunks[-1].append((text, span))
        used += sep + len(text)
    return chunks


def _table_lines(t: Table, src: Source) -> list[Line]:
    rows = [cells(src.slice(r.span)) for r in t.rows]
    header_line = _header_line(t, src)
    header = _header_cells(src.comments[header_line], rows) if header_line else None
    table = rows + ([header] if header else [])
    ncols = max(len(r) for r in table) if table else 0
    widths = [max((len(r[i]) for r in table if len(r) > i), default=0) for i in range(ncols)]
    numeric = [i > 0 and _numeric(r[i] for r in rows if len(r) > i) for i in range(ncols)]
    pad = INDENT * 2
    out = [Line(f"{INDENT}{t.key} {{", _at(t.key_span), frozenset({t.key_span.line}), "open")]
    for row, cs in zip(t.rows, rows):
        text = pad + _align(cs, widths, numeric)
        lines = frozenset(range(row.span.line, row.span.end_line + 1))
        out.append(Line(text, _at(row.span), lines, "row"))
    if header and header_line:
        text = pad + _align(header, widths, numeric)
        out.append(Line(text, (header_line, 0), frozenset({header_line}), "header"))
    end = (t.span.end_line, t.span.end_column - 1)
    out.append(Line(INDENT + "}", end, frozenset({end[0]}), "close"))
    return sorted(out, key=lambda ln: ln.first)


def _align(cs: list[str], widths: list[int], numeric: list[bool]) -> str:
    parts = [c.rjust(widths[i]) if numeric[i] else c.ljust(widths[i]) for i, c in enumerate(cs)]
    return "  ".join(parts).rstrip()


def _numeric(column: Iterable[str]) -> bool:
    """A column of numbers only (right-aligned); names, sizes and `key=value` are left-aligned."""
    words = list(column)
    return bool(words) and all(NUMBER.fullmatch(w) for w in words)


def _header_line(t: Table, src: Source) -> int | None:
    """The comment-only line just above the first row, if the table has rows."""
    if not t.rows:
        return None
    n = t.rows[0].span.line - 1
    if n > t.key_span.line and n in src.comments and not src.code(n):
        return n
    return None


def _header_cells(comment: str, rows: list[list[str]]) -> list[str] | None:
    """`# blocks dim heads` as cells of the table: '#' over the names (or '# name' when the
    header labels that column too); None when the comment is prose, not labels."""
    words = comment[1:].split()
    ncols = max(len(r) for r in rows)
    if not words or len(words) > ncols or not all(LABEL.fullmatch(w) for w in words):
        return None
    if len(words) == ncols:
        return ["# " + words[0], *words[1:]]
    return ["#", *words]


def _at(span: Span) -> tuple[int, int]:
    return (span.line, span.column)


# ---------------------------------------------------------------- comments and blank lines


def _weave(code: list[Line], src: Source, model: Model) -> list[str]:
    """Code lines and the source's comment-only and blank lines, in source order; trailing
    comments go at the end of the line holding their line's last token."""
    taken = {ln.first[0] for ln in code if ln.kind == "header"}
    items: list[tuple[tuple[int, int], str, str]] = []  # (position, kind, text)
    last_holder: dict[int, int] = {}
    for i, ln in enumerate(code):
        for n in ln.lines:
            last_holder[n] = i
    texts = [ln.text for ln in code]
    for n, comment in src.comments.items():
        if n in last_holder and n not in taken and src.code(n):
            i = last_holder[n]
            texts[i] = _with_comment(texts[i], comment)
    for i, ln in enumerate(code):
        items.append((ln.first, ln.kind, texts[i]))
    for n in range(1, len(src.lines) + 1):
        if n in taken or src.code(n):
            continue
        note = src.comments.get(n)
        text = _indent_at(n, model) + note if note else ""
        items.append(((n, 0), "comment" if note else "blank", text))
    items.sort(key=lambda item: item[0])
    return _tidy(items)


def _with_comment(text: str, comment: str) -> str:
    return f"{text}  {comment}"


def _indent_at(n: int, model: Model) -> str:
    """Comment indentation: as deep as the code around line n."""
    if n < model.span.line or n > model.span.end_line:
        return ""
    for s in model.statements:
        if isinstance(s, Table) and s.span.line < n < s.span.end_line:
            return INDENT * 2
        if isinstance(s, Setting) and s.clauses and s.span.line < n < s.span.end_line:
            return " " * (len(INDENT) + _key_width(model) + 2)
    return INDENT


def _tidy(items: list[tuple[tuple[int, int], str, str]]) -> list[str]:
    """No leading blank lines, no runs of them, none just inside '{' or just before '}'."""
    out: list[tuple[str, str]] = []
    for _, kind, text in items:
        if kind == "blank" and (not out or out[-1][0] in ("blank", "open")):
            continue
        if kind == "close" and out and out[-1][0] == "blank":
            out.pop()
        out.append((kind, text.rstrip()))
    while out and out[-1][0] == "blank":
        out.pop()
    return [text for _, text in out]


# ---------------------------------------------------------------- the meaning check


def _tree(text: str) -> Tree[Token]:
    """The parse tree with sizes and option words spelled canonically; equal trees mean equal
    specs (an old spelling reads as the current one)."""
    return _canonical(_parser().parse(text), {})


def _canonical(tree: Tree[Token], renamed: dict[str, str]) -> Tree[Token]:
    if tree.data == "setting" and tree.children and isinstance(tree.children[0], Token):
        setting = settings.BY_KEY.get(str(tree.children[0]))
        renamed = setting.renamed() if setting is not None else {}
    children: list[Tree[Token] | Token] = []
    for child in tree.children:
        if isinstance(child, Tree):
            children.append(_canonical(child, renamed if tree.data != "table" else {}))
        elif isinstance(child, Token) and child.type == "SIZE":
            children.append(Token("SIZE", lexical.canonical_sizes(child)))
        elif isinstance(child, Token) and child.type == "NAME" and tree.data == "clause":
            children.append(Token("NAME", renamed.get(str(child), str(child))))
        else:
            children.append(child)
    return Tree(tree.data, children)
