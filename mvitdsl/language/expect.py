"""`expect params 36610672, gmacs 70.599, output 768x8x7x7`: figures a spec states about itself.

The statement is taken out of a model's own AST before `extends` merges anything (a child states
its own expectations or none; a parent's are not inherited) and read here into data; the checker
(mvitdsl.analysis.expect) compares them with the analysis. Numbers hold to the digits written:
`gmacs 70.599` accepts 70.5985 to 70.5995, `params 36610672` only that count.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from ..diagnostics import Reporter, Span, did_you_mean
from .syntax import Clause, Model, Setting

KEY = "expect"
# word: what it measures (for messages and docs)
WORDS: dict[str, str] = {
    "params": "parameters (an exact count, or to the digits written: 36.6e6)",
    "gmacs": "1e9 multiply-adds, matmul-only convention",
    "gmacs_fvcore": "1e9 multiply-adds, fvcore convention (LayerNorm counted)",
    "output": "the last stage's output, CxTxHxW (video) or CxHxW (image)",
}

EXAMPLES = {
    "params": "36610672",
    "gmacs": "70.599",
    "gmacs_fvcore": "70.804",
    "output": "768x8x7x7",
}


@dataclass(frozen=True)
class Expectation:
    """One stated figure: what, the value as written and read, how close it must be, where."""

    what: str
    text: str
    value: float | tuple[int, ...]
    tolerance: float
    span: Span


def split_expect(model: Model) -> tuple[Model, tuple[Setting, ...]]:
    """The model without its `expect` statements, and those statements."""
    mine = tuple(s for s in model.statements if isinstance(s, Setting) and s.key == KEY)
    if not mine:
        return model, ()
    rest = tuple(s for s in model.statements if s not in mine)
    return replace(model, statements=rest), mine


def tolerance(text: str) -> float:
    """Half a unit of the last digit written: 70.599 -> 0.0005, 36610672 -> 0.5, 4e9 -> 5e8."""
    exponent = Decimal(text).as_tuple().exponent
    assert isinstance(exponent, int)  # finite numbers only: the grammar writes no NaN
    return 0.5 * 10.0 ** max(-300, min(exponent, 300))  # 1e400 is a typo, not an overflow


def read_expect(
    statements: tuple[Setting, ...], sources: dict[str, str]
) -> tuple[Expectation, ...]:
    """The expectations stated, in order; raises SpecError for an unknown word, a value of the
    wrong kind or a figure stated twice."""
    r = Reporter(sources)
    out: dict[str, Expectation] = {}
    for statement in statements:
        if not statement.clauses:
            r.error("E204", "'expect' names no figure", statement.span, _example())
        for clause in statement.clauses:
            expectation = _clause(clause, r)
            if expectation is None:
                continue
            if expectation.what in out:
                r.error(
                    "E201", f"'{expectation.what}' expected twice", clause.span, "state it once"
                )
            out[expectation.what] = expectation
    r.raise_if_any()
    return tuple(out.values())


def _example() -> str:
    return "for example: expect " + ", ".join(f"{w} {v}" for w, v in EXAMPLES.items())


def _clause(clause: Clause, r: Reporter) -> Expectation | None:
    word, *values = clause.atoms
    if word.kind != "name" or word.value not in WORDS:
        hint = did_you_mean(word.text, WORDS) or "expect one of " + ", ".join(WORDS)
        r.error("E203", f"unknown figure '{word.text}' in 'expect'", word.span, hint)
        return None
    what = str(word.value)
    wanted = "size" if what == "output" else "number"
    if len(values) != 1 or values[0].kind != wanted:
        span = values[0].span if values else clause.span
        hint = f"for example: expect {what} {EXAMPLES[what]}"
        r.error("E204", f"'expect {what}' takes one {wanted}", span, hint)
        return None
    atom = values[0]
    if isinstance(atom.value, tuple):
        return Expectation(what, atom.text, atom.value, 0.0, atom.span)
    assert isinstance(atom.value, int | float)
    return Expectation(what, atom.text, float(atom.value), tolerance(atom.text), atom.span)
