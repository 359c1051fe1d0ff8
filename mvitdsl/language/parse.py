"""Text -> AST. Loads grammars/mvit.lark, turns the Lark tree into syntax nodes, and turns
Lark's exceptions into located diagnostics written in words (no terminal names)."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from ..catalog import shipped_path
from ..diagnostics import Reporter, Span
from . import lexical
from .syntax import Atom, Cell, Clause, Model, Parent, Row, Setting, Statement, Table

MAX_SOURCE_BYTES = 1_000_000
MAX_LINES = 10_000
MAX_TOKEN_CHARS = 200
MAX_SYNTAX_ERRORS = 20

# What each terminal is called in messages: users never see Lark's names.
TERMINAL_WORDS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "SIZE": "a size such as 3x7x7",
    "INDEXES": "a list of block indexes such as 2,4,6",
    "ARROW": "'->'",
    "STRING": "a quoted file name",
    "_NL": "end of line",
    "$END": "end of file",
    "<END-OF-FILE>": "end of file",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "COMMA": "','",
    "MODEL": "'model'",
    "EXTENDS": "'extends'",
    "VALUE": "a value",
    "EQUAL": "'='",
}


def _grammar_path() -> Path:
    here = Path(__file__).resolve().parent
    # installed: mvitdsl/grammars/ (the wheel's copy); from a checkout: grammars/ beside mvitdsl/
    for candidate in (
        here.parent / "grammars" / "mvit.lark",
        here.parents[1] / "grammars" / "mvit.lark",
    ):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("grammars/mvit.lark is missing from the installation")


def grammar_text() -> str:
    """grammars/mvit.lark with the value terminals of lexical.py appended (stated once there)."""
    return _grammar_path().read_text(encoding="utf-8") + "\n" + lexical.grammar_terminals() + "\n"


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=False,
    )


def decode_source(data: bytes, file: str) -> str:
    """A spec file's bytes as text: UTF-8 (a leading BOM is dropped), else a located E104."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        start = e.start
        line = data.count(b"\n", 0, start) + 1
        column = start - (data.rfind(b"\n", 0, start) + 1) + 1
        text = data.decode("utf-8-sig", errors="replace")
        reporter = Reporter({file: text})
        reporter.error(
            "E104",
            f"byte 0x{data[start]:02x} at offset {start} is not UTF-8 text",
            Span(file, line, column, line, column + 1),
            "save the spec as UTF-8 (it is plain text: names, numbers and sizes)",
        )
        reporter.raise_if_any()
        raise AssertionError("unreachable") from None


# Allowed below U+0020: tab, line feed, carriage return, form feed.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufeff\ufffe\uffff]")


def _check_characters(source: str, file: str, reporter: Reporter) -> None:
    """NUL and other control characters (and lone surrogates) are located, one error per file."""
    m = _CONTROL.search(source)
    if m is None:
        return
    line = source.count("\n", 0, m.start()) + 1
    column = m.start() - (source.rfind("\n", 0, m.start()) + 1) + 1
    char = m.group()
    what = "a NUL byte" if char == "\0" else f"control character U+{ord(char):04X}"
    reporter.error(
        "E104",
        f"{what} in the spec",
        Span(file, line, column, line, column + 1),
        "a spec is plain text; was a binary file given, or text pasted with control codes?",
    )


def parse(source: str, file: str = "<spec>") -> Model:
    """Parse one .mv text into a Model AST; raises SpecError with every syntax error located."""
    if not isinstance(source, str):
        raise TypeError(f"spec text must be a str, not {type(source).__name__}")
    reporter = Reporter({file: source})
    _check_size(source, file, reporter)
    reporter.raise_if_any()
    _check_characters(source, file, reporter)
    reporter.raise_if_any()
    recovery = _Recovery(source, file, reporter)
    try:
        tree = _parser().parse(source, on_error=recovery)
    except UnexpectedInput as e:
        if not reporter.diagnostics:  # the handler reports before giving up; this is a fallback
            _syntax_error(e, source, file, reporter)
    reporter.raise_if_any()
    model: Model = _ToAst(file, source).transform(tree)
    _check_parent(model, reporter)
    reporter.raise_if_any()
    return model


def _check_parent(model: Model, reporter: Reporter) -> None:
    """`extends NAME` without a file names a shipped spec (`mvitdsl list`); any other name can
    never be resolved: say so where it is written."""
    parent = model.parent
    if parent is not None and not parent.file and shipped_path(parent.name) is None:
        reporter.error(
            "E209",
            f"'extends {parent.name}' names no file and no shipped spec",
            parent.span,
            f'name the parent\'s file (extends "{parent.name}.mv" {parent.name}), or a shipped '
            "spec by its name (mvitdsl list shows them)",
        )


