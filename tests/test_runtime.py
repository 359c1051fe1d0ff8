"""The CPU layer's pool conv (the registered op mvitdsl::pool_conv): its hand-written CPU
backward equals autograd through F.conv2d / F.conv3d; the op passes torch.library.opcheck.
Its max pool and rel-pos bias equal the semantic calls, gradients included."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
import torch  # noqa: E402

hypothesis = pytest.importorskip("hypothesis")
import torch.nn.functional as F  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

import mvitdsl  # noqa: E402
from mvitdsl.backend import kernels, runtime  # noqa: E402
from mvitdsl.backend.passes import optimize as layer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


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


# -- the max pool and the rel-pos bias (issue 22, fourth wave): the semantic calls' numbers and
# gradients, on the layouts the emitted graph gives them


def token_view(tokens: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor:
    """(B, L, C) tokens as the emitted graph hands them to a pool: (B, C, *grid), a view."""
    return tokens.transpose(1, 2).unflatten(2, grid)


@st.composite
def pools(draw: st.DrawFn) -> tuple:
    dims = draw(st.sampled_from([2, 3]))
    kernel = [draw(st.integers(1, 3)) for _ in range(dims)]
    stride = [draw(st.integers(1, 2)) for _ in range(dims)]
    if dims == 3 and draw(st.booleans()):
        kernel[0] = stride[0] = 1  # the pool that keeps time (2-D pools of the frames)
    padding = [draw(st.integers(0, k // 2)) for k in kernel]
    grid = tuple(draw(st.integers(k, k + 4)) for k in kernel)
    batch, channels = draw(st.integers(1, 2)), draw(st.integers(1, 5))
    wide = draw(st.booleans())  # a slice of a wider projection (not dense) or the whole of it
    return grid, tuple(kernel), tuple(stride), tuple(padding), batch, channels, wide


@settings(max_examples=40, deadline=None)
@given(pools(), st.integers(0, 2**16))
def test_max_pool_equals_aten_values_and_gradients(case: tuple, seed: int) -> None:
    """Whole numbers in a small range, so windows hold ties: the gradient must go to the
    same (first) maximum as aten's."""
    grid, kernel, stride, padding, batch, channels, wide = case
    g = torch.Generator().manual_seed(seed)
    length = 1
    for n in grid:
        length *= n
    width = 3 * channels if wide else channels
    tokens = torch.randint(-3, 4, (batch, length, width), generator=g).float()
    pool = F.max_pool3d if len(grid) == 3 else F.max_pool2d
    results = []
    for fn in (pool, kernels.max_pool):
        leaf = tokens.clone().requires_grad_()
        out = fn(token_view(leaf[..., :channels], grid), kernel, stride, padding)
        out.backward(torch.arange(out.numel(), dtype=out.dtype).reshape(out.shape))
        results.append((out.detach(), leaf.grad))
    (ref, ref_grad), (ours, our_grad) = results
    torch.testing.assert_close(ours, ref, atol=0, rtol=0)
    torch.testing.assert_close(our_grad, ref_grad, atol=0, rtol=0)


def test_max_pool_of_a_batch_one_view_runs_the_channels_last_kernel() -> None:
    """A batch-1 token view is channels-last but for its batch stride; the layer's pool reads
    it with canonical strides (aten's channels-last kernel answers channels-last), in place."""
    x = token_view(torch.randn(1, 64, 8), (8, 8))
    with torch.no_grad():
        plain = F.max_pool2d(x, 3, 2, 1)
        ours = kernels.max_pool(x, (3, 3), (2, 2), (1, 1))
    assert not plain.is_contiguous(memory_format=torch.channels_last)
    assert ours.is_contiguous(memory_format=torch.channels_last)
    assert kernels._canonical(x).data_ptr() == x.data_ptr()  # a view, no copy
    torch.testing.assert_close(ours, plain, atol=0, rtol=0)


@pytest.mark.parametrize("cls", [False, True])
@pytest.mark.parametrize("grid", [(4, 6), (2, 4, 6)])
def test_max_pool_saves_no_copy_of_its_input_in_training(cls: bool, grid: tuple) -> None:
    """What backward keeps is the tokens themselves (held anyway), whether the view is dense or
    the tokens after a cls token: no copy of them saved on top."""
    length = 1
    for n in grid:
        length *= n
    tokens = torch.randn(2, cls + length, 5, requires_grad=True)
    kernel, stride, padding = ((3, 3), (2, 2), (1, 1))
    if len(grid) == 3:
        kernel, stride, padding = (1, *kernel), (1, *stride), (0, *padding)
    saved: list[torch.Tensor] = []

    def keep(t: torch.Tensor) -> torch.Tensor:
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        out = kernels.max_pool(token_view(tokens[:, cls:], grid), kernel, stride, padding)
    floats = [t for t in saved if t.is_floating_point()]
    storage = tokens.untyped_storage().data_ptr()
    assert floats and all(t.untyped_storage().data_ptr() == storage for t in floats)
    assert out.requires_grad


