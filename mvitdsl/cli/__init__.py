"""The `mvitdsl` command: a thin argparse layer over the public API.

One module per command (`COMMANDS`), each with `add_parser(subparsers)` and `run(args) -> int`;
this module builds the top-level parser from them and dispatches (`mvitdsl.cli:main`).

Exit codes: 0 success, 1 the spec has errors (diagnostics on stderr), 2 bad command line;
`draw` also: 3 Graphviz failed to render, 4 `dot` is missing (the .dot file was still written).
`check` never imports torch (except to read a .pt checkpoint for --against); `compile` does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from ..diagnostics import SpecError
from . import bench, check, diff, draw, fmt, lsp, report, search, sweep
from . import compile as compile_command
from . import list as list_command
from .common import EXAMPLES, JSON_SCHEMA, Help, json_text

__all__ = ["COMMANDS", "JSON_SCHEMA", "json_text", "main", "parser"]

# The commands in the order `mvitdsl --help` lists them; each module has add_parser and run.
# (Importing the submodules `compile` and `list` binds those names in this package's namespace,
# over the builtins: this module calls neither builtin.)
COMMANDS: tuple[ModuleType, ...] = (
    check,
    compile_command,
    list_command,
    bench,
    draw,
    fmt,
    sweep,
    search,
    diff,
    report,
    lsp,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse argv, run the command; a spec error or an OSError/ValueError becomes exit 1, a
    reader that stopped reading (`| head`) ends it quietly."""
    args = parser().parse_args(argv)
    try:
        code = _run(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
        return code
    except BrokenPipeError:
        return _pipe_closed()


def _pipe_closed() -> int:
    """The reader of stdout went away: stop without a word, as `cat | head` does (128 + SIGPIPE).
    stdout is pointed at /dev/null so the interpreter's final flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141


def _run(args: argparse.Namespace) -> int:
    """The command, its failures turned into messages and exit codes."""
    try:
        return int(args.run(args))
    except BrokenPipeError:
        raise
    except SpecError as e:
        if getattr(args, "format", "text") == "json":
            print(json_text(_kind(args), False, diagnostics=[d.to_json() for d in e.diagnostics]))
        else:
            print(e.render(), file=sys.stderr)
            n = len(e.diagnostics)
            print(f"{n} error{'s' * (n != 1)} in {args.spec}", file=sys.stderr)
        return 1
    except (OSError, ValueError, TypeError) as e:
        return _fail(args, str(e) or type(e).__name__)
    except KeyboardInterrupt:
        print("mvitdsl: interrupted", file=sys.stderr)
        return 130
    except (MemoryError, RecursionError) as e:
        return _fail(args, f"stopped: {type(e).__name__} {e}".strip())


def _kind(args: argparse.Namespace) -> str:
    return "against" if getattr(args, "against", None) is not None else "check"


def _fail(args: argparse.Namespace, message: str) -> int:
    """One line (or JSON with --format json) for an error that is not in the spec, exit 1."""
    if getattr(args, "format", "text") == "json":
        print(json.dumps({"ok": False, "error": message}, indent=2))
    else:
        print(f"mvitdsl: error: {message}", file=sys.stderr)
    return 1


def parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per command."""
    from .. import __version__

    p = argparse.ArgumentParser(
        prog="mvitdsl",
        description=(__doc__ or "").splitlines()[0],
        epilog=EXAMPLES,
        formatter_class=Help,
    )
    p.add_argument("--version", action="version", version=f"mvitdsl {__version__}")
    sub = p.add_subparsers(required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return p
