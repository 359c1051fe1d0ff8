"""The TextMate grammar of .mv files (mvitdsl/lsp/mvitdsl.tmLanguage.json), read with Python's
re (its patterns are plain enough that Oniguruma reads them the same): every shipped spec and
example is tokenised, and each word the parser sees gets the scope its kind calls for."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mvitdsl.language import settings as S
from mvitdsl.language.expect import KEY as EXPECT
from mvitdsl.language.parse import parse
from mvitdsl.language.reference import KEY as REFERENCE
from mvitdsl.language.reference import SOURCES
from mvitdsl.language.syntax import Setting, Table
from mvitdsl.lsp.textmate import render

ROOT = Path(__file__).resolve().parent.parent
GRAMMAR_FILE = ROOT / "mvitdsl" / "lsp" / "mvitdsl.tmLanguage.json"
GRAMMAR = json.loads(GRAMMAR_FILE.read_text(encoding="utf-8"))
FILES = sorted([*(ROOT / "specs").glob("*.mv"), *(ROOT / "examples").glob("*.mv")])
ATOM_SCOPES = {
    "size": "constant.numeric.size.mvitdsl",
    "number": "constant.numeric.mvitdsl",
    "string": "string.quoted.double.mvitdsl",
    "arrow": "keyword.operator.arrow.mvitdsl",
}


@dataclass(frozen=True)
class Rule:
    regex: re.Pattern[str]
    name: str | None
    captures: dict[int, str]


RULES = [
    Rule(
        re.compile(p["match"]),
        p.get("name"),
        {int(k): v["name"] for k, v in p.get("captures", {}).items()},
    )
    for p in GRAMMAR["patterns"]
]


def tokenise(line: str) -> dict[int, tuple[str, str]]:
    """{column: (text, scope)} as a TextMate engine scopes one line: at each point the earliest
    match wins, the first rule on a tie."""
    out: dict[int, tuple[str, str]] = {}
    pos = 0
    while pos < len(line):
        found = [(m.start(), i, m) for i, r in enumerate(RULES) if (m := r.regex.search(line, pos))]
        if not found:
            break
        _, i, m = min(found, key=lambda f: (f[0], f[1]))
        rule = RULES[i]
        if rule.name:
            out[m.start()] = (m.group(), rule.name)
        for group, scope in rule.captures.items():
            if m.group(group):
                out[m.start(group)] = (m.group(group), scope)
        pos = max(m.end(), pos + 1)
    return out


def _scope(tokens: list[dict[int, tuple[str, str]]], line: int, column: int) -> str:
    return tokens[line - 1].get(column - 1, ("", "no scope"))[1]


def _expected(text: str, file: str) -> list[tuple[int, int, str, str]]:
    """(line, column, word, scope) of every word whose scope the grammar must give."""
    model = parse(text, file)
    out = [(model.span.line, model.span.column, "model", "keyword.control.model.mvitdsl")]
    options = {o.word for s in S.SETTINGS for o in s.options} | {
        c for s in S.SETTINGS for o in s.options for c in o.choices
    }
    for s in model.statements:
        if isinstance(s, Table):
            out.append((s.key_span.line, s.key_span.column, s.key, "storage.type.table.mvitdsl"))
            continue
        assert isinstance(s, Setting)
        out.append((s.key_span.line, s.key_span.column, s.key, "keyword.other.setting.mvitdsl"))
        for atom in (a for c in s.clauses for a in c.atoms):
            scope = ATOM_SCOPES.get(atom.kind)
            if atom.kind == "name" and atom.text in options:
                scope = "support.constant.option.mvitdsl"
            if scope:
                out.append((atom.span.line, atom.span.column, atom.text, scope))
    return out


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_the_grammar_scopes_every_word_of_a_shipped_spec(path: Path) -> None:
    text = path.read_text()
    tokens = [tokenise(line) for line in text.split("\n")]
    for line, column, word, scope in _expected(text, str(path)):
        assert _scope(tokens, line, column) == scope, f"{path.name}:{line}:{column} {word!r}"
    for n, source in enumerate(text.split("\n")):
        if source.lstrip().startswith("#"):
            start = len(source) - len(source.lstrip())
            assert tokens[n][start] == (source.lstrip(), "comment.line.number-sign.mvitdsl")


def test_row_words_cells_and_sizes_in_a_table() -> None:
    line = "    s1  1  8  1  1x1x1  kernel_q=3x3x3  # cells"
    tokens = tokenise(line)
    assert tokens[line.index(" 8 ") + 1] == ("8", "constant.numeric.mvitdsl")
    assert tokens[line.index("1x1x1")] == ("1x1x1", "constant.numeric.size.mvitdsl")
    assert tokens[line.index("kernel_q")] == ("kernel_q", "variable.parameter.cell.mvitdsl")
    assert tokens[line.index("3x3x3")] == ("3x3x3", "constant.numeric.size.mvitdsl")
    assert tokens[line.index("#")] == ("# cells", "comment.line.number-sign.mvitdsl")
    assert tokenise("    add s6 1 8 1 1x1x1")[4] == ("add", "keyword.other.row.mvitdsl")


def test_the_grammar_knows_every_setting_option_and_choice() -> None:
    setting = next(r for r in RULES if r.captures.get(1) == "keyword.other.setting.mvitdsl")
    option = next(r for r in RULES if r.name == "support.constant.option.mvitdsl")
    for s in S.SETTINGS:
        assert setting.regex.match(f"  {s.key} x"), f"setting {s.key!r} not in the grammar"
        for word in [o.word for o in s.options if o.word != "->"] + [
            c for o in s.options for c in o.choices
        ]:
            assert option.regex.fullmatch(word), f"{s.key} {word!r} not in the grammar"


def test_the_grammar_is_a_textmate_grammar() -> None:
    data: dict[str, Any] = GRAMMAR
    assert data["scopeName"] == "source.mvitdsl" and data["fileTypes"] == ["mv"]
    assert all(("name" in p) != ("captures" in p) for p in data["patterns"])


def test_the_grammar_is_generated_from_the_table() -> None:
    """`make docs` writes the file (mvitdsl/lsp/textmate.py); a stale one fails here."""
    text = render()
    if os.environ.get("MVITDSL_UPDATE_GOLDEN") == "1":
        GRAMMAR_FILE.write_text(text, encoding="utf-8")
    assert GRAMMAR_FILE.read_text(encoding="utf-8") == text, "stale grammar: run `make docs`"


def test_the_grammar_knows_the_statements_beside_the_table() -> None:
    """`outputs`, `expect` and `reference` start a statement; `reference`'s sources and the
    older spellings of options are option words."""
    setting = next(r for r in RULES if r.captures.get(1) == "keyword.other.setting.mvitdsl")
    option = next(r for r in RULES if r.name == "support.constant.option.mvitdsl")
    assert {EXPECT, REFERENCE, "outputs"} <= set(S.STATEMENTS)
    for key in S.STATEMENTS:
        assert setting.regex.match(f"  {key} x"), key
    for word in [*SOURCES, "kv_stride", "dim_out", "gmacs"]:
        assert option.regex.fullmatch(word), word
    line = "  reference  timm swin_tiny_patch4_window7_224"
    tokens = tokenise(line)
    assert tokens[2] == ("reference", "keyword.other.setting.mvitdsl")
    assert tokens[line.index("timm")] == ("timm", "support.constant.option.mvitdsl")
