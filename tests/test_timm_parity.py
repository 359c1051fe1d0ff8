"""Image MViTv2 is timm's: weights converted from timm's names give the same logits."""

from __future__ import annotations

import pytest
from conftest import SPECS

pytest.importorskip("torch")
import torch  # noqa: E402

timm = pytest.importorskip("timm")

import mvitdsl  # noqa: E402
from mvitdsl.backend.weights import convert_state_dict  # noqa: E402

CLS_SPEC = """
model mvitv2_cls_small_test {
  input      image 3x128x128
  patch      conv 7x7 stride 4x4 pad 3x3 -> 96
  tokens     cls, position none
  attention  pool conv 3x3, pool_q_blocks all, stride_kv adaptive 4x4, mlp_ratio 4,
             dim_change attention, rel_pos decomposed, residual_pool all
  stages {
    scale2      1     96    1     1x1
    scale3      2    192    2     2x2
    scale4      1    384    4     2x2
    scale5      1    768    8     2x2
  }
  head       norm, cls, classes 10
}
"""


def _perturbed(model: torch.nn.Module) -> torch.nn.Module:
    """Random values in every tensor (norms and biases too), so a swapped name shows."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model.eval()


def _parity(ref: torch.nn.Module, spec: mvitdsl.Spec, x: torch.Tensor) -> None:
    gm = mvitdsl.build(spec).eval()
    gm.load_state_dict(convert_state_dict(ref.state_dict(), "timm", spec=spec), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), ref(x), atol=1e-4, rtol=0)


def test_mvitv2_tiny_matches_timm():
    torch.manual_seed(0)
    ref = _perturbed(timm.create_model("mvitv2_tiny", pretrained=False))
    spec = mvitdsl.load_spec(SPECS / "mvitv2_t_image.mv")
    _parity(ref, spec, torch.randn(2, 3, 224, 224))


def test_timm_residual_pooling_includes_the_cls_token():
    from timm.models.mvitv2 import MultiScaleVit, MultiScaleVitCfg

    torch.manual_seed(0)
    cfg = MultiScaleVitCfg(depths=(1, 2, 1, 1), use_cls_token=True)
    ref = _perturbed(MultiScaleVit(cfg, img_size=(128, 128), num_classes=10))
    _parity(ref, mvitdsl.load_spec(text=CLS_SPEC), torch.randn(2, 3, 128, 128))


def test_timm_channel_change_in_the_mlp():
    """mvitv2_large's layout (expand_attn=False: shortcut_proj_mlp), scaled down."""
    from timm.models.mvitv2 import MultiScaleVit, MultiScaleVitCfg

    torch.manual_seed(0)
    cfg = MultiScaleVitCfg(depths=(1, 2, 1, 1), embed_dim=48, num_heads=1, expand_attn=False)
    ref = _perturbed(MultiScaleVit(cfg, img_size=(128, 128), num_classes=10))
    text = (
        CLS_SPEC.replace("cls, position none", "no_cls, position none")
        .replace("dim_change attention", "dim_change mlp")
        .replace("norm, cls", "norm, mean")
        .replace("-> 96", "-> 48")
        .replace("96    1", "48    1")
        .replace("192    2", "96    2")
        .replace("384    4", "192    4")
        .replace("768    8", "384    8")
    )
    _parity(ref, mvitdsl.load_spec(text=text), torch.randn(2, 3, 128, 128))


def _small(mode: str = "conv", tokens: str = "no_cls, position none", head: str = "mean") -> str:
    return (
        CLS_SPEC.replace("tokens     cls, position none", f"tokens     {tokens}")
        .replace("pool conv 3x3", f"pool {mode} 3x3")
        .replace("norm, cls", f"norm, {head}")
    )


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_avg_and_max_pooling_match_timm(mode):
    from timm.models.mvitv2 import MultiScaleVit, MultiScaleVitCfg

    torch.manual_seed(0)
    cfg = MultiScaleVitCfg(depths=(1, 2, 1, 1), mode=mode)
    ref = _perturbed(MultiScaleVit(cfg, img_size=(128, 128), num_classes=10))
    spec = mvitdsl.load_spec(text=_small(mode))
    assert not any(".pool_" in k for k in ref.state_dict())  # no conv, no norm: nothing to load
    _parity(ref, spec, torch.randn(2, 3, 128, 128))


def test_joint_absolute_positions_with_cls_match_timm():
    from timm.models.mvitv2 import MultiScaleVit, MultiScaleVitCfg

    torch.manual_seed(0)
    cfg = MultiScaleVitCfg(depths=(1, 2, 1, 1), use_cls_token=True, use_abs_pos=True)
    ref = _perturbed(MultiScaleVit(cfg, img_size=(128, 128), num_classes=10))
    spec = mvitdsl.load_spec(text=_small(tokens="cls, position joint", head="cls"))
    assert tuple(ref.pos_embed.shape) == (1, 32 * 32 + 1, 96)
    _parity(ref, spec, torch.randn(2, 3, 128, 128))


@pytest.mark.parametrize(
    "timm_name,spec_name",
    [
        ("mvitv2_tiny", "mvitv2_t_image"),
        ("mvitv2_small", "mvitv2_s_image"),
        ("mvitv2_base", "mvitv2_b_image"),
        ("mvitv2_large", "mvitv2_l_image"),
        ("mvitv2_huge_cls", "mvitv2_h_image"),
    ],
)
def test_image_specs_have_timms_names_and_shapes(timm_name, spec_name):
    """The big image models, checked on the meta device: every timm tensor has its counterpart."""
    from mvitdsl.backend.weights import compare_shapes

    with torch.device("meta"):
        ref = timm.create_model(timm_name, pretrained=False, num_classes=1000)
    spec = mvitdsl.load_spec(SPECS / f"{spec_name}.mv")
    found = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    source, mismatches = compare_shapes(spec.model, found)
    assert source == "timm" and [m.render() for m in mismatches] == []
    assert sum(p.numel() for p in ref.parameters()) == mvitdsl.analyze(spec).params


def test_image_input_override_matches_timm_built_at_that_size():
    torch.manual_seed(0)
    ref = _perturbed(timm.create_model("mvitv2_tiny", img_size=160)).eval()
    spec = mvitdsl.resize(mvitdsl.load_spec(SPECS / "mvitv2_t_image.mv"), (3, 160, 160))
    gm = mvitdsl.build(spec).eval()
    gm.load_state_dict(convert_state_dict(ref.state_dict(), "timm", spec=spec), strict=True)
    x = torch.randn(1, 3, 160, 160)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), ref(x), atol=1e-4, rtol=0)
