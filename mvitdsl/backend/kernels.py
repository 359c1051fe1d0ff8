"""The CPU-tuned replacements that the optimize pass (passes/optimize.py) swaps into the
semantic graph, and the registered op they use.

The emitter writes the reference semantics with standard torch ops (`runtime`: a depthwise
`F.conv3d`/`F.conv2d` for the pools, a functional relative-position bias, SDPA, LayerNorm). The
pass `optimize` retargets two of those calls to functions of this module and swaps nn.Linear's
class (and `semantic` undoes both: artifacts and exports are written from the semantic graph):

- `pool_conv` for `runtime.depthwise_conv`: in inference a dense channels-last copy before
  the conv; while training a 3-D pool, the registered op `mvitdsl::pool_conv`, whose
  backward (`mvitdsl::pool_conv_backward`) has a CPU kernel faster than oneDNN's depthwise
  backward (benchmarks/pool_conv.py) and aten's `convolution_backward` (cuDNN) elsewhere;
- `rel_pos_bias` for `runtime.rel_pos_bias`: in inference the cls-padded bias written into
  its buffer (no zero-filled full-size tensor, no padding copy);
- `Linear` for `nn.Linear` (the pass swaps the module's class, parameters untouched): for fp32
  on the CPU oneDNN's matmul (forward and input gradient), which beats aten's MKL `addmm`/`mm`
  on these shapes (docs/PERFORMANCE.md, issue 22).

Every branch here decides on the tensors at run time (device, grad mode, autocast), so a model
moved with `.to("cuda")` after building, or run under autocast, stays correct, and torch.compile
traces the same kernels eager runs (the registered ops are opaque to it). The one test of
`torch.compiler.is_compiling()` picks how `Linear` reaches its kernels, not which: eager calls
them directly (no custom-op dispatch in Python), torch.compile through `mvitdsl::linear`. Each
branch computes the same numbers as the semantic call (oneDNN's matmul up to the order of its
sums: within 1e-5, tests/test_artifact.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import runtime

NAMESPACE = "mvitdsl"


# -- the registered ops (namespaced, defined once per process even if this file is loaded twice)


def _defined(name: str) -> bool:
    try:
        getattr(getattr(torch.ops, NAMESPACE), name)
    except (AttributeError, RuntimeError):
        return False
    return True


def _conv(x: Tensor, weight: Tensor, stride: Sequence[int], padding: Sequence[int]) -> Tensor:
    return runtime.depthwise_conv(x, weight, tuple(stride), tuple(padding))


def _aten_backward(
    grad: Tensor, x: Tensor, weight: Tensor, stride: Sequence[int], padding: Sequence[int]
) -> tuple[Tensor, Tensor]:
    """Both gradients through aten's convolution_backward (cuDNN on CUDA)."""
    channels = x.shape[1]
    full = runtime.per_channel(weight, channels)
    ones = [1] * (x.dim() - 2)
    zeros = [0] * (x.dim() - 2)
    gx, gw, _ = torch.ops.aten.convolution_backward(
        grad, x, full, None, list(stride), list(padding), ones, False, zeros, channels,
        [True, True, False],
    )  # fmt: skip
    return _laid_out(gx, gw.reshape(-1, weight.shape[0], *gw.shape[1:]).sum(0))


def _laid_out(gx: Tensor, gw: Tensor) -> tuple[Tensor, Tensor]:
    """The gradients in the layout every kernel (and the fake one) returns: the input's
    channels-last, the filters' contiguous."""
    return gx.contiguous(memory_format=_memory_format(gx)), gw.contiguous()


def _backward_fake(
    grad: Tensor, x: Tensor, weight: Tensor, stride: Sequence[int], padding: Sequence[int]
) -> tuple[Tensor, Tensor]:
    gx = torch.empty(x.shape, dtype=grad.dtype, device=x.device, memory_format=_memory_format(x))
    return gx, torch.empty(weight.shape, dtype=grad.dtype, device=weight.device)


