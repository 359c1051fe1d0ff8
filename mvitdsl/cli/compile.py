"""`mvitdsl compile`: check, build, and write an importable artifact (with --export, ONNX /
torch.export files too). Reaches the backend only after the spec is checked."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from ..analysis.analyze import analyze
from ..analysis.report_text import render_table
from ..spec import Spec
from .check import add_source_flag
from .common import (
    MAX_FLAG_INT,
    Help,
    Subparsers,
    add_spec_args,
    add_verbose_flag,
    int_in,
    load,
    misfit_text,
    progress,
)


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "compile",
        help="check, build, and write an importable artifact",
        epilog="-o DIR must be empty, missing, or an earlier artifact (which is replaced); "
        "nothing else in it is ever deleted",
        formatter_class=Help,
    )
    add_spec_args(p)
    p.add_argument(
        "-o", "--out", type=Path, default=None, help="output folder (None: build/<model>)"
    )
    p.add_argument(
        "--export",
        nargs="+",
        choices=("onnx", "pt2"),
        default=[],
        help="also write <model>.onnx and/or <model>.pt2 (torch.export) into it",
    )
    p.add_argument(
        "--dynamic",
        action="store_true",
        help="with --export: symbolic T, H, W (multiples of the spec's size rule) beside the "
        "batch, one program for every legal size (torch >= 2.6)",
    )
    _weights_flags(p)
    p.set_defaults(run=run)


def _weights_flags(p: argparse.ArgumentParser) -> None:
    """compile's flags for trained weights, new classes and feature outputs."""
    p.add_argument(
        "--weights",
        default=None,
        metavar="CKPT",
        help="load weights: a .pt/.pth/.safetensors file or torchvision:ENUM.NAME "
        "(e.g. torchvision:MViT_V1_B_Weights.KINETICS400_V1); position tables are resized to "
        "the input size",
    )
    add_source_flag(p)
    add_verbose_flag(p)
    p.add_argument(
        "--classes",
        type=int_in(1, MAX_FLAG_INT, "--classes"),
        default=None,
        help="a new classifier with N classes",
    )
    p.add_argument(
        "--features",
        nargs="+",
        default=None,
        metavar="STAGE",
        help="return a dict of feature maps after these stages (names or indices)",
    )
    p.add_argument(
        "--feature-norm",
        action="store_true",
        default=None,
        help="a LayerNorm on each feature map (default: the spec's `outputs ..., norm`)",
    )
    p.add_argument("--format", choices=("text", "json"), default="text")


def _stage_keys(values: list[str] | None) -> list[str | int] | None:
    if values is None:
        return None
    return [int(v) if v.lstrip("-").isdigit() else v for v in values]


def run(args: argparse.Namespace) -> int:
    from .. import with_classes

    if args.dynamic:
        if not args.export:
            raise ValueError("--dynamic goes with --export pt2 and/or onnx")
        from ..backend.export import check_torch

        check_torch()  # before anything is built or written
    spec = load(args)
    if args.classes is not None:
        spec = with_classes(spec, args.classes)
    report = analyze(spec)
    text = args.format == "text"
    if text:
        print(render_table(report))
    out = args.out or default_artifact_folder(spec.name)
    gm = _build(spec, args, out, text)
    if gm is None:
        return 1
    load_report = getattr(gm, "load_report", None)
    if load_report is not None:
        warn_nonfinite(gm)
    if load_report is not None and text:
        print()
        print(load_report.render())
    numel = sum(p.numel() for p in gm.parameters())
    is_features = getattr(gm, "feature_info", None) is not None
    if not is_features and numel != report.params:  # analysis and emission must agree
        print(
            f"mvitdsl: internal error: built {numel:,} params, analysis says {report.params:,}",
            file=sys.stderr,
        )
        return 3
    exported = _write(gm, spec, args, out, load_report)
    _say_written(args, out, exported, numel, load_report)
    return 0


