"""What every command shares: the JSON envelope, the flag types, the spec arguments and loading."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from math import prod
from pathlib import Path
from typing import Any, TypeAlias

from ..analysis.naming import Source, expected_shapes
from ..catalog import shipped_path
from ..language import lexical
from ..spec import Spec, load_spec

# The version of every JSON shape `mvitdsl` prints (tests/golden/*.json pin each): bump it when a
# key is renamed or removed; adding a key is not a break.
JSON_SCHEMA = 1

MAX_FLAG_INT = 1_000_000  # sizes and batch: anything larger is a typo

EXAMPLES = """examples:
  mvitdsl check specs/mvit_b.mv                         stage table: shapes, params, MACs
  mvitdsl check specs/mvit_b.mv --batch 8 --dtype bf16  per-block memory for a batch of 8
  mvitdsl check specs/mvitv2_s.mv --against mvitv2_s.pt compare a checkpoint's names/shapes
  mvitdsl compile specs/mvit_b.mv -o build/mvit_b       write an importable package
  mvitdsl draw specs/mvit_b.mv --level block -o b.svg   draw one block with graphviz
"""

DTYPES = ("fp32", "bf16", "fp16")

# the `add_subparsers()` object each command adds its parser to
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each flag's default once and keeps the examples' line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        # a help text that already says its default, an unset (None) default and an off
        # switch need no "(default: ...)" after them
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def json_text(kind: str, ok: bool, **data: Any) -> str:
    """One JSON output: `schema` and `kind` first, then `ok`, then the payload."""
    return json.dumps(
        {"schema": JSON_SCHEMA, "kind": kind, "ok": ok, **data}, indent=2, default=str
    )


def parse_size(text: str) -> tuple[int, ...]:
    """--input: 3 or 4 whole numbers >= 1 joined by 'x', like 3x16x224x224 (language/lexical.py
    says what a size is)."""
    try:
        return lexical.parse_size(text.replace("×", "x"), hi=MAX_FLAG_INT)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def int_in(lo: int, hi: int, what: str) -> Callable[[str], int]:
    """An argparse type: a whole number from lo to hi, named `what` in its messages."""

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


def add_spec_args(p: argparse.ArgumentParser) -> None:
    """The positional spec and --input, shared by check, compile, draw and bench."""
    p.add_argument("spec", help="a .mv file")
    p.add_argument(
        "--input",
        type=parse_size,
        default=None,
        help="override the input size: CxTxHxW for a video spec (3x32x224x224), CxHxW for an "
        "image spec (3x224x224); None keeps the spec's",
    )


def spec_path(text: str) -> Path:
    """A spec argument: a file, or (a bare name that is no file) the shipped spec of that name."""
    path = Path(text)
    return path if path.exists() else shipped_path(text) or path


def load(args: argparse.Namespace) -> Spec:
    """args.spec (a file, or the name of a shipped spec) loaded at args.input; warnings printed."""
    spec = load_spec(spec_path(args.spec), input_size=args.input)
    print_warnings(spec)
    return spec


def warnings_json(spec: Spec) -> list[dict[str, object]]:
    return [d.to_json() for d in spec.warnings]


def print_warnings(spec: Spec) -> None:
    """Warnings (deprecated spellings) go to stderr, so stdout stays the report."""
    for d in spec.warnings:
        print(d.render(spec.sources.get(d.span.file) if d.span else None), file=sys.stderr)


def progress(line: str) -> None:
    """A progress line on stderr (stdout stays the result)."""
    print(f"mvitdsl: {line}", file=sys.stderr, flush=True)


FOLD = 8  # per-tensor lines shown before "... N more (--verbose shows all)"


def folded(lines: list[str], verbose: bool) -> list[str]:
    """The first FOLD lines and a count of the rest, or all of them with --verbose."""
    if verbose or len(lines) <= FOLD + 1:
        return lines
    rest = len(lines) - FOLD
    return [*lines[:FOLD], f"... {rest} more (--verbose shows all)"]


def shipped_fit(found: dict[str, tuple[int, ...]], source: Source | None) -> str:
    """Which shipped spec a checkpoint's names and shapes fit: "matches shipped spec X: N params",
    or "closest shipped spec: X; K tensors differ" (the one with the fewest mismatches)."""
    from ..backend.weights import compare_shapes
    from ..catalog import names

    counts: dict[str, int] = {}
    for name in names():
        try:
            _, mismatches = compare_shapes(load_spec(name=name).model, found, source)
        except (KeyError, ValueError):  # names this spec's naming cannot read: no candidate
            continue
        counts[name] = len(mismatches)
    if not counts:
        return "no shipped specs to compare with"
    name = min(counts, key=lambda k: counts[k])
    n = counts[name]
    if n == 0:
        params = sum(prod(s) for s in expected_shapes(load_spec(name=name).model).values())
        return f"matches shipped spec {name}: {params:,} params"
    return f"closest shipped spec: {name}; {n} tensor{'s' * (n != 1)} differ"


def misfit_text(
    text: str, found: dict[str, tuple[int, ...]], source: Source | None, verbose: bool
) -> str:
    """A checkpoint that does not fit: which shipped spec it fits first, then the per-tensor
    lines (folded), then the count line that ends `text`."""
    *lines, last = text.splitlines() or [""]
    return "\n".join([shipped_fit(found, source), *folded(lines, verbose), last])


def add_verbose_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--verbose", action="store_true", help="list every tensor of a checkpoint that does not fit"
    )
