"""The `mvitdsl` command: one module per command, each with `add_parser(subparsers)` and
`run(args) -> int`; `main` builds the top-level parser and dispatches (see `main.py`)."""

from __future__ import annotations

from .common import JSON_SCHEMA, json_text
from .main import main, parser

__all__ = ["JSON_SCHEMA", "json_text", "main", "parser"]
