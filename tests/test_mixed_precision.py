"""Mixed precision on CPU: bf16 and fp16 autocast training steps (fp16 with a GradScaler) for a
v1 video, a v2 video and an image spec; a pure bf16 build; the optimisation layer follows a
model moved after building; torch.compile (eager and inductor, fullgraph) trains like eager."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
import torch  # noqa: E402
from torch import nn  # noqa: E402

import mvitdsl  # noqa: E402
from mvitdsl.backend.passes import optimize as layer  # noqa: E402

V1_VIDEO = """
model v1_video_test {
  input      video 3x4x32x32
  patch      conv 3x7x7 stride 2x4x4 pad 1x3x3 -> 32
  tokens     cls, position separable
  attention  pool conv 3x3x3, pool_q_blocks first, stride_kv adaptive 1x2x2, mlp_ratio 2,
             dim_change mlp
  stages {
    scale2      1     32    1     1x1x1
    scale3      1     64    2     1x2x2
  }
  head       norm, cls, dropout 0.0, classes 10
}
"""
V2_VIDEO = """
model v2_video_test {
  input      video 3x4x32x32
  patch      conv 3x7x7 stride 2x4x4 pad 1x3x3 -> 32
  tokens     cls, position none
  attention  pool conv 3x3x3, pool_q_blocks all, stride_kv adaptive 1x2x2, mlp_ratio 2,
             dim_change attention, rel_pos decomposed, residual_pool all
  stages {
    scale2      1     32    1     1x1x1
    scale3      1     64    2     1x2x2
  }
  head       norm, cls, classes 10
}
"""
IMAGE = """
model image_test {
  input      image 3x32x32
  patch      conv 7x7 stride 4x4 pad 3x3 -> 32
  tokens     no_cls, position none
  attention  pool conv 3x3, pool_q_blocks all, stride_kv adaptive 2x2, mlp_ratio 2,
             dim_change attention, rel_pos decomposed, residual_pool all
  stages {
    scale2      1     32    1     1x1
    scale3      1     64    2     2x2
  }
  head       norm, mean, classes 10
}
"""
# The ops of the later families, small: PVTv2's reduction attention (conv and linear), stage
# embedding, conv MLP and stage norm; SAM2's padded windows (a 3x3 window on a 4x4 grid), global
# block and windowed positions; Hiera's mask units (the unrolled order in the CPU layer).
PVT = """
model pvt_test {
  input      image 3x64x64
  patch      conv 7x7 stride 4x4 pad 3x3 -> 16, norm on
  tokens     no_cls, position none
  attention  pool_kv off, dim_change embed, mlp_conv on, stage_norm on
  stages {
    scale2      1     16    1     1x1     reduce=4
    scale3      1     32    2     2x2     reduce=2
  }
  head       no_norm, mean, classes 10
}
"""
PVT_LINEAR = (
    PVT.replace("stage_norm on", "stage_norm on, reduce 1, reduce_mode linear")
    .replace("reduce=4", "")
    .replace("reduce=2", "")
)
SAM2 = """
model sam2_test {
  input      image 3x64x64
  patch      conv 7x7 stride 4x4 pad 3x3 -> 16
  tokens     no_cls, position windowed, pos_table 7x7, pos_window 4x4
  attention  pool max, kernel_q 2x2, pool_pad zero, pool_kv off, skip_pool like_q,
             dim_change attention, mlp_ratio 2, scope window
  stages {
    scale2      1     16    1     1x1     window=6x6
    scale3      2     32    2     2x2     window=3x3  global=1
  }
  head       norm, mean, order pool_norm, classes 10
}
"""
HIERA = """
model hiera_test {
  input      image 3x64x64
  patch      conv 7x7 stride 4x4 pad 3x3 -> 16
  tokens     no_cls, position joint
  attention  pool max, kernel_q 2x2, pool_pad zero, pool_kv off, skip_pool like_q,
             dim_change attention, mlp_ratio 2, mask_unit 8x8, scope global
  stages {
    scale2      1     16    1     1x1     scope=mask_unit
    scale3      1     32    2     2x2     scope=mask_unit
    scale4      1     64    4     2x2
  }
  head       norm, mean, order pool_norm, classes 10
}
"""
# detectron2's windows after pooling (padded: 24 does not divide the 16x16 grid), global blocks
# with a doubled K/V stride: the fixture's spec as a classifier
DET = (
    (Path(__file__).parent / "fixtures" / "detectron2_mvit_small.mv")
    .read_text()
    .replace(
        "  outputs    scale2, scale3, scale4, scale5, norm\n",
        "  head       norm, mean, classes 10\n",
    )
    .replace("  expect     params 197080, output 64x2x2\n", "")
)
# One block of V2_VIDEO (scale3's: Q stride, K/V pooling, rel-pos, residual pooling, a width
# change): inductor's compile time goes by the kernels, so a smaller input would not help.
V2_BLOCK = V2_VIDEO.replace("    scale2      1     32    1     1x1x1\n", "")
SPECS = {
    "v1_video": (V1_VIDEO, (3, 4, 32, 32)),
    "v2_video": (V2_VIDEO, (3, 4, 32, 32)),
    "image": (IMAGE, (3, 32, 32)),
    "pvt": (PVT, (3, 64, 64)),
    "pvt_linear": (PVT_LINEAR, (3, 64, 64)),
    "sam2": (SAM2, (3, 64, 64)),
    "hiera": (HIERA, (3, 64, 64)),
    "detectron2": (DET, (3, 64, 64)),
}


def model_and_input(which: str, **build: object) -> tuple[nn.Module, torch.Tensor]:
    text, size = SPECS[which]
    torch.manual_seed(0)
    gm = mvitdsl.build(mvitdsl.load_spec(text=text), **build)  # type: ignore[arg-type]
    return gm, torch.randn(2, *size, generator=torch.Generator().manual_seed(1))


def train_steps(
    gm: nn.Module, x: torch.Tensor, dtype: torch.dtype | None, steps: int = 3
) -> list[float]:
    """SGD steps under autocast (fp16 through a GradScaler); the losses."""
    opt = torch.optim.SGD(gm.parameters(), lr=0.05)
    scaler = torch.amp.GradScaler("cpu", enabled=dtype == torch.float16)
    labels = torch.arange(x.shape[0]) % 10
    losses = []
    gm.train()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            loss = nn.functional.cross_entropy(gm(x), labels)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("which", list(SPECS))
def test_autocast_training_steps(which: str, dtype: torch.dtype) -> None:
    gm, x = model_and_input(which)
    assert layer.is_optimized(gm)
    # the detectron2 model's first fp16 steps overflow at the GradScaler's initial scale (2^16),
    # which skips them while it backs off (3 steps, measured); then it trains
    losses = train_steps(gm, x, dtype, steps=6 if which == "detectron2" else 3)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in gm.parameters())


@pytest.mark.parametrize("which", list(SPECS))
def test_pure_bf16_build_trains(which: str) -> None:
    gm, x = model_and_input(which, dtype=torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for p in gm.parameters())
    losses = train_steps(gm, x.bfloat16(), None)
    assert all(torch.isfinite(torch.tensor(losses)))


def test_layer_and_semantic_graph_give_the_same_numbers() -> None:
    """Each branch of the layer computes the semantic call's numbers (eval and training)."""
    gm, x = model_and_input("v2_video")
    gm.eval()
    with torch.no_grad():
        fast = gm(x)
    loss = gm(x).sum()
    loss.backward()
    g_fast = [p.grad.clone() for p in gm.parameters()]
    gm.zero_grad()
    layer.semantic(gm)
    assert not layer.is_optimized(gm)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), fast, rtol=0, atol=1e-6)
    gm(x).sum().backward()
    for g, p in zip(g_fast, gm.parameters()):
        torch.testing.assert_close(p.grad, g, rtol=1e-5, atol=1e-6)


