"""`mvitdsl search`: the sweep's design space searched with Optuna by measured objectives, on
local worker processes or on many machines sharing a journal file or an RDB study."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..diagnostics import SpecError
from .common import DTYPES, Subparsers, int_in

SEARCH_EPILOG = """\
OBJECTIVE: params, gmacs, gmacs_fvcore, activation_gib, attention_share (analytic), latency
(ms, bench's timing loop on --device), peak_memory (GiB, one training step in a fresh process), or
MODULE:FUNCTION (called with the built model; its number is the objective); :min or :max after it.
The design space is the sweep's: --vary, --set, --where and budgets (constraints here), or a sweep
file. Workers share the study through --storage: a journal file (one machine) or an RDB URL
(postgresql://user@host/db, many machines); a second run on it resumes the study to --trials.
Example: mvitdsl search specs/mvit_b.mv --vary scale4.blocks=6..16:2 --vary scale3.dim=96,128,192
         --objective params --objective latency --trials 40 --device cpu,cpu --plot front.svg
Watch it: optuna-dashboard specs/mvit_b.optuna.journal
"""


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "search",
        help="search a spec's variants with Optuna by measured objectives (latency, memory)",
        epilog=SEARCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("spec", help="the base .mv file, or a sweep file")
    p.add_argument("--vary", action="append", default=[], metavar="PATH=VALUES")
    p.add_argument("--set", action="append", default=[], metavar="PATH=EXPR", dest="derive")
    p.add_argument("--where", action="append", default=[], metavar="EXPR")
    p.add_argument("--objective", action="append", default=[], metavar="NAME[:min|max]")
    p.add_argument("--trials", type=int_in(1, 10**7, "--trials"), default=20)
    p.add_argument("--storage", default=None, help="journal file or RDB URL (default: beside spec)")
    p.add_argument("--study", default=None, help="the study's name (default: the spec's name)")
    p.add_argument("--workers", type=int_in(1, 1024, "--workers"), default=1)
    p.add_argument("--device", default="cpu", help="cpu, cuda:0 or a list: cuda:0,cuda:1")
    p.add_argument("--batch", type=int_in(1, 1_000_000, "--batch"), default=1)
    p.add_argument("--dtype", default="fp32", choices=DTYPES)
    p.add_argument("--reps", type=int_in(1, 10_000, "--reps"), default=5, help="latency reps")
    p.add_argument("--warmup", type=int_in(0, 10_000, "--warmup"), default=1)
    p.add_argument("--max-params", type=float, default=None)
    p.add_argument("--max-gmacs", type=float, default=None, help="matmul-only GMACs")
    p.add_argument("--max-activation-gib", type=float, default=None)
    p.add_argument("--sampler", choices=("tpe", "nsga2", "random"), default="tpe")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--format", choices=("text", "jsonl"), default="text")
    p.add_argument("--plot", type=Path, default=None, help="draw the front: FILE.svg or FILE.png")
    p.add_argument(
        "--emit", type=Path, default=None, metavar="DIR", help="the front as DIR/<id>.mv"
    )
    p.set_defaults(run=run)


def config(args: argparse.Namespace) -> Any:
    """The search the arguments ask for: a sweep file's table, then the command line's additions."""
    from ..explore.axes import AxisError
    from ..explore.engine import Budgets
    from ..explore.objectives import Bench, parse_goals
    from ..explore.search import SearchConfig, default_storage, design
    from ..explore.sweepfile import is_sweep_file, read_sweep_file

    kw: dict[str, Any] = read_sweep_file(args.spec) if is_sweep_file(args.spec) else {}
    if kw.get("bases"):  # a search's study has one base's design space
        raise AxisError(f"{args.spec}: `base` rows are for mvitdsl sweep; a search has one base")
    base = kw.pop("base", args.spec)
    mode = kw.pop("mode", "grid")
    space = {
        "vary": [*kw.pop("vary", []), *args.vary],
        "set": [*kw.pop("set", []), *args.derive],
        "where": [*kw.pop("where", []), *args.where],
        "mode": "zip" if mode == "zip" else "grid",  # a search samples the grid itself
        "emit_parent": kw.pop("emit_parent", None),
    }
    goals = parse_goals(args.objective or [kw.pop("pareto", "params,gmacs")])
    cfg = SearchConfig(
        base=base,
        space=space,
        goals=goals,
        trials=args.trials,
        storage=args.storage or default_storage(args.spec),
        study="",
        devices=tuple(d.strip() for d in args.device.split(",") if d.strip()) or ("cpu",),
        workers=args.workers,
        bench=Bench(batch=args.batch, dtype=args.dtype, reps=args.reps, warmup=args.warmup),
        budgets=Budgets(
            _first(args.max_params, kw.pop("max_params", None)),
            _first(args.max_gmacs, kw.pop("max_gmacs", None)),
            _first(args.max_activation_gib, kw.pop("max_activation_gib", None)),
        ),
        sampler=args.sampler,
        seed=args.seed,
    )
    from dataclasses import replace

    return replace(cfg, study=args.study or design(cfg).base.name)


def _first(*values: float | None) -> float | None:
    return next((float(v) for v in values if v is not None), None)


def run(args: argparse.Namespace) -> int:
    from ..explore.axes import AxisError
    from ..explore.expr import ExprError
    from ..explore.objectives import SearchError, UserObjectiveError
    from ..explore.search import run_search
    from ..language.overrides import PathError

    if args.plot is not None and args.plot.suffix.lower() not in (".svg", ".png"):
        print("mvitdsl search: --plot FILE.svg|png draws the front", file=sys.stderr)
        return 2
    try:
        cfg = config(args)
        if args.plot is not None and len(cfg.goals) < 2:
            raise SearchError("--plot draws two objectives; give two --objective")
        result = run_search(cfg, args.emit)
    except SpecError:
        raise  # a spec mistake: rendered by the CLI, exit 1
    except (SearchError, AxisError, ExprError, PathError) as e:
        print(f"mvitdsl search: {e}", file=sys.stderr)
        return 2
    except UserObjectiveError as e:
        print(
            f"mvitdsl search: {e} (the trial failed; the study keeps the others)", file=sys.stderr
        )
        return 1
    except KeyboardInterrupt:
        print("mvitdsl search: interrupted; finished trials are kept, run again to resume",
              file=sys.stderr)  # fmt: skip
        return 130
    return report(result, args)


def report(result: Any, args: argparse.Namespace) -> int:
    """The rows on stdout (table or JSON lines), the summary, the picture."""
    from ..explore.search_output import plot, write_table

    if args.format == "jsonl":
        for row in result.rows:
            print(json.dumps(row, separators=(",", ":"), default=str))
    else:
        write_table(result, sys.stdout)
        print()
    out = sys.stdout if args.format == "text" else sys.stderr
    print(f"study '{result.study.study_name}': {result.line()}", file=out)
    if args.plot is not None:
        plot(result, args.plot)
        print(f"wrote {args.plot}", file=out)
    return 0
