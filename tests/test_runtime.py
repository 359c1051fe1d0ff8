"""The CPU layer's pool conv (the registered op mvitdsl::pool_conv): its hand-written CPU
backward equals autograd through F.conv2d / F.conv3d; the op passes torch.library.opcheck."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
import torch  # noqa: E402

hypothesis = pytest.importorskip("hypothesis")
import torch.nn.functional as F  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mvitdsl.backend import kernels, runtime  # noqa: E402


@st.composite
def conv_cases(draw: st.DrawFn) -> tuple:
    nd = draw(st.sampled_from([2, 3]))
    size = draw(st.lists(st.integers(1, 9), min_size=nd, max_size=nd))
    kernel = draw(st.lists(st.sampled_from([1, 3, 5]), min_size=nd, max_size=nd))
    stride = draw(st.lists(st.integers(1, 4), min_size=nd, max_size=nd))
    layout = draw(st.sampled_from(["contiguous", "channels_last", "strided view"]))
    head_dim = draw(st.sampled_from([1, 3, 4]))
    heads = draw(st.sampled_from([1, 2, 3]))
    return nd, size, kernel, stride, layout, head_dim, heads


def make_input(nd: int, size: list[int], layout: str, channels: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    if layout == "strided view":  # as the emitter's pools read q: a slice of a (B, L, 3C) qkv
        qkv = torch.randn(
            2, torch.Size(size).numel(), 3 * channels, generator=gen, dtype=torch.float64
        )
        x = qkv.unflatten(2, (3, channels)).unbind(2)[1].transpose(1, 2).unflatten(2, size)
    else:
        x = torch.randn(2, channels, *size, generator=gen, dtype=torch.float64)
        if layout == "channels_last":
            fmt = torch.channels_last_3d if nd == 3 else torch.channels_last
            x = x.contiguous(memory_format=fmt)
    return x.detach().requires_grad_(True)


@settings(max_examples=60, deadline=None)
@given(conv_cases())
def test_depthwise_backward_equals_autograd_through_conv(case: tuple) -> None:
    nd, size, kernel, stride, layout, head_dim, heads = case
    channels = head_dim * heads
    padding = [k // 2 for k in kernel]  # MViT's pools: padding k // 2
    if any(n + 2 * p < k for n, p, k in zip(size, padding, kernel)):
        return  # no output position; F.conv refuses it too
    x = make_input(nd, size, layout, channels)
    w = torch.randn(head_dim, 1, *kernel, dtype=torch.float64, requires_grad=True)
    conv = F.conv3d if nd == 3 else F.conv2d  # the per-head filters repeated over the heads
    expected = conv(x, w.repeat(heads, *(1,) * (nd + 1)), None, stride, padding, 1, channels)
    grad = torch.randn_like(expected)
    want = torch.autograd.grad(expected, (x, w), grad)
    out = torch.ops.mvitdsl.pool_conv(x, w, list(stride), list(padding))
    got = torch.autograd.grad(out, (x, w), grad)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    for g, e in zip(got, want):
        torch.testing.assert_close(g, e, rtol=0, atol=1e-10)


def test_cpu_layer_uses_the_op_only_while_training_video() -> None:
    x = torch.randn(2, 4, 3, 6, 6, requires_grad=True)
    w = torch.randn(2, 1, 3, 3, 3, requires_grad=True)  # 2 heads of 2 channels
    out = kernels.pool_conv(x, w, (1, 2, 2), (1, 1, 1))
    assert "pool_conv" in type(out.grad_fn).__name__.lower()
    with torch.no_grad():
        plain = kernels.pool_conv(x, w, (1, 2, 2), (1, 1, 1))
    assert plain.grad_fn is None
    torch.testing.assert_close(plain, out.detach(), rtol=0, atol=0)
    image = kernels.pool_conv(x[:, :, 0], w[:, :, 0], (2, 2), (1, 1))
    assert type(image.grad_fn).__name__ == "ConvolutionBackward0"  # oneDNN's 2-D backward
    semantic = runtime.depthwise_conv(x, w, (1, 2, 2), (1, 1, 1))
    torch.testing.assert_close(out, semantic, rtol=0, atol=0)


@pytest.mark.parametrize("stride", [(1, 1, 1), (1, 2, 2)])
def test_pool_conv_op_passes_opcheck(stride: tuple[int, ...]) -> None:
    x = torch.randn(2, 6, 3, 6, 6).transpose(1, 4).contiguous().transpose(1, 4)
    w = torch.randn(3, 1, 3, 3, 3)
    x.requires_grad_(True), w.requires_grad_(True)
    result = torch.library.opcheck(
        torch.ops.mvitdsl.pool_conv.default, (x, w, list(stride), [1, 1, 1])
    )
    assert set(result.values()) == {"SUCCESS"}, result


def test_pool_conv_backward_default_kernel_equals_cpu_kernel() -> None:
    """The kernel other devices get (aten's convolution_backward) and the CPU one agree."""
    x = torch.randn(2, 6, 4, 7, 7, dtype=torch.float64)
    w = torch.randn(3, 1, 3, 3, 3, dtype=torch.float64)
    grad = torch.randn(2, 6, 4, 4, 4, dtype=torch.float64)
    cpu = kernels._cpu_backward(grad, x, w, [1, 2, 2], [1, 1, 1])
    aten = kernels._aten_backward(grad, x, w, [1, 2, 2], [1, 1, 1])
    for a, b in zip(cpu, aten):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_registration_is_idempotent() -> None:
    """An artifact and mvitdsl (or two loads of the layer) may share one process."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "kernels_again", kernels.__file__, submodule_search_locations=None
    )
    assert spec is not None
    before = torch.ops.mvitdsl.pool_conv.default
    kernels._register()  # a second call defines nothing
    assert torch.ops.mvitdsl.pool_conv.default is before
