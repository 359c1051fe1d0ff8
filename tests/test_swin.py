"""Swin in the language (ops/swin.py, ops/merge.py): parameter counts of the shipped specs equal
timm's on the meta device, swin_t's logits and every gradient equal timm's with perturbed
weights at 224, the settings' located diagnostics, and drawing and sweeping a Swin spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("torch")
import torch  # noqa: E402

timm = pytest.importorskip("timm")

from test_grad_parity import assert_grads_match, grads, perturbed  # noqa: E402
from torch import nn  # noqa: E402

import mvitdsl  # noqa: E402
from mvitdsl import analyze, load_spec  # noqa: E402
from mvitdsl.backend.weights import convert_state_dict  # noqa: E402
from mvitdsl.diagnostics import SpecError  # noqa: E402

SPECS = Path(__file__).resolve().parent.parent / "specs"
TIMM = {
    "swin_t": "swin_tiny_patch4_window7_224",
    "swin_s": "swin_small_patch4_window7_224",
    "swin_b": "swin_base_patch4_window7_224",
}


def timm_params(name: str) -> int:
    with torch.device("meta"):
        ref = timm.create_model(name)
    return sum(p.numel() for p in ref.parameters())


@pytest.mark.parametrize("spec_name", sorted(TIMM))
def test_params_equal_timm_on_meta(spec_name: str) -> None:
    """The analysis's count, the built module's and timm's are one number."""
    spec = load_spec(SPECS / f"{spec_name}.mv")
    with torch.device("meta"):
        gm = mvitdsl.build(spec)
    ours = sum(p.numel() for p in gm.parameters())
    assert analyze(spec).params == ours == timm_params(TIMM[spec_name])


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def swin_t_pair() -> tuple[nn.Module, nn.Module, torch.Tensor]:
    """Ours and timm's Swin-T with the same perturbed weights (timm's state_dict converted
    with source='timm'), and a 224 input."""
    spec = load_spec(SPECS / "swin_t.mv")
    ref = perturbed(timm.create_model(TIMM["swin_t"]))
    gm = mvitdsl.build(spec).eval()
    gm.load_state_dict(convert_state_dict(ref.state_dict(), "timm", spec=spec), strict=True)
    return gm, ref, torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))


def test_swin_t_logits_equal_timm() -> None:
    """Logits <= 1e-4 relative at 224 (the gradients: the full test, and the small twin below)."""
    gm, ref, x = swin_t_pair()
    with torch.no_grad():
        assert relative(gm(x), ref(x)) <= 1e-4


@pytest.mark.full
def test_swin_t_gradients_equal_timm() -> None:
    """Every parameter's gradient after one backward at 224 (smaller twin:
    test_a_small_swin_equals_timm_and_draws_and_sweeps)."""
    gm, ref, x = swin_t_pair()
    spec = load_spec(SPECS / "swin_t.mv")
    want = convert_state_dict(grads(ref, x), "timm", spec=spec)
    assert_grads_match(grads(gm, x), want)


SMALL = """model swin_small_test {
  input      image 3x64x64
  patch      conv 4x4 stride 4x4 -> 32, norm on
  tokens     no_cls, position none
  attention  pool_kv off, dim_change merge, scope window, window 4x4, shift alternate,
             rel_pos table
  stages {
    s1  2  32  2  1x1
    s2  2  64  4  2x2
  }
  head       norm, mean, classes 10
  norm       eps 1e-5
}
"""


def small_timm(window: int = 4) -> nn.Module:
    made: nn.Module = timm.models.swin_transformer.SwinTransformer(
        img_size=64, patch_size=4, window_size=window, embed_dim=32, depths=(2, 2),
        num_heads=(2, 4), num_classes=10,
    )  # fmt: skip
    return made


