"""Issue 23, Swin deployed at run-time sizes: one torch.export program with symbolic batch, H and
W (`compile --export --dynamic`) equals the eager module at other batches and sizes (padded and
shifted windows, a grid smaller than a window), and so does its ONNX file in onnxruntime. A
small swin-shaped spec in `make test`; swin_t itself, pt2 and ONNX, under `full`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
import torch  # noqa: E402
from torch import nn  # noqa: E402

import mvitdsl  # noqa: E402
from mvitdsl.backend.export import export_program  # noqa: E402
from mvitdsl.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# swin_t's layout in two stages (a plain and a shifted block, then a merging one), window 4 at
# 64: the size rule is multiples of 8 (patch 4, one merge)
TINY = """model swin_tiny_export {
  input      image 3x64x64
  patch      conv 4x4 stride 4x4 -> 8, norm on
  tokens     no_cls, position none
  attention  pool_kv off, dim_change merge, mlp_ratio 2, scope window, window 4x4,
             shift alternate, rel_pos table
  stages {
    s1  2   8  1  1x1
    s2  1  16  2  2x2
  }
  head       norm, mean, classes 5
}
"""
# batch 1 and 3 (the program is exported at 2); 40x56: grids 10x14 and 5x7, padded to whole
# windows and shifted in both stages; 16x24: stage 2's grid (2x3) smaller than one window
TINY_SIZES = ((1, 3, 40, 56), (3, 3, 64, 64), (3, 3, 16, 24))


pytestmark = pytest.mark.usefixtures("one_thread")


def perturbed(gm: torch.fx.GraphModule, seed: int = 0) -> torch.fx.GraphModule:
    """Every parameter moved off its initial value (the bias table starts at zero, where a
    wrong row of it would not show)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in gm.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=generator))
    return gm


def test_one_swin_program_serves_other_batches_and_sizes() -> None:
    """Exported at 2x3x64x64 with symbolic batch, H and W: no guard on the batch (batch 1
    runs) nor on the example's window layout; equal to eager at every size of TINY_SIZES."""
    spec = mvitdsl.load_spec(text=TINY)
    rule = mvitdsl.size_rule(spec)
    # the merge's stride counts though no block follows it in its stage (12 would not merge)
    assert rule.text == "H and W: multiples of 8, at least 8"
    gm = perturbed(mvitdsl.build(spec, optimize=False).eval())
    program = export_program(gm, torch.randn(2, 3, 64, 64), rule).module()
    for size in TINY_SIZES:
        x = torch.randn(*size, generator=torch.Generator().manual_seed(size[2]))
        with torch.no_grad():
            want, got = gm(x), program(x)
        assert got.shape == (size[0], 5)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def compiled(spec_file: Path, folder: Path) -> tuple[nn.Module, Any, Path]:
    """`mvitdsl compile SPEC --export pt2 onnx --dynamic`: the eager module holding the
    program's weights, the program's module and the ONNX file."""
    argv = ["compile", str(spec_file), "-o", str(folder / "art"), "--export", "pt2", "onnx"]
    torch.manual_seed(0)
    assert main([*argv, "--dynamic", "--format", "json"]) == 0
    name = mvitdsl.load_spec(spec_file).name
    program = torch.export.load(str(folder / "art" / f"{name}.pt2"))
    gm = mvitdsl.build(mvitdsl.load_spec(spec_file), optimize=False).eval()
    gm.load_state_dict(program.state_dict, strict=False)
    return gm, program.module(), folder / "art" / f"{name}.onnx"


def assert_serves(gm: nn.Module, program: Any, onnx_file: Path, sizes: Any) -> None:
    """The program and the ONNX file (dynamic batch, H, W) equal eager at every size."""
    import onnx
    import onnxruntime as ort

    dims = onnx.load(str(onnx_file)).graph.input[0].type.tensor_type.shape.dim
    assert [bool(d.dim_param) for d in dims] == [True, False, True, True]
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    for size in sizes:
        x = torch.randn(*size, generator=torch.Generator().manual_seed(size[2]))
        with torch.no_grad():
            want = gm(x)
            torch.testing.assert_close(program(x), want, rtol=1e-5, atol=1e-5)
        (got,) = session.run(None, {"x": x.numpy()})
        torch.testing.assert_close(torch.from_numpy(got), want, rtol=1e-4, atol=1e-4)


@pytest.mark.full  # ~40 s: the ONNX exporter on top of torch.export; make test-all
def test_the_tiny_swin_compiles_to_dynamic_pt2_and_onnx(tmp_path: Path) -> None:
    spec_file = tmp_path / "swin_tiny_export.mv"
    spec_file.write_text(TINY)
    gm, program, onnx_file = compiled(spec_file, tmp_path)
    assert_serves(gm, program, onnx_file, TINY_SIZES)


@pytest.mark.full  # 2-4 min: swin_t's twelve blocks through both exporters; make test-all
def test_swin_t_compiles_to_dynamic_pt2_and_onnx(tmp_path: Path) -> None:
    """`mvitdsl compile specs/swin_t.mv --export pt2 onnx --dynamic`: batch 1 and 3, 224 (one
    window in stage 4) and 256x320 (padded windows in every stage)."""
    gm, program, onnx_file = compiled(ROOT / "specs" / "swin_t.mv", tmp_path)
    assert_serves(gm, program, onnx_file, ((1, 3, 224, 224), (3, 3, 256, 320)))
