"""`mvitdsl list`: name, input, params, GMACs and source of every shipped spec."""

from __future__ import annotations

import argparse
import json
import textwrap
from dataclasses import dataclass

from ..analysis.analyze import analyze
from ..catalog import describe, names, specs_dir
from ..spec import load_spec
from .common import Subparsers


@dataclass(frozen=True)
class Entry:
    """One line of `mvitdsl list`."""

    name: str
    params: int
    gmacs: float
    input: str
    source: str


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser("list", help="list the shipped specs (name, params, GMACs, source)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(run=run, spec="list")


def run(args: argparse.Namespace) -> int:
    rows = entries()
    if args.format == "json":
        print(json.dumps([vars(e) for e in rows], indent=2))
    else:
        print(render_list(rows))
    return 0


def entries() -> list[Entry]:
    """Every shipped spec, loaded and analysed."""
    out = []
    for name in names():
        path = specs_dir() / f"{name}.mv"
        spec = load_spec(path)
        report = analyze(spec)
        c, (t, h, w) = spec.model.input.channels, spec.model.input.size
        size = f"{c}x{t}x{h}x{w}" if spec.model.input.kind == "video" else f"{c}x{h}x{w}"
        out.append(Entry(name, report.params, report.macs / 1e9, size, describe(path)))
    return out


SOURCE_WIDTH = 60  # the source column wraps at word boundaries (never cuts a word)


def render_list(rows: list[Entry]) -> str:
    """The table; a long source continues on lines of its own, under its column."""
    lines = [f"{'name':<18} {'input':<14} {'params':>13} {'GMACs':>9}  source"]
    indent = " " * (18 + 1 + 14 + 1 + 13 + 1 + 9 + 2)
    for e in rows:
        source = textwrap.wrap(e.source, SOURCE_WIDTH, break_long_words=False) or [""]
        lines.append(f"{e.name:<18} {e.input:<14} {e.params:>13,} {e.gmacs:>9.3f}  {source[0]}")
        lines += [indent + more for more in source[1:]]
    return "\n".join(lines)
