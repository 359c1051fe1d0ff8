"""Every spec in specs/ compiles and equals the published numbers; MViTv2-S is torchvision's;
an input-size override keeps the reference semantics, and a size that cannot work is refused."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
from conftest import SPECS, rel

import mvitdsl
from mvitdsl.cli import main

# ../shared/reference/MVIT.md section 6: params; GMACs matmul-only / fvcore (None: not listed).
PUBLISHED: dict[str, tuple[int | None, float | None, float | None]] = {
    "mvit_b.mv": (36_610_672, 70.599, 70.804),
    "mvit_b_32x3.mv": (36_611_440, None, 170.37),
    "mvit_b_64x3.mv": (36_612_976, 455.06, 455.88),
    "mvit_b16_image.mv": (36_982_600, 7.809, 7.845),
    "mvit_b24_image.mv": (None, None, None),
    "mvit_b24_32x3.mv": (None, None, None),
    "mvitv2_s.mv": (34_537_744, 64.224, 64.457),
    "mvitv2_b_32x3.mv": (51_230_128, 224.47, 225.17),
    "mvitv2_l_40x3.mv": (None, None, None),
    "mvitv2_t_image.mv": (24_173_320, 4.677, 4.704),
    "mvitv2_s_image.mv": (34_870_216, 6.960, 6.998),
    "mvitv2_b_image.mv": (51_472_744, 10.102, 10.159),
    "mvitv2_l_image.mv": (217_992_952, 43.711, 43.869),
    "mvitv2_h_image.mv": (None, None, None),
    # ../shared/reference/HIERA.md: timm's hiera_*_224 (params: numel of timm's model)
    "hiera_t_image.mv": (27_910_216, 4.901, 4.914),
    "hiera_s_image.mv": (35_008_072, None, None),
    "hiera_b_image.mv": (51_524_968, None, None),
    "hiera_b_plus_image.mv": (69_896_616, None, None),
    "hiera_l_image.mv": (213_739_912, None, None),
    "hiera_h_image.mv": (672_779_752, None, None),
    "hiera_b_16x224.mv": (51_092_560, None, None),
    # timm's swin_{tiny,small,base}_patch4_window7_224 (params: numel of timm's model; the
    # paper's 4.5, 8.7, 15.4 GFLOPs are these MACs rounded)
    "swin_t.mv": (28_288_354, None, None),
    "swin_s.mv": (49_606_258, None, None),
    "swin_b.mv": (87_768_224, None, None),
    # detectron2's MViT backbone (projects/MViTv2 configs) with the classifier head the specs also
    # state; the backbone's params and GMACs equal detectron2's (tests/test_detectron2.py)
    "mvitv2_t_det.mv": (24_173_320, 4.606, 4.632),
    "mvitv2_s_det.mv": (34_870_216, 6.889, 6.926),
    "mvitv2_b_det.mv": (51_472_744, 10.031, 10.087),
    "mvitv2_l_det.mv": (213_635_368, 41.654, 41.807),
    "mvitv2_h_det.mv": (666_879_720, 119.447, 119.778),
    # ../shared/reference/BACKBONES.md: timm's sam2_hiera_* trunks (26,849,472 for T; the
    # others: numel of timm's model with num_classes=0 minus head.; tests/test_sam2.py) with the
    # classifier head the specs also state; trunk GMACs there are measured on timm's model
    "sam2_hiera_t.mv": (27_620_008, None, None),
    "sam2_hiera_s.mv": (34_717_864, None, None),
    "sam2_hiera_b_plus.mv": (69_574_504, None, None),
    "sam2_hiera_l.mv": (213_304_600, None, None),
    # timm's pvt_v2_b* (params: numel of timm's model; the paper's 0.6, 2.1, 4.0, 6.9, 10.1,
    # 11.8 and 3.9 GFLOPs are these MACs rounded)
    "pvt_v2_b0.mv": (3_666_760, None, None),
    "pvt_v2_b1.mv": (14_009_000, None, None),
    "pvt_v2_b2.mv": (25_362_856, None, None),
    "pvt_v2_b3.mv": (45_238_696, None, None),
    "pvt_v2_b4.mv": (62_556_072, None, None),
    "pvt_v2_b5.mv": (81_956_008, None, None),
    "pvt_v2_b2_li.mv": (22_553_512, None, None),
}


def test_the_issue_lists_exactly_the_shipped_specs():
    assert sorted(PUBLISHED) == sorted(p.name for p in SPECS.glob("*.mv"))


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_spec_names_its_source(name):
    head = (SPECS / name).read_text().split("model ", 1)[0]
    assert any(w in head for w in ("Table", "configs/", "timm ", "torchvision")), head


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_params_and_gmacs(name):
    report = mvitdsl.analyze(mvitdsl.load_spec(SPECS / name))
    params, macs, fvcore = PUBLISHED[name]
    if params is not None:
        assert report.params == params
    if macs is not None:
        assert abs(report.macs / (macs * 1e9) - 1) < 1e-3, report.macs
    if fvcore is not None:
        assert abs(report.macs_fvcore / (fvcore * 1e9) - 1) < 1e-3, report.macs_fvcore


pytest.importorskip("torch")
import torch  # noqa: E402

torchvision = pytest.importorskip("torchvision")


def _input(spec: mvitdsl.Spec, batch: int = 1, device: str = "meta") -> torch.Tensor:
    i = spec.model.input
    size = i.size if i.kind == "video" else i.size[1:]
    return torch.empty(batch, i.channels, *size, device=device)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_compiles_and_analysis_equals_the_built_module(name):
    from torch.utils.flop_counter import FlopCounterMode

    spec = mvitdsl.load_spec(SPECS / name)
    report = mvitdsl.analyze(spec)
    gm = mvitdsl.build(spec, device="meta", features=False).eval()  # with its head
    assert sum(p.numel() for p in gm.parameters()) == report.params
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out = gm(_input(spec))
    assert counter.get_total_flops() == 2 * report.macs
    assert tuple(out.shape) == (1, spec.model.head.classes)


def test_mvit_b_32x3_is_a_few_lines_extending_mvit_b():
    text = (SPECS / "mvit_b_32x3.mv").read_text()
    code = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert code[0] == 'model mvit_b_32x3 extends "mvit_b.mv" mvit_b {' and len(code) <= 4


# ---------------------------------------------------------------- torchvision at any size


def torchvision_at(factory: str, temporal: int, spatial: int) -> torch.nn.Module:
    """torchvision's MViT built for another clip size (its builders pin 16x224x224)."""
    from torchvision.models.video import mvit as tvm

    original = tvm._mvit

    def sized(**kw):
        kw["spatial_size"], kw["temporal_size"] = (spatial, spatial), temporal
        return original(**kw)

    with mock.patch.object(tvm, "_mvit", sized):
        return getattr(tvm, factory)().eval()


