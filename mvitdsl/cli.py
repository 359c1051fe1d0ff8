"""The `mvitdsl` command: a thin argparse layer over the public API.

Exit codes: 0 success, 1 the spec has errors (diagnostics on stderr), 2 bad command line;
`draw` also: 3 Graphviz failed to render, 4 `dot` is missing (the .dot file was still written).
`check` never imports torch (except to read a .pt checkpoint for --against); `compile` does.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .analysis.analyze import analyze
from .analysis.report_text import render_blocks, render_table
from .diagnostics import SpecError
from .spec import Spec, load_spec

# The version of every JSON shape `mvitdsl` prints (tests/golden/*.json pin each): bump it when a
# key is renamed or removed; adding a key is not a break.
JSON_SCHEMA = 1


def json_text(kind: str, ok: bool, **data: Any) -> str:
    """One JSON output: `schema` and `kind` first, then `ok`, then the payload."""
    return json.dumps(
        {"schema": JSON_SCHEMA, "kind": kind, "ok": ok, **data}, indent=2, default=str
    )


def _kind(args: argparse.Namespace) -> str:
    return "against" if getattr(args, "against", None) is not None else "check"


MAX_FLAG_INT = 1_000_000  # sizes and batch: anything larger is a typo

EXAMPLES = """examples:
  mvitdsl check specs/mvit_b.mv                         stage table: shapes, params, MACs
  mvitdsl check specs/mvit_b.mv --batch 8 --dtype bf16  per-block memory for a batch of 8
  mvitdsl check specs/mvitv2_s.mv --against mvitv2_s.pt compare a checkpoint's names/shapes
  mvitdsl compile specs/mvit_b.mv -o build/mvit_b       write an importable package
  mvitdsl draw specs/mvit_b.mv --level block -o b.svg   draw one block with graphviz
"""


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each flag's default and keeps the examples' line breaks."""


def parse_size(text: str) -> tuple[int, ...]:
    """--input: 3 or 4 whole numbers >= 1 joined by 'x', like 3x16x224x224."""
    parts = text.strip().lower().replace("×", "x").split("x")
    try:
        values = tuple(int(v) for v in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a size like 3x16x224x224 (video) or 3x224x224 (image)"
        ) from None
    if len(values) not in (3, 4):
        raise argparse.ArgumentTypeError(
            f"'{text}' has {len(values)} sizes; give CxTxHxW for video or CxHxW for images"
        )
    if not all(1 <= v <= MAX_FLAG_INT for v in values):
        raise argparse.ArgumentTypeError(
            f"'{text}': every size must be between 1 and {MAX_FLAG_INT:,}"
        )
    return values


def _int_in(lo: int, hi: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{what} must be a whole number, not '{text}'"
            ) from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{what} must be between {lo} and {hi:,}, not {value}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except SpecError as e:
        if getattr(args, "format", "text") == "json":
            print(json_text(_kind(args), False, diagnostics=[d.to_json() for d in e.diagnostics]))
        else:
            print(e.render(), file=sys.stderr)
            n = len(e.diagnostics)
            print(f"{n} error{'s' * (n != 1)} in {args.spec}", file=sys.stderr)
        return 1
    except (OSError, ValueError, TypeError) as e:
        return _fail(args, str(e) or type(e).__name__)
    except KeyboardInterrupt:
        print("mvitdsl: interrupted", file=sys.stderr)
        return 130
    except (MemoryError, RecursionError) as e:
        return _fail(args, f"stopped: {type(e).__name__} {e}".strip())


def _fail(args: argparse.Namespace, message: str) -> int:
    """One line (or JSON with --format json) for an error that is not in the spec, exit 1."""
    if getattr(args, "format", "text") == "json":
        print(json.dumps({"ok": False, "error": message}, indent=2))
    else:
        print(f"mvitdsl: error: {message}", file=sys.stderr)
    return 1


def parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(
        prog="mvitdsl",
        description=__doc__.splitlines()[0],
        epilog=EXAMPLES,
        formatter_class=_Help,
    )
    p.add_argument("--version", action="version", version=f"mvitdsl {__version__}")
    sub = p.add_subparsers(required=True, metavar="COMMAND")

    check = sub.add_parser(
        "check",
        help="check a spec and print its stage table",
        epilog=EXAMPLES,
        formatter_class=_Help,
    )
    _common(check)
    check.add_argument(
        "--format", choices=("text", "json"), default="text", help="how to print the result"
    )
    check.add_argument("--blocks", action="store_true", help="also print one line per block")
    check.add_argument(
        "--batch",
        type=_int_in(1, MAX_FLAG_INT, "--batch"),
        default=1,
        help="batch size for the memory estimate (>= 1)",
    )
    check.add_argument(
        "--dtype",
        default="fp32",
        choices=("fp32", "bf16", "fp16"),
        help="element type for the memory estimate",
    )
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
        ".safetensors; torchvision, SlowFast, timm, pytorchvideo or facebookresearch/hiera names)",
    )
    check.add_argument(
        "--source",
        choices=("torchvision", "slowfast", "timm", "hiera", "pytorchvideo"),
        default=None,
        help="the checkpoint's naming (default: guessed from its names)",
    )
    check.add_argument("more", nargs="*", metavar="SPEC", help="more specs: each is reported")
    check.add_argument(
        "--weights",
        default=None,
        metavar="CKPT",
        help="print the load report of these weights (what build(weights=) would load, "
        "resize, initialise, ignore); exit 1 if they do not fit",
    )
    check.add_argument("--classes", type=int, default=None, help="with --weights: a new head")
    check.set_defaults(run=run_check)

    comp = sub.add_parser(
        "compile",
        help="check, build, and write an importable artifact",
        epilog="-o DIR must be empty, missing, or an earlier artifact (which is replaced); "
        "nothing else in it is ever deleted",
        formatter_class=_Help,
    )
    _common(comp)
    comp.add_argument(
        "-o", "--out", type=Path, default=None, help="output folder (None: build/<model>)"
    )
    comp.add_argument(
        "--export",
        nargs="+",
        choices=("onnx", "pt2"),
        default=[],
        help="also write <model>.onnx and/or <model>.pt2 (torch.export) into it",
    )
    _weights_flags(comp)
    comp.set_defaults(run=run_compile)

    listing = sub.add_parser("list", help="list the shipped specs (name, params, GMACs, source)")
    listing.add_argument("--format", choices=("text", "json"), default="text")
    listing.set_defaults(run=run_list, spec="list")

    _bench_parser(sub)

    draw = sub.add_parser("draw", help="draw the architecture with graphviz", formatter_class=_Help)
    _common(draw)
    draw.add_argument(
        "-o",
        "--out",
        type=Path,
        default=None,
        help="output file: .svg .png .pdf .dot .md (None: build/<model>.<level>.svg)",
    )
    draw.add_argument(
        "--level",
        choices=("model", "stage", "block", "op"),
        default="stage",
        help="how much detail to draw",
    )
    draw.add_argument(
        "--rankdir",
        choices=("TB", "LR"),
        default=None,
        help="layout direction (None: the level's own)",
    )
    draw.add_argument(
        "--block",
        type=_int_in(0, MAX_FLAG_INT, "--block"),
        default=None,
        help="block index for --level block/op, 0 to the model's last (None: a typical one)",
    )
    draw.add_argument("--table", action="store_true", help="draw the paper-style stage table")
    draw.set_defaults(run=run_draw)
    _add_fmt(sub)
    _add_explore(sub, draw)
    return p


def _add_explore(sub: Any, draw: argparse.ArgumentParser) -> None:
    """`sweep`, `diff`, and `draw A.mv [B.mv ...] --costs` (per-stage cost bars, matplotlib)."""
    from .explore.command import add_parsers

    add_parsers(sub)
    draw.add_argument("more", nargs="*", default=[], help=argparse.SUPPRESS)
    draw.add_argument(
        "--costs",
        action="store_true",
        help="per-stage bars of params, GMACs and activation memory (several specs side by side)",
    )


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="a .mv file")
    p.add_argument(
        "--input",
        type=parse_size,
        default=None,
        help="override the input size: CxTxHxW for a video spec (3x32x224x224), CxHxW for an "
        "image spec (3x224x224); None keeps the spec's",
    )


def _load(args: argparse.Namespace) -> Spec:
    path = Path(args.spec)
    if not path.exists():
        from .catalog import shipped_path

        path = shipped_path(args.spec) or path  # a bare name that is not a file: a shipped spec
    spec = load_spec(path, input_size=args.input)
    print_warnings(spec)
    return spec


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
    p.add_argument(
        "--source",
        choices=("torchvision", "slowfast", "timm"),
        default=None,
        help="the checkpoint's naming (default: guessed from its names)",
    )
    p.add_argument("--classes", type=int, default=None, help="a new classifier with N classes")
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