def test_auto_applies_the_layer_for_cpu_builds_only() -> None:
    assert layer.wanted("auto", None) and layer.wanted("auto", "cpu")
    assert not layer.wanted("auto", "cuda") and not layer.wanted("auto", "meta")
    assert layer.wanted(True, "cuda") and not layer.wanted(False, "cpu")
    with pytest.raises(ValueError):
        layer.wanted("fast", None)


def test_semantic_graph_context_restores_the_layer() -> None:
    gm, _ = model_and_input("v1_video")
    with layer.semantic_graph(gm):
        assert not layer.is_optimized(gm)
    assert layer.is_optimized(gm)


@pytest.mark.parametrize(
    ("backend", "which"),
    [
        ("eager", "v2_video"),
        ("inductor", "v2_block"),  # the `full` twin below compiles both blocks
        pytest.param("inductor", "v2_video", marks=pytest.mark.full),
    ],
)
def test_compiled_training_equals_eager(backend: str, which: str) -> None:
    """torch.compile(fullgraph=True) of the CPU-layer model: same loss and gradients."""
    if which == "v2_block":
        torch.manual_seed(0)
        gm = mvitdsl.build(mvitdsl.load_spec(text=V2_BLOCK))
        x = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(1))
        assert len(gm.blocks) == 1
    else:
        gm, x = model_and_input(which)
    gm.eval()  # no dropout / drop path: deterministic
    labels = torch.arange(x.shape[0]) % 10
    nn.functional.cross_entropy(gm(x), labels).backward()
    eager = {k: p.grad.clone() for k, p in gm.named_parameters()}
    gm.zero_grad(set_to_none=True)
    compiled = torch.compile(gm, backend=backend, fullgraph=True)
    nn.functional.cross_entropy(compiled(x), labels).backward()
    for k, p in gm.named_parameters():
        torch.testing.assert_close(p.grad, eager[k], rtol=1e-4, atol=1e-5, msg=k)
