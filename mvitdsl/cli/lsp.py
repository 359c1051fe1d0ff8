"""`mvitdsl lsp`: the language server over stdio (mvitdsl/lsp/, the `lsp` extra: pygls)."""

from __future__ import annotations

import argparse

from .common import Subparsers


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "lsp",
        help="serve the language server protocol over stdio (for editors; needs mvitdsl[lsp])",
        description="Diagnostics, hover, completion, formatting, inlay hints, definitions and "
        "symbols for .mv files, over stdio (docs/TOOLS.md says how to point an editor at it).",
    )
    p.set_defaults(run=run, spec="lsp")


def run(args: argparse.Namespace) -> int:
    from ..lsp import main

    return main()
