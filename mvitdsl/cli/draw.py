"""`mvitdsl draw`: a diagram, the paper-style stage table, or per-stage cost bars, written to a
file. Imports the drawing modules (and so graphviz) only when it runs.

Exit codes: 0 written, 2 bad arguments, 3 `dot` failed, 4 `dot` missing (the .dot file is written
instead and the message says how to install Graphviz).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..spec import Spec, load_spec
from .common import MAX_FLAG_INT, Help, Subparsers, add_spec_args, int_in, load, spec_path

if TYPE_CHECKING:
    from ..draw.render import Digraph

FORMATS = (".svg", ".png", ".pdf", ".dot")
EXIT_OK, EXIT_USAGE, EXIT_RENDER, EXIT_NO_DOT = 0, 2, 3, 4
INSTALL_HINT = (
    "install Graphviz (Debian/Ubuntu: sudo apt-get install graphviz; macOS: brew "
    "install graphviz), then run: dot -T{fmt} {dot} -o {out}"
)


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser("draw", help="draw the architecture with graphviz", formatter_class=Help)
    add_spec_args(p)
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        default=None,
        help="output file: .svg .png .pdf .dot .md (None: build/<model>.<level>.svg)",
    )
    p.add_argument(
        "--level",
        choices=("model", "stage", "block", "op"),
        default="stage",
        help="how much detail to draw",
    )
    p.add_argument(
        "--rankdir",
        choices=("TB", "LR"),
        default=None,
        help="layout direction (None: the level's own)",
    )
    p.add_argument(
        "--block",
        type=int_in(0, MAX_FLAG_INT, "--block"),
        default=None,
        help="block index for --level block/op, 0 to the model's last (None: a typical one)",
    )
    p.add_argument("--table", action="store_true", help="draw the paper-style stage table")
    p.add_argument(
        "more",
        nargs="*",
        default=[],
        metavar="SPEC",
        help="with --costs: more specs, drawn side by side",
    )
    p.add_argument(
        "--costs",
        action="store_true",
        help="per-stage bars of params, GMACs and activation memory; takes several specs "
        "(draw --costs A.mv B.mv ...) side by side",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.costs or args.more:
        return draw_costs([args.spec, *args.more], args.input, args.out)
    spec = load(args)
    problem = usage_error(spec, args.out, args.table, args.block)
    if problem:
        print(f"mvitdsl draw: {problem}", file=sys.stderr)
        return EXIT_USAGE
    out = args.out or default_out(spec, args.level, args.table)
    if args.table:
        return draw_table(spec, out)
    from ..draw import draw, node_count
    from ..draw.diagram import plural

    g = draw(spec, args.level, rankdir=args.rankdir, block=args.block)
    code = write(g, out)
    if code == EXIT_OK:
        print(f"wrote {out} ({plural(node_count(g), 'node')})")
    return code


def draw_table(spec: Spec, out: Path) -> int:
    """The paper's Table 2 as Markdown (.md) or a picture."""
    from ..analysis.analyze import analyze
    from ..draw import table_graph, table_markdown

    report = analyze(spec)
    if out.suffix.lower() == ".md":
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(table_markdown(report), encoding="utf-8")
        print(f"wrote {out}")
        return EXIT_OK
    code = write(table_graph(report), out)
    if code == EXIT_OK:
        print(f"wrote {out}")
    return code


def draw_costs(files: list[str], size: tuple[int, ...] | None, out: Path | None) -> int:
    """`mvitdsl draw A.mv [B.mv ...] --costs -o FILE.svg|png`: per-stage bars (matplotlib)."""
    from ..draw.costs import plot_costs

    specs = [load_spec(spec_path(p), input_size=size) for p in files]
    out = out or Path(f"{specs[0].name}_costs.svg")
    plot_costs(specs, out)
    print(f"wrote {out}")
    return EXIT_OK


def default_out(spec: Spec, level: str, table: bool) -> Path:
    return Path("build") / f"{spec.name}.{'table' if table else level}.svg"


def usage_error(spec: Spec, out: Path | None, table: bool, block: int | None) -> str | None:
    """Why these arguments cannot be drawn, or None."""
    allowed = (*FORMATS, ".md") if table else FORMATS
    if out is not None and out.suffix.lower() not in allowed:
        return f"cannot write '{out}': the file name must end in {', '.join(allowed)}"
    n = len(spec.model.blocks)
    if block is not None and not 0 <= block < n:
        return f"--block {block} is out of range: {spec.name} has blocks 0 to {n - 1}"
    return None


def write(g: Digraph, out: Path) -> int:
    """Render by the file extension; without `dot`, write the .dot file and say so (exit 4)."""
    from ..draw import DotFailed, DotMissing, render

    out.parent.mkdir(parents=True, exist_ok=True)
    fmt = out.suffix.lower()[1:]
    if fmt == "dot":
        out.write_text(g.source, encoding="utf-8")
        return EXIT_OK
    try:
        data = render(g, fmt)
    except DotFailed as e:
        print(f"mvitdsl draw: Graphviz failed to render {out}: {e.stderr!r}", file=sys.stderr)
        return EXIT_RENDER
    except DotMissing:
        dot = out.with_suffix(".dot")
        dot.write_text(g.source, encoding="utf-8")
        print(
            f"mvitdsl draw: Graphviz's `dot` program was not found; wrote {dot} instead.\n"
            + INSTALL_HINT.format(fmt=fmt, dot=dot, out=out),
            file=sys.stderr,
        )
        return EXIT_NO_DOT
    out.write_bytes(data)
    return EXIT_OK