def _cpu_backward(
    grad: Tensor, x: Tensor, weight: Tensor, stride: Sequence[int], padding: Sequence[int]
) -> tuple[Tensor, Tensor]:
    """The input gradient as a forward conv, the weight gradient as one multiply-sum per
    kernel tap: faster than oneDNN's 3-D depthwise backward, with less scratch memory."""
    kernel = weight.shape[2:]
    if not all(p < k for p, k in zip(padding, kernel)):  # never so for MViT pools
        return _aten_backward(grad, x, weight, stride, padding)
    stride, padding = tuple(stride), tuple(padding)
    grad = grad.contiguous(memory_format=_memory_format(grad))
    full = runtime.per_channel(weight, x.shape[1])
    gx = depthwise_grad_input(grad, full, x.shape[2:], stride, padding)
    gw = depthwise_grad_weight(grad, x, kernel, stride, padding)
    return _laid_out(gx, gw.reshape(-1, weight.shape[0], *gw.shape[1:]).sum(0))


def _register() -> None:
    if _defined("pool_conv"):
        return
    conv = torch.library.custom_op(f"{NAMESPACE}::pool_conv", mutates_args=())(_conv)
    conv.register_fake(_conv)  # aten's conv on fake tensors: the real output's metadata

    def backward_default(
        grad: Tensor, x: Tensor, weight: Tensor, stride: Sequence[int], padding: Sequence[int]
    ) -> tuple[Tensor, Tensor]:
        return _aten_backward(grad, x, weight, stride, padding)

    bwd = torch.library.custom_op(f"{NAMESPACE}::pool_conv_backward", mutates_args=())(
        backward_default
    )
    bwd.register_kernel("cpu")(_cpu_backward)
    bwd.register_fake(_backward_fake)

    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        x, weight, stride, padding = inputs
        ctx.save_for_backward(x, weight)  # the per-head filters, not their repeats
        ctx.stride, ctx.padding = stride, padding

    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, None, None]:
        x, weight = ctx.saved_tensors
        op = getattr(torch.ops, NAMESPACE).pool_conv_backward
        gx, gw = op(grad, x, weight, ctx.stride, ctx.padding)
        return gx, gw, None, None

    conv.register_autograd(backward, setup_context=setup_context)


_register()


def _autocast(*tensors: Tensor) -> tuple[Tensor, ...]:
    """The tensors in the autocast dtype when autocast is on for their device (what autocast
    does to aten's conv; a registered op is not cast by itself)."""
    device = tensors[0].device.type
    if not torch.is_autocast_enabled(device):
        return tensors
    dtype = torch.get_autocast_dtype(device)
    return tuple(t.to(dtype) if t.is_floating_point() else t for t in tensors)


# -- the replacements


def pool_conv(x: Tensor, weight: Tensor, stride: Any, padding: Any) -> Tensor:
    """`runtime.depthwise_conv`, tuned for the CPU (see the module docstring)."""
    if not runtime.records_grad(x, weight):
        if x.device.type == "cpu":  # oneDNN's depthwise forward is faster on dense NDHWC
            x = x.contiguous(memory_format=_memory_format(x))
        return runtime.depthwise_conv(x, weight, stride, padding)
    if x.dim() != 5 or x.device.type != "cpu":  # oneDNN's 2-D backward wins; cuDNN elsewhere
        return runtime.depthwise_conv(x, weight, stride, padding)
    x, weight = _autocast(x, weight)
    op = getattr(torch.ops, NAMESPACE).pool_conv
    out: Tensor = op(x, weight, list(stride), list(padding))
    return out


def _axis_terms(
    q: Tensor, q_grid: Any, k_grid: Any, tables: tuple[Tensor | None, Tensor, Tensor], cls: bool
) -> tuple[Tensor | None, Tensor, Tensor]:
    """`runtime.rel_pos_terms`'s per-axis logits (B, h, qt, qh, qw, k_axis) for t, h and w, each
    dense: einsum leaves them permuted (heads inside the grid axes), and the full-size sum of
    two such terms takes their layout, which its reshape and SDPA's mask then copy."""
    r_q = q[:, :, 1:] if cls else q
    r_q = r_q.reshape(*r_q.shape[:2], *q_grid, r_q.shape[-1])

    def term(pattern: str, a: int, table: Tensor) -> Tensor:
        rows = runtime.rel_table(table, q_grid[a], k_grid[a])
        return torch.einsum(f"bythwc,{pattern}kc->bythwk", r_q, rows).contiguous()

    t, h, w = tables
    return None if t is None else term("t", 0, t), term("h", 1, h), term("w", 2, w)


