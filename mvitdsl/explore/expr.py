"""A small, safe expression language for `--set` and `--where` (never Python's eval).

    expr    := or
    or      := and ('or' and)*
    and     := not ('and' not)*
    not     := 'not' not | compare
    compare := sum (('<' | '<=' | '>' | '>=' | '==' | '!=') sum)*     # chained, as in Python
    sum     := term (('+' | '-') term)*
    term    := unary (('*' | '/' | '//' | '%') unary)*
    unary   := '-' unary | atom
    atom    := NUMBER | SIZE | PATH | WORD | '(' expr ')'

PATH is a dotted name (`scale3.dim`, `attention.mlp_ratio`); a bare WORD is a word value (`all`).
Arithmetic on whole numbers stays whole: `/` must divide exactly (else InexactError), `//` floors.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

from ..language import lexical

Value = Union[int, float, str, tuple[int, ...]]
Env = Callable[[str], Value]

MAX_EXPR_CHARS = 400
MAX_DEPTH = 32

_TOKEN = re.compile(
    rf"\s*(?:(?P<size>{lexical.SIZE})|(?P<number>{lexical.NUMBER})"
    rf"|(?P<name>{lexical.NAME}(?:\.{lexical.NAME})?)|(?P<op>//|<=|>=|==|!=|[-+*/%()<>]))"
)
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


class ExprError(ValueError):
    """The expression cannot be read, or cannot be evaluated on these values."""


class InexactError(ExprError):
    """A `/` between whole numbers that does not divide exactly."""


@dataclass(frozen=True)
class Node:
    """One node of a parsed expression: an operator and its operands, or a leaf."""

    op: str  # "num", "path", "word", "neg", "not", "and", "or", "cmp", or an arithmetic operator
    args: tuple[object, ...]


def tokenize(text: str) -> list[tuple[str, str]]:
    if len(text) > MAX_EXPR_CHARS:
        raise ExprError(f"expression of {len(text)} characters (limit {MAX_EXPR_CHARS})")
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ExprError(
                f"unexpected {text[pos:].strip()[:1]!r} at column {pos + 1} in {text!r}"
            )
        kind = m.lastgroup or "op"
        word = m.group(kind)
        if kind == "name" and word in ("and", "or", "not"):
            kind = "op"
        out.append((kind, word))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def accept(self, *ops: str) -> str | None:
        tok = self.peek()
        if tok is not None and tok[0] == "op" and tok[1] in ops:
            self.i += 1
            return tok[1]
        return None

    def parse(self) -> Node:
        if not self.tokens:
            raise ExprError("empty expression")
        node = self.or_()
        if self.peek() is not None:
            raise ExprError(f"unexpected {self.peek()[1]!r} in {self.text!r}")  # type: ignore[index]
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.accept("or"):
            node = Node("or", (node, self.and_()))
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.accept("and"):
            node = Node("and", (node, self.not_()))
        return node

    def not_(self) -> Node:
        if self.accept("not"):
            return Node("not", (self.not_(),))
        return self.compare()

    def compare(self) -> Node:
        first = self.sum_()
        pairs: list[tuple[str, Node]] = []
        while (op := self.accept(*_COMPARE)) is not None:
            pairs.append((op, self.sum_()))
        return Node("cmp", (first, tuple(pairs))) if pairs else first

    def sum_(self) -> Node:
        node = self.term()
        while (op := self.accept("+", "-")) is not None:
            node = Node(op, (node, self.term()))
        return node

    def term(self) -> Node:
        node = self.unary()
        while (op := self.accept("*", "/", "//", "%")) is not None:
            node = Node(op, (node, self.unary()))
        return node

    def unary(self) -> Node:
        if self.accept("-"):
            return Node("neg", (self.unary(),))
        return self.atom()

    def atom(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise ExprError(f"{self.text!r} ends too early")
        self.i += 1
        kind, word = tok
        if kind == "number":
            return Node("num", (lexical.number_value(word),))
        if kind == "size":
            return Node("num", (lexical.size_parts(word),))
        if kind == "name":
            return Node("path" if "." in word else "word", (word,))
        if word == "(":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ExprError(f"expression nested deeper than {MAX_DEPTH}")
            node = self.or_()
            if not self.accept(")"):
                raise ExprError(f"missing ')' in {self.text!r}")
            self.depth -= 1
            return node
        raise ExprError(f"unexpected {word!r} in {self.text!r}")


def parse_expr(text: str) -> Node:
    """Parse an expression; raises ExprError with words, never evaluates anything."""
    return _Parser(text).parse()


def paths(node: Node) -> list[str]:
    """The dotted paths an expression reads, in order of appearance."""
    if node.op == "path":
        return [str(node.args[0])]
    out: list[str] = []
    for arg in node.args:
        if isinstance(arg, Node):
            out += paths(arg)
        elif isinstance(arg, tuple):
            out += [p for pair in arg for p in paths(pair[1])]
    return out


def _number(value: Value, op: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ExprError(f"'{op}' needs numbers, not {value!r}")
    return value


def _divide(a: int | float, b: int | float) -> int | float:
    if b == 0:
        raise ExprError(f"division by zero ({a}/{b})")
    if isinstance(a, int) and isinstance(b, int):
        if a % b:
            raise InexactError(f"{a}/{b} is not a whole number")
        return a // b
    return a / b


def _floor_div(a: int | float, b: int | float) -> int | float:
    if b == 0:
        raise ExprError(f"division by zero ({a}//{b})")
    return a // b


def _mod(a: int | float, b: int | float) -> int | float:
    if b == 0:
        raise ExprError(f"modulo by zero ({a}%{b})")
    return a % b


_ARITH: dict[str, Callable[[int | float, int | float], int | float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _divide,
    "//": _floor_div,
    "%": _mod,
}


def evaluate(node: Node, env: Env) -> Value:
    """The value of a parsed expression, reading paths from `env`."""
    op, args = node.op, node.args
    if op == "num":
        return args[0]  # type: ignore[return-value]
    if op == "word":
        return str(args[0])
    if op == "path":
        return env(str(args[0]))
    if op == "neg":
        return -_number(evaluate(args[0], env), "-")  # type: ignore[arg-type]
    if op == "not":
        return int(not evaluate(args[0], env))  # type: ignore[arg-type]
    if op == "and":
        return int(bool(evaluate(args[0], env)) and bool(evaluate(args[1], env)))  # type: ignore[arg-type]
    if op == "or":
        return int(bool(evaluate(args[0], env)) or bool(evaluate(args[1], env)))  # type: ignore[arg-type]
    if op == "cmp":
        left = evaluate(args[0], env)  # type: ignore[arg-type]
        for cmp, right_node in args[1]:  # type: ignore[attr-defined]
            right = evaluate(right_node, env)
            if type(left) is not type(right) and not (
                isinstance(left, (int, float)) and isinstance(right, (int, float))
            ):
                raise ExprError(f"cannot compare {left!r} with {right!r}")
            if not _COMPARE[cmp](left, right):
                return 0
            left = right
        return 1
    a = _number(evaluate(args[0], env), op)  # type: ignore[arg-type]
    b = _number(evaluate(args[1], env), op)  # type: ignore[arg-type]
    return _ARITH[op](a, b)
