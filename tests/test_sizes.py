"""Issue 21, run-time sizes: one built module runs at every input size its spec's rule allows,
equal to the module built at that size from the same weights (positions resized by the same
functions at load time and at run time); the rule is stated and enforced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from spec_gen import spec_texts

import mvitdsl
from mvitdsl.analysis.sizes import accepts, size_rule
from mvitdsl.catalog import names

SPECS = Path(__file__).resolve().parent.parent / "specs"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name", names())
def test_every_shipped_spec_accepts_its_least_sizes_and_its_own(name: str) -> None:
    model = mvitdsl.load_spec(name=name).model
    rule = size_rule(model)
    assert rule.legal(model.input.size), rule.text
    for k in (1, 2):
        size = tuple(low + (k - 1) * m for low, m in zip(rule.least, rule.multiple))
        assert accepts(model, (size[0], size[1], size[2])), (name, size)


def test_the_rule_text_of_images_and_video() -> None:
    assert (
        mvitdsl.size_rule("specs/hiera_t_image.mv").text == "H and W: multiples of 32, at least 32"
    )
    assert (
        mvitdsl.size_rule("specs/mvit_b.mv").text
        == "T: multiples of 2, at least 2; H and W: multiples of 32, at least 32"
    )


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3000), st.integers(1, 3000))
def test_nearest_sizes_are_legal_and_bracket_the_size(h: int, w: int) -> None:
    rule = mvitdsl.size_rule("specs/hiera_t_image.mv")
    near = rule.nearest((1, h, w))
    assert 1 <= len(near) <= 2 and all(rule.legal(g) for g in near)
    assert rule.legal((1, h, w)) == (near == [(1, h, w)])


def same_weights_at(spec: Any, gm: Any, size: tuple[int, ...]) -> Any:
    """The module built at `size` from gm's weights (resized at load time)."""
    return mvitdsl.build(spec, input=size, weights=gm.state_dict()).eval()


def assert_runs_as_built_at(spec: Any, gm: Any, size: tuple[int, ...]) -> None:
    x = torch.randn(1, *size, generator=torch.Generator().manual_seed(sum(size)))
    with torch.no_grad():
        got, want = gm(x), same_weights_at(spec, gm, size)(x)
    assert got.shape == want.shape
    assert torch.equal(got, want), (size, (got - want).abs().max().item())


def built(name: str) -> tuple[Any, Any]:
    spec = mvitdsl.load_spec(name=name)
    torch.manual_seed(0)
    return spec, mvitdsl.build(spec).eval()


@pytest.mark.parametrize("name", ["mvit_b", "mvitv2_s"])
def test_video_at_other_lengths_equals_the_module_built_there(name: str) -> None:
    spec, gm = built(name)
    for size in ((3, 8, 64, 64), (3, 16, 64, 64), (3, 32, 64, 64)):
        assert_runs_as_built_at(spec, gm, size)


def test_separable_positions_at_a_non_square_size() -> None:
    spec, gm = built("mvit_b")
    assert_runs_as_built_at(spec, gm, (3, 4, 64, 96))


def test_hiera_at_two_sizes() -> None:
    spec, gm = built("hiera_t_image")
    for size in ((3, 64, 64), (3, 96, 128)):
        assert_runs_as_built_at(spec, gm, size)


@pytest.mark.full
@pytest.mark.parametrize("name", ["mvit_b", "mvitv2_s"])
def test_video_at_full_sizes(name: str) -> None:
    """The full-size twin of test_video_at_other_lengths_equals_the_module_built_there."""
    spec, gm = built(name)
    for size in ((3, 8, 224, 224), (3, 32, 224, 224), (3, 16, 256, 256)):
        assert_runs_as_built_at(spec, gm, size)


def test_features_follow_the_run_time_grid() -> None:
    spec = mvitdsl.load_spec(name="hiera_t_image")
    gm = mvitdsl.build(spec, features=["scale2", "scale5"]).eval()
    with torch.no_grad():
        maps = gm(torch.randn(1, 3, 96, 128))
    assert maps["scale2"].shape[-2:] == (24, 32) and maps["scale5"].shape[-2:] == (3, 4)


def test_an_illegal_size_raises_one_line_naming_it_and_the_rule() -> None:
    spec, gm = built("hiera_t_image")
    with pytest.raises(ValueError) as info:
        gm(torch.randn(1, 3, 100, 64))
    assert str(info.value) == (
        "input of shape 1x3x100x64 does not follow the size rule: "
        "H and W: multiples of 32, at least 32"
    )


def test_check_input_names_the_nearest_legal_sizes(capsys: Any) -> None:
    from mvitdsl.cli import main

    assert main(["check", "specs/hiera_t_image.mv", "--input", "3x1000x1000"]) == 1
    err = capsys.readouterr().err
    assert "nearest legal: 3x992x992, 3x1024x1024" in err and "multiples of 32" in err
    assert main(["check", "specs/hiera_t_image.mv"]) == 0
    out = capsys.readouterr().out
    assert "size rule: H and W: multiples of 32, at least 32" in out


@settings(max_examples=40, deadline=None)
@given(spec_texts())
def test_the_rule_of_any_accepted_spec_holds_its_own_size_and_its_least(text: str) -> None:
    """For generated specs the checker accepts: the rule includes the spec's own size, and its
    multiples and least sizes are positive (the shipped specs' least sizes are checked above)."""
    try:
        spec = mvitdsl.load_spec(text=text)
    except mvitdsl.SpecError:
        return
    rule = size_rule(spec.model)
    assert rule.legal(spec.model.input.size), (rule, spec.model.input.size)
    assert all(n >= 1 for n in rule.least) and all(m >= 1 for m in rule.multiple)
