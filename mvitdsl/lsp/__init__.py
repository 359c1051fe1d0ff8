"""The mvitdsl language server (`mvitdsl lsp`, `python -m mvitdsl.lsp`): diagnostics as you
type, hover, completion, formatting, inlay hints, go-to-definition and document symbols for .mv
specs, all from the public pipeline. Needs pygls (`pip install mvitdsl[lsp]`); no torch.

The pure functions (document, diagnose, hover, complete, navigate) take a checked Document and
return lsprotocol values; server.py wires them to pygls.
"""

from __future__ import annotations


def main() -> int:
    """Serve over stdio (imports pygls only when called)."""
    from .server import main as serve

    return serve()


__all__ = ["main"]
