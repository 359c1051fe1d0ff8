"""Deployment: torch.compile (eager backend), torch.export, ONNX in onnxruntime, and
`mvitdsl compile --export`. Small inputs (3x4x64x64) keep it quick. `make test` exports the
short models (scale4 with 1 block of 11: six blocks, every kind of block of the 16 still there);
their `full` twins (`make test-all`) export the 16-block ones."""

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
DEPTHS = [pytest.param("short"), pytest.param("full", marks=pytest.mark.full)]
BLOCKS = {"short": 6, "full": 16}


def spec_file(name: str, depth: str, folder: Path) -> Path:
    """The shipped spec, or (short) a child of it under the same model name with one scale4
    block: exporting takes time per block, and blocks 4-13 of the 16 repeat block 3's kind."""
    if depth == "full":
        return ROOT / "specs" / f"{name}.mv"
    path = folder / f"{name}.mv"
    path.write_text(
        f'model {name} extends "{ROOT / "specs" / name}.mv" {name} {{\n'
        "  stages {\n    scale4  1  384  4  1x2x2\n  }\n}\n"
    )
    return path


def small(name: str, depth: str, folder: Path) -> torch.fx.GraphModule:
    torch.manual_seed(0)
    spec = mvitdsl.load_spec(spec_file(name, depth, folder), input_size=SMALL)
    assert len(spec.model.blocks) == BLOCKS[depth]
    return mvitdsl.build(spec).eval()


def clips(batch: int) -> torch.Tensor:
    return torch.randn(batch, *SMALL, generator=torch.Generator().manual_seed(batch))


def run_onnx(path: Path, x: torch.Tensor) -> torch.Tensor:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])


@pytest.fixture(scope="module", params=DEPTHS)
def compiled_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`mvitdsl compile specs/mvit_b.mv --input 3x4x64x64 --export onnx pt2 -o DIR`."""
    folder = tmp_path_factory.mktemp("export")
    out = folder / "mvit_b_small"
    argv = [
        "compile",
        str(spec_file("mvit_b", request.param, folder)),
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


@pytest.fixture(scope="module", params=DEPTHS)
def mvitv2_s_program(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[torch.fx.GraphModule, torch.export.ExportedProgram, str]:
    """mvitv2_s at 3x4x64x64 and its torch.export program, made once for both ONNX tests."""
    gm = small("mvitv2_s", request.param, tmp_path_factory.mktemp("mvitv2_s"))
    return gm, export_program(gm, clips(2)), request.param


def test_mvitv2_s_onnx_matches_eager_in_onnxruntime(mvitv2_s_program, tmp_path: Path) -> None:
    gm, program, _ = mvitv2_s_program
    x = clips(2)
    path = write_onnx(program, tmp_path / "mvitv2_s.onnx")
    with torch.no_grad():
        expected = gm(x)
    torch.testing.assert_close(run_onnx(path, x), expected, atol=1e-4, rtol=0)
    torch.testing.assert_close(run_onnx(path, clips(1)), gm(clips(1)).detach(), atol=1e-4, rtol=0)


def test_unoptimized_onnx_runs_too(mvitv2_s_program, tmp_path: Path) -> None:
    """Without onnxscript's optimizer every bias-less pooling Conv must still be valid ONNX
    (onnxscript 0.7.2 alone gives them a (C, 2) bias that onnxruntime refuses)."""
    gm, program, depth = mvitv2_s_program
    x = clips(2)
    path = write_onnx(program, tmp_path / "raw.onnx", optimize=False)
    convs = [n for n in onnx.load(str(path)).graph.node if n.op_type == "Conv"]
    assert sum(len(n.input) == 2 for n in convs) == 3 * BLOCKS[depth]  # q, k, v pools per block
    with torch.no_grad():
        expected = gm(x)
    torch.testing.assert_close(run_onnx(path, x), expected, atol=1e-4, rtol=0)


def test_input_shape_is_the_specs() -> None:
    assert input_shape(mvitdsl.load_spec(ROOT / "specs/mvitv2_s.mv").model) == (3, 16, 224, 224)


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("name", ["mvit_b", "mvitv2_s"])
def test_torch_compile_fullgraph_eager_backend_matches(name: str, depth: str, tmp_path) -> None:
    gm = small(name, depth, tmp_path)
    compiled = torch.compile(gm, backend="eager", fullgraph=True)
    x = clips(2)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), gm(x), atol=1e-6, rtol=0)


def test_onnx_batch_axis_is_named_batch(compiled_dir: Path) -> None:
    graph = onnx.load(str(compiled_dir / "mvit_b.onnx")).graph
    for value in (*graph.input, *graph.output):
        assert value.type.tensor_type.shape.dim[0].dim_param == "batch", value.name