def _perturbed(model: torch.nn.Module) -> torch.nn.Module:
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model


def _assert_same_logits(gm: torch.nn.Module, ref: torch.nn.Module, x: torch.Tensor) -> None:
    gm.load_state_dict(ref.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(gm.eval()(x), ref(x), atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    "factory,spec_name", [("mvit_v1_b", "mvit_b.mv"), ("mvit_v2_s", "mvitv2_s.mv")]
)
def test_input_override_matches_torchvision_built_at_that_size(factory, spec_name):
    torch.manual_seed(0)
    ref = _perturbed(torchvision_at(factory, 4, 128)).eval()
    spec = mvitdsl.load_spec(SPECS / spec_name)
    gm = mvitdsl.build(spec, input=(3, 4, 128, 128))
    _assert_same_logits(gm, ref, torch.randn(1, 3, 4, 128, 128))


def test_rounded_grid_interpolates_rel_pos_like_torchvision():
    """At 136x136 the grid goes 34 -> 17 -> 9 (not 8) -> 5 (not 4): the rel-pos tables, sized
    from size // stride, are interpolated at run time, as torchvision and SlowFast do."""
    torch.manual_seed(0)
    ref = _perturbed(torchvision_at("mvit_v2_s", 4, 136)).eval()
    spec = mvitdsl.load_spec(
        text=f'model v2s_136 extends "{SPECS / "mvitv2_s.mv"}" mvitv2_s {{\n'
        "  input video 3x4x136x136, grid_rounding ceil\n}\n"
    )
    grids = [b.grid_q for b in mvitdsl.analyze(spec).blocks]
    assert (grids[3], grids[14]) == ((2, 9, 9), (2, 5, 5))
    blocks = mvitdsl.analyze(spec).blocks
    # tables from size // stride (8), the attention then needs 2 * 9 - 1 rows: interpolated
    assert [b.attn.rel_pos_h.shape[0] for b in ref.blocks][3:15:11] == [15, 15]
    assert [2 * max(blocks[i].grid_q[1], blocks[i].grid_kv[1]) - 1 for i in (3, 14)] == [17, 17]
    _assert_same_logits(mvitdsl.build(spec), ref, torch.randn(1, 3, 4, 136, 136))


def test_cli_input_override_changes_the_model(capsys):
    assert main(["check", str(SPECS / "mvit_b.mv"), "--input", "3x32x224x224"]) == 0
    assert "36,611,440 params" in capsys.readouterr().out  # = mvit_b_32x3.mv


# ---------------------------------------------------------------- sizes that cannot work


def test_fractional_q_grid_is_refused_with_a_located_reason():
    spec = mvitdsl.load_spec(SPECS / "mvitv2_s.mv")
    with pytest.raises(mvitdsl.SpecError) as e:
        mvitdsl.build(spec, input=(3, 16, 200, 200))
    d = e.value.diagnostics[0]
    assert d.code == "E302" and d.span is not None
    assert d.span.file.endswith("mvitv2_s.mv")
    row = Path(d.span.file).read_text().splitlines()[d.span.line - 1]
    assert row.split()[0] == "scale4" and row[d.span.column - 1 :].startswith("1x2x2")
    assert "stride_q 1x2x2" in d.message and "fractional grid" in d.message
    assert "8x25x25" in d.message and "12.5" in d.message


def test_position_table_that_cannot_fit_is_refused(capsys):
    assert main(["check", str(SPECS / "mvit_b.mv"), "--input", "3x16x226x226"]) == 1
    err = rel(capsys.readouterr().err)
    assert "error[E3" in err and "position" in err and "57" in err  # 226 // 4 = 56.5 -> 57
    assert "specs/mvit_b.mv:" in err


def test_image_too_small_for_its_strides_is_refused():
    with pytest.raises(mvitdsl.SpecError) as e:
        mvitdsl.load_spec(SPECS / "mvitv2_t_image.mv", input_size=(3, 16, 16))
    assert {d.code for d in e.value.diagnostics} <= {"E302", "E303"}
    assert all(d.span is not None for d in e.value.diagnostics)


def test_kv_pooling_switched_off_per_stage():
    from mvitdsl.backend.weights import expected_shapes

    spec = mvitdsl.load_spec(
        text=f'model t_off extends "{SPECS / "mvitv2_t_image.mv"}" '
        "mvitv2_t_image {\n  stages {\n    scale5  2  768  8  2x2  off\n"
        "  }\n}\n"
    )
    report = mvitdsl.analyze(spec)
    last = [b for b in report.blocks if b.stage == "scale5"]
    assert [b.grid_kv for b in last] == [b.grid_in for b in last] == [(1, 14, 14), (1, 7, 7)]
    names = expected_shapes(spec.model)
    assert not any(k.startswith(("blocks.8.attn.pool_k", "blocks.9.attn.pool_v")) for k in names)
    assert "blocks.7.attn.pool_k.pool.weight" in names
    base = expected_shapes(mvitdsl.load_spec(SPECS / "mvitv2_t_image.mv").model)
    assert "blocks.8.attn.pool_k.pool.weight" in base  # 3x3 at stride 1 pools unless switched off
    gm = mvitdsl.build(spec, device="meta")
    assert sum(p.numel() for p in gm.parameters()) == report.params


@pytest.mark.parametrize("frames,spec_name", [(32, "mvit_b_32x3.mv"), (64, "mvit_b_64x3.mv")])
def test_longer_clips_have_torchvisions_shapes_at_that_length(frames, spec_name):
    with torch.device("meta"):
        ref = torchvision_at("mvit_v1_b", frames, 224)
    gm = mvitdsl.build(mvitdsl.load_spec(SPECS / spec_name), device="meta")
    assert {k: tuple(v.shape) for k, v in gm.state_dict().items()} == {
        k: tuple(v.shape) for k, v in ref.state_dict().items()
    }
