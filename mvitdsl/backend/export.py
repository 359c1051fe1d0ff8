"""Deployment formats for a built model: a torch.export program (.pt2) and ONNX.

    mvitdsl compile specs/mvit_b.mv --export onnx pt2 -o build/mvit_b

Both keep the batch dimension dynamic; with `--dynamic` (`dynamic=True`) also T, H and W, as
symbolic multiples of the spec's size rule (`analysis/sizes.py`), so one program serves every
legal size. ONNX goes through the dynamo exporter and is checked against eager in onnxruntime
by the tests (tests/test_export_dynamic.py at three sizes).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import fx
from torch.export import Dim, ExportedProgram

from ..analysis.sizes import SizeRule
from ..ir import Model
from .passes.optimize import semantic_graph

MAX_BATCH = 1024
MAX_SIZE = 8192  # the largest T, H or W a dynamic export serves
DYNAMIC_MIN_TORCH = (2, 6)  # derived dims (32 * Dim) and the dynamo ONNX exporter of a program


def input_shape(model: Model) -> tuple[int, ...]:
    """The model's input without the batch: (C, T, H, W) for video, (C, H, W) for images."""
    return (model.input.channels, *model.spatial(model.input.size))


def example_input(input_size: tuple[int, ...], batch: int = 2) -> torch.Tensor:
    """A random input (batch, *input_size); batch 2 so the exporters cannot specialise on 1."""
    return torch.randn(batch, *input_size)


def dynamic_dims(rule: SizeRule | None) -> dict[str, dict[int, Any]]:
    """The input's dynamic axes: the batch, and with a size rule each of T, H, W as a multiple
    of the rule's (`m * Dim`), from its least size up to MAX_SIZE."""
    dims: dict[int, Any] = {0: Dim("batch", min=1, max=MAX_BATCH)}
    if rule is not None:
        for i, (axis, m, low) in enumerate(rule.axes()):
            dims[2 + i] = m * Dim(axis.lower(), min=max(1, low // m), max=MAX_SIZE // m)
    return {"x": dims}


def check_torch(version: str = torch.__version__) -> None:
    """A dynamic export needs torch >= DYNAMIC_MIN_TORCH: one-line RuntimeError otherwise."""
    numbers = [int(v) for v in re.findall(r"\d+", version)[:2]]
    if len(numbers) < 2 or (numbers[0], numbers[1]) < DYNAMIC_MIN_TORCH:
        need = ".".join(map(str, DYNAMIC_MIN_TORCH))
        shown = " ".join(version.split()) or repr(version)  # one line, whatever the string
        raise RuntimeError(f"--dynamic needs torch >= {need} (symbolic T, H, W); this is {shown}")


def export_program(
    gm: fx.GraphModule, x: torch.Tensor, rule: SizeRule | None = None
) -> ExportedProgram:
    """torch.export of the eval-mode model with a dynamic batch dimension, and with `rule`
    (dynamic sizes) symbolic T, H, W following it."""
    if rule is not None:
        check_torch()
    from torch.fx.experimental import _config as fx_config

    gm = gm.eval()
    # size-oblivious sizes: a padded window's pad may be zero or not at run time, so the
    # program keeps no guard on the example's case (ceil counts, a `narrow` crop)
    oblivious = fx_config.patch(backed_size_oblivious=rule is not None)  # type: ignore[attr-defined]
    with torch.no_grad(), semantic_graph(gm), oblivious:  # exports carry the semantic graph
        return torch.export.export(gm, (x,), dynamic_shapes=dynamic_dims(rule))


def write_pt2(program: ExportedProgram, path: Path) -> Path:
    """Save an exported program; reload it with torch.export.load(path).module()."""
    torch.export.save(program, str(path))
    return path


def write_onnx(
    program: ExportedProgram,
    path: Path,
    optimize: bool = True,
    output_names: Sequence[str] = ("logits",),
) -> Path:
    """Convert an exported program to ONNX (dynamo exporter), weights inside the file;
    `optimize` runs onnxscript's graph optimizer (half the export time, smaller graph)."""
    onnx_program = torch.onnx.export(
        program,
        dynamo=True,
        verbose=False,
        optimize=optimize,
        input_names=["x"],
        output_names=list(output_names),
        custom_translation_table={torch.ops.aten.conv3d.default: _onnx_conv3d},
    )
    assert onnx_program is not None  # dynamo=True always returns the program
    name_batch_axis(onnx_program.model)
    onnx_program.save(str(path))
    return path


BATCH_AXIS = "batch"


def name_batch_axis(model: Any) -> None:
    """Call the input's first (dynamic) axis `batch` everywhere it appears, not `s77`."""
    from onnx_ir import Shape, SymbolicDim

    inputs = list(model.graph.inputs)
    if not inputs or inputs[0].shape is None or not isinstance(inputs[0].shape[0], SymbolicDim):
        return
    old = inputs[0].shape[0].value
    values = [*model.graph.inputs, *model.graph.outputs]
    values += [v for node in model.graph.all_nodes() for v in node.outputs]
    for value in values:
        shape = value.shape
        if shape is None or not any(
            isinstance(d, SymbolicDim) and d.value == old for d in shape.dims
        ):
            continue
        value.shape = Shape(
            [BATCH_AXIS if isinstance(d, SymbolicDim) and d.value == old else d for d in shape.dims]
        )


def _onnx_conv3d(
    input: Any,  # noqa: A002  (aten.conv3d's argument names)
    weight: Any,
    bias: Any = None,
    stride: Sequence[int] = (1, 1, 1),
    padding: Sequence[int] = (0, 0, 0),
    dilation: Sequence[int] = (1, 1, 1),
    groups: int = 1,
) -> Any:
    """aten.conv3d as one ONNX Conv, the bias input left out when there is none.

    onnxscript's own translation (0.7.2) gives a bias-less conv3d, as every pooling conv is, a
    (C_out, 2) zero bias, which onnxruntime refuses unless the optimizer folds it away
    (microsoft/onnxscript#2931)."""
    from onnxscript import opset18 as op

    inputs = (input, weight) if bias is None else (input, weight, bias)
    return op.Conv(
        *inputs,
        strides=list(stride),
        pads=[*padding, *padding],
        dilations=list(dilation),
        group=groups,
    )


def write_exports(
    gm: fx.GraphModule,
    input_size: tuple[int, ...],
    out_dir: Path,
    formats: tuple[str, ...],
    name: str,
    rule: SizeRule | None = None,
) -> list[Path]:
    """Export once with torch.export and write each requested format into out_dir; with a
    size rule, T, H, W symbolic (see export_program)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    program = export_program(gm, example_input(input_size), rule)
    written = []
    if "pt2" in formats:
        written.append(write_pt2(program, out_dir / f"{name}.pt2"))
    if "onnx" in formats:
        info = getattr(gm, "feature_info", None)  # a feature model: one output per map
        names = [i["name"] for i in info] if info else ["logits"]
        written.append(write_onnx(program, out_dir / f"{name}.onnx", output_names=names))
    return written
