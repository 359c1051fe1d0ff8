"""`mvitdsl check`: the stage table (or JSON), --blocks, --resolved, --against a checkpoint,
--weights' load report, and several specs at once (as pre-commit calls it). Never imports torch
(except to read a .pt checkpoint for --against / --weights)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ..analysis.analyze import analyze
from ..analysis.naming import SOURCES
from ..analysis.report_text import memory_line, render_blocks, render_table
from ..analysis.sizes import size_rule
from ..catalog import shipped_path
from ..diagnostics import SpecError
from ..spec import Spec, load_spec
from .common import (
    DTYPES,
    EXAMPLES,
    MAX_FLAG_INT,
    Help,
    Subparsers,
    add_spec_args,
    add_verbose_flag,
    int_in,
    json_text,
    load,
    misfit_text,
    spec_path,
    warnings_json,
)


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "check",
        help="check a spec and print its stage table",
        epilog=EXAMPLES,
        formatter_class=Help,
    )
    add_spec_args(p)
    p.add_argument(
        "--format", choices=("text", "json"), default="text", help="how to print the result"
    )
    p.add_argument("--blocks", action="store_true", help="also print one line per block")
    p.add_argument(
        "--batch",
        type=int_in(1, MAX_FLAG_INT, "--batch"),
        default=1,
        help="batch size for the memory estimate (>= 1)",
    )
    p.add_argument(
        "--dtype", default="fp32", choices=DTYPES, help="element type for the memory estimate"
    )
    p.add_argument(
        "--resolved",
        action="store_true",
        help="print the spec with inheritance resolved and where each value is set",
    )
    p.add_argument(
        "--against",
        type=Path,
        metavar="CHECKPOINT",
        default=None,
        help="compare a checkpoint's names and shapes with the spec (.pt or "
        ".safetensors; torchvision, SlowFast, timm, pytorchvideo or facebookresearch/hiera names)",
    )
    add_source_flag(p)
    p.add_argument("more", nargs="*", metavar="SPEC", help="more specs: each is reported")
    p.add_argument(
        "--weights",
        default=None,
        metavar="CKPT",
        help="print the load report of these weights (what build(weights=) would load, "
        "resize, initialise, ignore); exit 1 if they do not fit",
    )
    p.add_argument(
        "--classes",
        type=int_in(1, MAX_FLAG_INT, "--classes"),
        default=None,
        help="with --weights: a new head",
    )
    add_verbose_flag(p)
    p.set_defaults(run=run)


def add_source_flag(p: argparse.ArgumentParser) -> None:
    """--source: a checkpoint's naming, one of the dialects analysis.naming knows (check and
    compile offer the same)."""
    p.add_argument(
        "--source",
        choices=SOURCES,
        default=None,
        help="the checkpoint's naming (default: guessed from its names)",
    )


def run(args: argparse.Namespace) -> int:
    if args.more:
        return check_each([args.spec, *args.more], args.input)
    problem = illegal_input(args) if args.input is not None else None
    if problem is not None:
        try:
            load(args)
        except SpecError:
            print(f"mvitdsl: {problem}", file=sys.stderr)  # then the located diagnostics
            raise
        raise ValueError(problem)
    spec = load(args)
    if args.resolved:
        from ..language.resolved import render_resolved

        print(render_resolved(spec))
        return 0
    if args.weights is not None:
        return check_weights(spec, args, args.format == "json")
    if args.against is not None:
        return check_against(spec, args, args.format == "json")
    report = analyze(spec, batch=args.batch, dtype=args.dtype)
    rule = size_rule(spec.model)
    if args.format == "json":
        data = report.to_dict()
        print(
            json_text(
                "check", True, report=data, warnings=warnings_json(spec), size_rule=rule.to_dict()
            )
        )
        return 0
    print(render_table(report))
    print(f"size rule: {rule.text} (one built module runs at every such size)")
    if args.blocks:
        print()
        print(render_blocks(report))
    elif args.batch != 1 or args.dtype != "fp32":
        print(memory_line(report))
    return 0


def illegal_input(args: argparse.Namespace) -> str | None:
    """`--input` against the spec's size rule: None when legal, else a line naming the
    nearest legal sizes."""
    size = args.input
    path = Path(args.spec)
    model = load_spec(path if path.exists() else shipped_path(args.spec) or path).model
    if len(size) != (4 if model.video else 3):
        return None  # the wrong number of sizes: load_spec says so
    grid = (size[1], size[2], size[3]) if model.video else (1, size[1], size[2])
    rule = size_rule(model)
    if rule.legal(grid):
        return None
    near = ", ".join("x".join(map(str, (size[0], *model.spatial(g)))) for g in rule.nearest(grid))
    given = "x".join(map(str, size))
    return f"input {given} breaks the size rule ({rule.text}); nearest legal: {near}"


def check_each(files: Sequence[str], size: tuple[int, ...] | None) -> int:
    """`mvitdsl check A.mv B.mv ...` (as pre-commit calls it): one line per good spec, the
    diagnostics of each bad one; exit 1 if any is bad."""
    status = 0
    for file in files:
        try:
            report = analyze(load_spec(spec_path(file), input_size=size))
        except SpecError as e:
            n = len(e.diagnostics)
            print(f"{e.render()}\n{n} error{'s' * (n != 1)} in {file}", file=sys.stderr)
            status = 1
            continue
        print(f"{file}: ok ({report.params:,} params, {report.macs / 1e9:.3f} GMACs)")
    return status


def check_against(spec: Spec, args: argparse.Namespace, as_json: bool) -> int:
    """`check --against`: the checkpoint's names and shapes next to the spec's; exit 1 on a
    mismatch (the closest shipped spec first, the list folded unless --verbose)."""
    from ..backend.weights import comparison_data, read_summary, render_comparison

    checkpoint, source = args.against, args.source
    if as_json:
        data = comparison_data(spec, checkpoint, source)
        print(json_text("against", not data["mismatches"], **data, warnings=warnings_json(spec)))
        return 1 if data["mismatches"] else 0
    text, mismatches = render_comparison(spec, checkpoint, source)
    if not mismatches:
        print(text)
        return 0
    found = read_summary(checkpoint).shapes
    print(misfit_text(text, found, source, args.verbose), file=sys.stderr)
    return 1


def check_weights(spec: Spec, args: argparse.Namespace, as_json: bool) -> int:
    """`check --weights`: the load report without building the model."""
    from .. import with_classes
    from ..backend.load import WeightsError, plan_report

    classes = args.classes
    if classes is not None:
        spec = with_classes(spec, classes)
    try:
        report = plan_report(spec.model, args.weights, args.source, new_head=classes is not None)
    except WeightsError as e:
        print(misfit_text(str(e), e.found, "torchvision", args.verbose), file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps({"ok": True, "load_report": report.to_dict()}, indent=2, default=str))
    else:
        print(report.render())
    return 0