def test_a_small_swin_equals_timm_and_draws_and_sweeps(tmp_path: Path) -> None:
    """A two-stage Swin (shifted windows in both stages: the grids are larger than the window)
    equals timm's class, logits and gradients (the smaller twin of the 224 test); its block
    and stage drawings name the merging and the shift; a sweep over its depth and width
    measures every variant; `outputs` gives its feature maps."""
    path = tmp_path / "swin_small_test.mv"
    path.write_text(SMALL)
    spec = load_spec(path)
    ref = perturbed(small_timm())
    gm = mvitdsl.build(spec).eval()
    gm.load_state_dict(convert_state_dict(ref.state_dict(), "timm", spec=spec), strict=True)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert relative(gm(x), ref(x)) <= 1e-4
    assert_grads_match(grads(gm, x), convert_state_dict(grads(ref, x), "timm", spec=spec))
    from mvitdsl.draw import draw

    merging = draw(spec, "block", block=2).source
    assert "patch merging 2×2" in merging and "merge -> norm1" in merging
    assert "shifted windows" in draw(spec, "block", block=3).source
    assert "s2" in draw(spec, "stage").source
    rows = list(mvitdsl.sweep(spec, vary={"s2.blocks": "2,4", "s2.dim": "64,128"}))
    assert len(rows) == 4 and all(r["ok"] and r["params"] > 0 for r in rows)
    assert rows[0]["params"] == analyze(spec).params  # 2 blocks, width 64: the base itself
    features = load_spec(
        text=SMALL.replace("  norm       eps", "  outputs    s1, s2\n  norm       eps")
    )
    with torch.no_grad():
        maps = mvitdsl.build(features).eval()(x)
    assert {k: tuple(v.shape) for k, v in maps.items()} == {
        "s1": (2, 32, 16, 16),
        "s2": (2, 64, 8, 8),
    }


