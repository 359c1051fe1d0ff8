"""The language server's pure functions, without a server: positions in UTF-16, the cursor's
context, diagnostics placed in the document (a parent's too), hover, completion, formatting,
definition, symbols; and a property test: no text and no position makes them raise."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lsprotocol import types as lsp

from mvitdsl.diagnostics import CODES, Span
from mvitdsl.language.parse import MAX_SOURCE_BYTES
from mvitdsl.lsp.complete import complete
from mvitdsl.lsp.context import context_at
from mvitdsl.lsp.diagnose import format_edits, lsp_diagnostics
from mvitdsl.lsp.document import check_document, path_to_uri
from mvitdsl.lsp.hover import hover
from mvitdsl.lsp.navigate import definition, inlay_hints, symbols
from mvitdsl.lsp.positions import to_offset, to_range, utf16_len

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
S_TEXT = (SPECS / "mvitv2_s.mv").read_text()


def _pos(line: int, character: int) -> lsp.Position:
    return lsp.Position(line=line, character=character)


def _hover_text(text: str, line: int, character: int, path: Path | None = None) -> str:
    found = hover(check_document(text, path), _pos(line, character))
    assert found is not None and isinstance(found.contents, lsp.MarkupContent)
    return found.contents.value


def test_columns_are_counted_in_utf16_units() -> None:
    lines = ["# 🙂 é", "x"]
    assert utf16_len("🙂") == 2 and utf16_len("é") == 1
    span = Span("<spec>", 1, 5, 1, 6)  # `é`, the 5th character
    assert to_range(lines, span).start.character == 5  # the smiley takes two units
    assert to_offset(lines, _pos(0, 5)) == (0, 4)
    assert to_offset(lines, _pos(99, 99)) == (1, 1)  # past the end: clamped


def test_context_tells_settings_options_and_table_rows_apart() -> None:
    lines = S_TEXT.split("\n")
    assert context_at(lines, 6, 2).where == "model"  # before `attention`
    assert context_at(lines, 6, 20) == context_at(lines, 7, 20)  # its continuation line
    assert context_at(lines, 7, 20).key == "attention"
    row = context_at(lines, 12, 4)
    assert (row.where, row.key, row.first) == ("table", "stages", True)
    assert context_at(lines, 15, 2).where == "model"  # after the table
    assert context_at(["model x extends mv"], 0, 18).where == "extends"


def test_a_parent_error_is_shown_on_extends_with_the_parent_line_related(tmp_path: Path) -> None:
    parent = S_TEXT.replace("scale3       2  192      2", "scale3       2  193      2")
    (tmp_path / "mvitv2_s.mv").write_text(parent)
    child = 'model c extends "mvitv2_s.mv" mvitv2_s {\n  head  classes 10\n}\n'
    doc = check_document(child, tmp_path / "c.mv")
    [d] = [d for d in lsp_diagnostics(doc) if d.code == "E300"]
    assert d.range.start.line == 0 and d.message.startswith("in mvitv2_s.mv:12:")
    [related] = d.related_information or []
    assert related.location.uri == path_to_uri(tmp_path / "mvitv2_s.mv")
    assert related.location.range.start.line == 11


def test_a_spec_that_does_not_parse_gets_its_diagnostics() -> None:
    doc = check_document("model x {\n  input video 3x\n")
    assert doc.spec is None and doc.diagnostics
    assert [d.code for d in lsp_diagnostics(doc)] == [d.code for d in doc.diagnostics]
    assert symbols(doc) == [] and inlay_hints(doc) == [] and format_edits(doc.text) == []


@pytest.mark.parametrize(
    ("text", "code"),
    [("# big\n" * (MAX_SOURCE_BYTES // 6 + 1), "E103"), ("model x {\ud800}\n", "E104")],
    ids=["past the size limit", "a lone surrogate"],
)
def test_huge_or_undecodable_text_gets_its_diagnostic(text: str, code: str) -> None:
    doc = check_document(text)
    assert [d.code for d in lsp_diagnostics(doc)] == [code]
    assert hover(doc, _pos(3, 3)) is None and symbols(doc) == []
    assert format_edits(text) == []
    assert isinstance(complete(doc, _pos(10**6, 0)), list)  # the words a line start takes


def test_hover_on_an_option_a_choice_a_cell_and_a_code() -> None:
    option = _hover_text(S_TEXT, 7, 16)  # `dim_change`
    assert option.startswith("**attention dim_change**")
    assert "one of: `mlp`, `attention`" in option and "default: mlp" in option
    assert _hover_text(S_TEXT, 6, 20).startswith("**attention pool**")  # `conv`: a choice
    cell = "model x extends y {\n  stages {\n    s1 1 8 1 1x1x1 kernel_q=3x3x3\n  }\n}\n"
    assert _hover_text(cell, 2, 21).startswith("**attention kernel_q**")
    assert _hover_text("# see E300\n", 0, 7).startswith(f"**E300**: {CODES['E300']}\n")


def test_hover_on_a_broken_line_names_the_code_of_its_diagnostic() -> None:
    text = S_TEXT.replace("scale4      11  384", "scale4      11  385")
    assert f"**E300**: {CODES['E300']}" in _hover_text(text, 12, 1)


def test_completion_offers_choices_before_options() -> None:
    doc = check_document(S_TEXT)
    labels = [i.label for i in complete(doc, _pos(6, 18))]  # after `attention  pool `
    assert labels[:3] == ["conv", "avg", "max"] and "mlp_ratio" in labels
    cells = [i.label for i in complete(doc, _pos(12, 34))]  # after scale4's columns
    assert "kernel_q=" in cells and "dim_out=" in cells
    assert [i.label for i in complete(check_document(""), _pos(0, 0))] == ["model"]
    expect = [i.label for i in complete(doc, _pos(17, 13))]  # in the `expect` line
    assert expect == ["params", "gmacs", "gmacs_fvcore", "output"]


def test_definition_outside_extends_and_rows_is_none() -> None:
    doc = check_document(S_TEXT, SPECS / "mvitv2_s.mv")
    assert definition(doc, _pos(12, 5)) is None  # no parent
    child = check_document((SPECS / "mvitv2_s_image.mv").read_text(), SPECS / "mvitv2_s_image.mv")
    assert definition(child, _pos(7, 5)) is None  # `expect` is no row


SPEC_WORDS = st.sampled_from(
    ["model", "x", "extends", '"mvitv2_s.mv"', "{", "}", "\n", " ", "stages", "input", "video",
     "3x16x224x224", "attention", "pool", "=", ",", "#", "->", "E300", "🙂", "\r", "\t", "1"]
)  # fmt: skip
TEXTS = st.one_of(
    st.text(max_size=300),
    st.lists(SPEC_WORDS, max_size=60).map("".join),
    st.tuples(st.integers(0, len(S_TEXT)), st.text(max_size=8)).map(
        lambda cut: S_TEXT[: cut[0]] + cut[1] + S_TEXT[cut[0] :]
    ),
)


@given(text=TEXTS, line=st.integers(-2, 40), character=st.integers(-2, 200))
def test_no_text_and_no_position_makes_the_features_raise(
    text: str, line: int, character: int
) -> None:
    doc = check_document(text, SPECS / "typed.mv")
    position = lsp.Position(line=max(line, 0), character=max(character, 0))
    lsp_diagnostics(doc)
    hover(doc, position)
    complete(doc, position)
    definition(doc, position)
    symbols(doc)
    inlay_hints(doc)
    format_edits(text)
