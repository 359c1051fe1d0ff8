"""The `mvitdsl` command: a thin argparse layer over the public API.

Exit codes: 0 success, 1 the spec has errors (diagnostics on stderr), 2 bad command line;
`draw` also: 3 Graphviz failed to render, 4 `dot` is missing (the .dot file was still written).
`check` never imports torch (except to read a .pt checkpoint for --against); `compile` does.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .analysis.analyze import analyze
from .analysis.report_text import render_blocks, render_table
from .diagnostics import SpecError
from .spec import Spec, load_spec


def parse_size(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size like 3x16x224x224") from None


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except SpecError as e:
        if getattr(args, "format", "text") == "json":
            print(
                json.dumps(
                    {"ok": False, "diagnostics": [d.to_json() for d in e.diagnostics]}, indent=2
                )
            )
        else:
            print(e.render(), file=sys.stderr)
            n = len(e.diagnostics)
            print(f"{n} error{'s' * (n != 1)} in {args.spec}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"mvitdsl: {e}", file=sys.stderr)
        return 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mvitdsl", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(required=True, metavar="COMMAND")

    check = sub.add_parser("check", help="check a spec and print its stage table")
    _common(check)
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.add_argument("--blocks", action="store_true", help="also print one line per block")
    check.add_argument("--batch", type=int, default=1, help="batch size for the memory estimate")
    check.add_argument("--dtype", default="fp32", choices=("fp32", "bf16", "fp16"))
    check.add_argument(
        "--resolved",
        action="store_true",
        help="print the spec with inheritance resolved and where each value is set",
    )
    check.add_argument(
        "--against",
        type=Path,
        metavar="CHECKPOINT",
        default=None,
        help="compare a checkpoint's names and shapes with the spec (.pt or "
        ".safetensors; torchvision, SlowFast, timm or pytorchvideo names)",
    )
    check.add_argument(
        "--source",
        choices=("torchvision", "slowfast", "timm", "pytorchvideo"),
        default=None,
        help="the checkpoint's naming (default: guessed from its names)",
    )
    check.set_defaults(run=run_check)

    comp = sub.add_parser("compile", help="check, build, and write an importable artifact")
    _common(comp)
    comp.add_argument("-o", "--out", type=Path, help="output folder (default build/<model>)")
    comp.add_argument(
        "--export",
        nargs="+",
        choices=("onnx", "pt2"),
        default=[],
        help="also write <model>.onnx and/or <model>.pt2 (torch.export) into it",
    )
    comp.set_defaults(run=run_compile)

    draw = sub.add_parser("draw", help="draw the architecture with graphviz")
    _common(draw)
    draw.add_argument("-o", "--out", type=Path, help="output file: .svg .png .pdf .dot .md")
    draw.add_argument("--level", choices=("model", "stage", "block", "op"), default="stage")
    draw.add_argument("--rankdir", choices=("TB", "LR"), default=None)
    draw.add_argument("--block", type=int, default=None, help="block index for --level block/op")
    draw.add_argument("--table", action="store_true", help="draw the paper-style stage table")
    draw.set_defaults(run=run_draw)
    return p


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="a .mv file")
    p.add_argument(
        "--input", type=parse_size, default=None, help="override the input size, e.g. 3x32x224x224"
    )


def _load(args: argparse.Namespace) -> Spec:
    return load_spec(Path(args.spec), input_size=args.input)


def run_check(args: argparse.Namespace) -> int:
    spec = _load(args)
    if args.resolved:
        from .language.resolved import render_resolved

        print(render_resolved(spec))
        return 0
    if args.against is not None:
        from .backend.weights import render_comparison

        text, mismatches = render_comparison(spec, args.against, args.source)
        print(text, file=sys.stderr if mismatches else sys.stdout)
        return 1 if mismatches else 0
    report = analyze(spec, batch=args.batch, dtype=args.dtype)
    if args.format == "json":
        print(json.dumps({"ok": True, "report": report.to_dict()}, indent=2, default=str))
        return 0
    print(render_table(report))
    if args.blocks or args.batch != 1 or args.dtype != "fp32":
        print()
        print(render_blocks(report))
    return 0


def run_compile(args: argparse.Namespace) -> int:
    from . import build
    from .backend.artifact import write_artifact

    spec = _load(args)
    report = analyze(spec)
    print(render_table(report))
    gm = build(spec)
    numel = sum(p.numel() for p in gm.parameters())
    if numel != report.params:  # an invariant: analysis and emission must agree
        print(
            f"mvitdsl: internal error: built {numel:,} params, analysis says {report.params:,}",
            file=sys.stderr,
        )
        return 3
    out = args.out or Path("build") / spec.name
    write_artifact(
        gm, out, name=spec.name, source_file=str(args.spec), source_text=spec.sources[spec.path]
    )
    print(
        f"\nwrote {out}/ (model.py, runtime.py, weights.safetensors): "
        f"import it with `from {out.name} import load`"
    )
    if args.export:
        from .backend.export import input_shape, write_exports

        for path in write_exports(gm, input_shape(spec.model), out, tuple(args.export), spec.name):
            print(f"wrote {path}")
    return 0


def run_draw(args: argparse.Namespace) -> int:
    from .draw.render import run_draw_command

    return run_draw_command(_load(args), args)


if __name__ == "__main__":
    raise SystemExit(main())
