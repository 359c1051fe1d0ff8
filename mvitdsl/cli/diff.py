"""`mvitdsl diff`: the settings, stage rows and costs that differ between two specs."""

from __future__ import annotations

import argparse
import json

from ..analysis.diff import diff_specs, render_diff
from ..spec import load_spec
from .common import Subparsers, spec_path


def add_parser(sub: Subparsers) -> None:
    d = sub.add_parser("diff", help="settings, stage rows and costs that differ between two specs")
    d.add_argument("spec", help="spec A: a .mv file or a shipped spec's name")
    d.add_argument("other", help="spec B: a .mv file or a shipped spec's name")
    d.add_argument("--format", choices=("text", "json"), default="text")
    d.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    a, b = load_spec(spec_path(args.spec)), load_spec(spec_path(args.other))
    result = diff_specs(a, b)
    if args.format == "json":
        print(json.dumps(result, indent=2))
    else:
        print(render_diff(result))
    return 0