def rel_pos_bias(
    q: Tensor,
    q_grid: tuple[int, int, int],
    k_grid: tuple[int, int, int],
    rel_pos_t: Tensor | None,
    rel_pos_h: Tensor,
    rel_pos_w: Tensor,
    cls: bool,
) -> Tensor:
    """`runtime.rel_pos_bias` from dense per-axis terms (the same sums in the same order); in
    inference the cls-padded bias is written into its buffer."""
    bias_t, bias_h, bias_w = _axis_terms(q, q_grid, k_grid, (rel_pos_t, rel_pos_h, rel_pos_w), cls)
    bias = bias_h[..., None, :, None] + bias_w[..., None, None, :]  # (B, h, qt, qh, qw, 1, kh, kw)
    B, heads = bias.shape[:2]
    lq, lk = q_grid[0] * q_grid[1] * q_grid[2], k_grid[0] * k_grid[1] * k_grid[2]
    if not cls or runtime.records_grad(q, rel_pos_h):
        if bias_t is not None:
            bias = bias + bias_t[..., :, None, None]
        bias = bias.reshape(B, heads, lq, lk)
        return F.pad(bias, (1, 0, 1, 0)) if cls else bias
    out = bias.new_empty(B, heads, lq + 1, lk + 1)
    out[:, :, 0, :] = 0
    out[:, :, 1:, 0] = 0
    body = out[:, :, 1:, 1:].view(B, heads, *q_grid, *k_grid)  # a strided view of the buffer
    body.copy_(bias)  # broadcast over kt
    if bias_t is not None:
        body.add_(bias_t[..., :, None, None])  # (torch.add(..., out=body) would be one pass
        # less, but dynamo refuses a non-contiguous out=, and this layer must trace as it runs)
    return out


def max_pool(x: Tensor, kernel: Any, stride: Any, padding: Any) -> Tensor:
    """`F.max_pool2d/3d(x, kernel, stride, padding)` on the CPU by aten's channels-last kernel:
    on x with canonical channels-last strides (a view of the tokens, of batch 1 above all, has
    strides that send aten to its generic kernel: 5.5 vs 0.3 ms at 192x56x56), and a 3-D pool
    that does not pool time as a 2-D pool of the frames (aten's 3-D kernel: 25 vs 1.3 ms at
    96x8x56x56). The same maxima, and the gradient to the same first maximum. In training a
    view that is not dense (the tokens after a cls token) keeps the semantic pool: the copy
    would be saved for backward, on top of the tokens the view keeps."""
    pool = F.max_pool3d if x.dim() == 5 else F.max_pool2d
    if x.device.type != "cpu" or (runtime.records_grad(x) and not _dense(x)):
        return pool(x, kernel, stride, padding)
    if x.dim() == 5 and _keeps_time(kernel, stride, padding):
        B, C, T = x.shape[:3]
        frames = _canonical(x.movedim(2, 1).flatten(0, 1))  # (B*T, C, H, W)
        out = F.max_pool2d(frames, kernel[1:], stride[1:], padding[1:])
        return out.reshape(B, T, *out.shape[1:]).movedim(1, 2)
    return pool(_canonical(x), kernel, stride, padding)


def _keeps_time(kernel: Any, stride: Any, padding: Any) -> bool:
    """Whether a 3-D pool's (kernel, stride, padding) leave time alone: (1, 1, 0) first."""
    given = (kernel, stride, padding)
    return all(isinstance(a, (tuple, list)) and a[0] == v for a, v in zip(given, (1, 1, 0)))


def _dense(x: Tensor) -> bool:
    """Whether x (B, C, *spatial) is dense channels-last (`_canonical` of it is a view)."""
    return x.movedim(1, -1).is_contiguous()


