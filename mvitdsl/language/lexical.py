"""What a word of the language is: a number, a size (`1x2x2`, `3x224x224`) or a name, said once.

The grammar's terminals for these are written from the patterns here when the grammar is loaded
(`grammar_terminals`, read by parse.py), and every other reader of a value text (sweep PATH
values, `fmt`, the sweep's axes and expressions, the CLI's `--input`) parses it with the
functions here, so `2.5`, `1e-4`, `1x2x2` and `1×2×2` mean one thing everywhere.
"""

from __future__ import annotations

import re
from typing import Union

Number = Union[int, float]
Word = Union[int, float, tuple[int, ...], str]

# The patterns, without anchors: the grammar and the regexes below are built from them.
NAME = r"[A-Za-z_][A-Za-z0-9_]*"
SIZE = r"[0-9]+(?:[x×][0-9]+)+"
NUMBER = r"[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?"
INDEXES = r"[0-9]+(?:,[0-9]+)+"  # a list of block indexes (`global=2,4,6`), only as a cell value

NAME_RE = re.compile(NAME)
SIZE_RE = re.compile(SIZE)
NUMBER_RE = re.compile(NUMBER)
INDEXES_RE = re.compile(INDEXES)


def grammar_terminals() -> str:
    """The grammar's NAME, SIZE and NUMBER terminals (SIZE before NUMBER: `1x2` is one size)."""
    return "\n".join(
        (
            f"NAME: /{NAME}/",
            f"SIZE.2: /{SIZE}/",
            f"NUMBER: /{NUMBER}/",
            f"INDEXES.3: /{INDEXES}/",
        )
    )


def is_size(text: str) -> bool:
    return SIZE_RE.fullmatch(text) is not None


def is_number(text: str) -> bool:
    return NUMBER_RE.fullmatch(text) is not None


def is_indexes(text: str) -> bool:
    return INDEXES_RE.fullmatch(text) is not None


def indexes_parts(text: str) -> tuple[int, ...]:
    """The whole numbers of an index list text (`2,4,6`); ValueError when it is not one."""
    if not is_indexes(text):
        raise ValueError(f"'{text}' is not a list of indexes such as 2,4,6")
    return tuple(int(p) for p in text.split(","))


def is_name(text: str) -> bool:
    return NAME_RE.fullmatch(text) is not None


def size_parts(text: str) -> tuple[int, ...]:
    """The whole numbers of a size text (`1x2x2` or `1×2×2`); ValueError when it is not one."""
    if not is_size(text):
        raise ValueError(f"'{text}' is not a size such as 1x2x2")
    return tuple(int(p) for p in text.replace("×", "x").split("x"))


def number_value(text: str) -> Number:
    """A number text's value: int when written without '.', 'e' or 'E'; ValueError otherwise."""
    if not is_number(text):
        raise ValueError(f"'{text}' is not a number such as 2, 2.5 or 1e-4")
    return float(text) if any(c in text for c in ".eE") else int(text)


def size_text(parts: tuple[int, ...]) -> str:
    """A size as the language writes it: `1x2x2`."""
    return "x".join(str(p) for p in parts)


def canonical_sizes(text: str) -> str:
    """Text with every size spelled `3x7x7` (`×` read as `x`)."""
    return SIZE_RE.sub(lambda m: m.group(0).replace("×", "x"), text)


def word_value(text: str) -> Word:
    """A value text of the language: a size tuple, a number, or a name; ValueError if none."""
    text = text.strip()
    if is_size(text):
        return size_parts(text)
    if is_number(text):
        return number_value(text)
    if is_name(text):
        return text
    raise ValueError(f"'{text}' is not a value of the spec language (a number, a size or a word)")


def parse_size(
    text: str, parts: tuple[int, ...] = (3, 4), lo: int = 1, hi: int = 1_000_000
) -> tuple[int, ...]:
    """A size of one of `parts` whole numbers, each in [lo, hi] (the CLI's `--input`:
    CxHxW or CxTxHxW); ValueError saying what is wrong."""
    clean = text.strip().lower()
    if not (is_size(clean) or clean.isdigit()):
        raise ValueError(f"'{text}' is not a size like 3x16x224x224 (video) or 3x224x224 (image)")
    values = size_parts(clean) if is_size(clean) else (int(clean),)
    if len(values) not in parts:
        raise ValueError(
            f"'{text}' has {len(values)} sizes; give CxTxHxW for video or CxHxW for images"
        )
    if not all(lo <= v <= hi for v in values):
        raise ValueError(f"'{text}': every size must be between {lo} and {hi:,}")
    return values
