"""A Pygments lexer for .mv specs (`pygmentize -l mvitdsl`, registered through the
`pygments.lexers` entry point); every keyword comes from the settings table, so a new setting or
option highlights without an edit here. The HTML report highlights its spec listings with it."""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Text,
    Whitespace,
)

from ..language import settings as S

NAME = r"[A-Za-z_][A-Za-z0-9_]*"

# statement words: the settings' keys, the stage table and its row verbs
STATEMENTS = (*(s.key for s in S.SETTINGS), *S.STATEMENTS, "stages")
# option words (and their older spellings, still read) of every setting, and the row cells
OPTIONS = tuple(
    sorted(
        {w for s in S.SETTINGS for o in s.options for w in o.spellings}
        | {o.word for o in S.ROW_CELLS},
        key=lambda w: (-len(w), w),
    )
)
CHOICES = tuple(
    sorted({c for s in S.SETTINGS for o in s.options for c in o.choices} - set(OPTIONS))
)


class MvitdslLexer(RegexLexer):  # type: ignore[misc]  # Pygments ships no types
    """mvitdsl model specs (.mv): settings, options and their choices, the stage table."""

    name = "mvitdsl"
    aliases = ["mvitdsl", "mv"]
    filenames = ["*.mv"]
    mimetypes = ["text/x-mvitdsl"]
    url = "https://github.com/mvitdsl/mvitdsl"

    tokens = {
        "root": [
            (rf"^([ \t]*)({'|'.join(STATEMENTS)}|add|drop)\b", bygroups(Whitespace, Keyword)),
            (r"\n", Whitespace),  # alone, so that the next line's start is seen by `^`
            (r"[^\S\n]+", Whitespace),
            (r"#.*$", Comment.Single),
            (r'"[^"\n]*"', String.Double),
            (rf"(model)(\s+)({NAME})", bygroups(Keyword.Declaration, Whitespace, Name.Class)),
            (r"\bextends\b", Keyword.Namespace),
            (rf"({NAME})(=)", bygroups(Name.Attribute, Operator)),
            (words(OPTIONS, prefix=r"\b", suffix=r"\b"), Name.Builtin),
            (words(CHOICES, prefix=r"\b", suffix=r"\b"), Name.Constant),
            (r"\b[0-9]+(?:[x×][0-9]+)+\b", Number.Integer),
            (r"\b[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?\b", Number),
            (r"->", Operator),
            (r"[{}]", Punctuation),
            (r",", Punctuation),
            (NAME, Name),
            (r".", Text),
        ]
    }
