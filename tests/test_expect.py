# ruff: noqa: E501
"""`expect`: figures a spec states about itself, checked after analysis (E308), to the digits
written, never inherited through `extends`, and stated by every shipped spec."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT, SPECS
from hypothesis import given
from spec_gen import spec_texts

import mvitdsl
from mvitdsl.cli import main
from mvitdsl.language.expect import tolerance

MVIT_B = (SPECS / "mvit_b.mv").read_text()
STATED = "  expect     params 36610672, gmacs 70.599, gmacs_fvcore 70.804, output 768x8x7x7\n"


def with_expect(line: str) -> str:
    assert STATED in MVIT_B
    return MVIT_B.replace(STATED, f"  expect {line}\n" if line else "")


def codes(text: str, **kw: object) -> list[tuple[str, str]]:
    try:
        mvitdsl.load_spec(text=text, **kw)  # type: ignore[arg-type]
    except mvitdsl.SpecError as e:
        return [(d.code, d.message) for d in e.diagnostics]
    return []


@pytest.mark.parametrize(
    "path", sorted([*SPECS.glob("*.mv"), ROOT / "examples" / "tiny.mv"]), ids=lambda p: p.name
)
def test_every_shipped_spec_states_its_figures(path: Path):
    spec = mvitdsl.load_spec(path)
    stated = {e.what for e in spec.expectations}
    assert {"params", "output"} <= stated, stated
    if path.parent == SPECS:
        assert stated & {"gmacs", "gmacs_fvcore"}


def test_tolerance_is_the_written_digits():
    assert tolerance("70.599") == pytest.approx(0.0005)
    assert tolerance("36610672") == 0.5
    assert tolerance("36.6e6") == pytest.approx(0.05e6)
    assert tolerance("4e9") == pytest.approx(5e8)


@pytest.mark.parametrize(
    "line",
    [
        "gmacs 70.6",
        "gmacs 70.60",
        "gmacs 71",
        "gmacs 70.5994",
        "params 36.6e6",
        "gmacs_fvcore 70.8",
        "output 768x8x7x7",
    ],
)
def test_figures_that_hold_to_their_digits(line: str):
    assert codes(with_expect(line)) == []


@pytest.mark.parametrize(
    "line, message",
    [
        (
            "gmacs 70.59",
            "expected gmacs 70.59, computed 70.59941 (the digits written allow ±0.005)",
        ),
        (
            "gmacs 70.5990",
            "expected gmacs 70.5990, computed 70.599408 (the digits written allow ±5e-05)",
        ),
        ("params 36610671", "expected params 36610671, computed 36610672"),
        (
            "params 36.7e6",
            "expected params 36.7e6, computed 36610672 (the digits written allow ±50000)",
        ),
        ("output 768x8x14x14", "expected output 768x8x14x14, computed 768x8x7x7"),
    ],
)
def test_a_figure_that_differs_is_a_located_e308(line: str, message: str, tmp_path: Path):
    path = tmp_path / "m.mv"
    path.write_text(with_expect(line))
    with pytest.raises(mvitdsl.SpecError) as info:
        mvitdsl.load_spec(path)
    [d] = info.value.diagnostics
    assert (d.code, d.message) == ("E308", message)
    assert d.span is not None and d.span.file == str(path)
    source_line = path.read_text().splitlines()[d.span.line - 1]
    value = line.split()[1]
    assert source_line[d.span.column - 1 : d.span.end_column - 1] == value
    assert d.hint is not None and d.hint.startswith("if the change is intended, write 'expect ")


@pytest.mark.parametrize(
    "line, code, words",
    [
        ("parms 36610672", "E203", "unknown figure 'parms' in 'expect'"),
        ("params", "E204", "'expect params' takes one number"),
        ("output 768", "E204", "'expect output' takes one size"),
        ("params 1, params 2", "E201", "'params' expected twice"),
    ],
)
def test_malformed_expectations(line: str, code: str, words: str):
    [(got, message)] = codes(with_expect(line))
    assert (got, message) == (code, words)


def test_unknown_figure_suggests_the_word():
    with pytest.raises(mvitdsl.SpecError) as info:
        mvitdsl.load_spec(text=with_expect("parms 36610672"))
    assert info.value.diagnostics[0].hint == "did you mean 'params'?"


def test_expect_is_not_inherited(tmp_path: Path):
    (tmp_path / "mvit_b.mv").write_text(MVIT_B)
    child = 'model c extends "mvit_b.mv" mvit_b {\n  input video 3x32x224x224\n}\n'
    (tmp_path / "c.mv").write_text(child)
    assert mvitdsl.load_spec(tmp_path / "c.mv").expectations == ()  # the parent's 70.599 not
    own = child.replace("}\n", "  expect gmacs 70.599\n}\n")
    (tmp_path / "c.mv").write_text(own)
    with pytest.raises(mvitdsl.SpecError) as info:
        mvitdsl.load_spec(tmp_path / "c.mv")
    assert info.value.diagnostics[0].message.startswith("expected gmacs 70.599, computed 169.958")


def test_another_input_size_skips_the_stated_figures():
    spec = mvitdsl.load_spec(SPECS / "mvit_b.mv", input_size=(3, 32, 224, 224))
    assert spec.expectations == ()
    assert mvitdsl.resize(mvitdsl.load_spec(SPECS / "mvit_b.mv"), (3, 8, 224, 224)).model


def test_cli_check_fails_on_a_wrong_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "m.mv"
    path.write_text(with_expect("params 1"))
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:" in err and "error[E308]: expected params 1, computed 36610672" in err


@given(spec_texts())
def test_property_stated_analysed_figures_hold_and_one_more_parameter_fails(text: str):
    try:
        report = mvitdsl.analyze(mvitdsl.load_spec(text=text))
    except mvitdsl.SpecError:
        return
    last = report.stages[-1]
    grid = last.grid if report.model.input.kind == "video" else last.grid[1:]
    output = "x".join(map(str, (last.dim, *grid)))
    figures = (
        f"params {report.params}, gmacs {report.macs / 1e9:.6f}, "
        f"gmacs_fvcore {report.macs_fvcore / 1e9:.6f}, output {output}"
    )
    stated = text.replace("\n}\n", f"\n  expect {figures}\n}}\n")
    assert [e.what for e in mvitdsl.load_spec(text=stated).expectations] == [
        "params",
        "gmacs",
        "gmacs_fvcore",
        "output",
    ]
    wrong = stated.replace(f"params {report.params}", f"params {report.params + 1}")
    assert codes(wrong) == [
        ("E308", f"expected params {report.params + 1}, computed {report.params}")
    ]
