# ruff: noqa: E501
"""`mvitdsl fmt`: the canonical layout is idempotent, keeps every comment, does not depend on
the spaces the author used, and lowers to the same IR (shipped and generated specs)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from hypothesis import given
from hypothesis import strategies as st
from spec_gen import mutated_specs, spec_texts

import mvitdsl
from mvitdsl.cli import main
from mvitdsl.language.fmt import format_text

SHIPPED = sorted([*(ROOT / "specs").glob("*.mv"), *(ROOT / "examples").glob("*.mv")])

UGLY = """\


# top comment
model   ugly {   # model comment
    input image   3×32×32   # in
  patch conv 4x4 stride 4x4 -> 8
  # about tokens

  tokens cls,position none
  attention pool   conv  3x3,   # first part
       # between
     pool_q_blocks all, stride_kv adaptive 2x2, mlp_ratio 4, dim_change attention, rel_pos decomposed, residual_pool tokens, qkv_bias on
  stages {   # the table
  # blocks dim heads stride_q
    s1 1 8 2 1x1   # first
    # mid comment
    s2  1 16 4 2×2 off
  }


  head norm, cls, classes 3
}
# trailing
"""

UGLY_FORMATTED = """\
# top comment
model ugly {  # model comment
  input      image 3x32x32  # in
  patch      conv 4x4 stride 4x4 -> 8
  # about tokens

  tokens     cls, position none
  attention  pool conv 3x3,  # first part
             # between
             pool_q_blocks all, stride_kv adaptive 2x2, mlp_ratio 4, dim_change attention,
             rel_pos decomposed, residual_pool tokens, qkv_bias on
  stages {  # the table
    #   blocks  dim  heads  stride_q
    s1       1    8      2  1x1  # first
    # mid comment
    s2       1   16      4  2x2       off
  }

  head       norm, cls, classes 3
}
# trailing
"""


WHERE_KEYS = ("loc", "source_file", "where", "columns")  # where things were written


def meaning(model: mvitdsl.ir.Model) -> Any:
    """The IR without where things were written (locations and the file name)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in WHERE_KEYS}
        if isinstance(value, list | tuple):
            return [strip(v) for v in value]
        return value

    return strip(model.model_dump())


def outcome(text: str) -> Any:
    """The IR's meaning, or the diagnostics' codes and messages when the spec is refused."""
    try:
        return meaning(mvitdsl.load_spec(text=text).model)
    except mvitdsl.SpecError as e:
        return [(d.code, d.message) for d in e.diagnostics]


def test_layout_of_a_messy_spec_keeps_every_comment():
    assert format_text(UGLY) == UGLY_FORMATTED
    assert format_text(UGLY_FORMATTED) == UGLY_FORMATTED
    assert outcome(UGLY) == outcome(UGLY_FORMATTED)


def test_key_value_cells_and_strings_are_cells_as_written():
    from mvitdsl.language.fmt import canonical_word, cells

    assert cells("scale3 2 192  2 1×2×2 kernel_q = 3×3×3 mlp_ratio= 2") == [
        "scale3",
        "2",
        "192",
        "2",
        "1x2x2",
        "kernel_q=3x3x3",
        "mlp_ratio=2",
    ]
    assert canonical_word('"a×b2×3.mv"') == '"a×b2×3.mv"'


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_specs_are_formatted(path: Path):
    text = path.read_text()
    assert format_text(text, str(path)) == text, f"run `mvitdsl fmt {path}`"


def test_shipped_specs_format_idempotently_to_the_same_ir(tmp_path: Path):
    """Every spec re-laid out by hand (different spaces), formatted, equals the original IR."""
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    for path in sorted((tmp_path / "specs").glob("*.mv")):
        path.write_text("\n".join(_messy(line) for line in path.read_text().split("\n")))
    assert main(["fmt", str(tmp_path / "specs")]) == 0
    for path in sorted((tmp_path / "specs").glob("*.mv")):
        original = ROOT / "specs" / path.name
        assert path.read_text() == original.read_text(), path.name
        assert meaning(mvitdsl.load_spec(path).model) == meaning(mvitdsl.load_spec(original).model)


def _messy(line: str) -> str:
    """A line of code with three spaces for each and '×' in its sizes; comments as they are."""
    if line.lstrip().startswith(("#", "model")):
        return line
    return re.sub(r"(?<=[0-9])x(?=[0-9])", "×", "   ".join(line.split(" ")))


def _respace(draw: Any, text: str) -> str:
    """The same spec with other spaces between words and '×' for some 'x' in sizes."""
    out = []
    for line in text.split("\n"):
        if line.startswith("#"):
            out.append(line)
            continue
        words = line.split(" ")
        gaps = [" " * draw(st.integers(1, 3)) for _ in words]
        indent = " " * draw(st.integers(0, 4))
        out.append(indent + "".join(w + g for w, g in zip(words, gaps)).strip())
    return "\n".join(out)


