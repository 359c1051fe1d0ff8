"""Hiera in the language: mask-unit windows with the one-block lag, Hiera's block as settings,
exact costs, and logits equal to timm's Hiera."""

from __future__ import annotations

import pytest
from conftest import SPECS

import mvitdsl
from mvitdsl import analyze, load_spec

TINY_HIERA = """
model hiera_small_test {
  input      image 3x64x64
  patch      conv 7x7 stride 4x4 pad 3x3 -> 32
  tokens     no_cls, position joint
  attention  pool max, kernel_q 2x2, pool_pad zero, pool_kv off, skip_pool like_q,
             dim_change attention, mlp_ratio 4, mask_unit 4x4, scope global
  stages {
    s1  1   32  1  1x1  scope=mask_unit
    s2  2   64  2  2x2  scope=mask_unit
    s3  2  128  4  2x2
  }
  head       norm, mean, order pool_norm, classes 10
}
"""


def test_hiera_tiny_costs_and_grids() -> None:
    report = analyze(load_spec(SPECS / "hiera_t_image.mv"))
    assert report.params == 27_910_216
    assert round(report.macs / 1e9, 3) == 4.901
    assert round(report.macs_fvcore / 1e9, 3) == 4.914
    assert [s.grid[1:] for s in report.stages] == [(56, 56), (28, 28), (14, 14), (7, 7)]


def test_scope_lags_one_block() -> None:
    """A stage's first block attends in the previous stage's scope: windows 8, 8/4, 4, 4/2, then
    global; the K/V window is the mask unit over the Q strides applied before the block."""
    model = load_spec(SPECS / "hiera_t_image.mv").model
    windows = [(b.window, b.window_q) for b in model.blocks]
    assert windows[:5] == [
        ((1, 8, 8), (1, 8, 8)),
        ((1, 8, 8), (1, 4, 4)),
        ((1, 4, 4), (1, 4, 4)),
        ((1, 4, 4), (1, 2, 2)),
        (None, None),
    ]
    assert all(w == (None, None) for w in windows[4:])
    assert [b.scope_from for b in model.blocks[:4]] == ["", "scale2", "", "scale3"]
    b1 = model.blocks[1]
    assert b1.pool_q.kernel == b1.pool_q.stride == (1, 2, 2)
    assert b1.pool_q.padding == (0, 0, 0) and not b1.pool_kv.exists
    assert b1.pool_skip.kernel == (1, 2, 2) and b1.pool_skip.padding == (0, 0, 0)
