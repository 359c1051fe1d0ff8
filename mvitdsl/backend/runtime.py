"""The torch functions and modules that emitted graphs call. Imports torch and nothing of ours,
so `mvitdsl compile` copies this file into every artifact unchanged."""

from __future__ import annotations

import itertools
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable


class DropPath(nn.Module):
    """Stochastic depth per sample ("row" mode): drop the whole residual branch of a sample."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def rel_table(table: Tensor, q_size: int, k_size: int) -> Tensor:
    """Rows of a relative-position table for every (query, key) pair along one axis:
    (q_size, k_size, head_dim). As torchvision and SlowFast do: when the table length is not
    2*max(q, k) - 1 it is linearly interpolated, and a coarser axis is scaled up."""
    length = 2 * max(q_size, k_size) - 1
    if table.shape[0] != length:
        table = F.interpolate(table.t().unsqueeze(0), size=length, mode="linear").squeeze(0).t()
    q_ratio = max(k_size / q_size, 1.0)
    k_ratio = max(q_size / k_size, 1.0)
    q_pos = torch.arange(q_size, device=table.device)[:, None] * q_ratio
    k_pos = (torch.arange(k_size, device=table.device)[None, :] + (1.0 - k_size)) * k_ratio
    return table[(q_pos - k_pos).long()]


def rel_pos_bias(
    q: Tensor,
    q_grid: tuple[int, int, int],
    k_grid: tuple[int, int, int],
    rel_pos_t: Tensor | None,
    rel_pos_h: Tensor,
    rel_pos_w: Tensor,
    cls: bool,
) -> Tensor:
    """Decomposed relative-position logits (B, heads, L_Q, L_K) from the unscaled queries;
    the cls row and column get zero."""
    r_q = q[:, :, 1:] if cls else q
    B, heads, _, d = r_q.shape
    qt, qh, qw = q_grid
    kt, kh, kw = k_grid
    r_q = r_q.reshape(B, heads, qt, qh, qw, d)
    bias_h = torch.einsum("bythwc,hkc->bythwk", r_q, rel_table(rel_pos_h, qh, kh))
    bias_w = torch.einsum("bythwc,wkc->bythwk", r_q, rel_table(rel_pos_w, qw, kw))
    bias = bias_h[..., None, :, None] + bias_w[..., None, None, :]  # (B, h, qt, qh, qw, 1, kh, kw)
    bias_t = None
    if rel_pos_t is not None:
        bias_t = torch.einsum("bythwc,tkc->bythwk", r_q, rel_table(rel_pos_t, qt, kt))
        bias_t = bias_t[..., :, None, None]  # (B, h, qt, qh, qw, kt, 1, 1)
    if cls and _may_write_in_place(q):
        return _padded_in_place(bias, bias_t, q_grid, k_grid)
    if bias_t is not None:
        bias = bias + bias_t  # (B, h, qt, qh, qw, kt, kh, kw)
    bias = bias.reshape(B, heads, qt * qh * qw, -1)
    return F.pad(bias, (1, 0, 1, 0)) if cls else bias


def _may_write_in_place(q: Tensor) -> bool:
    """In plain eager inference the bias can be written into a preallocated buffer; autograd,
    torch.compile and torch.export get the functional form."""
    if _records_grad(q):
        return False
    return not torch.compiler.is_compiling()


def _padded_in_place(
    bias: Tensor, bias_t: Tensor | None, q_grid: tuple[int, ...], k_grid: tuple[int, ...]
) -> Tensor:
    """The cls-padded (B, h, 1 + L_Q, 1 + L_K) bias written straight into its buffer: no
    zero-filled full-size tensor and no padding copy (eval speed of the rel-pos models)."""
    B, heads = bias.shape[:2]
    lq, lk = q_grid[0] * q_grid[1] * q_grid[2], k_grid[0] * k_grid[1] * k_grid[2]
    out = bias.new_empty(B, heads, lq + 1, lk + 1)
    out[:, :, 0, :] = 0
    out[:, :, 1:, 0] = 0
    body = out[:, :, 1:, 1:].view(B, heads, *q_grid, *k_grid)  # a strided view of the buffer
    if bias_t is None:
        body.copy_(bias)
    else:
        torch.add(bias, bias_t, out=body)
    return out


def channels_last(x: Tensor) -> Tensor:
    """(B, C, [T,] H, W) in dense channels-last memory when no gradient is recorded (pools run
    faster on it); while training, the strided channels-last view itself, so the pool saves no
    extra copy (its backward, `depthwise_conv`'s, reads views)."""
    if _records_grad(x):
        return x
    return x.contiguous(memory_format=_memory_format(x))


def depthwise_conv(x: Tensor, weight: Tensor, stride: Any, padding: Any) -> Tensor:
    """A pooling conv: one filter per channel, no bias, 2-D or 3-D, the filters shared by the
    heads: `weight` is (head_dim, 1, *kernel) and channel c of x (heads x head_dim of them)
    uses filter c % head_dim, as torchvision's per-head Conv3d(head_dim, head_dim, groups).

    While training a video model it runs as `DepthwiseConv`, whose backward is faster than
    oneDNN's 3-D depthwise backward on CPU (1.2-3.0x per MViT pool, and less scratch memory:
    benchmarks/pool_conv.py) and which keeps only the per-head filters for it; 2-D pools,
    inference, torch.compile and torch.export get plain F.conv2d / F.conv3d."""
    fits = all(p < k for p, k in zip(padding, weight.shape[2:]))  # always so for MViT pools
    video = x.dim() == 5
    if video and fits and _records_grad(x, weight) and not torch.compiler.is_compiling():
        out: Tensor = DepthwiseConv.apply(x, weight, tuple(stride), tuple(padding))
        return out
    conv = F.conv3d if video else F.conv2d
    return conv(x, _per_channel(weight, x.shape[1]), None, stride, padding, 1, x.shape[1])


def _per_channel(weight: Tensor, channels: int) -> Tensor:
    """The per-head filters repeated over the heads: (channels, 1, *kernel)."""
    heads = channels // weight.shape[0]
    return weight if heads == 1 else weight.repeat(heads, *(1,) * (weight.dim() - 1))


def _records_grad(*tensors: Tensor) -> bool:
    """Whether autograd records an op on these tensors (training, not inference)."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


class DepthwiseConv(torch.autograd.Function):
    """`depthwise_conv` (2-D or 3-D, padding < kernel) whose backward is a forward conv
    (input gradient) and one multiply-sum per kernel tap (weight gradient)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, stride: tuple, padding: tuple) -> Tensor:
        ctx.save_for_backward(x, weight)  # the per-head filters, not their repeats
        ctx.stride, ctx.padding = stride, padding
        conv = F.conv3d if x.dim() == 5 else F.conv2d
        return conv(x, _per_channel(weight, x.shape[1]), None, stride, padding, 1, x.shape[1])

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        x, weight = ctx.saved_tensors
        stride, padding = ctx.stride, ctx.padding
        grad = grad.contiguous(memory_format=_memory_format(grad))
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            full = _per_channel(weight, x.shape[1])
            grad_x = depthwise_grad_input(grad, full, x.shape[2:], stride, padding)
        if ctx.needs_input_grad[1]:
            grad_w = depthwise_grad_weight(grad, x, weight.shape[2:], stride, padding)
            grad_w = grad_w.unflatten(0, (-1, weight.shape[0])).sum(0)  # summed over heads
        return grad_x, grad_w, None, None


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
    grad: Tensor, weight: Tensor, size: Any, stride: tuple, padding: tuple
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
    grad: Tensor, x: Tensor, kernel: Any, stride: tuple, padding: tuple
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


