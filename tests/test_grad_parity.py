"""Training parity: after one backward with the same weights, every parameter's gradient equals
the reference model's (torchvision's mvit_v1_b and mvit_v2_s, timm's mvitv2_tiny and
hiera_tiny_224), small sizes, CPU; and under bf16 autocast the gradients agree with fp32 (cosine
similarity)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
import torch  # noqa: E402

torchvision = pytest.importorskip("torchvision")
timm = pytest.importorskip("timm")

from torch import nn  # noqa: E402

import mvitdsl  # noqa: E402
from mvitdsl.backend.passes import optimize as layer  # noqa: E402
from mvitdsl.backend.weights import convert_state_dict  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VIDEO = (3, 4, 64, 64)  # patch grid 2x16x16; the Q strides take it to 2x2x2
IMAGE = (3, 64, 64)


def torchvision_at(builder: str, size: tuple[int, ...]) -> nn.Module:
    """torchvision's model at (C, T, H, W): its builders fix the size, so the private `_mvit`
    call they all make is patched (as benchmarks/run.py does)."""
    video = torchvision.models.video.mvit
    original = video._mvit

    def sized(**kw: object) -> nn.Module:
        kw.update(temporal_size=size[1], spatial_size=(size[2], size[3]))
        return original(**kw)

    video._mvit = sized
    try:
        return getattr(torchvision.models.video, builder)()
    finally:
        video._mvit = original


def perturbed(model: nn.Module) -> nn.Module:
    """Random values in every tensor (norms, biases, rel-pos tables too)."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model.eval()  # no dropout, no stochastic depth: a deterministic backward


def grads(
    model: nn.Module, x: torch.Tensor, autocast: torch.dtype | None = None
) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=autocast or torch.bfloat16, enabled=autocast is not None):
        out = model(x)
    labels = torch.arange(x.shape[0]) % out.shape[1]
    nn.functional.cross_entropy(out.float(), labels).backward()
    return {k: p.grad.detach().clone() for k, p in model.named_parameters() if p.grad is not None}


def assert_grads_match(ours: dict[str, torch.Tensor], ref: dict[str, torch.Tensor]) -> None:
    """Within 1e-3 of each parameter's scale: max |g| of the reference gradient, floored at
    1e-4 of the model's largest gradient (some are zero in exact arithmetic)."""
    assert ours.keys() == ref.keys()
    floor = 1e-4 * max(g.abs().max().item() for g in ref.values())
    bad = []
    for name, want in ref.items():
        scale = max(want.abs().max().item(), floor)
        err = (ours[name] - want).abs().max().item()
        if err > 1e-3 * scale:
            bad.append(f"{name}: max error {err:.3g}, scale {scale:.3g}")
    assert not bad, "\n".join(bad)


def cosine(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    fa = torch.cat([a[k].flatten().double() for k in sorted(a)])
    fb = torch.cat([b[k].flatten().double() for k in sorted(a)])
    return float(torch.nn.functional.cosine_similarity(fa, fb, dim=0))


@pytest.mark.parametrize(
    ("spec_name", "builder"), [("mvit_b", "mvit_v1_b"), ("mvitv2_s", "mvit_v2_s")]
)
def test_gradients_match_torchvision(spec_name: str, builder: str) -> None:
    """With the CPU layer and without it (the semantic graph); and bf16 autocast vs fp32."""
    torch.manual_seed(0)
    ref = perturbed(torchvision_at(builder, VIDEO))
    spec = mvitdsl.load_spec(ROOT / "specs" / f"{spec_name}.mv", input_size=VIDEO)
    gm = mvitdsl.build(spec).eval()
    assert layer.is_optimized(gm)
    gm.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, *VIDEO, generator=torch.Generator().manual_seed(1))
    want = grads(ref, x)
    fp32 = grads(gm, x)
    assert_grads_match(fp32, want)
    bf16 = grads(gm, x, torch.bfloat16)
    assert all(g.dtype == torch.float32 for g in bf16.values())
    assert cosine(bf16, fp32) > 0.98
    assert_grads_match(grads(layer.semantic(gm), x), want)


def test_gradients_match_timm_image() -> None:
    torch.manual_seed(0)
    ref = perturbed(timm.create_model("mvitv2_tiny", pretrained=False, img_size=IMAGE[1:]))
    spec = mvitdsl.load_spec(ROOT / "specs" / "mvitv2_t_image.mv", input_size=IMAGE)
    gm = mvitdsl.build(spec).eval()
    gm.load_state_dict(convert_state_dict(ref.state_dict(), "timm", spec=spec), strict=True)
    x = torch.randn(2, *IMAGE, generator=torch.Generator().manual_seed(1))
    want = convert_state_dict(grads(ref, x), "timm", spec=spec)  # under our names
    fp32 = grads(gm, x)
    assert_grads_match(fp32, want)
    assert cosine(grads(gm, x, torch.bfloat16), fp32) > 0.98


def test_gradients_match_timm_hiera() -> None:
    """Hiera in the unrolled token order (the CPU layer's unroll pass) and as the semantic
    graph: both give timm's gradients."""
    torch.manual_seed(0)
    ref = perturbed(timm.create_model("hiera_tiny_224", pretrained=False, img_size=IMAGE[1:]))
    spec = mvitdsl.load_spec(ROOT / "specs" / "hiera_t_image.mv", input_size=IMAGE)
    gm = mvitdsl.build(spec).eval()
    assert "to_unrolled" in gm.code
    gm.load_state_dict(convert_state_dict(ref.state_dict(), "timm", spec=spec), strict=True)
    x = torch.randn(2, *IMAGE, generator=torch.Generator().manual_seed(1))
    want = convert_state_dict(grads(ref, x), "timm", spec=spec)
    assert_grads_match(grads(gm, x), want)
    assert_grads_match(grads(layer.semantic(gm), x), want)
