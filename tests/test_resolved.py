"""`check --resolved`: the merged spec, where each value comes from, and it parses back."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import SPECS, rel

import mvitdsl
from mvitdsl.cli import main
from mvitdsl.language.resolved import render_resolved

ALL_SPECS = sorted(p.name for p in SPECS.glob("*.mv"))


def _strip(value: Any) -> Any:
    """An IR dump without source locations, which differ between a file and its rendering."""
    if isinstance(value, dict):
        skip = ("loc", "source_file", "columns", "where")
        return {k: _strip(v) for k, v in value.items() if k not in skip}
    if isinstance(value, (list, tuple)):
        return [_strip(v) for v in value]
    return value


@pytest.mark.parametrize("name", ALL_SPECS)
def test_resolved_text_parses_back_to_the_same_model(name):
    spec = mvitdsl.load_spec(SPECS / name)
    again = mvitdsl.load_spec(text=render_resolved(spec))
    assert _strip(again.model.model_dump()) == _strip(spec.model.model_dump())


def test_each_value_names_the_file_and_line_that_set_it():
    text = rel(render_resolved(mvitdsl.load_spec(SPECS / "mvit_b_32x3.mv")))
    lines = {
        line.split("#")[0].strip().rstrip(","): line.rsplit("# ", 1)[1]
        for line in text.splitlines()
        if "# " in line and not line.startswith("#")
    }
    child = (SPECS / "mvit_b_32x3.mv").read_text().splitlines()
    parent = (SPECS / "mvit_b.mv").read_text().splitlines()
    where_input = lines["input      video 3x32x224x224"]
    assert where_input.startswith("specs/mvit_b_32x3.mv:")
    assert "3x32x224x224" in child[int(where_input.split(":")[1]) - 1]
    where_row = next(v for k, v in lines.items() if k.startswith("scale4"))
    assert where_row.startswith("specs/mvit_b.mv:")
    assert parent[int(where_row.split(":")[1]) - 1].split() == ["scale4", "11", "384", "4", "1x2x2"]
    assert lines["rel_pos none"] == "default" and lines["qkv_bias on"] == "default"


def test_an_overridden_row_points_at_the_child():
    text = rel(render_resolved(mvitdsl.load_spec(SPECS / "mvitv2_s_image.mv")))
    rows = [line for line in text.splitlines() if line.lstrip().startswith("scale")]
    assert [r.rsplit("# ", 1)[1].split(":")[0] for r in rows] == [
        "specs/mvitv2_t_image.mv",
        "specs/mvitv2_t_image.mv",
        "specs/mvitv2_s_image.mv",
        "specs/mvitv2_t_image.mv",
    ]
    assert rows[2].split()[:5] == ["scale4", "11", "384", "4", "2x2"]


def test_exclusive_flags_are_replaced_not_stacked():
    text = render_resolved(mvitdsl.load_spec(SPECS / "mvitv2_h_image.mv"))
    tokens = text.split("  tokens", 1)[1].split("  attention", 1)[0]
    assert "no_cls" not in tokens and "cls" in tokens


def test_cli_prints_the_resolved_spec(capsys):
    assert main(["check", "--resolved", str(SPECS / "mvitv2_b_32x3.mv")]) == 0
    out = rel(capsys.readouterr().out)
    assert out.startswith(
        "# mvitv2_b_32x3: inheritance resolved (specs/mvitv2_b_32x3.mv <- specs/mvitv2_s.mv)."
    )
    assert "rel_pos decomposed," in out and "# specs/mvitv2_s.mv:" in out