@given(spec_texts(), st.data())
def test_property_fmt_is_idempotent_layout_free_and_keeps_the_ir(text: str, data: Any):
    formatted = format_text(text)
    assert format_text(formatted) == formatted
    respaced = _respace(data.draw, text)
    if data.draw(st.booleans()):
        respaced = respaced.replace("1x", "1×")
    assert format_text(respaced) == formatted
    assert outcome(formatted) == outcome(text)


def _decorate(draw: Any, text: str) -> str:
    """The spec with numbered comments on lines of their own and at line ends, and settings
    broken after a comma onto continuation lines."""
    out, n = [], 0
    for line in text.split("\n"):
        if line and draw(st.integers(0, 3)) == 0:
            n += 1
            out.append(f"{' ' * draw(st.integers(0, 6))}# note {n}")
        if line.startswith("  ") and line[2].isalpha() and ", " in line and draw(st.booleans()):
            head, _, tail = line.partition(", ")
            line = f"{head},\n      {tail}"
        if line and not line.startswith("#") and draw(st.booleans()):
            n += 1
            line += f"   # end {n}"
        out.append(line)
    return "\n".join(out)


def _notes(text: str) -> list[str]:
    return [" ".join(m.split()) for m in re.findall(r"# (?:note|end) [0-9]+", text)]


@given(spec_texts(), st.data())
def test_property_fmt_keeps_every_comment_in_order_and_the_ir(text: str, data: Any):
    decorated = _decorate(data.draw, text)
    formatted = format_text(decorated)
    assert format_text(formatted) == formatted
    assert _notes(formatted) == _notes(decorated)
    for line in formatted.split("\n"):  # an end-of-line comment stays after code
        if "# end" in line:
            assert not line.lstrip().startswith("#"), line
    assert outcome(formatted) == outcome(text)


@given(mutated_specs([p.read_text() for p in SHIPPED]))
def test_property_fmt_of_any_text_that_parses_is_idempotent(text: str):
    """Mutated shipped specs: rows on the '{' line, stray comments, odd sizes. fmt refuses what
    does not parse (SpecError) and lays out the rest idempotently (format_text itself asserts
    that the parse tree is unchanged)."""
    try:
        formatted = format_text(text)
    except mvitdsl.SpecError:
        return
    assert format_text(formatted) == formatted


def test_cli_check_diff_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    good = tmp_path / "good.mv"
    good.write_text(UGLY_FORMATTED)
    bad = tmp_path / "sub" / "bad.mv"
    bad.parent.mkdir()
    bad.write_text(UGLY)
    assert main(["fmt", "--check", str(good)]) == 0
    assert main(["fmt", "--check", str(tmp_path)]) == 1
    assert f"would reformat {bad}" in capsys.readouterr().err
    assert main(["fmt", "--diff", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"+++ {bad} (formatted)" in out and "+  input      image 3x32x32  # in" in out
    assert bad.read_text() == UGLY  # --check and --diff write nothing
    assert main(["fmt", str(tmp_path)]) == 0
    assert bad.read_text() == UGLY_FORMATTED
    assert main(["fmt", "--check", str(tmp_path)]) == 0


def test_cli_reports_a_spec_that_does_not_parse(tmp_path: Path, capsys: pytest.CaptureFixture):
    broken = tmp_path / "broken.mv"
    broken.write_text("model x {\n  input image 3x32x32 $\n}\n")
    assert main(["fmt", "--check", str(broken)]) == 1
    err = capsys.readouterr().err
    assert "error[E100]" in err and f"cannot format {broken}" in err
    binary = tmp_path / "binary.mv"
    binary.write_bytes(b"model \xff {\n}\n")
    assert main(["fmt", str(binary), str(tmp_path / "missing.mv")]) == 1
    err = capsys.readouterr().err
    assert f"cannot read {binary}" in err and "missing.mv" in err


def test_the_example_in_docs_tools_is_what_fmt_does():
    doc = (ROOT / "docs" / "TOOLS.md").read_text()
    before, after = re.findall(r"```\n(model tiny \{.*?\n\})\n```", doc, re.S)
    assert format_text(before + "\n") == after + "\n"


def test_a_quoted_string_with_spaces_stays_one_cell():
    # regression: `where "a >= b"` in a sweep table was split at its spaces and realigned
    text = 'model m {\n  sweep {\n    where  "scale4.blocks >= 2*scale3.blocks"\n  }\n}\n'
    out = format_text(text)
    assert '"scale4.blocks >= 2*scale3.blocks"' in out
    assert format_text(out) == out


def test_extends_a_shipped_name_with_extra_spaces_keeps_no_file() -> None:
    """Found by the idempotence property: `extends  mvit_b` (two spaces) read an empty file
    name, which fmt wrote back as `extends "" mvit_b`."""
    text = "model child extends  mvit_b {\n  input      video 3x32x224x224\n}\n"
    assert format_text(text).splitlines()[0] == "model child extends mvit_b {"
