"""Issue 21, item 4: SAM2.1's Hiera trunks in the language (specs/sam2_hiera_*.mv): padded
windows, the global-block list, `position windowed`; parameter counts and the four stage maps
equal timm's `sam2_hiera_*` (equal to the sam2 package's trunk bitwise) from one built module at
sizes where the 14 and 7 windows pad; the `sam2` checkpoint dialect."""

from __future__ import annotations

from math import prod
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mvitdsl
from mvitdsl import analyze, load_spec
from mvitdsl.analysis.sizes import size_rule
from mvitdsl.backend.load import WeightsError
from mvitdsl.backend.runtime import from_windows, padded_grid, to_windows, windowed_positions
from mvitdsl.ops import positions, window

timm = pytest.importorskip("timm")

SPECS = Path(__file__).resolve().parent.parent / "specs"
TIMM = {
    "sam2_hiera_t": "sam2_hiera_tiny",
    "sam2_hiera_s": "sam2_hiera_small",
    "sam2_hiera_b_plus": "sam2_hiera_base_plus",
    "sam2_hiera_l": "sam2_hiera_large",
}
SMALL = ((256, 256), (256, 384))  # grids 16 and 8 at the last stages: windows 14 and 7 pad


def _reference(name: str, device: str = "cpu") -> Any:
    """timm's trunk with random non-zero weights (its init leaves the position tables zero)."""
    torch.manual_seed(0)
    with torch.device(device):
        ref = timm.create_model(TIMM[name], pretrained=False, num_classes=0).eval()
    if device != "meta":
        with torch.no_grad():
            for p in ref.parameters():
                p.add_(torch.randn_like(p) * 0.02)
    return ref


def _trunk(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if not k.startswith("head.")}


def _relative(want: torch.Tensor, got: torch.Tensor) -> float:
    return float((want - got).abs().max() / want.abs().max())


@pytest.mark.parametrize("name", TIMM)
def test_parameter_counts_equal_timm_trunks(name: str) -> None:
    """On the meta device: the spec's feature model, built and analysed, has timm's trunk count
    (its model with num_classes=0, minus head.), and timm's trunk names map onto it."""
    ref = _trunk(_reference(name, "meta").state_dict())
    spec = load_spec(SPECS / f"{name}.mv")
    gm = mvitdsl.build(spec, device="meta")
    count = sum(v.numel() for v in ref.values())
    assert analyze(spec).feature_params == count
    assert sum(p.numel() for p in gm.parameters()) == count
    info: Any = gm.feature_info
    assert [i["name"] for i in info] == ["scale2", "scale3", "scale4", "scale5"]


def _parity(name: str, sizes: tuple[tuple[int, int], ...]) -> None:
    """One built module, timm's weights by their names, the four maps at every size."""
    ref = _reference(name)
    gm = mvitdsl.build(SPECS / f"{name}.mv", weights=ref.state_dict(), source="timm").eval()
    for hw in sizes:
        x = torch.randn(1, 3, *hw)
        with torch.no_grad():
            want = ref.forward_intermediates(x, indices=4, intermediates_only=True)
            got = list(gm(x).values())
        assert [tuple(w.shape) for w in want] == [tuple(g.shape) for g in got]
        for w, g in zip(want, got):
            assert _relative(w, g) <= 1e-4, (name, hw)


@pytest.mark.parametrize("name", ["sam2_hiera_t", "sam2_hiera_s"])
def test_maps_equal_timm_at_two_padded_sizes(name: str) -> None:
    _parity(name, SMALL)


def test_maps_equal_timm_at_a_padded_size() -> None:
    """B+ (its 14x14 table) at 256x256; 256x384 and L (windows 16 and 8: 25 s here) in
    `make test-all` (their twin: T and S at both sizes)."""
    _parity("sam2_hiera_b_plus", SMALL[:1])


@pytest.mark.full
@pytest.mark.parametrize("name", ["sam2_hiera_b_plus", "sam2_hiera_l"])
def test_maps_equal_timm_at_two_padded_sizes_full(name: str) -> None:
    _parity(name, SMALL)


@pytest.mark.full
def test_tiny_maps_equal_timm_at_1024_full() -> None:
    """The spec's own size: the 64 and 32 grids pad to 70 and 35 (twin: the small sizes)."""
    _parity("sam2_hiera_t", ((1024, 1024), (512, 768)))


@pytest.mark.full
@pytest.mark.parametrize("name", ["sam2_hiera_s", "sam2_hiera_b_plus", "sam2_hiera_l"])
def test_maps_equal_timm_at_1024_full(name: str) -> None:
    _parity(name, ((1024, 1024),))


