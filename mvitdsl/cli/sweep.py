"""`mvitdsl sweep`: evaluate variants of one spec or several (exact costs, budgets, one Pareto
front) from --vary / --set / --where or a sweep file; rows as a table, CSV or JSON lines
(no torch)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..diagnostics import SpecError
from .common import DTYPES, MAX_FLAG_INT, Subparsers, int_in, spec_path

if TYPE_CHECKING:
    from ..explore.multi import MultiSweep
    from ..explore.run import SweepRun

SWEEP_EPILOG = """\
PATH: STAGE.COLUMN (scale4.blocks, scale3.dim, scale5.heads, scale3.stride_q, scale3.stride_kv) or
SETTING.OPTION (attention.mlp_ratio, input.size, patch.dim, head.classes, train.drop_path).
VALUES: a..b, a..b:step or v1,v2,...; linked paths share an axis: --vary scale2.dim,patch.dim=64,96
Expressions (--set, --where): + - * / // % < <= > >= == != and or not ( ); '/' must divide exactly.
Example: mvitdsl sweep specs/mvit_b.mv --vary scale4.blocks=6..16:2 --vary scale3.dim=128,192 \\
         --set scale3.heads=scale3.dim/64 --max-params 40e6 --plot front.svg
Several bases: one joint front, a family column; BASE:PATH applies to one base, a PATH without
a prefix to every base that has it:
         mvitdsl sweep mvitv2_t_image swin_t --vary scale4.blocks=2..8:2 \\
         --vary swin_t:scale5.blocks=1,2 --max-gmacs 5 --plot joint.svg
