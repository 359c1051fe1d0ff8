"""The stage row's `global` cell: the blocks of a stage that attend globally whatever its scope
(SAM2's global_att_blocks), without splitting the row; its diagnostics, its sweep PATH, `fmt`."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mvitdsl
from mvitdsl import load_spec
from mvitdsl.ir import Block
from mvitdsl.language.fmt import format_text
from mvitdsl.ops import window

SPEC = """
model windows {
  input      image 3x64x64
  patch      conv 4x4 stride 4x4 -> 16
  tokens     no_cls
  attention  pool max, kernel_q 2x2, pool_pad zero, pool_kv off, skip_pool like_q,
             dim_change attention, scope window, window 4x4
  stages {
    s1  1  16  1  1x1
    s2  5  32  2  2x2  CELL
  }
  head       norm, mean, classes 10
}
"""


def _spec(cell: str) -> str:
    return SPEC.replace("CELL", cell)


def _scopes(blocks: tuple[Block, ...]) -> list[str]:
    return ["window" if window.of(b) is not None else "global" for b in blocks]


def _diagnostic(cell: str) -> tuple[str, int, int, str]:
    with pytest.raises(mvitdsl.SpecError) as info:
        load_spec(text=_spec(cell))
    d = info.value.diagnostics[0]  # the first: a parse error may cascade
    assert d.span is not None
    return d.code, d.span.line, d.span.column, d.message


def test_listed_blocks_attend_globally_the_others_keep_the_scope() -> None:
    blocks = load_spec(text=_spec("global=1,3")).model.blocks
    assert _scopes(blocks) == ["window", "window", "global", "window", "global", "window"]
    one = load_spec(text=_spec("global=4")).model.blocks
    assert _scopes(one)[1:] == ["window"] * 4 + ["global"]


def test_a_listed_first_block_drops_the_lag_too() -> None:
    """Block 0 of a stage keeps the previous stage's scope, unless the list names it."""
    blocks = load_spec(text=_spec("global=0")).model.blocks
    assert _scopes(blocks)[1:] == ["global"] + ["window"] * 4


def test_the_list_equals_split_rows() -> None:
    """`global=2` is the row split around a global block with `scope_lag=off` (the way before)."""
    split = (
        "    s2  2  32  2  2x2\n"
        "    s2g 1  32  2  1x1  scope=global scope_lag=off\n"
        "    s2w 2  32  2  1x1  scope_lag=off\n"
    )
    listed = load_spec(text=_spec("global=2")).model
    rows = load_spec(text=_spec("").replace("    s2  5  32  2  2x2  \n", split)).model
    assert [b.ops for b in listed.blocks] == [b.ops for b in rows.blocks]


@pytest.mark.parametrize(
    ("cell", "code", "column", "words"),
    [
        ("global=5", "E205", 24, "global block 5 of stage 's2' is out of its range"),
        ("global=1,3,1", "E201", 31, "global block 1 is listed twice"),
        ("global=on", "E204", 31, "must be block indexes, not 'on'"),
        ("global=2x2", "E204", 31, "must be block indexes, not '2x2'"),
        ("global=1, 2", "E101", 32, "unexpected ','"),
        ("global=", "E101", 31, "expected a value"),
    ],
)
def test_bad_lists_are_located(cell: str, code: str, column: int, words: str) -> None:
    got = _diagnostic(cell)
    assert got[:3] == (code, 10, column) and words in got[3], got


def test_the_sweep_path_names_the_cell() -> None:
    rows = list(mvitdsl.sweep(load_spec(text=_spec("")), vary={"s2.global": "0..5"}))
    assert [r["ok"] for r in rows] == [True] * 5 + [False]
    assert "out of its range" in rows[-1]["diagnostics"][0]["message"]
    macs = [r["gmacs"] for r in rows[:5]]
    assert macs[0] != macs[1] and len(set(macs[1:])) == 1  # block 0 pools Q: its own cost


def test_fmt_keeps_the_list() -> None:
    text = _spec("global=1,3")
    assert "global=1,3" in format_text(text)
    assert format_text(format_text(text)) == format_text(text)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 7), max_size=6))
def test_any_list_lowers_or_is_located(indexes: list[int]) -> None:
    """Every list: the listed blocks attend globally, or one located diagnostic (never a crash)."""
    cell = "global=" + ",".join(str(i) for i in indexes) if indexes else ""
    try:
        blocks = load_spec(text=_spec(cell)).model.blocks
    except mvitdsl.SpecError as e:
        assert not indexes or max(indexes) >= 5 or len(set(indexes)) < len(indexes)
        assert all(d.span is not None and d.span.line == 10 for d in e.diagnostics)
        return
    assert len(set(indexes)) == len(indexes) and all(i < 5 for i in indexes)
    listed = {1 + i for i in indexes}
    assert all((_scopes(blocks)[i] == "global") == (i in listed) for i in range(1, 6))


def test_docs_name_the_cell() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "LANGUAGE.md").read_text()
    assert "`global`" in doc and "global=2,4,6" in doc