def test_gradients_equal_timm() -> None:
    """T at 256x256: the input's gradient and the windowed tables' through the padded blocks."""
    ref = _reference("sam2_hiera_t")
    gm = mvitdsl.build(SPECS / "sam2_hiera_t.mv", weights=ref.state_dict(), source="timm")
    x = torch.randn(1, 3, 256, 256)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    sum(
        m.square().mean() for m in ref.forward_intermediates(xa, 4, intermediates_only=True)
    ).backward()
    sum(m.square().mean() for m in gm(xb).values()).backward()
    assert xa.grad is not None and xb.grad is not None
    assert _relative(xa.grad, xb.grad) <= 1e-4
    ours = dict(gm.named_parameters())
    for theirs, mine in [
        ("pos_embed", "pos_encoding.pos_embed"),
        ("pos_embed_window", "pos_encoding.pos_embed_window"),
        ("blocks.10.attn.qkv.weight", "blocks.10.attn.qkv.weight"),  # window 14 over 16: pads
        ("blocks.11.attn.qkv.bias", "blocks.11.attn.qkv.bias"),  # window 7 over 8: pads
    ]:
        want, got = ref.get_parameter(theirs).grad, ours[mine].grad
        assert want is not None and got is not None
        assert _relative(want, got) <= 1e-4, mine


def _sam2_checkpoint(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """A SAM2 checkpoint's layout from timm names: `image_encoder.trunk.*`, `mlp.layers.0/1`,
    plus entries of the rest of SAM2 (neck, decoder) that the trunk does not have."""
    out = {}
    for k, v in _trunk(state).items():
        k = k.replace(".mlp.fc1.", ".mlp.layers.0.").replace(".mlp.fc2.", ".mlp.layers.1.")
        out["image_encoder.trunk." + k] = v
    out["image_encoder.neck.convs.0.conv.weight"] = torch.zeros(256, 96, 1, 1)
    out["sam_mask_decoder.iou_token.weight"] = torch.zeros(1, 256)
    return {"model": out}


def test_sam2_checkpoint_names_load_and_the_rest_is_listed(tmp_path: Path) -> None:
    ref = _reference("sam2_hiera_t")
    torch.save(_sam2_checkpoint(ref.state_dict()), tmp_path / "sam2.1_hiera_tiny.pt")
    gm = mvitdsl.build(SPECS / "sam2_hiera_t.mv", weights=tmp_path / "sam2.1_hiera_tiny.pt")
    report: Any = gm.load_report
    assert report.dialect == "sam2"
    assert {e.name for e in report.of("ignored")} == {
        "image_encoder.neck.convs.0.conv.weight",
        "sam_mask_decoder.iou_token.weight",
    }
    assert len(report.of("loaded")) == len(_trunk(ref.state_dict()))
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        want = ref.forward_intermediates(x, indices=4, intermediates_only=True)
        got = list(gm.eval()(x).values())
    assert all(_relative(w, g) <= 1e-4 for w, g in zip(want, got))


def test_a_checkpoint_of_another_size_is_one_line_and_nothing_loads(tmp_path: Path) -> None:
    small = _reference("sam2_hiera_s", "meta").state_dict()
    state = {k: torch.zeros(v.shape) for k, v in small.items()}
    torch.save(_sam2_checkpoint(state), tmp_path / "s.pt")
    with pytest.raises(WeightsError) as info:
        mvitdsl.build(SPECS / "sam2_hiera_t.mv", weights=tmp_path / "s.pt", source="sam2")
    text = str(info.value)
    assert "\n" not in text and "nothing loaded" in text and "another size" in text
    assert "blocks.10.attn.qkv.weight [1152, 384] in the checkpoint, [2304, 384]" in text


def test_an_illegal_size_is_one_line_naming_the_rule() -> None:
    gm = mvitdsl.build(SPECS / "sam2_hiera_t.mv", device="meta")
    with pytest.raises(ValueError) as info:
        gm(torch.empty(1, 3, 250, 256, device="meta"))
    assert str(info.value) == (
        "input of shape 1x3x250x256 does not follow the size rule: "
        "H and W: multiples of 32, at least 32"
    )


def test_specs_state_the_reference_figures() -> None:
    """Windows per block (the lag), the global blocks (5, 7, 9), the size rule."""
    model = load_spec(SPECS / "sam2_hiera_t.mv").model
    sides = [(w.window_kv[1] if (w := window.of(b)) else 0) for b in model.blocks]
    assert sides == [8, 8, 4, 4, 14, 0, 14, 0, 14, 0, 14, 7]
    assert size_rule(model).text == "H and W: multiples of 32, at least 32"


# ---------------------------------------------------------------- the pieces, property-tested


@settings(max_examples=60, deadline=None)
@given(
    st.tuples(st.integers(1, 9), st.integers(1, 9)),
    st.tuples(st.integers(1, 5), st.integers(1, 5)),
)
def test_windows_and_back_is_the_identity(hw: tuple[int, int], win: tuple[int, int]) -> None:
    grid, window_ = (1, *hw), (1, *win)
    padded = padded_grid(grid, window_)
    assert all(p % w == 0 and 0 <= p - n < w for p, n, w in zip(padded, grid, window_))
    x = torch.randn(2, prod(grid), 3)
    windows = to_windows(x, grid, padded, window_)
    assert windows.shape == (2 * prod(padded) // prod(window_), prod(window_), 3)
    assert float(windows.abs().sum()) == pytest.approx(float(x.abs().sum()))  # the pad is zeros
    first = windows[0].reshape(*win, 3)[: hw[0], : hw[1]]  # the first window, pad cut
    assert torch.equal(first, x[0].reshape(*hw, 3)[: win[0], : win[1]])
    assert torch.equal(from_windows(windows, padded, window_, grid), x)


def test_windowed_positions_tile_the_window_table() -> None:
    table, tile = torch.zeros(1, 4, 7, 7), torch.randn(1, 4, 8, 8)
    out = windowed_positions(table, tile, (1, 16, 24))
    assert out.shape == (1, 16 * 24, 4)
    grid = out.transpose(1, 2).reshape(1, 4, 16, 24)
    assert torch.equal(grid[..., 8:16, 16:24], tile)


TOKENS = """
model w {
  input      image 3x128x128
  patch      conv 4x4 stride 4x4 -> 16
  tokens     no_cls, position windowed TABLES
  attention  pool_kv off
  stages {
    s1  1  16  1  1x1
  }
}
"""


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 40), st.integers(0, 40))
def test_any_table_sizes_lower_or_are_located(g: int, w: int) -> None:
    """`pos_table` / `pos_window`: the tables' shapes as written, or one located diagnostic
    (the 32x32 grid must be whole windows; zero is out of range)."""
    text = TOKENS.replace("TABLES", f", pos_table {g}x{g}, pos_window {w}x{w}")
    try:
        model = load_spec(text=text).model
    except mvitdsl.SpecError as e:
        assert g == 0 or w == 0 or 32 % w
        assert all(d.span is not None and d.span.line == 5 for d in e.diagnostics)
        return
    assert g >= 1 and w >= 1 and 32 % w == 0
    assert positions.learned_shapes(model) == {
        positions.POS_EMBED: (1, 16, g, g),
        positions.WINDOW_POS: (1, 16, w, w),
    }


