"""`mvitdsl fmt`: rewrite specs in the canonical layout (the formatter is language/fmt.py)."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Iterable
from pathlib import Path

from ..diagnostics import SpecError
from ..language.fmt import format_text
from .common import Subparsers


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser("fmt", help="rewrite specs in the canonical layout")
    p.add_argument("files", nargs="+", type=Path, help=".mv files or folders holding them")
    p.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file would change"
    )
    p.add_argument("--diff", action="store_true", help="write nothing; print a unified diff")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return fmt_files(args.files, check=args.check, diff=args.diff)


def spec_files(paths: Iterable[Path]) -> list[Path]:
    """The .mv files named, with folders searched for them (sorted, each once)."""
    out: list[Path] = []
    for path in paths:
        found = sorted(path.rglob("*.mv")) if path.is_dir() else [path]
        out += [p for p in found if p not in out]
    return out


def fmt_files(paths: Iterable[Path], *, check: bool = False, diff: bool = False) -> int:
    """Rewrite files in place, or with check/diff only report; 0 when nothing is (or was) out
    of layout, 1 when a file would change (check) or does not parse."""
    status = 0
    changed: list[Path] = []
    for path in spec_files(paths):
        result = _formatted(path)
        if result is None:
            status = 1
            continue
        text, new = result
        if new == text:
            continue
        changed.append(path)
        if diff:
            sys.stdout.writelines(
                difflib.unified_diff(
                    text.splitlines(keepends=True),
                    new.splitlines(keepends=True),
                    f"{path} (before)",
                    f"{path} (formatted)",
                )
            )
        if not (check or diff):
            path.write_text(new, encoding="utf-8")
    if check:
        for path in changed:
            print(f"would reformat {path}", file=sys.stderr)
        status = status or int(bool(changed))
    elif not diff and changed:
        print(f"reformatted {len(changed)} file{'s' * (len(changed) != 1)}", file=sys.stderr)
    return status


def _formatted(path: Path) -> tuple[str, str] | None:
    """(the file's text, its canonical layout), or None after saying why it cannot be formatted."""
    try:
        text = path.read_text(encoding="utf-8")
        return text, format_text(text, str(path))
    except SpecError as e:
        print(e.render(), file=sys.stderr)
        print(f"mvitdsl fmt: cannot format {path}", file=sys.stderr)
    except (OSError, UnicodeDecodeError) as e:
        print(f"mvitdsl fmt: cannot read {path}: {e}", file=sys.stderr)
    return None