def _canonical(x: Tensor) -> Tensor:
    """x (B, C, *spatial) with canonical channels-last strides: a view when x is dense
    channels-last (whatever the strides of its size-1 axes), else one copy."""
    last = x.movedim(1, -1)
    return last.reshape(-1).view(last.shape).movedim(-1, 1)


# attention: the longest query and key sequences that `attention` computes as three plain ops
# in training without a mask that records a gradient (docs/PERFORMANCE.md, issue 22: per shape)
SHORT_ATTENTION = 256


def attention(
    q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None = None, scale: float | None = None
) -> Tensor:
    """`F.scaled_dot_product_attention(q, k, v, attn_mask=, scale=)`; in fp32 training on the
    CPU, for short sequences, as scores, softmax and a matmul: the backward of SDPA's flash
    kernel pays a per-block overhead that dominates small windows (Hiera's mask units, Swin's
    windows, the last stages), and with a mask that records a gradient (the rel-pos bias) SDPA
    takes its own math path, slower than this one. In inference the flash kernel is as fast or
    faster (it reads the strided q, k, v that the matmuls would copy). The same numbers up to
    the order of the sums; autograd keeps the softmax of the (short) scores, which SDPA does not."""
    if not _short_attention(q, k, v, attn_mask):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, scale=scale)
    return plain(q, k, v, attn_mask, scale)