def test_windowed_positions_without_tables_are_located() -> None:
    with pytest.raises(mvitdsl.SpecError) as info:
        load_spec(text=TOKENS.replace("TABLES", ""))
    (d,) = info.value.diagnostics
    assert d.code == "E210" and d.span is not None and d.span.line == 5


WINDOWS = """
model w {
  input      image 3x64x64
  patch      conv 4x4 stride 4x4 -> 16
  tokens     no_cls, position windowed, pos_table 3x3, pos_window 2x2
  attention  pool max, kernel_q 2x2, pool_pad zero, pool_kv off, skip_pool like_q,
             dim_change attention, scope window
  stages {
    s1  1  16  1  1x1  window=6x6
    s2  2  32  2  2x2  window=4x4  global=1
  }
  outputs    s1, s2
}
"""


def test_one_exported_program_serves_padded_and_unpadded_sizes() -> None:
    """torch.export with symbolic H, W (the size rule: multiples of 8): 64 pads the 6-window
    (grid 16), 96 pads nothing (24 and 12), 40x56 pads both stages; all equal eager."""
    from mvitdsl.backend import export

    torch.manual_seed(0)
    spec = load_spec(text=WINDOWS)
    gm = mvitdsl.build(spec, optimize=False).eval()
    rule = size_rule(spec.model)
    assert rule.text == "H and W: multiples of 8, at least 8"
    program = export.export_program(gm, torch.randn(2, 3, 64, 64), rule).module()
    for size in ((2, 3, 64, 64), (3, 3, 96, 96), (2, 3, 40, 56)):
        x = torch.randn(*size)
        with torch.no_grad():
            want, got = gm(x), program(x)
        for k in want:
            torch.testing.assert_close(got[k], want[k], rtol=1e-5, atol=1e-5)


def test_a_window_that_cannot_be_padded_is_located() -> None:
    """Padded windows pool Q inside each window: a Q pool that is not its stride's tiles (3x3
    with half padding) would mix windows, as SAM2 never does (E309 where the scope is written)."""
    text = WINDOWS.replace("kernel_q 2x2, pool_pad zero", "kernel_q 3x3")
    with pytest.raises(mvitdsl.SpecError) as info:
        load_spec(text=text)
    (d,) = info.value.diagnostics
    assert d.code == "E309" and d.span is not None and d.span.line == 6  # the written scope
    assert "padded windows pool Q inside each window" in d.message


def test_a_model_built_at_another_input_keeps_its_windowed_tables() -> None:
    """`build(input=...)`: the windowed tables keep the spec's sizes (resized every forward)."""
    torch.manual_seed(0)
    spec = load_spec(text=WINDOWS)
    one = mvitdsl.build(spec, optimize=False).eval()
    other = mvitdsl.build(spec, input=(3, 96, 96), weights=one.state_dict(), optimize=False)
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        want, got = one(x), other.eval()(x)
    assert all(torch.equal(want[k], got[k]) for k in want)