class _Recovery:
    """Lark's on_error handler: report one error per line, drop the offending token, go on.

    Resynchronising per line keeps one mistake from producing a cascade of messages while
    still reporting every broken line of the file at once."""

    def __init__(self, source: str, file: str, reporter: Reporter) -> None:
        self.source, self.file, self.r = source, file, reporter
        self.lines: set[int] = set()
        self.stack: list[int] | None = None

    def __call__(self, e: UnexpectedInput) -> bool:
        if len(self.r.diagnostics) >= MAX_SYNTAX_ERRORS:
            return False
        token = getattr(e, "token", None)
        at_end = token is not None and token.type == "$END"
        after_model = isinstance(e, UnexpectedToken) and set(e.expected) <= _END_OR_NL
        if isinstance(e, UnexpectedToken):
            # No token accepted since the last error: this one is its echo, not a new mistake.
            stack = list(e.interactive_parser.parser_state.state_stack)
            echo, self.stack = stack == self.stack, stack
            if echo:
                return not (at_end or after_model)
        if e.line not in self.lines or at_end:
            self.lines.add(e.line)
            _syntax_error(e, self.source, self.file, self.r)
        return not (at_end or after_model)


_END_OR_NL = {"$END", "<END-OF-FILE>", "_NL"}


def _check_size(source: str, file: str, reporter: Reporter) -> None:
    size = len(source.encode("utf-8", "surrogatepass"))
    lines = source.count("\n") + 1
    limits = (
        ("spec is {:,} bytes", size, MAX_SOURCE_BYTES),
        ("spec has {:,} lines", lines, MAX_LINES),
    )
    for what, amount, limit in limits:
        if amount > limit:
            reporter.error(
                "E103",
                f"{what.format(amount)}; the limit is {limit:,}",
                Span(file, 1, 1, 1, 2),
                "a model spec is a few dozen lines",
            )
            return
    for number, line in enumerate(source.splitlines(), 1):
        for word in line.split():
            if len(word) > MAX_TOKEN_CHARS:
                col = line.index(word) + 1
                reporter.error(
                    "E103",
                    f"a word of {len(word):,} characters is too long (limit {MAX_TOKEN_CHARS})",
                    Span(file, number, col, number, col + 1),
                )
                return


def _syntax_error(e: UnexpectedInput, source: str, file: str, reporter: Reporter) -> None:
    line, column = max(e.line, 1), max(e.column, 1)
    if isinstance(e, UnexpectedCharacters):
        _unexpected_character(e, source, Span(file, line, column, line, column), reporter)
    elif isinstance(e, UnexpectedToken) and e.token.type != "$END":
        _unexpected_token(e, Span(file, line, column, line, column), reporter)
    else:
        _unexpected_end(e, source, file, reporter)


def _unexpected_character(
    e: UnexpectedCharacters, source: str, at: Span, reporter: Reporter
) -> None:
    """E100: a character no token starts with (a negative number gets its own words)."""
    line, column = at.line, at.column
    pos = e.pos_in_stream or 0
    char = source[pos] if pos < len(source) else ""
    number = re.match(r"-[0-9][0-9.eE+-]*", source[pos:]) if char == "-" else None
    if number is not None:
        reporter.error(
            "E100",
            f"negative number '{number.group()}': no value in a spec is below zero",
            Span(at.file, line, column, line, column + len(number.group())),
            "write the value without the minus sign; ranges are in the README's table",
        )
        return
    reporter.error(
        "E100",
        f"unexpected character {char!r}",
        Span(at.file, line, column, line, column + 1),
        "sizes are written like 3x7x7; comments start with '#'",
    )


def _unexpected_token(e: UnexpectedToken, at: Span, reporter: Reporter) -> None:
    """E101: a token the grammar does not allow here (after the model's end, its own words)."""
    token = e.token
    expected = _expected_words(e.expected)
    text = str(token).strip() or TERMINAL_WORDS.get(token.type, token.type)
    if token.type == "_NL":
        text = "end of line"
    what = text if token.type == "_NL" else repr(text)
    width = max(1, len(str(token).split("\n")[0]))
    span = Span(at.file, at.line, at.column, at.line, at.column + width)
    if set(e.expected) <= _END_OR_NL:
        reporter.error(
            "E101",
            f"unexpected {what} after the end of the model",
            span,
            "a file holds one model; was a '}' closed too early?",
        )
        return
    reporter.error(
        "E101", f"unexpected {what}; expected {expected}", span, _hint(token, e.expected)
    )


