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


def test_cpu_built_model_moved_to_cuda_trains_under_bf16_autocast() -> None:
    """The CPU layer decides on the tensors: after .to("cuda") the pools use aten (cuDNN),
    and its registered op's CUDA kernel is aten's too; gradients agree with fp32 (cosine)."""
    from mvitdsl.backend.passes import optimize as layer

    spec = mvitdsl.load_spec(ROOT / "specs" / "mvit_b.mv", input_size=(3, 8, 128, 128))
    torch.manual_seed(0)
    gm = mvitdsl.build(spec).cuda().eval()  # built for the CPU: the layer is on
    assert layer.is_optimized(gm)
    x = torch.randn(2, 3, 8, 128, 128, device="cuda")
    grads = {}
    for dtype in (torch.float32, torch.bfloat16):
        gm.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
            gm(x).float().logsumexp(-1).mean().backward()
        grads[dtype] = torch.cat([p.grad.flatten() for p in gm.parameters()])
    cos = torch.nn.functional.cosine_similarity(grads[torch.float32], grads[torch.bfloat16], 0)
    assert cos > 0.98
    w = torch.randn(4, 1, 3, 3, 3, device="cuda", requires_grad=True)
    xi = torch.randn(2, 8, 4, 6, 6, device="cuda", requires_grad=True)
    torch.library.opcheck(torch.ops.mvitdsl.pool_conv.default, (xi, w, [1, 2, 2], [1, 1, 1]))


def test_fp16_autocast_training_step_with_grad_scaler() -> None:
    spec = mvitdsl.load_spec(ROOT / "specs" / "mvitv2_s.mv", input_size=(3, 8, 128, 128))
    gm = mvitdsl.build(spec, device="cuda").train()
    opt = torch.optim.SGD(gm.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cuda")
    x = torch.randn(2, 3, 8, 128, 128, device="cuda")
    for _ in range(2):
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.float16):
            loss = torch.nn.functional.cross_entropy(gm(x), torch.tensor([1, 2], device="cuda"))
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    assert torch.isfinite(loss)