"""


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "sweep",
        help="evaluate variants of a spec: exact costs, budgets, Pareto front",
        epilog=SWEEP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "spec",
        nargs="+",
        help="the base .mv files or shipped spec names (one joint front over several), or one "
        "sweep file (a .mv with a sweep table)",
    )
    p.add_argument("--vary", action="append", default=[], metavar="PATH=VALUES")
    p.add_argument("--set", action="append", default=[], metavar="PATH=EXPR", dest="derive")
    p.add_argument("--where", action="append", default=[], metavar="EXPR")
    p.add_argument(
        "--mode",
        choices=("grid", "random", "zip"),
        default=None,
        help="grid (default), random (with --samples) or zip",
    )
    p.add_argument(
        "--samples",
        type=int_in(1, MAX_FLAG_INT, "--samples"),
        default=None,
        help="random mode: how many variants (per base over several)",
    )
    p.add_argument("--seed", type=int, default=None, help="random mode's seed (default 0)")
    p.add_argument("--max-variants", type=int_in(1, 10**9, "--max-variants"), default=10**6)
    p.add_argument("--max-params", type=float, default=None)
    p.add_argument("--max-gmacs", type=float, default=None, help="matmul-only GMACs")
    p.add_argument("--max-activation-gib", type=float, default=None)
    p.add_argument(
        "--batch",
        type=int_in(1, MAX_FLAG_INT, "--batch"),
        default=1,
        help="batch size for activation memory",
    )
    p.add_argument("--dtype", default="fp32", choices=DTYPES)
    p.add_argument("--format", choices=("text", "csv", "jsonl"), default="text")
    p.add_argument(
        "--pareto",
        default=None,
        metavar="COL[:min|max],...",
        help="objectives of the front (default params,gmacs; 'none' for no front)",
    )
    p.add_argument("--plot", type=Path, default=None, help="draw the front: FILE.svg or FILE.png")
    p.add_argument(
        "--join",
        type=Path,
        default=None,
        help="measured columns by id: CSV with an id column, or bench JSON (folder, .jsonl)",
    )
    p.add_argument(
        "--emit",
        type=Path,
        default=None,
        metavar="DIR",
        help="write each kept variant as DIR/<id>.mv extending the base "
        "(DIR/<family>/<id>.mv over several bases)",
    )
    p.add_argument("--kept", action="store_true", help="list kept variants only")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..explore.axes import AxisError
    from ..explore.expr import ExprError
    from ..language.overrides import PathError

    try:
        sweep = sweep_run(args)
    except SpecError:
        raise  # a spec mistake (also a ValueError): rendered by the CLI, exit 1
    except (AxisError, ExprError, PathError, ValueError) as e:
        print(f"mvitdsl sweep: {e}", file=sys.stderr)
        return 2
    if args.plot is not None and (
        len(sweep.objectives) < 2 or args.plot.suffix.lower() not in (".svg", ".png")
    ):
        print("mvitdsl sweep: --plot FILE.svg|png draws two --pareto objectives", file=sys.stderr)
        return 2
    plotted: list[dict[str, Any]] = []
    try:
        _write_rows(sweep, args, plotted)
    except (ExprError, ValueError) as e:
        print(f"mvitdsl sweep: {e}", file=sys.stderr)
        return 2
    out = sys.stdout if args.format == "text" else sys.stderr
    if args.format == "text":
        print(file=out)
    print(sweep.summary.line(), file=out)
    if args.plot is not None:
        from ..explore.multi import MultiSweep
        from ..explore.plot import plot_front, plot_joint_front

        if isinstance(sweep, MultiSweep):
            plot_joint_front(sweep, plotted, args.plot)
        else:
            plot_front(sweep, plotted, args.plot)
        print(f"wrote {args.plot}", file=out)
    return 0


def sweep_run(args: argparse.Namespace) -> SweepRun | MultiSweep:
    """The sweep the arguments ask for: a sweep file's table, then the command line's additions."""
    from ..explore.engine import Budgets
    from ..explore.multi import make_sweep
    from ..explore.sweepfile import is_sweep_file, read_sweep_file

    paths = [str(spec_path(s)) for s in args.spec]  # a shipped spec's name is its file
    files = [p for p in paths if is_sweep_file(p)]
    if files and len(paths) > 1:
        raise ValueError(
            f"{files[0]} is a sweep file: give it alone (it names more bases with base)"
        )
    kw: dict[str, Any] = read_sweep_file(paths[0]) if files else {}
    pareto = args.pareto or kw.pop("pareto", "params,gmacs")
    bases = [kw.pop("base", paths[0]), *kw.pop("bases", []), *paths[1:]]
    return make_sweep(
        bases,
        [*kw.pop("vary", []), *args.vary],
        set=[*kw.pop("set", []), *args.derive],
        where=[*kw.pop("where", []), *args.where],
        mode=args.mode or kw.pop("mode", "grid"),
        samples=args.samples if args.samples is not None else kw.pop("samples", None),
        seed=args.seed if args.seed is not None else kw.pop("seed", 0),
        max_variants=args.max_variants,
        budgets=Budgets(
            _first(args.max_params, kw.pop("max_params", None)),
            _first(args.max_gmacs, kw.pop("max_gmacs", None)),
            _first(args.max_activation_gib, kw.pop("max_activation_gib", None)),
        ),
        batch=args.batch,
        dtype=args.dtype,
        pareto=None if pareto == "none" else pareto,
        join=args.join,
        emit=args.emit,
        emit_parent=kw.pop("emit_parent", None),
    )


def _write_rows(
    sweep: SweepRun | MultiSweep, args: argparse.Namespace, plotted: list[dict[str, Any]]
) -> None:
    """The rows on stdout in args.format (kept ones only with --kept)."""
    from ..explore.output import write_csv, write_jsonl, write_table

    rows = (r for r in _collect(sweep, plotted, args.plot is not None) if r["ok"] or not args.kept)
    if args.format == "jsonl":
        write_jsonl(rows, sys.stdout)
    elif args.format == "csv":
        write_csv(sweep, rows, sys.stdout)
    else:
        write_table(sweep, rows, sys.stdout)


def _first(*values: float | None) -> float | None:
    return next((float(v) for v in values if v is not None), None)


def _collect(
    run: SweepRun | MultiSweep, plotted: list[dict[str, Any]], keep: bool
) -> Iterator[dict[str, Any]]:
    """The rows, remembering the few fields the plot needs (not the rows themselves)."""
    fields = ("id", "family", "pareto", *(o.column for o in run.objectives))
    for row in run:
        if keep and row["ok"]:
            plotted.append({k: row.get(k) for k in fields})
        yield row
