"""Golden files for each stage's output: the IR and the emitted fx code of mvit_b (v1 video),
mvitv2_s (v2 video: relative positions, residual pooling) and mvitv2_t_image (the image path),
and the fx code of a small Hiera (the windowed path: mask-unit and window-scope attention).
Paths in them read from the repository root. Regenerate with `make golden`; review the diff."""

from __future__ import annotations

import pytest
from conftest import SPECS, assert_golden, rel

import mvitdsl

GOLDEN_SPECS = ("mvit_b", "mvitv2_s", "mvitv2_t_image")
# Blocks 0-2 attend in mask units (block 1 with a Q-pooled window), block 3 lags in s2's mask
# units, block 4 in s3's own 2x2 windows (`scope=window`): both windowed emitter paths.
HIERA_WINDOWED = """
model hiera_windowed {
  input      image 3x64x64
  patch      conv 7x7 stride 4x4 pad 3x3 -> 32
  tokens     no_cls, position joint
  attention  pool max, kernel_q 2x2, pool_pad zero, pool_kv off, skip_pool like_q,
             dim_change attention, mlp_ratio 4, mask_unit 4x4, scope global
  stages {
    s1  1   32  1  1x1  scope=mask_unit
    s2  2   64  2  2x2  scope=mask_unit
    s3  2  128  4  2x2  scope=window window=2x2
  }
  head       norm, mean, order pool_norm, classes 10
}
"""


@pytest.mark.parametrize("name", GOLDEN_SPECS)
def test_ir_golden(name: str) -> None:
    spec = mvitdsl.load_spec(SPECS / f"{name}.mv")
    assert_golden(f"{name}.ir.json", rel(spec.model.model_dump_json(indent=2)) + "\n")


def emitted_code(spec: mvitdsl.Spec) -> str:
    """The fx code of the top module and of every block, as the golden files hold it."""
    gm = mvitdsl.build(spec, device="meta")
    parts = [f"# ---- top\n{gm.code.strip()}\n"]
    parts += [f"# ---- blocks.{i}\n{b.code.strip()}\n" for i, b in enumerate(gm.blocks)]
    return rel("\n".join(parts))


@pytest.mark.parametrize("name", GOLDEN_SPECS)
def test_emitted_code_golden(name: str) -> None:
    pytest.importorskip("torch")
    assert_golden(f"{name}.code.py.txt", emitted_code(mvitdsl.load_spec(SPECS / f"{name}.mv")))


def test_windowed_emitted_code_golden() -> None:
    """The Hiera path: window partition / merge around attention, for mask units and windows."""
    pytest.importorskip("torch")
    code = emitted_code(mvitdsl.load_spec(text=HIERA_WINDOWED))
    # every block attends in windows: q, k, v partitioned, the output merged back; the block
    # with a fixed window (`scope window`, SAM2's padded rule) cuts the padded x into windows
    # before qkv and puts the projected windows back
    assert code.count("window_partition(") == 3 * 4 and code.count("window_merge(") == 4
    assert code.count("to_windows(") == 1 and code.count("from_windows(") == 1
    assert_golden("hiera_windowed.code.py.txt", code)
