"""Located diagnostics: spans, error codes and compiler-style rendering.

This module imports nothing from the rest of mvitdsl; every pass reports through it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from difflib import get_close_matches

# One line per code; docs/DIAGNOSTICS.md is generated from this table and tests pin each text.
CODES: dict[str, str] = {
    "E100": "unexpected character",
    "E101": "unexpected token",
    "E102": "unexpected end of file",
    "E103": "input too large",
    "E104": "not UTF-8 text, or a control character",
    "E200": "unknown setting",
    "E201": "option given twice",
    "E202": "required setting missing",
    "E203": "unknown option or word",
    "E204": "wrong kind of value",
    "E205": "value out of range",
    "E206": "wrong number of sizes",
    "E207": "malformed stages table",
    "E208": "stage name given twice",
    "E209": "cannot resolve the parent spec",
    "E210": "option does not apply here",
    "E211": "stage not in the parent spec (write 'add' or 'drop')",
    "E300": "channels not divisible by heads",
    "E301": "attention output grid differs from the residual grid",
    "E302": "stride does not fit the grid",
    "E303": "grid collapses to zero",
    "E304": "avg pooling kernel larger than the grid",
    "E305": "patch embedding width differs from the first stage",
    "E306": "model exceeds a budget",
    "E307": "position embedding does not fit the token grid",
    "E308": "a figure stated with 'expect' differs from the analysis",
    "W001": "deprecated spelling",
    "E309": "attention window does not fit the grid",
}


@dataclass(frozen=True)
class Span:
    """A region of a source file; lines and columns start at 1, ends are exclusive."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a spec, as data: code, words, where, and how to fix it."""

    code: str
    message: str
    span: Span | None = None
    hint: str | None = None
    severity: str = "error"

    @property
    def line(self) -> int | None:
        return self.span.line if self.span else None

    @property
    def column(self) -> int | None:
        return self.span.column if self.span else None

    def render(self, source: str | None = None) -> str:
        """`path:line:col: error[CODE]: message`, then the source line, a caret and the hint."""
        where = f"{self.span}: " if self.span else ""
        out = [f"{where}{self.severity}[{self.code}]: {self.message}"]
        if self.span and source is not None:
            out += _excerpt(source, self.span)
        if self.hint:
            out.append(f"  = hint: {self.hint}")
        return "\n".join(out)

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["line"], data["column"] = self.line, self.column
        return data


EXCERPT_WIDTH = 120  # longer source lines are shown as a window around the span


def _excerpt(source: str, span: Span) -> list[str]:
    """The source line (as the parser counts lines: at '\\n' only) and a caret under the span."""
    lines = source.split("\n")
    if not 1 <= span.line <= len(lines):
        return []
    # Tabs and control characters become one visible character each, so the caret lines up.
    text = "".join(
        c if c.isprintable() else " " if c == "\t" else "\ufffd"
        for c in lines[span.line - 1].rstrip("\r")
    )
    one_line = span.end_line == span.line
    start = span.column - 1
    width = max(1, span.end_column - span.column if one_line else len(text) - start)
    if len(text) > EXCERPT_WIDTH:
        left = max(0, start - EXCERPT_WIDTH // 2)
        window = text[left : left + EXCERPT_WIDTH]
        more = left + EXCERPT_WIDTH < len(text)
        text = ("..." if left else "") + window + ("..." if more else "")
        start = start - left + (3 if left else 0)
        width = min(width, EXCERPT_WIDTH)
    gutter = f"{span.line:>4} | "
    return [gutter + text, " " * (len(gutter) + start) + "^" * width]


@dataclass
class SpecError(ValueError):
    """Raised by load_spec and friends; `.diagnostics` lists every problem found."""

    diagnostics: list[Diagnostic]
    sources: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(
            d.render(self.sources.get(d.span.file) if d.span else None) for d in self.diagnostics
        )

    def to_json(self) -> str:
        return json.dumps([d.to_json() for d in self.diagnostics], indent=2)

    def __str__(self) -> str:
        return self.render()


class Reporter:
    """Collects diagnostics of one pass so that all errors of a file are reported at once."""

    def __init__(self, sources: dict[str, str] | None = None) -> None:
        self.diagnostics: list[Diagnostic] = []
        self.warnings: list[Diagnostic] = []  # never raised; carried to the caller
        self.sources = dict(sources or {})

    def error(self, code: str, message: str, span: Span | None, hint: str | None = None) -> None:
        assert code in CODES, code
        self.diagnostics.append(Diagnostic(code, message, span, hint))

    def warning(self, code: str, message: str, span: Span | None, hint: str | None = None) -> None:
        assert code in CODES, code
        self.warnings.append(Diagnostic(code, message, span, hint, severity="warning"))

    def raise_if_any(self) -> None:
        if self.diagnostics:
            raise SpecError(sorted(self.diagnostics, key=_order), self.sources)


def _order(d: Diagnostic) -> tuple[str, int, int]:
    return (d.span.file, d.span.line, d.span.column) if d.span else ("", 0, 0)


def did_you_mean(word: str, vocabulary: Iterable[str]) -> str | None:
    """A hint naming the closest known word, if any is close."""
    match = get_close_matches(word, list(vocabulary), n=1, cutoff=0.6)
    return f"did you mean '{match[0]}'?" if match else None
