"""CUDA: the built model and the written artifact run on a GPU in bf16 and fp32 (marker `gpu`,
skipped where no CUDA device exists: the only allowed skips)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")
import torch  # noqa: E402

torchvision = pytest.importorskip("torchvision")

import mvitdsl  # noqa: E402
from mvitdsl.backend.artifact import import_artifact, write_artifact  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.fixture(scope="module")
def pair() -> tuple[torch.nn.Module, torch.fx.GraphModule]:
    torch.manual_seed(0)
    ref = torchvision.models.video.mvit_v1_b().cuda().eval()
    gm = mvitdsl.build(mvitdsl.load_spec(ROOT / "specs" / "mvit_b.mv"), device="cuda").eval()
    gm.load_state_dict(ref.state_dict(), strict=True)
    return ref, gm


def test_fp32_logits_match_torchvision_on_cuda(pair) -> None:
    ref, gm = pair
    x = torch.randn(2, 3, 16, 224, 224, device="cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    with torch.no_grad():
        torch.testing.assert_close(gm(x), ref(x), atol=1e-4, rtol=0)


def test_bf16_build_runs_and_agrees_with_fp32(pair) -> None:
    _, gm32 = pair
    spec = mvitdsl.load_spec(ROOT / "specs" / "mvit_b.mv")
    gm = mvitdsl.build(spec, device="cuda", dtype=torch.bfloat16).eval()
    gm.load_state_dict(gm32.state_dict(), strict=True)
    x = torch.randn(2, 3, 16, 224, 224, device="cuda")
    with torch.no_grad():
        out, ref = gm(x.bfloat16()), gm32(x)
    assert out.dtype == torch.bfloat16 and out.device.type == "cuda"
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), ref, atol=0.05 * ref.abs().max().item(), rtol=0.1)


def test_mvitv2_s_bf16_autocast_training_step_with_checkpointing() -> None:
    spec = mvitdsl.load_spec(ROOT / "specs" / "mvitv2_s.mv")
    gm = mvitdsl.build(spec, device="cuda", checkpoint=["scale4"]).train()
    x = torch.randn(2, 3, 16, 224, 224, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = gm(x).float().logsumexp(-1).mean()
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in gm.parameters())


def test_artifact_runs_on_cuda_in_bf16(pair, tmp_path: Path) -> None:
    _, gm = pair
    out = write_artifact(
        gm.cpu(), tmp_path / "mvit_b", name="mvit_b", source_file="specs/mvit_b.mv", source_text=""
    )
    gm.cuda()
    try:
        loaded = import_artifact(out).load(device="cuda", dtype=torch.bfloat16)
        x = torch.randn(1, 3, 16, 224, 224, device="cuda")
        with torch.no_grad():
            logits = loaded(x.bfloat16())
            expected = gm(x)
        assert logits.shape == (1, 400) and logits.dtype == torch.bfloat16
        torch.testing.assert_close(
            logits.float(), expected, atol=0.05 * expected.abs().max().item(), rtol=0.1
        )
    finally:
        shutil.rmtree(out, ignore_errors=True)
