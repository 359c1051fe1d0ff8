"""Issue 21, item 3: `compile --export pt2 onnx --dynamic` writes one torch.export program and
one ONNX file with symbolic batch, H and W (multiples of the size rule), each equal to eager at
three sizes (onnxruntime for ONNX); an older torch is refused in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mvitdsl
from mvitdsl.backend import export
from mvitdsl.cli import main

# joint positions with a cls row (resized at run time) and decomposed relative positions
SMALL = """\
model small {
  input image 3x32x32
  patch conv 4x4 stride 4x4 -> 16
  tokens cls, position joint
  attention rel_pos decomposed
  stages {
    s1  1  16  2  1x1
    s2  1  32  2  2x2
  }
}
"""
# batch >= 2: the program of a cls-token model keeps a guard against batch 1 (issue 21's
# closing note)
SIZES = ((2, 3, 32, 32), (3, 3, 48, 64), (2, 3, 64, 40))


@pytest.fixture(scope="module")
def written(tmp_path_factory: Any) -> tuple[Any, Path]:
    folder = tmp_path_factory.mktemp("dyn")
    spec_file = folder / "small.mv"
    spec_file.write_text(SMALL)
    torch.manual_seed(0)
    status = main(
        [
            "compile",
            str(spec_file),
            "-o",
            str(folder / "art"),
            "--export",
            "pt2",
            "onnx",
            "--dynamic",
            "--format",
            "json",
        ]
    )
    assert status == 0
    spec = mvitdsl.load_spec(spec_file)
    gm = mvitdsl.build(spec, optimize=False).eval()
    return gm, folder / "art"


def test_the_pt2_program_serves_three_sizes(written: tuple[Any, Path]) -> None:
    gm, art = written
    program = torch.export.load(str(art / "small.pt2"))
    module = program.module()
    # the weights came from the compiled module: load the program's into eager
    gm.load_state_dict(program.state_dict, strict=False)
    for size in SIZES:
        x = torch.randn(*size)
        with torch.no_grad():
            torch.testing.assert_close(module(x), gm(x), rtol=1e-5, atol=1e-5)


def test_the_onnx_file_has_dynamic_axes_and_serves_three_sizes(written: tuple[Any, Path]) -> None:
    import onnx
    import onnxruntime as ort

    gm, art = written
    model = onnx.load(str(art / "small.onnx"))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [bool(d.dim_param) for d in dims] == [True, False, True, True]
    program = torch.export.load(str(art / "small.pt2"))
    gm.load_state_dict(program.state_dict, strict=False)
    session = ort.InferenceSession(str(art / "small.onnx"), providers=["CPUExecutionProvider"])
    for size in SIZES:
        x = torch.randn(*size)
        (got,) = session.run(None, {"x": x.numpy()})
        with torch.no_grad():
            torch.testing.assert_close(torch.from_numpy(got), gm(x), rtol=1e-4, atol=1e-4)


def test_an_older_torch_is_refused_in_one_line() -> None:
    with pytest.raises(RuntimeError) as info:
        export.check_torch("2.5.1+cpu")
    assert str(info.value) == "--dynamic needs torch >= 2.6 (symbolic T, H, W); this is 2.5.1+cpu"
    export.check_torch(torch.__version__)


def test_dynamic_without_export_is_refused(tmp_path: Path, capsys: Any) -> None:
    assert main(["compile", "hiera_t_image", "-o", str(tmp_path / "a"), "--dynamic"]) == 1
    assert "--dynamic goes with --export" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=20) | st.from_regex(r"\d{1,2}\.\d{1,2}(\.\d)?(\+\w+)?", fullmatch=True))
def test_any_version_string_is_accepted_or_refused_in_one_line(version: str) -> None:
    try:
        export.check_torch(version)
    except RuntimeError as e:
        assert "\n" not in str(e) and str(e).startswith("--dynamic needs torch >= 2.6")
