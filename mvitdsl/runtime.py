"""The torch functions and modules that emitted graphs call. Imports torch and nothing of ours,
so `mvitdsl compile` copies this file into every artifact unchanged."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


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
    if torch.is_grad_enabled() and q.requires_grad:
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


def pool_layout(x: Tensor, dense_in_training: bool) -> Tensor:
    """The memory a pool reads (B, C, [T,] H, W) from.

    Without autograd: a dense channels-last copy (the pools run faster on it). While training:
    the strided channels-last view itself, so the pool saves no extra copy; or, where the
    compiler chose it (dense_in_training: video blocks with many channels over few
    positions), a dense NC(T)HW copy, whose oneDNN backward runs faster there and needs a
    third of the scratch memory (docs/PERFORMANCE.md)."""
    if torch.is_grad_enabled() and x.requires_grad:
        return x.contiguous() if dense_in_training else x
    return x.contiguous(
        memory_format=torch.channels_last_3d if x.dim() == 5 else torch.channels_last
    )
