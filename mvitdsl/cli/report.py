"""`mvitdsl report`: one self-contained HTML page for specs (or shipped specs' names) or for a
sweep's JSON Lines. A spec that fails still gets its page (with the diagnostics; exit 1); a file
that is missing or not a sweep is one line. Overwrites only a page it wrote (or with --force)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from .common import DTYPES, MAX_FLAG_INT, Help, Subparsers, int_in, parse_size

if TYPE_CHECKING:
    from ..report import Entry

SUFFIXES = (".html", ".htm")


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "report",
        help="one HTML page: stage table, diagrams, costs, blocks (or a sweep's front)",
        formatter_class=Help,
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="SPEC",
        help="specs (files or shipped names), "
        "or one sweep's JSON Lines (`mvitdsl sweep ... --format jsonl`)",
    )
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        default=None,
        help="the page to write (.html; None: build/<name>.report.html)",
    )
    p.add_argument(
        "--input",
        type=parse_size,
        default=None,
        help="override the specs' input size (CxTxHxW or CxHxW); None keeps each's",
    )
    p.add_argument(
        "--batch",
        type=int_in(1, MAX_FLAG_INT, "--batch"),
        default=1,
        help="batch size for the memory estimate",
    )
    p.add_argument(
        "--dtype", choices=DTYPES, default="fp32", help="element type for the memory estimate"
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="overwrite the output even if it is not a page this command wrote",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except ImportError as e:  # the drawing and highlighting packages are an extra
        print(
            f"mvitdsl report: needs {e.name or 'a package'} (pip install 'mvitdsl[report]')",
            file=sys.stderr,
        )
        return 1


def _run(args: argparse.Namespace) -> int:
    from ..report import read_sweep, spec_page, sweep_page

    sweeps = [a for a in args.inputs if a.lower().endswith((".jsonl", ".ndjson"))]
    if sweeps and len(args.inputs) > 1:
        return _usage("give specs or one sweep's .jsonl, not both or two sweeps")
    out = args.out or _default_out(args.inputs[0])
    problem = refusal(out, args.force)
    if problem:
        return _usage(problem)
    failed = 0
    if sweeps:
        text = Path(sweeps[0]).read_text(encoding="utf-8", errors="replace")
        page = sweep_page(read_sweep(text, sweeps[0]), sweeps[0])
    else:
        entries = _entries(args)
        failed = sum(e.error is not None for e in entries)
        page = spec_page(entries)
    write_page(out, page)
    note = f" ({failed} spec{'s' * (failed != 1)} with errors)" if failed else ""
    print(f"wrote {out}{note}")
    return 1 if failed else 0


def _entries(args: argparse.Namespace) -> list[Entry]:
    from ..report import load_entry

    return [load_entry(a, args.input, args.batch, args.dtype) for a in args.inputs]


def _default_out(first: str) -> Path:
    stem = Path(first).name.split(".")[0] or "report"
    return Path("build") / f"{stem}.report.html"


def _usage(message: str) -> int:
    print(f"mvitdsl report: {message}", file=sys.stderr)
    return 2


def refusal(out: Path, force: bool) -> str | None:
    """Why `out` may not be written, or None: a folder, a name not ending in .html, or (without
    --force) an existing file that is not a page this command wrote."""
    from ..report import is_ours

    if out.is_dir():
        return f"'{out}' is a folder; name the page to write, like {out / 'report.html'}"
    if out.suffix.lower() not in SUFFIXES:
        return f"cannot write '{out}': the page's name must end in .html"
    if out.exists() and not force:
        try:
            with out.open("rb") as f:
                head = f.read(4096)
        except OSError as e:
            return f"cannot read '{out}' to see whether it is a report: {e.strerror}"
        if not is_ours(head):
            return f"'{out}' exists and is not an mvitdsl report; pass --force to overwrite it"
    return None


def write_page(out: Path, page: str) -> None:
    """Written into a temporary sibling, then moved over `out` (never half a page)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