def plain(
    q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None = None, scale: float | None = None
) -> Tensor:
    """The plain ops `attention` takes, softmax(q kᵀ · scale + attn_mask) v: maskless,
    `_SoftmaxKept` (keeps q, k, v and the softmax, no copies of q and k); with a mask, autograd
    through `_masked` (keeps the softmax, as SDPA's math path does)."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    if attn_mask is None:
        out: Tensor = _SoftmaxKept.apply(q, k, v, scale)
        return out
    return _masked(q, k, v, attn_mask, scale)


def _masked(q: Tensor, k: Tensor, v: Tensor, mask: Tensor, scale: float) -> Tensor:
    """softmax(q kᵀ · scale + mask) v as three ops, the scores scaled and masked in place."""
    scores = torch.matmul(q, k.transpose(-2, -1)).mul_(scale)
    scores = scores.add_(mask) if mask.shape == scores.shape else scores + mask
    return torch.matmul(scores.softmax(-1), v)


class _SoftmaxKept(torch.autograd.Function):
    """softmax(q kᵀ · scale) v by plain ops that keep for backward q, k, v (the inputs, kept
    alive by the qkv projection's output anyway) and the softmax: autograd through the plain
    ops would also keep the copies the matmuls make of strided q and k (+21 MiB in a
    hiera_t_image training step at 2x3x224x224, above timm's peak); recomputing the softmax
    in backward instead, as SDPA's flash kernel does, costs what the plain ops save."""

    @staticmethod
    def forward(ctx: Any, q: Tensor, k: Tensor, v: Tensor, scale: float) -> Tensor:
        probs = torch.matmul(q, k.transpose(-2, -1)).mul_(scale).softmax(-1)
        ctx.save_for_backward(q, k, v, probs)
        ctx.scale = scale
        return torch.matmul(probs, v)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:
        q, k, v, probs = ctx.saved_tensors
        grad_v = torch.matmul(probs.transpose(-2, -1), grad)
        grad_p = torch.matmul(grad, v.transpose(-2, -1))
        grad_s = grad_p.sub_((grad_p * probs).sum(-1, keepdim=True)).mul_(probs).mul_(ctx.scale)
        grad_q = torch.matmul(grad_s, k)
        grad_k = torch.matmul(grad_s.transpose(-2, -1), q)
        return grad_q, grad_k, grad_v, None


def _short_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> bool:
    """Whether `attention` computes q, k, v (and mask) as three plain ops: training in fp32
    on the CPU without autocast with a float mask that records a gradient (SDPA takes its math
    path then, at any length), or with queries and keys no longer than SHORT_ATTENTION."""
    if q.device.type != "cpu" or q.dtype != torch.float32 or torch.is_autocast_enabled("cpu"):
        return False
    if mask is not None and (mask.dtype != q.dtype or mask.device != q.device):
        return False
    if mask is not None and runtime.records_grad(mask):
        return True
    short = max(q.shape[-2], k.shape[-2]) <= SHORT_ATTENTION
    return short and runtime.records_grad(q, k, v)


def window_attention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None, scale: float) -> Tensor:
    """`runtime.window_attention` (Swin's windows) through `attention`."""
    return runtime.window_attention(q, k, v, bias, scale, attend=attention)


def onednn_linear(x: Tensor, weight: Tensor) -> bool:
    """Whether `Linear` runs oneDNN's matmul: fp32 on the CPU, no autocast (the op is not cast
    by autocast), and a PyTorch built with oneDNN."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and x.dim() >= 2
        and not torch.is_autocast_enabled("cpu")
        and _HAS_ONEDNN
    )


_HAS_ONEDNN = torch.backends.mkldnn.is_available() and hasattr(  # type: ignore[no-untyped-call]
    torch.ops.mkldnn, "_linear_pointwise"
)


def _matmul(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """x @ weight.T + bias by oneDNN (weight may be a strided view)."""
    out: Tensor = torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")
    return out


def _register_linear() -> None:
    """`mvitdsl::linear`: oneDNN's matmul, forward and gradients (`_linear_backward`), as one
    registered op so that torch.compile calls it as it is (inductor lowers oneDNN's op only for
    frozen weights); eager training takes `_LinearFunction`, the same kernels."""
    if _defined("linear"):
        return

    def linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return _matmul(x, weight, bias)

    op = torch.library.custom_op(f"{NAMESPACE}::linear", mutates_args=())(linear)
    op.register_fake(lambda x, weight, bias: F.linear(x, weight, bias))
    op.register_autograd(_op_backward, setup_context=_linear_context)


def _linear_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    x, weight, bias = inputs
    ctx.save_for_backward(x, weight)  # what aten's linear saves
    ctx.has_bias = bias is not None


def _linear_backward(
    ctx: Any, grad: Tensor, matmul: Any = None
) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """The gradients of `x @ weight.T + bias`: the input's by oneDNN, the weight's by
    `_weight_grad`, the bias's a sum; `matmul` calls oneDNN (the registered op in the
    registered op's backward, which torch.compile traces and inductor must not lower)."""
    matmul = matmul or _matmul
    x, weight = ctx.saved_tensors
    rows = grad.reshape(-1, grad.shape[-1])  # (M, out)
    gx = matmul(grad, weight.t(), None) if ctx.needs_input_grad[0] else None
    needs_w = ctx.needs_input_grad[1]
    gw = _weight_grad(rows, x.reshape(-1, x.shape[-1]), matmul) if needs_w else None
    gb = rows.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
    return gx, gw, gb


def _op_backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    return _linear_backward(ctx, grad, getattr(torch.ops, NAMESPACE).linear)


class _LinearFunction(torch.autograd.Function):
    """`mvitdsl::linear` for eager training: the same kernels and gradients without the
    custom op's dispatch in Python (fwd + bwd of a 4x16x16 Linear: 180 vs 258 µs, aten 68)."""

    @staticmethod
    def forward(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return _matmul(x, weight, bias)

    setup_context = staticmethod(_linear_context)
    backward = staticmethod(_linear_backward)


def _weight_grad(rows: Tensor, x: Tensor, matmul: Any = None) -> Tensor:
    """rowsᵀ @ x, the weight gradient (out, in): oneDNN's matmul (`matmul`) when the layer
    narrows (in > out: fc2, the projections down), aten's mm otherwise, the faster of the two
    on each side (benchmarks/linear_kernels.py, issue 22)."""
    if x.shape[-1] > rows.shape[-1]:
        out: Tensor = (matmul or _matmul)(rows.t(), x.t(), None)
        return out
    return rows.t().mm(x)


if _HAS_ONEDNN:
    _register_linear()


class Linear(nn.Linear):
    """nn.Linear with oneDNN's matmul for fp32 on the CPU (same parameters, same numbers up to
    the summation order): faster than aten's MKL `addmm` on these shapes; F.linear elsewhere
    (autocast, other devices and dtypes)."""

    def forward(self, x: Tensor) -> Tensor:
        if not onednn_linear(x, self.weight):
            return F.linear(x, self.weight, self.bias)
        if torch.compiler.is_compiling():  # the registered op: opaque to inductor
            out: Tensor = getattr(torch.ops, NAMESPACE).linear(x, self.weight, self.bias)
            return out
        if not runtime.records_grad(x, self.weight, *([] if self.bias is None else [self.bias])):
            return _matmul(x, self.weight, self.bias)
        return _LinearFunction.apply(x, self.weight, self.bias)  # type: ignore[no-any-return]


# -- the CPU backward of a depthwise pool conv


def _memory_format(x: Tensor) -> torch.memory_format:
    """Channels-last for x's rank."""
    return torch.channels_last_3d if x.dim() == 5 else torch.channels_last


def _index(trailing: list[slice]) -> tuple[Any, ...]:
    """x[..., a, b, c]: slices of the trailing (spatial) axes."""
    return (Ellipsis, *trailing)


def _zeros_around(x: Tensor, size: list[int], starts: Any, steps: Any) -> Tensor:
    """A zero channels-last (B, C, *size) tensor with x written from `starts` every `steps`."""
    shape = (*x.shape[:2], *size)
    fmt = _memory_format(x)
    out = torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=fmt).zero_()
    window = [slice(a, a + (m - 1) * s + 1, s) for a, m, s in zip(starts, x.shape[2:], steps)]
    out[_index(window)] = x
    return out


def depthwise_grad_input(
    grad: Tensor, weight: Tensor, size: Any, stride: tuple[int, ...], padding: tuple[int, ...]
) -> Tensor:
    """The input gradient of a depthwise conv as a forward conv: the output gradient, spread
    out by the stride (zeros between) and padded to n + k - 1, correlated with the flipped
    kernel. With stride 1 the conv pads by itself (no buffer)."""
    kernel = weight.shape[2:]
    conv = F.conv3d if grad.dim() == 5 else F.conv2d
    flipped = weight.flip(list(range(2, weight.dim())))
    before = [k - 1 - p for k, p in zip(kernel, padding)]
    if all(s == 1 for s in stride) and list(grad.shape[2:]) == list(size):
        return conv(grad, flipped, None, 1, before, 1, weight.shape[0])
    full = [n + k - 1 for n, k in zip(size, kernel)]
    spread = _zeros_around(grad, full, before, stride)
    return conv(spread, flipped, None, 1, 0, 1, weight.shape[0])


def depthwise_grad_weight(
    grad: Tensor, x: Tensor, kernel: Any, stride: tuple[int, ...], padding: tuple[int, ...]
) -> Tensor:
    """The weight gradient of a depthwise conv: per kernel tap, the output gradient times the
    input it met at that tap, summed over batch and positions (windows clipped at the borders
    instead of padding a copy)."""
    taps = []
    dims = [0, *range(2, grad.dim())]
    for tap in itertools.product(*(range(k) for k in kernel)):
        g_idx: list[slice] = []
        x_idx: list[slice] = []
        for t, m, n, s, p in zip(tap, grad.shape[2:], x.shape[2:], stride, padding):
            lo = max(0, -((t - p) // s))  # first output whose input index o*s + t - p >= 0
            hi = min(m - 1, (n - 1 + p - t) // s)  # last one whose input index is < n
            g_idx.append(slice(lo, hi + 1))
            x_idx.append(slice(lo * s + t - p, hi * s + t - p + 1, s))
        if any(sl.stop <= sl.start for sl in g_idx):
            taps.append(grad.new_zeros(grad.shape[1]))
            continue
        taps.append((grad[_index(g_idx)] * x[_index(x_idx)]).sum(dims))
    return torch.stack(taps, 1).reshape(grad.shape[1], 1, *kernel)
