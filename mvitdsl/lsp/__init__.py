"""The mvitdsl language server (`mvitdsl lsp`, `python -m mvitdsl.lsp`): diagnostics as you
type, hover, completion, formatting, inlay hints, go-to-definition and document symbols for .mv
specs, all from the public pipeline. Needs pygls (`pip install "mvitdsl[lsp]"`); no torch.

The pure functions (document, diagnose, hover, complete, navigate) take a checked Document and
return lsprotocol values; server.py wires them to pygls.
"""

from __future__ import annotations

import sys

NEEDS = ("pygls", "lsprotocol")


def main() -> int:
    """Serve over stdio; without pygls, say how to install it (exit 1)."""
    try:
        from .server import main as serve
    except ImportError as e:
        if (e.name or "").split(".")[0] not in NEEDS:
            raise
        print(f"mvitdsl lsp needs pygls: pip install 'mvitdsl[lsp]' ({e})", file=sys.stderr)
        return 1
    return serve()


__all__ = ["main"]
