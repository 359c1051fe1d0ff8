"""The torch functions and modules that emitted graphs call. Imports torch and nothing of ours,
so `mvitdsl compile` copies this file into every artifact unchanged."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def same(a: Any, b: Any) -> bool:
    """Whether two sizes (or tuples of them) are equal; under torch.export with symbolic sizes,
    only when that holds for every size (else the resize runs: at an equal size it is exact),
    so an exported program keeps no guard on the example's size."""
    from torch.fx.experimental.symbolic_shapes import statically_known_true

    if isinstance(a, tuple) or isinstance(b, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return bool(statically_known_true(a == b))


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
    if not same(table.shape[0], length):
        table = F.interpolate(table.t().unsqueeze(0), size=length, mode="linear").squeeze(0).t()
    if not (isinstance(q_size, int) and isinstance(k_size, int)):
        return table[_rel_index(q_size, k_size, table.device)]  # symbolic sizes (export)
    q_ratio = max(k_size / q_size, 1.0)
    k_ratio = max(q_size / k_size, 1.0)
    q_pos = torch.arange(q_size, device=table.device)[:, None] * q_ratio
    k_pos = (torch.arange(k_size, device=table.device)[None, :] + (1.0 - k_size)) * k_ratio
    return table[(q_pos - k_pos).long()]


def _rel_index(q_size: Any, k_size: Any, device: Any) -> Tensor:
    """rel_table's (q, k) table rows in whole numbers, for symbolic sizes (the exporters take
    no symbolic float): q * R/q - (k + 1 - K) * R/K over one denominator, R = max(Q, K); both
    terms are >= 0, so floor division is the float path's truncation (equal wherever the
    float ratios are exact, as the powers of two of MViT's strides are)."""
    big = torch.sym_max(q_size, k_size)
    q_pos = torch.arange(q_size, device=device)[:, None] * (big * k_size)
    k_pos = (torch.arange(k_size, device=device)[None, :] + 1 - k_size) * (big * q_size)
    return torch.div(q_pos - k_pos, q_size * k_size, rounding_mode="floor")


def rel_pos_terms(
    q: Tensor,
    q_grid: tuple[int, int, int],
    k_grid: tuple[int, int, int],
    rel_pos_t: Tensor | None,
    rel_pos_h: Tensor,
    rel_pos_w: Tensor,
    cls: bool,
) -> tuple[Tensor, Tensor | None]:
    """The spatial term (B, h, qt, qh, qw, 1, kh, kw) and the temporal term
    (B, h, qt, qh, qw, kt, 1, 1) (None for images) of the decomposed relative-position logits."""
    r_q = q[:, :, 1:] if cls else q
    B, heads, _, d = r_q.shape
    qt, qh, qw = q_grid
    kt, kh, kw = k_grid
    r_q = r_q.reshape(B, heads, qt, qh, qw, d)
    bias_h = torch.einsum("bythwc,hkc->bythwk", r_q, rel_table(rel_pos_h, qh, kh))
    bias_w = torch.einsum("bythwc,wkc->bythwk", r_q, rel_table(rel_pos_w, qw, kw))
    bias = bias_h[..., None, :, None] + bias_w[..., None, None, :]  # (B, h, qt, qh, qw, 1, kh, kw)
    if rel_pos_t is None:
        return bias, None
    bias_t = torch.einsum("bythwc,tkc->bythwk", r_q, rel_table(rel_pos_t, qt, kt))
    return bias, bias_t[..., :, None, None]


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
    bias, bias_t = rel_pos_terms(q, q_grid, k_grid, rel_pos_t, rel_pos_h, rel_pos_w, cls)
    if bias_t is not None:
        bias = bias + bias_t  # (B, h, qt, qh, qw, kt, kh, kw)
    q_len, k_len = q_grid[0] * q_grid[1] * q_grid[2], k_grid[0] * k_grid[1] * k_grid[2]
    bias = bias.reshape(*bias.shape[:2], q_len, k_len)  # no -1: no guard on symbolic sizes
    return F.pad(bias, (1, 0, 1, 0)) if cls else bias


def depthwise_conv(x: Tensor, weight: Tensor, stride: Any, padding: Any) -> Tensor:
    """A pooling conv: one filter per channel, no bias, 2-D or 3-D, the filters shared by the
    heads: `weight` is (head_dim, 1, *kernel) and channel c of x (heads x head_dim of them)
    uses filter c % head_dim, as torchvision's per-head Conv3d(head_dim, head_dim, groups).
    (The optimize pass, backend/passes/optimize.py, swaps in a CPU-tuned version when the
    model is built for the CPU.)"""
    conv = F.conv3d if x.dim() == 5 else F.conv2d
    return conv(x, per_channel(weight, x.shape[1]), None, stride, padding, 1, x.shape[1])


def per_channel(weight: Tensor, channels: int) -> Tensor:
    """The per-head filters repeated over the heads: (channels, 1, *kernel)."""
    heads = channels // weight.shape[0]
    return weight if heads == 1 else weight.repeat(heads, *(1,) * (weight.dim() - 1))


def records_grad(*tensors: Tensor) -> bool:
    """Whether autograd records an op on these tensors (training, not inference)."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def window_partition(x: Tensor, grid: Any, window: Any) -> Tensor:
    """Raster tokens (B, heads, T*H*W, d) -> windows (B, heads * n_windows, wt*wh*ww, d).

    Windows tile the (T, H, W) grid in raster order; heads and windows share one batch-like dim,
    so attention is a plain 4-D scaled_dot_product_attention."""
    b, h, _, d = x.shape
    (t, hh, w), (wt, wh, ww) = grid, window
    x = x.reshape(b, h, t // wt, wt, hh // wh, wh, w // ww, ww, d)
    x = x.permute(0, 1, 2, 4, 6, 3, 5, 7, 8)
    windows = (t // wt) * (hh // wh) * (w // ww)
    return x.reshape(b, h * windows, wt * wh * ww, d)  # no -1: no guard on symbolic sizes


def window_merge(x: Tensor, heads: int, grid: Any, window: Any) -> Tensor:
    """window_partition's inverse: (B, heads * n_windows, wt*wh*ww, d) -> (B, heads, THW, d)."""
    b, _, _, d = x.shape
    (t, hh, w), (wt, wh, ww) = grid, window
    x = x.reshape(b, heads, t // wt, hh // wh, w // ww, wt, wh, ww, d)
    x = x.permute(0, 1, 2, 5, 3, 6, 4, 7, 8)
    return x.reshape(b, heads, t * hh * w, d)


def padded_windows(x: Tensor, grid: Any, window: Any) -> Tensor:
    """Raster tokens (B, heads, T*H*W, d) -> windows (B, heads * n_windows, wt*wh*ww, d), the
    grid zero-padded at its far ends to whole windows (ceil division: one traced graph serves
    padded and unpadded sizes, as torch.export needs)."""
    b, h, _, d = x.shape
    (t, hh, w), (wt, wh, ww) = grid, window
    nt, nh, nw = (t + wt - 1) // wt, (hh + wh - 1) // wh, (w + ww - 1) // ww
    x = x.reshape(b, h, t, hh, w, d)
    x = F.pad(x, (0, 0, 0, nw * ww - w, 0, nh * wh - hh, 0, nt * wt - t))
    x = x.reshape(b, h, nt, wt, nh, wh, nw, ww, d).permute(0, 1, 2, 4, 6, 3, 5, 7, 8)
    # the copy reshape makes unless one window spans an axis, made always: else torch.export
    # would guard on that case
    x = torch.clone(x, memory_format=torch.contiguous_format)
    return x.reshape(b, h * nt * nh * nw, wt * wh * ww, d)


def padded_merge(x: Tensor, heads: int, grid: Any, window: Any) -> Tensor:
    """padded_windows' inverse: (B, heads * n_windows, wt*wh*ww, d) -> (B, heads, T*H*W, d),
    the padding cropped (narrow, which export keeps symbolic)."""
    b, _, _, d = x.shape
    (t, hh, w), (wt, wh, ww) = grid, window
    nt, nh, nw = (t + wt - 1) // wt, (hh + wh - 1) // wh, (w + ww - 1) // ww
    x = x.reshape(b, heads, nt, nh, nw, wt, wh, ww, d).permute(0, 1, 2, 5, 3, 6, 4, 7, 8)
    x = torch.clone(x, memory_format=torch.contiguous_format)  # as in padded_windows
    x = x.reshape(b, heads, nt * wt, nh * wh, nw * ww, d)
    x = x.narrow(2, 0, t).narrow(3, 0, hh).narrow(4, 0, w)
    # the copy a reshape makes where the crop cut something, made always: with symbolic sizes
    # torch.export would otherwise guard on whether it did
    x = torch.clone(x, memory_format=torch.contiguous_format)
    return x.reshape(b, heads, t * hh * w, d)


def window_rel_pos(
    q: Tensor, q_window: Any, k_window: Any, rel_pos_h: Tensor, rel_pos_w: Tensor
) -> Tensor:
    """Decomposed relative-position logits (N, Y, L_Q, L_K) between image windows, from the
    unscaled queries (N, Y, L_Q, d): rel_pos_bias's numbers with broadcast matmuls instead of
    einsum, whose folding guards on the window count under torch.export."""
    n, y, _, d = q.shape
    (_, qh, qw), (_, kh, kw) = q_window, k_window
    r = q.reshape(n, y, qh, qw, d)
    bias_h = torch.matmul(r, rel_table(rel_pos_h, qh, kh).transpose(1, 2))  # (N, Y, qh, qw, kh)
    bias_w = torch.matmul(r.transpose(2, 3), rel_table(rel_pos_w, qw, kw).transpose(1, 2))
    bias = bias_h[..., :, None] + bias_w.transpose(2, 3)[..., None, :]
    return bias.reshape(n, y, qh * qw, kh * kw)


def padded_grid(grid: Any, window: Any) -> tuple[Any, Any, Any]:
    """The grid rounded up to whole windows: ceil divisions, so that torch.export keeps one
    program for padded and unpadded sizes."""
    t, h, w = ((n + k - 1) // k * k for n, k in zip(grid, window))
    return (t, h, w)


def windowed_positions(table: Tensor, window: Tensor, grid: Any) -> Tensor:
    """SAM2's positions at a (1, H, W) grid: the (1, D, G, G) table resized bicubically (no
    antialias, as every forward of the reference) plus the (1, D, w, w) window table tiled
    over the grid -> (1, H*W, D)."""
    h, w = grid[1], grid[2]
    out = F.interpolate(table, size=(h, w), mode="bicubic", align_corners=False)
    out = out + window.tile(1, 1, h // window.shape[-2], w // window.shape[-1])
    return out.flatten(2).transpose(1, 2)


def to_windows(x: Tensor, grid: Any, padded: Any, window: Any) -> Tensor:
    """Raster tokens (B, T*H*W, C) -> zero-padded to `padded`, cut into windows in raster order:
    (B * n_windows, wt*wh*ww, C) (SAM2 pads and partitions the normed x before its qkv)."""
    (t, h, w), (tp, hp, wp), (wt, wh, ww) = grid, padded, window
    c = x.shape[-1]
    x = x.reshape(x.shape[0], t, h, w, c)
    x = F.pad(x, (0, 0, 0, wp - w, 0, hp - h, 0, tp - t))
    x = x.reshape(x.shape[0], tp // wt, wt, hp // wh, wh, wp // ww, ww, c)
    x = x.permute(0, 1, 3, 5, 2, 4, 6, 7)
    return x.reshape(x.shape[0] * (tp // wt) * (hp // wh) * (wp // ww), wt * wh * ww, c)


def from_windows(x: Tensor, padded: Any, window: Any, grid: Any) -> Tensor:
    """to_windows' inverse on the (possibly Q-pooled) windows: (B * n_windows, wt*wh*ww, C) ->
    (B, T*H*W, C) on `grid`, the padding cropped (`narrow`; the copy always made, so that an
    exported program keeps no guard on whether the crop cut something)."""
    (tp, hp, wp), (wt, wh, ww), (t, h, w) = padded, window, grid
    nt, nh, nw = tp // wt, hp // wh, wp // ww
    c = x.shape[-1]
    x = x.reshape(x.shape[0] // (nt * nh * nw), nt, nh, nw, wt, wh, ww, c)
    x = x.permute(0, 1, 4, 2, 5, 3, 6, 7)
    x = x.reshape(x.shape[0], tp, hp, wp, c)
    x = x.narrow(1, 0, t).narrow(2, 0, h).narrow(3, 0, w)
    x = torch.clone(x, memory_format=torch.contiguous_format)
    return x.reshape(x.shape[0], t * h * w, c)


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


# ---------------------------------------------------------------- shifted windows (Swin)


def _grid_hw(grid: Any) -> tuple[Any, Any]:
    return grid[-2], grid[-1]


def _padded_hw(grid: Any, window: Any) -> tuple[Any, Any]:
    """The (H, W) grid rounded up to whole windows (ceil divisions, as padded_grid)."""
    (h, w), (wh, ww) = _grid_hw(grid), _grid_hw(window)
    return (h + wh - 1) // wh * wh, (w + ww - 1) // ww * ww


def _traced(*sizes: Any) -> bool:
    """Whether a size is symbolic (torch.export with dynamic shapes): then the graph takes one
    path for every size (it pads, crops and copies where eager may skip it), so the program
    keeps no guard on the example's case (whole windows, one window, batch 1)."""
    return not all(isinstance(n, int) for n in sizes)


def _laid_out(x: Tensor, traced: bool) -> Tensor:
    """x contiguous where sizes are traced: the copy the next reshape makes anyway except in
    special cases, made always (a view would guard on the case); eager x as it is."""
    return torch.clone(x, memory_format=torch.contiguous_format) if traced else x


def shifted_windows(x: Tensor, grid: Any, window: Any, shift: Any) -> Tensor:
    """Raster tokens (B, H*W, C) -> windows (B, n_windows, wh*ww, C): the grid rolled up and
    left by `shift` (Swin's cyclic shift; (0, 0): none), then zero-padded at the bottom and
    right to whole windows (the reference's order: roll the real grid, pad after)."""
    b, _, c = x.shape
    (h, w), (wh, ww), (hp, wp) = _grid_hw(grid), _grid_hw(window), _padded_hw(grid, window)
    traced = _traced(b, h, w)
    x = x.reshape(b, h, w, c)
    if any(shift):
        x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
    if traced or (hp, wp) != (h, w):  # eager: a grid of whole windows is not copied again
        x = F.pad(x, (0, 0, 0, wp - w, 0, hp - h))
    x = x.reshape(b, hp // wh, wh, wp // ww, ww, c).permute(0, 1, 3, 2, 4, 5)
    return _laid_out(x, traced).reshape(b, (hp // wh) * (wp // ww), wh * ww, c)


def unshifted_windows(x: Tensor, grid: Any, window: Any, shift: Any) -> Tensor:
    """shifted_windows' inverse: (B, n_windows, wh*ww, C) -> (B, H*W, C), the padding cropped
    (`narrow`), rolled back."""
    b, _, _, c = x.shape
    (h, w), (wh, ww), (hp, wp) = _grid_hw(grid), _grid_hw(window), _padded_hw(grid, window)
    traced = _traced(b, h, w)
    x = x.reshape(b, hp // wh, wp // ww, wh, ww, c).permute(0, 1, 3, 2, 4, 5)
    x = _laid_out(x, traced).reshape(b, hp, wp, c)
    if traced or (hp, wp) != (h, w):
        x = _laid_out(x.narrow(1, 0, h).narrow(2, 0, w), traced)
    if any(shift):
        x = torch.roll(x, shifts=(shift[0], shift[1]), dims=(1, 2))
    return x.reshape(b, h * w, c)


_SWIN_CACHE: dict[tuple[Any, ...], Tensor] = {}


def _kept(key: tuple[Any, ...], make: Any) -> Tensor:
    """make() once per key; a traced value (a fake tensor of torch.export or torch.compile) is
    not kept, so that eager calls after an export get real tensors. Made outside inference
    mode even under it: a kept inference tensor could not be saved for a later backward."""
    if key in _SWIN_CACHE:
        return _SWIN_CACHE[key]
    with torch.inference_mode(False):
        value: Tensor = make()
    if type(value) is torch.Tensor:
        _SWIN_CACHE[key] = value
    return value


def relative_index(window: Any, device: torch.device) -> Tensor:
    """(N, N) rows of the bias table for each (query, key) pair of a wh x ww window: the
    offset (dh, dw), each shifted to start at 0, as dh * (2 ww - 1) + dw."""
    wh, ww = _grid_hw(window)

    def make() -> Tensor:
        hs, ws = torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")
        hs, ws = hs.flatten(), ws.flatten()
        dh = hs[:, None] - hs[None, :] + wh - 1
        dw = ws[:, None] - ws[None, :] + ww - 1
        index: Tensor = (dh * (2 * ww - 1) + dw).to(device)
        return index

    return _kept(("index", (wh, ww), str(device)), make)


def _shift_mask(grid: Any, window: Any, shift: Any) -> Tensor:
    """The mask of shift_mask, computed: regions of rows [0, Hp - wh), [Hp - wh, Hp - shift),
    [Hp - shift, Hp) on the padded grid (the reference's rule), columns alike."""
    (hp, wp), (wh, ww) = _padded_hw(grid, window), _grid_hw(window)
    rows = (torch.arange(hp) >= hp - wh).long() + (torch.arange(hp) >= hp - shift[0]).long()
    cols = (torch.arange(wp) >= wp - ww).long() + (torch.arange(wp) >= wp - shift[1]).long()
    region = (rows[:, None] * 3 + cols[None, :]).float().reshape(1, hp * wp, 1)
    cells = shifted_windows(region, (hp, wp), window, (0, 0))[0, :, :, 0]
    differ = cells[:, :, None] != cells[:, None, :]
    return torch.zeros(differ.shape).masked_fill(differ, -100.0)


def shift_mask(grid: Any, window: Any, shift: Any, device: torch.device) -> Tensor:
    """(n_windows, N, N) at the run-time grid padded to whole windows: -100 between tokens that
    the cyclic shift brought from different regions (not neighbours), 0 elsewhere (Swin's
    value, not -inf). Cached per eager size; traced sizes (not ints) compute it each time."""
    hw = _grid_hw(grid)
    if not all(isinstance(n, int) for n in hw):
        return _shift_mask(hw, window, shift).to(device)
    key = ("mask", hw, _grid_hw(window), tuple(shift), str(device))
    return _kept(key, lambda: _shift_mask(hw, window, shift).to(device))


def window_bias(table: Tensor, grid: Any, window: Any, shift: Any, heads: int) -> Tensor:
    """The additive attention bias of every window at the run-time grid: the relative-position
    bias (heads, N, N) from `table` ((2wh-1)(2ww-1), heads), plus the shift mask per window:
    (n_windows, heads, N, N)."""
    index = relative_index(window, table.device)
    bias = table[index].permute(2, 0, 1)  # (heads, N, N)
    if not any(shift):
        (hp, wp), (wh, ww) = _padded_hw(grid, window), _grid_hw(window)
        return bias.unsqueeze(0).expand((hp // wh) * (wp // ww), -1, -1, -1)
    return bias.unsqueeze(0) + shift_mask(grid, window, shift, table.device).unsqueeze(1).to(
        table.dtype
    )


def merge_patches(x: Tensor, grid: Any, stride: Any) -> Tensor:
    """Swin's patch merging: (B, H*W, C) -> (B, H/sh * W/sw, sh*sw*C), each token the
    concatenation of its sh x sw neighbours, the row offset varying fastest."""
    b, _, c = x.shape
    (h, w), (sh, sw) = _grid_hw(grid), _grid_hw(stride)
    x = x.reshape(b, h // sh, sh, w // sw, sw, c).permute(0, 1, 3, 4, 2, 5)
    return x.reshape(b, (h // sh) * (w // sw), sh * sw * c)


def window_attention(
    q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None, scale: float, attend: Any = None
) -> Tensor:
    """Attention inside each window: q, k, v (B, n_windows, heads, N, d), `bias` (n_windows,
    heads, N, N) added to the scores of every sample; windows folded into the batch, so the
    kernel sees 4-D inputs (its fused CPU path) -> (B, n_windows, N, heads * d). `attend`: the
    attention call (SDPA; the CPU layer passes its own)."""
    b, n = q.shape[:2]
    traced = _traced(b, n)
    q, k, v = q.flatten(0, 1), k.flatten(0, 1), v.flatten(0, 1)
    if bias is not None and traced:
        bias = bias.repeat(b, 1, 1, 1)  # the flattened expansion is a view at batch 1 only
    elif bias is not None:
        bias = bias.expand(b, *bias.shape).flatten(0, 1)
    o = (attend or F.scaled_dot_product_attention)(q, k, v, attn_mask=bias, scale=scale)
    # heads next to head_dim; traced, the copy is explicit: ONNX's decomposition of an
    # exported program would view the transpose
    o = _laid_out(o.transpose(1, 2), traced)
    return o.reshape(b, n, o.shape[1], o.shape[2] * o.shape[3])


# ---------------------------------------------------------------- sizes read at run time
# The emitted graphs compute every token grid from the input (fx records these calls), so one
# module runs at every size its spec's rule allows; the spec's input is only the reference.

Grid = tuple[int, int, int]


def token_grid(x: Tensor) -> Grid:
    """The (T, H, W) grid of a feature map (B, C, [T,] H, W); T = 1 for images."""
    size = tuple(x.shape[2:])
    return (1, size[0], size[1]) if len(size) == 2 else (size[0], size[1], size[2])


def pooled_grid(grid: Grid, kernel: Grid, stride: Grid, padding: Grid) -> Grid:
    """The grid after a pooling or convolution window (PyTorch's floor rule), per dim."""
    t, h, w = ((n + 2 * p - k) // s + 1 for n, k, s, p in zip(grid, kernel, stride, padding))
    return (t, h, w)


def spatial_of(grid: Grid, dims: int) -> tuple[int, ...]:
    """The grid as a map's trailing sizes: (T, H, W) for video, (H, W) for images."""
    return tuple(grid) if dims == 3 else (grid[1], grid[2])


def check_size(x: Tensor, multiple: tuple[int, ...], least: tuple[int, ...], rule: str) -> Tensor:
    """x itself when its trailing sizes follow the spec's size rule; one-line ValueError else."""
    size = tuple(x.shape[-len(multiple) :])
    if x.dim() != len(multiple) + 2 or any(
        n % m or n < low for n, m, low in zip(size, multiple, least)
    ):
        got = "x".join(str(int(n)) for n in x.shape)
        raise ValueError(f"input of shape {got} does not follow the size rule: {rule}")
    return x


def linear_rows(table: Tensor, length: int) -> Tensor:
    """(L, D) -> (length, D), linear interpolation along L (align_corners=False, as timm)."""
    if same(table.shape[0], length):
        return table
    dtype = table.dtype
    out = F.interpolate(table.float().t().unsqueeze(0), size=length, mode="linear")
    return out.squeeze(0).t().to(dtype).contiguous()


def bicubic_grid(table: Tensor, old: tuple[int, int], new: tuple[int, int]) -> Tensor:
    """(N, H*W, D) -> (N, H'*W', D), bicubic with antialias as timm's resample_abs_pos_embed."""
    if same(old, new):
        return table
    n, _, d = table.shape
    dtype = table.dtype
    x = table.float().reshape(n, old[0], old[1], d).permute(0, 3, 1, 2)
    x = F.interpolate(x, size=new, mode="bicubic", align_corners=None, antialias=True)
    return x.permute(0, 2, 3, 1).reshape(n, new[0] * new[1], d).to(dtype).contiguous()


def time_linear(x: Tensor, t: int) -> Tensor:
    """(T, P, D) -> (t, P, D), linear along T for each position P."""
    ot, p, d = x.shape
    if same(ot, t):
        return x
    dtype = x.dtype
    y = x.float().permute(1, 2, 0).reshape(1, p * d, ot)
    y = F.interpolate(y, size=t, mode="linear")
    return y.reshape(p, d, t).permute(2, 0, 1).to(dtype).contiguous()


def joint_at(table: Tensor, old: Grid, new: Grid, cls: bool) -> Tensor:
    """A joint (1, [1 +] T*H*W, D) table from grid `old` to `new`: the cls row kept, space
    bicubic per frame, then time linear per position (timm's resample for images)."""
    if same(old, new):
        return table
    prefix, rest = (table[:, :1], table[:, 1:]) if cls else (None, table)
    t, h, w = new
    ot, oh, ow = old
    x = bicubic_grid(rest.reshape(ot, oh * ow, rest.shape[-1]), (oh, ow), (h, w))
    out = time_linear(x, t).reshape(1, t * h * w, rest.shape[-1])
    return out if prefix is None else torch.cat([prefix, out], dim=1)


def separable_positions(
    temporal: Tensor, spatial: Tensor, class_pos: Tensor | None, old: Grid, new: Grid
) -> Tensor:
    """torchvision's temporal (T, D) + spatial (H*W, D) (+ class) positions at grid `new`:
    time linear, space bicubic (the load-time resize's rule): (1, [1 +] THW, D)."""
    t, h, w = new
    temporal = linear_rows(temporal, t)
    spatial = bicubic_grid(spatial.unsqueeze(0), (old[1], old[2]), (h, w))[0]
    pos = torch.repeat_interleave(temporal, h * w, dim=0) + spatial.repeat(t, 1)
    if class_pos is not None:
        pos = torch.cat([class_pos.reshape(1, -1), pos], dim=0)
    return pos.unsqueeze(0)