BAD = {
    "shift without windows": ("scope window, window 4x4, ", "", "E210", "need windows"),
    "window larger than the grid": ("window 4x4", "window 9x9", "E309", "larger than its 8x8"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_swin_settings_report_located_diagnostics(case: str, tmp_path: Path) -> None:
    old, new, code, words = BAD[case]
    path = tmp_path / "bad.mv"
    path.write_text(SMALL.replace(old, new))
    with pytest.raises(SpecError) as e:
        load_spec(path)
    found = [d for d in e.value.diagnostics if d.code == code]
    assert found and words in found[0].message and found[0].span is not None
    assert found[0].span.line in (4, 5)  # the attention line that asks for it


def test_the_window_rule_holds_at_the_written_input_whatever_size_is_built() -> None:
    """E309 is the spec's as written (its `input` line): a window larger than a grid there is
    refused even when built at a larger input; a valid spec builds at a size whose grids are
    smaller than its windows (padded, as its module runs there), and resizes there."""
    small = SMALL.replace("image 3x64x64", "image 3x16x16")  # stage 2's grid: 2x2 < 4x4
    for size in (None, (3, 128, 128)):
        with pytest.raises(SpecError) as e:
            load_spec(text=small, input_size=size)
        (d,) = e.value.diagnostics
        assert d.code == "E309" and "its 2x2 grid at the spec's input 3x16x16" in d.message
        assert d.span is not None and d.span.line == 5
    spec = load_spec(text=SMALL, input_size=(3, 16, 16))
    assert spec.model.input.size == (1, 16, 16) and spec.model.input.own == (1, 64, 64)
    assert mvitdsl.resize(load_spec(text=SMALL), (3, 16, 16)).model.input.written == (1, 64, 64)
    # back at the written size, the model is the written one
    assert mvitdsl.resize(spec, (3, 64, 64)).model == load_spec(text=SMALL).model


@st.composite
def swin_texts(draw: Any) -> str:
    """A small Swin spec, windows and grids drawn freely (many do not fit), a shift or a bias
    table sometimes without windows, and some widths the heads do not divide."""
    size, patch = draw(st.sampled_from([16, 24, 32, 48])), draw(st.sampled_from([2, 4]))
    window = draw(st.integers(1, 6))
    windowed = f"scope window, window {window}x{window}, "
    scope = draw(st.sampled_from([windowed, windowed, windowed, "", "scope global, "]))
    asks = draw(
        st.sampled_from(["shift alternate, rel_pos table", "rel_pos table", "shift alternate"])
    )
    rows = [
        f"    s{i}  {draw(st.integers(1, 3))}  {draw(st.sampled_from([8, 12, 16]))}"
        f"  {draw(st.sampled_from([1, 2, 4]))}  {'2x2' if i else '1x1'}"
        for i in range(draw(st.integers(1, 3)))
    ]
    return "\n".join([
        "model swin_property {",
        f"  input      image 3x{size}x{size}",
        f"  patch      conv {patch}x{patch} stride {patch}x{patch}, norm on",
        "  tokens     no_cls, position none",
        f"  attention  pool_kv off, dim_change merge, {scope}{asks}",
        "  stages {", *rows, "  }",
        "  head       norm, mean, classes 3",
        "  norm       eps 1e-5",
        "}", "",
    ])  # fmt: skip


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(swin_texts())
def test_random_swin_specs_check_or_report_and_build_what_they_count(text: str) -> None:
    """Every drawn Swin spec is accepted, and then the built module (meta device) has the
    analysed parameter count and runs at its input size; or it is refused with located
    diagnostics of the window, stride, width and option rules, never a crash."""
    try:
        spec = load_spec(text=text)
    except SpecError as e:
        assert {d.code for d in e.diagnostics} <= {"E210", "E300", "E302", "E303", "E309"}, text
        assert all(d.span is not None for d in e.diagnostics)
        return
    with torch.device("meta"):
        gm = mvitdsl.build(spec)
        out = gm(torch.empty(2, 3, *spec.model.input.size[1:]))
    assert sum(p.numel() for p in gm.parameters()) == analyze(spec).params
    assert tuple(out.shape) == (2, 3)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(swin_texts(), st.sampled_from([16, 32, 64, 224]))
def test_the_window_rule_of_a_drawn_spec_does_not_depend_on_the_size_built(
    text: str, side: int
) -> None:
    """A drawn spec refused for a window larger than its grid (E309) at its written input is
    refused at any input it is built at, and one accepted at its written input is never refused
    for its windows at another."""

    def codes(size: Any) -> set[str]:
        try:
            load_spec(text=text, input_size=size)
        except SpecError as e:
            return {d.code for d in e.diagnostics}
        return set()

    written, built = codes(None), codes((3, side, side))
    if not (written | built) - {"E309"}:  # no other error that stops a block's rules first
        assert ("E309" in written) == ("E309" in built), (text, side)


def test_windows_that_do_not_tile_the_grid_are_padded_as_timm_pads_them() -> None:
    """A 3x3 window on the 16x16 and 8x8 grids (no longer refused, E309): the grid is padded to
    whole windows and the shift mask laid out on the padded grid, as timm's class does at its
    own size: logits <= 1e-4 relative."""
    spec = load_spec(text=SMALL.replace("window 4x4", "window 3x3"))
    ref = perturbed(small_timm(window=3))
    gm = mvitdsl.build(spec).eval()
    gm.load_state_dict(convert_state_dict(ref.state_dict(), "timm", spec=spec), strict=True)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert relative(gm(x), ref(x)) <= 1e-4


def test_a_swin_module_states_and_enforces_its_size_rule() -> None:
    """Swin's windows are padded and its mask computed at the run-time grid, so its size rule is
    the strides' (patch 4 x merge 2 = multiples of 8): `check`'s rule says so, one module runs
    at another legal size, and a forward off the rule raises one line naming it, not a reshape
    error."""
    spec = load_spec(text=SMALL)
    rule = mvitdsl.size_rule(spec)
    assert rule.legal((1, 64, 64)) and rule.legal((1, 40, 128))
    assert not rule.legal((1, 100, 100)) and rule.nearest((1, 100, 100)) == [
        (1, 96, 96),
        (1, 104, 104),
    ]
    assert rule.text == "H and W: multiples of 8, at least 8"
    gm = mvitdsl.build(spec).eval()
    with torch.no_grad():
        assert gm(torch.randn(1, 3, 40, 128)).shape == (1, 10)
        with pytest.raises(ValueError, match="does not follow the size rule: H and W: multiples"):
            gm(torch.randn(1, 3, 100, 100))


TINY_SWIN = SMALL.replace("image 3x64x64", "image 3x32x32").replace("window 4x4", "window 2x2")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_swin_trains_under_autocast_on_cpu(dtype: torch.dtype) -> None:
    """Shifted windows, the bias table and patch merging under CPU autocast (fp16 through a
    GradScaler): finite, falling losses, fp32 parameters; bf16 gradients point where fp32's do."""
    from test_mixed_precision import train_steps

    spec = load_spec(text=TINY_SWIN)
    torch.manual_seed(0)
    gm = mvitdsl.build(spec)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    reference = {k: v.clone() for k, v in gm.state_dict().items()}
    losses = train_steps(gm, x, dtype)
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in gm.parameters())
    if dtype is torch.bfloat16:  # one step's gradients, bf16 autocast against fp32
        gm.load_state_dict(reference)
        flat = []
        for enabled in (False, True):
            gm.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
                loss = nn.functional.cross_entropy(gm(x), torch.arange(2))
            loss.backward()  # type: ignore[no-untyped-call]
            flat.append(
                torch.cat([p.grad.flatten() for p in gm.parameters() if p.grad is not None])
            )
        assert nn.functional.cosine_similarity(flat[0], flat[1], dim=0) > 0.98


def test_swin_trains_built_in_bf16() -> None:
    from test_mixed_precision import train_steps

    torch.manual_seed(0)
    gm = mvitdsl.build(load_spec(text=TINY_SWIN), dtype=torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for p in gm.parameters())
    losses = train_steps(gm, torch.randn(2, 3, 32, 32).bfloat16(), None)
    assert all(torch.isfinite(torch.tensor(losses)))


@pytest.mark.parametrize("word", ["shift", "window", "rel_pos"])
def test_hover_explains_swin_settings(word: str) -> None:
    """The editor's hover knows Swin's words from the one table, with no Swin case in the server."""
    from lsprotocol import types as lsp

    from mvitdsl.lsp.document import check_document
    from mvitdsl.lsp.hover import hover

    text = (SPECS / "swin_t.mv").read_text()
    lines = text.splitlines()
    line = next(i for i, t in enumerate(lines) if f" {word} " in t and not t.startswith("#"))
    found = hover(check_document(text), lsp.Position(line, lines[line].index(f" {word} ") + 1))
    assert found is not None and isinstance(found.contents, lsp.MarkupContent)
    assert found.contents.value.startswith(f"**attention {word}**")


def test_swin_trains_after_an_inference_mode_call() -> None:
    """The bias index and shift mask kept per size are made outside inference mode: an eval
    under torch.inference_mode (as `mvitdsl bench` runs) and then a training step."""
    from mvitdsl.backend import runtime

    torch.manual_seed(0)
    gm = mvitdsl.build(load_spec(text=TINY_SWIN))
    x = torch.randn(2, 3, 32, 32)
    runtime._SWIN_CACHE.clear()
    with torch.inference_mode():
        before = gm.eval()(x)
    assert runtime._SWIN_CACHE and not any(t.is_inference() for t in runtime._SWIN_CACHE.values())
    out = gm(x)
    out.sum().backward()
    torch.testing.assert_close(out.detach(), before)
    assert all(p.grad is not None for p in gm.parameters() if p.requires_grad)
