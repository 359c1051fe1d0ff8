"""A cursor over a clause's atoms that reads words, numbers and sizes (lexical.py says what
each is; the parser made the atoms), reporting what is wrong with a span and a hint."""

from __future__ import annotations

from typing import Any

from .. import ir
from ..diagnostics import Reporter, Span, did_you_mean
from .settings import MAX_INT, Range
from .syntax import Atom

__all__ = ["MAX_INT", "Atoms", "dims3", "pad3"]


def dims3(value: tuple[int, ...] | None) -> ir.Dims3 | None:
    if value is None:
        return None
    return (1, value[0], value[1]) if len(value) == 2 else (value[0], value[1], value[2])


def pad3(value: tuple[int, ...] | None) -> ir.Dims3 | None:
    """Like dims3, but an image's missing T axis gets padding 0, not 1."""
    if value is None or len(value) != 2:
        return dims3(value)
    return (0, value[0], value[1])


class Atoms:
    """A cursor over a clause's atoms that reads typed values and reports what is wrong."""

    def __init__(self, atoms: tuple[Atom, ...], end: Span, reporter: Reporter) -> None:
        self.atoms, self.i, self.end, self.r = atoms, 0, end, reporter

    def peek(self) -> Atom | None:
        return self.atoms[self.i] if self.i < len(self.atoms) else None

    def take(self, what: str) -> Atom | None:
        atom = self.peek()
        if atom is None:
            self.r.error("E204", f"missing {what}", self.end)
            return None
        self.i += 1
        return atom

    def word(self, choices: tuple[str, ...], what: str) -> str | None:
        atom = self.take(what)
        if atom is None:
            return None
        if atom.kind != "name" or atom.value not in choices:
            hint = did_you_mean(atom.text, choices) or "choose one of " + ", ".join(choices)
            self.r.error("E203", f"unknown {what} '{atom.text}'", atom.span, hint)
            return None
        return str(atom.value)

    def ranged(self, what: str, rng: Range, integer: bool = False) -> Any:
        """A number inside a declared range (open or closed at either end)."""
        atom = self.take(what)
        if atom is None:
            return None
        if atom.kind != "number" or (integer and not isinstance(atom.value, int)):
            kind = "a whole number" if integer else "a number"
            self.r.error("E204", f"{what} must be {kind}, not '{atom.text}'", atom.span)
            return None
        value = atom.value
        assert isinstance(value, (int, float))
        if value not in rng:
            self.r.error("E205", f"{what} {atom.text} is out of range {rng}", atom.span)
            return None
        return value

    def indexes(self, what: str, rng: Range) -> tuple[int, ...] | None:
        """Whole numbers in a range, without repeats: a list (`2,4,6`) or one number."""
        atom = self.take(what)
        if atom is None:
            return None
        if atom.kind == "number" and isinstance(atom.value, int):
            values: tuple[int, ...] = (atom.value,)
        elif atom.kind == "indexes" and isinstance(atom.value, tuple):
            values = atom.value
        else:
            hint = "write whole numbers joined by ',' without spaces, e.g. 2,4,6"
            self.r.error(
                "E204", f"{what} must be block indexes, not '{atom.text}'", atom.span, hint
            )
            return None
        bad = next((v for v in values if v not in rng), None)
        if bad is not None:
            self.r.error("E205", f"{what} {bad} is out of range {rng}", atom.span)
            return None
        twice = next((v for n, v in enumerate(values) if v in values[:n]), None)
        if twice is not None:
            self.r.error("E201", f"{what} {twice} is listed twice", atom.span)
            return None
        return values

    def size(self, what: str, parts: int, lo: int = 1) -> tuple[int, ...] | None:
        atom = self.take(what)
        if atom is None:
            return None
        value = self.sizes(atom, what, parts)
        if value is None:
            return None
        if len(value) != parts:
            self.r.error(
                "E206",
                f"{what} '{atom.text}' has {len(value)} sizes; expected {parts}",
                atom.span,
                f"write {parts} numbers joined by 'x'",
            )
            return None
        if not all(lo <= v <= MAX_INT for v in value):
            self.r.error(
                "E205",
                f"{what} '{atom.text}' must have sizes between {lo} and {MAX_INT:,}",
                atom.span,
            )
            return None
        return value

    def sizes(self, atom: Atom, what: str, parts: int) -> tuple[int, ...] | None:
        """The numbers of a size atom; a lone whole number counts where one size is wanted."""
        if atom.kind == "number" and isinstance(atom.value, int) and parts == 1:
            return (atom.value,)
        if atom.kind != "size":
            self.r.error(
                "E204",
                f"{what} must be a size such as {'x'.join(['3'] * parts)}, not '{atom.text}'",
                atom.span,
            )
            return None
        assert isinstance(atom.value, tuple)
        return atom.value

    def done(self) -> None:
        extra = self.peek()
        if extra is not None:
            self.r.error(
                "E203", f"unexpected '{extra.text}' here", extra.span, "separate options with ','"
            )
            self.i = len(self.atoms)