def run_list(args: argparse.Namespace) -> int:
    from .catalog import entries, render_list

    rows = entries()
    if args.format == "json":
        print(json.dumps([vars(e) for e in rows], indent=2))
    else:
        print(render_list(rows))
    return 0


def _warnings(spec: Spec) -> list[dict[str, object]]:
    return [d.to_json() for d in spec.warnings]


def print_warnings(spec: Spec) -> None:
    """Warnings (deprecated spellings) go to stderr, so stdout stays the report."""
    for d in spec.warnings:
        print(d.render(spec.sources.get(d.span.file) if d.span else None), file=sys.stderr)


def run_check(args: argparse.Namespace) -> int:
    if args.more:
        return check_each([args.spec, *args.more], args.input)
    spec = _load(args)
    if args.resolved:
        from .language.resolved import render_resolved

        print(render_resolved(spec))
        return 0
    if args.weights is not None:
        return check_weights(spec, args)
    if args.against is not None:
        from .backend.weights import comparison_data, render_comparison

        if args.format == "json":
            data = comparison_data(spec, args.against, args.source)
            print(json_text("against", not data["mismatches"], **data, warnings=_warnings(spec)))
            return 1 if data["mismatches"] else 0
        text, mismatches = render_comparison(spec, args.against, args.source)
        print(text, file=sys.stderr if mismatches else sys.stdout)
        return 1 if mismatches else 0
    report = analyze(spec, batch=args.batch, dtype=args.dtype)
    if args.format == "json":
        print(json_text("check", True, report=report.to_dict(), warnings=_warnings(spec)))
        return 0
    print(render_table(report))
    if args.blocks or args.batch != 1 or args.dtype != "fp32":
        print()
        print(render_blocks(report))
    return 0


def check_each(files: Sequence[str], size: tuple[int, ...] | None) -> int:
    """`mvitdsl check A.mv B.mv ...` (as pre-commit calls it): one line per good spec, the
    diagnostics of each bad one; exit 1 if any is bad."""
    status = 0
    for file in files:
        try:
            report = analyze(load_spec(Path(file), input_size=size))
        except SpecError as e:
            n = len(e.diagnostics)
            print(f"{e.render()}\n{n} error{'s' * (n != 1)} in {file}", file=sys.stderr)
            status = 1
            continue
        print(f"{file}: ok ({report.params:,} params, {report.macs / 1e9:.3f} GMACs)")
    return status


def check_weights(spec: Spec, args: argparse.Namespace) -> int:
    """`check --weights`: the load report without building the model."""
    from . import with_classes
    from .backend.load import WeightsError, plan_report

    if args.classes is not None:
        spec = with_classes(spec, args.classes)
    try:
        report = plan_report(
            spec.model, args.weights, args.source, new_head=args.classes is not None
        )
    except WeightsError as e:
        print(e, file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps({"ok": True, "load_report": report.to_dict()}, indent=2, default=str))
    else:
        print(report.render())
    return 0


def run_compile(args: argparse.Namespace) -> int:
    from . import build, with_classes
    from .backend.artifact import shadowed_module, write_artifact
    from .backend.load import WeightsError, manifest_extra

    spec = _load(args)
    if args.classes is not None:
        spec = with_classes(spec, args.classes)
    report = analyze(spec)
    text = args.format == "text"
    if text:
        print(render_table(report))
    out = args.out or default_artifact_folder(spec.name)
    if args.out is None and shadowed_module(Path("build") / spec.name) and text:
        print(f"note: '{spec.name}' names an installed module; writing to {out} instead")
    features = _stage_keys(args.features)
    try:
        gm = build(
            spec,
            weights=args.weights,
            source=args.source,
            classes=args.classes,
            features=features,
            feature_norm=args.feature_norm,
        )
    except (WeightsError, ValueError) as e:
        if text:
            print(f"mvitdsl: {e}", file=sys.stderr)
        else:
            print(json.dumps({"ok": False, "error": str(e)}, indent=2))
        return 1
    load_report = getattr(gm, "load_report", None)
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
    from .backend.export import input_shape, write_exports

    exported: list[Path] = []

    def exports(folder: Path) -> list[Path]:
        for fmt in dict.fromkeys(args.export):
            _progress(f"exporting {fmt} ...")
            exported.extend(write_exports(gm, input_shape(spec.model), folder, (fmt,), spec.name))
        return exported

    write_artifact(
        gm,
        out,
        name=spec.name,
        source_file=str(args.spec),
        source_text=compiled_spec_text(spec),
        input_size=input_shape(spec.model),
        exports=exports if args.export else None,
        progress=_progress,
        extra=manifest_extra(load_report, getattr(gm, "feature_info", None)),
    )
    if text:
        files = ", ".join(sorted(p.name for p in out.iterdir() if p.name != "__pycache__"))
        weights = "weights from " + str(args.weights) if args.weights else "random weights"
        print(
            f"\nwrote {out}/ ({files}): {weights}; import it from {out.parent}/ with "
            f"`from {out.name} import build, load`"
        )
    else:
        written = [str(out)] + [str(out / p.name) for p in exported]
        body = {"ok": True, "written": written, "params": numel}
        if load_report is not None:
            body["load_report"] = load_report.to_dict()
        print(json.dumps(body, indent=2, default=str))
    return 0