def _say_written(
    args: argparse.Namespace, out: Path, exported: list[Path], numel: int, load_report: Any
) -> None:
    """What was written: one line of text, or the JSON body."""
    if args.format == "text":
        files = ", ".join(sorted(p.name for p in out.iterdir() if p.name != "__pycache__"))
        weights = "weights from " + str(args.weights) if args.weights else "random weights"
        print(
            f"\nwrote {out}/ ({files}): {weights}; import it from {out.parent}/ with "
            f"`from {out.name} import build, load`"
        )
        return
    written = [str(out)] + [str(out / p.name) for p in exported]
    body = {"ok": True, "written": written, "params": numel}
    if load_report is not None:
        body["load_report"] = load_report.to_dict()
    print(json.dumps(body, indent=2, default=str))


def _build(spec: Spec, args: argparse.Namespace, out: Path, text: bool) -> Any:
    """The built GraphModule, or None when the weights do not fit (said on stderr / as JSON)."""
    from .. import build
    from ..backend.artifact import shadowed_module
    from ..backend.load import WeightsError

    if args.out is None and shadowed_module(Path("build") / spec.name) and text:
        print(f"note: '{spec.name}' names an installed module; writing to {out} instead")
    try:
        return build(
            spec,
            weights=args.weights,
            source=args.source,
            classes=args.classes,
            features=_stage_keys(args.features),
            feature_norm=args.feature_norm,
        )
    except (WeightsError, ValueError) as e:
        if text and isinstance(e, WeightsError):
            print(
                f"mvitdsl: {misfit_text(str(e), e.found, 'torchvision', args.verbose)}",
                file=sys.stderr,
            )
        elif text:
            print(f"mvitdsl: {e}", file=sys.stderr)
        else:
            print(json.dumps({"ok": False, "error": str(e)}, indent=2))
        return None


def warn_nonfinite(gm: Any) -> None:
    """A warning on stderr naming the loaded tensors that hold NaN or Inf (as check --against
    lists them): the artifact is still written, the user decides."""
    from ..backend.load import nonfinite_names

    bad = nonfinite_names(gm)
    if bad:
        print(
            f"mvitdsl: warning: {len(bad)} loaded tensor{'s' * (len(bad) != 1)} hold NaN or Inf "
            f"values: {', '.join(bad)}",
            file=sys.stderr,
        )


def _write(
    gm: Any, spec: Spec, args: argparse.Namespace, out: Path, load_report: Any
) -> list[Path]:
    """The artifact folder (and the --export files in it); returns the exported files."""
    from ..analysis.sizes import size_rule
    from ..backend.artifact import write_artifact
    from ..backend.export import input_shape, write_exports
    from ..backend.load import manifest_extra

    rule = size_rule(spec.model) if args.dynamic else None

    exported: list[Path] = []

    def exports(folder: Path) -> list[Path]:
        formats = tuple(dict.fromkeys(args.export))
        progress(f"exporting {', '.join(formats)} ...")  # one torch.export for all of them
        shape = input_shape(spec.model)
        exported.extend(write_exports(gm, shape, folder, formats, spec.name, rule))
        return exported

    write_artifact(
        gm,
        out,
        name=spec.name,
        source_file=str(args.spec),
        source_text=compiled_spec_text(spec),
        input_size=input_shape(spec.model),
        exports=exports if args.export else None,
        progress=progress,
        extra=manifest_extra(load_report, getattr(gm, "feature_info", None)),
    )
    return exported


def default_artifact_folder(name: str) -> Path:
    """build/<model>, or build/<model>_model when the name would shadow an installed module."""
    from ..backend.artifact import shadowed_module

    out = Path("build") / name
    return out.with_name(f"{name}_model") if shadowed_module(out) else out


def compiled_spec_text(spec: Spec) -> str:
    """The resolved spec, with the input size in effect (an --input override) written in."""
    from ..language.resolved import render_resolved

    text = render_resolved(spec)
    m = spec.model
    size = (
        (m.input.channels, *m.input.size)
        if m.input.kind == "video"
        else (m.input.channels, *m.input.size[1:])
    )
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("  input "):
            new = re.sub(r"\b\d+(x\d+)+\b", "x".join(map(str, size)), line, count=1)
            if new != line:
                lines[i] = re.sub(r"#.*$", "# mvitdsl compile --input", new)
            break
    return "\n".join(lines) + "\n"