def _unexpected_end(e: UnexpectedInput, source: str, file: str, reporter: Reporter) -> None:
    """E102: the file ends inside the model; the span is just past its last character."""
    expected = _expected_words(getattr(e, "expected", None) or ["RBRACE"])
    last = source.rstrip().splitlines() or [""]
    end_line = len(last)
    end_col = len(last[-1]) + 1
    reporter.error(
        "E102",
        f"unexpected end of file; expected {expected}",
        Span(file, end_line, end_col, end_line, end_col + 1),
        "every '{' needs a matching '}'",
    )


_VALUES = {"NAME", "NUMBER", "SIZE", "STRING", "ARROW", "INDEXES"}


def _expected_words(expected: Any) -> str:
    names = set(expected)
    if {"NAME", "NUMBER", "SIZE"} <= names:  # anywhere a value may go: say so, not five words
        names -= _VALUES
        names.add("VALUE")
    words = sorted({TERMINAL_WORDS.get(name, f"'{name.lower()}'") for name in names})
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _hint(token: Token, expected: Any) -> str | None:
    if token.type == "LBRACE":
        return "tables such as 'stages { ... }' start on a line of their own"
    if token.type == "_NL" and "RBRACE" in expected:
        return "a table row or a setting must be on one line"
    if token.type == "RBRACE":
        return "put the closing '}' on its own line"
    if set(expected) == {"NAME", "_NL"} and token.type == "COMMA":
        return "a cell's list of block indexes has no spaces: global=2,4,6"
    if set(expected) == {"NAME", "_NL"}:  # only ever after a stage row's key=value cell
        return "key=value cells come last in a stage row, after its columns"
    if token.type == "_NL" and "NAME" in expected and "ARROW" not in expected:
        return "a setting continues after ','; remove the trailing comma"
    return None


def _span(file: str, meta: Any) -> Span:
    return Span(file, meta.line, meta.column, meta.end_line, meta.end_column)


def _token_span(file: str, token: Token) -> Span:
    return Span(
        file,
        token.line or 1,
        token.column or 1,
        token.end_line or token.line or 1,
        token.end_column or (token.column or 1) + 1,
    )


class _ToAst(Transformer[Token, Model]):
    """Lark tree -> syntax nodes. Method names are the grammar's rule names."""

    def __init__(self, file: str, source: str) -> None:
        super().__init__()
        self.file = file
        self.source = source

    def _atom(self, token: Token) -> Atom:
        span = _token_span(self.file, token)
        text = str(token)
        if token.type == "NUMBER":
            return Atom("number", lexical.number_value(text), text, span)
        if token.type == "SIZE":
            return Atom("size", lexical.size_parts(text), text, span)
        if token.type == "INDEXES":
            return Atom("indexes", lexical.indexes_parts(text), text, span)
        if token.type == "STRING":
            return Atom("string", text[1:-1], text, span)
        if token.type == "ARROW":
            return Atom("arrow", text, text, span)
        return Atom("name", text, text, span)

    @v_args(meta=True)
    def clause(self, meta: Any, tokens: list[Token]) -> Clause:
        return Clause(tuple(self._atom(t) for t in tokens), _span(self.file, meta))

    @v_args(meta=True)
    def row(self, meta: Any, children: list[Any]) -> Row:
        atoms = tuple(self._atom(t) for t in children if isinstance(t, Token))
        cells = tuple(c for c in children if isinstance(c, Cell))
        return Row(atoms, _span(self.file, meta), cells)

    @v_args(meta=True)
    def cell(self, meta: Any, children: list[Token]) -> Cell:
        key, value = children
        return Cell(
            str(key), _token_span(self.file, key), self._atom(value), _span(self.file, meta)
        )

    @v_args(meta=True)
    def setting(self, meta: Any, children: list[Any]) -> Setting:
        key, *clauses = children
        return Setting(
            str(key), _token_span(self.file, key), tuple(clauses), _span(self.file, meta)
        )

    @v_args(meta=True)
    def table(self, meta: Any, children: list[Any]) -> Table:
        key, *rows = children
        return Table(str(key), _token_span(self.file, key), tuple(rows), _span(self.file, meta))

    @v_args(meta=True)
    def parent(self, meta: Any, children: list[Token]) -> Parent:
        file = str(children[0])[1:-1] if len(children) == 2 else ""  # "": reported by parse
        return Parent(file, str(children[-1]), _span(self.file, meta))

    @v_args(meta=True)
    def model(self, meta: Any, children: list[Any]) -> Model:
        name, *rest = children
        parent = rest.pop(0) if rest and isinstance(rest[0], Parent) else None
        statements: tuple[Statement, ...] = tuple(rest)
        return Model(str(name), parent, statements, _span(self.file, meta), self.file, self.source)

    def start(self, children: list[Model]) -> Model:
        return children[0]