def _progress(line: str) -> None:
    print(f"mvitdsl: {line}", file=sys.stderr, flush=True)


def default_artifact_folder(name: str) -> Path:
    """build/<model>, or build/<model>_model when the name would shadow an installed module."""
    from .backend.artifact import shadowed_module

    out = Path("build") / name
    return out.with_name(f"{name}_model") if shadowed_module(out) else out


def compiled_spec_text(spec: Spec) -> str:
    """The resolved spec, with the input size in effect (an --input override) written in."""
    from .language.resolved import render_resolved

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


def _bench_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = sub.add_parser("bench", help="measure a spec's speed on this device")
    _common(bench)
    bench.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    bench.add_argument(
        "--dtype",
        default="fp32",
        choices=("fp32", "bf16", "fp16"),
        help="bf16/fp16: autocast (add --pure for a model built in that dtype)",
    )
    bench.add_argument("--pure", action="store_true", help="build(dtype=...) instead of autocast")
    bench.add_argument("--batch", type=int, default=1)
    bench.add_argument("--train", action="store_true", help="time an SGD step, not inference")
    bench.add_argument("--compile", action="store_true", help="torch.compile(fullgraph=True)")
    bench.add_argument(
        "--no-optimize", action="store_true", help="the semantic graph without the CPU layer"
    )
    bench.add_argument("--reps", type=int, default=5)
    bench.add_argument("--warmup", type=int, default=1)
    bench.add_argument("--threads", type=int, default=None, help="CPU threads (torch)")
    bench.add_argument(
        "--peak-tflops", type=float, default=None, help="a vendor peak instead of the probe"
    )
    bench.add_argument("--against", choices=("torchvision", "timm"), default=None)
    bench.add_argument("--format", choices=("text", "json"), default="text")
    bench.set_defaults(run=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    spec = _load(args)  # checked before torch is imported
    from .backend.bench import BenchOptions, render_text
    from .backend.bench import run as bench

    opts = BenchOptions(
        device=args.device,
        dtype=args.dtype,
        pure=args.pure,
        batch=args.batch,
        train=args.train,
        compile=args.compile,
        optimize=False if args.no_optimize else "auto",
        reps=args.reps,
        warmup=args.warmup,
        threads=args.threads,
        peak_tflops=args.peak_tflops,
        against=args.against,
        progress=sys.stderr.isatty() or args.format == "text",
    )
    try:
        result = bench(spec, opts)
    except ValueError as e:
        print(f"\nmvitdsl: {e}", file=sys.stderr)
        return 2
    print(file=sys.stderr)  # end the progress line
    print(json.dumps(result, indent=2) if args.format == "json" else render_text(result))
    return 0


def run_draw(args: argparse.Namespace) -> int:
    if args.costs or args.more:
        from .draw.costs import run_costs_command

        specs = [load_spec(Path(p), input_size=args.input) for p in (args.spec, *args.more)]
        return run_costs_command(args, specs)
    from .draw.render import run_draw_command

    return run_draw_command(_load(args), args)


def _add_fmt(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fmt = sub.add_parser("fmt", help="rewrite specs in the canonical layout")
    fmt.add_argument("files", nargs="+", type=Path, help=".mv files or folders holding them")
    fmt.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file would change"
    )
    fmt.add_argument("--diff", action="store_true", help="write nothing; print a unified diff")
    fmt.set_defaults(run=run_fmt)


def run_fmt(args: argparse.Namespace) -> int:
    from .language.fmt import run_fmt_files

    return run_fmt_files(args.files, check=args.check, diff=args.diff)


if __name__ == "__main__":
    raise SystemExit(main())