def _sincos_1d(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """SlowFast's get_1d_sincos_pos_embed_from_grid: (M,) -> (M, dim), sin then cos."""
    omega = torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0)
    omega = 1.0 / 10000**omega
    out = positions.reshape(-1, 1).double() * omega.reshape(1, -1)
    return torch.cat([torch.sin(out), torch.cos(out)], dim=1)


def sincos_positions(dim: int, grid: tuple[int, int, int], cls: bool) -> torch.Tensor:
    """SlowFast's get_3d_sincos_pos_embed for a T x H x W grid: (cls +) THW rows of
    [temporal (dim/4) | spatial (3dim/4: the w coordinate's half, then h's)], the cls row 0."""
    t, h, w = grid
    spatial, temporal = dim // 4 * 3, dim // 4
    gw, gh = torch.meshgrid(torch.arange(w), torch.arange(h), indexing="xy")  # (h, w) each
    emb = torch.cat([_sincos_1d(spatial // 2, gw), _sincos_1d(spatial // 2, gh)], dim=1)
    emb_t = _sincos_1d(temporal, torch.arange(t))
    table = torch.cat(
        [emb_t.repeat_interleave(h * w, dim=0), emb.repeat(t, 1)], dim=1
    )  # (T*H*W, dim)
    if cls:
        table = torch.cat([torch.zeros(1, dim, dtype=table.dtype), table])
    return table.float()