class Copies(TorchDispatchMode):
    """Counts the copies (clone, copy_) whose result has `numel` elements."""

    def __init__(self, numel: int) -> None:
        super().__init__()
        self.numel, self.count = numel, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = str(func.overloadpacket.__name__)
        if name in ("clone", "copy_") and out.numel() == self.numel:
            self.count += 1
        return out


def full_size_copies(fn, q, q_grid, k_grid, *rest):
    lq, lk = (g[0] * g[1] * g[2] for g in (q_grid, k_grid))
    with Copies(q.shape[0] * q.shape[1] * lq * lk) as mode:
        fn(q, q_grid, k_grid, *rest)
    return mode.count


@pytest.mark.parametrize(
    ("q_grid", "k_grid", "video", "cls"),
    [((1, 8, 8), (1, 4, 4), False, False), ((2, 4, 4), (2, 2, 2), True, True)],
)
@pytest.mark.parametrize("train", [False, True])
def test_rel_pos_bias_equals_runtime_and_is_dense(
    q_grid: tuple, k_grid: tuple, video: bool, cls: bool, train: bool
) -> None:
    g = torch.Generator().manual_seed(0)
    B, heads, d = 1, 2, 4
    lq = q_grid[0] * q_grid[1] * q_grid[2] + cls
    q = torch.randn(B, lq, heads, d, generator=g).transpose(1, 2)  # the emitted view
    tables = [torch.randn(15, d, generator=g) for _ in range(3)]
    t_table = tables[0] if video else None
    if train:
        for t in (q, *tables):
            t.requires_grad_()
    args = (q_grid, k_grid, t_table, tables[1], tables[2], cls)
    with torch.set_grad_enabled(train):
        ours, ref = kernels.rel_pos_bias(q, *args), runtime.rel_pos_bias(q, *args)
    torch.testing.assert_close(ours, ref, atol=0, rtol=0)
    assert ours.is_contiguous()
    if not cls:  # no full-size copy (the semantic sum takes einsum's layout: its reshape copies)
        with torch.set_grad_enabled(train):
            assert full_size_copies(runtime.rel_pos_bias, q, *args) > 0
            assert full_size_copies(kernels.rel_pos_bias, q, *args) == 0
    if train:
        inputs = [q, *(tables if video else tables[1:])]
        weight = torch.randn(ref.shape, generator=g)
        mine = torch.autograd.grad((ours * weight).sum(), inputs)
        theirs = torch.autograd.grad((ref * weight).sum(), inputs)
        for a, b in zip(mine, theirs):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def assert_layer_round_trip(name: str, train: bool, fast: str, semantic: str) -> None:
    """The built (CPU-layer) graph of spec `name` at 64x64 calls `fast` and not `semantic`;
    `layer.semantic` restores `semantic`, and the output stays the same (same random state for
    drop paths in training)."""
    spec = mvitdsl.load_spec(ROOT / "specs" / f"{name}.mv", input_size=(3, 64, 64))
    torch.manual_seed(0)
    gm = mvitdsl.build(spec).train(train)
    code = "".join(b.code for b in gm.blocks)
    assert f"{fast}(" in code and f"{semantic}(" not in code
    x = torch.randn(2 if train else 1, 3, 64, 64)
    outs = []
    with torch.set_grad_enabled(train):
        for undo in (False, True):
            if undo:
                layer.semantic(gm)
                assert f"{semantic}(" in "".join(b.code for b in gm.blocks)
            torch.manual_seed(1)
            outs.append(gm(x))
    torch.testing.assert_close(outs[1], outs[0], atol=1e-4, rtol=0)


def test_optimize_retargets_the_skip_pools_and_semantic_restores_them() -> None:
    assert_layer_round_trip("mvitv2_t_image", False, "kernels_max_pool", "functional.max_pool2d")


@st.composite
def attention_cases(draw: st.DrawFn) -> tuple:
    batch, heads = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    lq = draw(st.sampled_from([1, 4, 16, 65, 256, 257, 300]))
    lk = draw(st.sampled_from([1, 4, 16, 65, 256, 257]))
    mask = draw(st.sampled_from(["none", "constant", "learned", "broadcast"]))
    train = draw(st.booleans())
    return batch, heads, lq, lk, draw(st.sampled_from([4, 8])), mask, train


