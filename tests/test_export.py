"""Deployment: torch.compile (eager backend), torch.export, ONNX in onnxruntime, and
`mvitdsl compile --export`. Small inputs (3x4x64x64) keep it quick; the graphs are the full
16-block ones."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
import torch  # noqa: E402

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

import mvitdsl  # noqa: E402
from mvitdsl import cli  # noqa: E402
from mvitdsl.backend.artifact import import_artifact  # noqa: E402
from mvitdsl.backend.export import export_program, input_shape, write_onnx  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SMALL = (3, 4, 64, 64)


def small(name: str) -> torch.fx.GraphModule:
    torch.manual_seed(0)
    return mvitdsl.build(mvitdsl.load_spec(ROOT / "specs" / f"{name}.mv", input_size=SMALL)).eval()


def clips(batch: int) -> torch.Tensor:
    return torch.randn(batch, *SMALL, generator=torch.Generator().manual_seed(batch))


def run_onnx(path: Path, x: torch.Tensor) -> torch.Tensor:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])


@pytest.fixture(scope="module")
def compiled_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`mvitdsl compile specs/mvit_b.mv --input 3x4x64x64 --export onnx pt2 -o DIR`."""
    out = tmp_path_factory.mktemp("export") / "mvit_b_small"
    argv = [
        "compile",
        str(ROOT / "specs" / "mvit_b.mv"),
        "--input",
        "x".join(map(str, SMALL)),
        "--export",
        "onnx",
        "pt2",
        "-o",
        str(out),
    ]
    assert cli.main(argv) == 0
    return out


def test_cli_writes_both_formats_next_to_the_artifact(compiled_dir: Path) -> None:
    names = {p.name for p in compiled_dir.iterdir()}
    assert {"mvit_b.onnx", "mvit_b.pt2", "model.py", "weights.safetensors"} <= names


def test_pt2_reloads_and_matches_eager_at_other_batch_sizes(compiled_dir: Path) -> None:
    gm = import_artifact(compiled_dir).load()
    program = torch.export.load(str(compiled_dir / "mvit_b.pt2")).module()
    with torch.no_grad():
        for batch in (1, 3):
            x = clips(batch)
            torch.testing.assert_close(program(x), gm(x), atol=1e-5, rtol=0)


def test_cli_onnx_matches_eager_in_onnxruntime(compiled_dir: Path) -> None:
    gm = import_artifact(compiled_dir).load()
    for batch in (1, 3):
        x = clips(batch)
        with torch.no_grad():
            expected = gm(x)
        torch.testing.assert_close(
            run_onnx(compiled_dir / "mvit_b.onnx", x), expected, atol=1e-4, rtol=0
        )


def test_mvitv2_s_onnx_matches_eager_in_onnxruntime(tmp_path: Path) -> None:
    gm = small("mvitv2_s")
    x = clips(2)
    path = write_onnx(export_program(gm, x), tmp_path / "mvitv2_s.onnx")
    with torch.no_grad():
        expected = gm(x)
    torch.testing.assert_close(run_onnx(path, x), expected, atol=1e-4, rtol=0)
    torch.testing.assert_close(run_onnx(path, clips(1)), gm(clips(1)).detach(), atol=1e-4, rtol=0)


def test_unoptimized_onnx_runs_too(tmp_path: Path) -> None:
    """Without onnxscript's optimizer every bias-less pooling Conv must still be valid ONNX
    (onnxscript 0.7.2 alone gives them a (C, 2) bias that onnxruntime refuses)."""
    gm = small("mvitv2_s")
    x = clips(2)
    path = write_onnx(export_program(gm, x), tmp_path / "raw.onnx", optimize=False)
    convs = [n for n in onnx.load(str(path)).graph.node if n.op_type == "Conv"]
    assert sum(len(n.input) == 2 for n in convs) == 3 * 16  # q, k, v pools of 16 blocks
    with torch.no_grad():
        expected = gm(x)
    torch.testing.assert_close(run_onnx(path, x), expected, atol=1e-4, rtol=0)


def test_input_shape_is_the_specs() -> None:
    assert input_shape(mvitdsl.load_spec(ROOT / "specs/mvitv2_s.mv").model) == (3, 16, 224, 224)


@pytest.mark.parametrize("name", ["mvit_b", "mvitv2_s"])
def test_torch_compile_fullgraph_eager_backend_matches(name: str) -> None:
    gm = small(name)
    compiled = torch.compile(gm, backend="eager", fullgraph=True)
    x = clips(2)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), gm(x), atol=1e-6, rtol=0)


def test_onnx_batch_axis_is_named_batch(compiled_dir: Path) -> None:
    graph = onnx.load(str(compiled_dir / "mvit_b.onnx")).graph
    for value in (*graph.input, *graph.output):
        assert value.type.tensor_type.shape.dim[0].dim_param == "batch", value.name
