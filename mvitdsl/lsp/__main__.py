"""`python -m mvitdsl.lsp`: the language server over stdio."""

from __future__ import annotations

from . import main

raise SystemExit(main())