@settings(max_examples=40, deadline=None)
@given(attention_cases(), st.integers(0, 2**16))
def test_attention_equals_sdpa_values_and_gradients(case: tuple, seed: int) -> None:
    """kernels.attention (three plain ops in training for short sequences or a mask that
    records a gradient, SDPA otherwise) gives SDPA's outputs and gradients."""
    batch, heads, lq, lk, dim, mask_kind, train = case
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, heads, lq, dim, generator=g, requires_grad=train)
    k = torch.randn(batch, heads, lk, dim, generator=g, requires_grad=train)
    v = torch.randn(batch, heads, lk, dim, generator=g, requires_grad=train)
    mask = None
    if mask_kind != "none":
        shape = (1, heads, lq, lk) if mask_kind == "broadcast" else (batch, heads, lq, lk)
        mask = torch.randn(shape, generator=g, requires_grad=train and mask_kind != "constant")
    plain = kernels._short_attention(q, k, v, mask)
    learned = mask is not None and mask.requires_grad
    assert plain == (train and (learned or max(lq, lk) <= kernels.SHORT_ATTENTION))
    inputs = [t for t in (q, k, v, mask) if t is not None and t.requires_grad]
    outs = []
    for fn in (F.scaled_dot_product_attention, kernels.attention):
        out = fn(q, k, v, attn_mask=mask, scale=dim**-0.4)
        grads = torch.autograd.grad((out * out).sum(), inputs) if train else ()
        outs.append((out, *grads))
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)  # SDPA rounds too: with one
        # key the exact q gradient is 0, SDPA gave 2.3e-5, the plain ops 0


def test_attention_keeps_sdpa_in_inference_and_other_dtypes() -> None:
    q = torch.randn(2, 2, 16, 8, requires_grad=True)
    with torch.no_grad():
        assert not kernels._short_attention(q, q, q, None)
    assert kernels._short_attention(q, q, q, None)
    assert not kernels._short_attention(q.double(), q.double(), q.double(), None)
    bool_mask = torch.ones(2, 2, 16, 16, dtype=torch.bool)
    assert not kernels._short_attention(q, q, q, bool_mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not kernels._short_attention(q, q, q, None)


@st.composite
def linear_cases(draw: st.DrawFn) -> tuple:
    fan_in, fan_out = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    lead = draw(st.lists(st.integers(1, 5), min_size=1, max_size=3))
    return fan_in, fan_out, lead, draw(st.booleans()), draw(st.booleans())


@settings(max_examples=40, deadline=None)
@given(linear_cases(), st.integers(0, 2**16))
def test_linear_equals_aten_values_and_gradients(case: tuple, seed: int) -> None:
    """kernels.Linear (oneDNN's matmul; in training the autograd function whose weight
    gradient takes oneDNN for a narrowing layer, aten's mm otherwise) gives nn.Linear's
    outputs and gradients, with and without bias, in training and in inference."""
    fan_in, fan_out, lead, bias, train = case
    torch.manual_seed(seed)
    plain = torch.nn.Linear(fan_in, fan_out, bias=bias)
    fast = torch.nn.Linear(fan_in, fan_out, bias=bias)
    fast.load_state_dict(plain.state_dict())
    fast.__class__ = kernels.Linear
    x = torch.randn(*lead, fan_in, requires_grad=train)
    outs = []
    for module in (plain, fast):
        with torch.set_grad_enabled(train):
            out = module(x)
        assert (out.grad_fn is not None) == train
        params = [x, *module.parameters()]
        grads = torch.autograd.grad((out * out).sum(), params) if train else ()
        outs.append((out, *grads))
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_weight_gradient_takes_onednn_for_a_narrowing_layer() -> None:
    rows, x = torch.randn(30, 8), torch.randn(30, 24)  # in 24 > out 8
    torch.testing.assert_close(kernels._weight_grad(rows, x), rows.t() @ x)
    torch.testing.assert_close(kernels._weight_grad(x, rows), x.t() @ rows)
    assert kernels._weight_grad(rows, x).is_contiguous()


def test_optimize_retargets_attention_and_swin_windows_and_semantic_restores() -> None:
    assert_layer_round_trip("swin_t", True, "kernels_window_attention", "runtime_window_attention")


def test_short_attention_keeps_q_k_v_and_the_softmax_only() -> None:
    """In training the short, maskless path keeps for backward the strided q, k, v it was given
    (views of the qkv projection, no copies) and the softmax: as SDPA's flash kernel keeps q, k,
    v, plus the (short) scores; autograd through the matmuls kept copies of q and k too."""
    qkv = torch.randn(2, 16, 3, 2, 8, requires_grad=True)
    q, k, v = (t.transpose(1, 2) for t in qkv.unbind(2))  # (2, heads 2, 16, 8), strided
    kept: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        kept.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = kernels.attention(q, k, v)
    base = qkv.untyped_storage().data_ptr()
    new = [t for t in kept if t.untyped_storage().data_ptr() != base]
    assert sum(t.numel() for t in new) == 2 * 2 * 16 * 16  # the softmax alone
    out.sum().backward()
    assert qkv.grad is not None and torch.isfinite(qkv.grad).all()
