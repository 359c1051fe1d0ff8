"""`python -m mvitdsl.cli` runs the command line (as `python -m mvitdsl` does)."""

from . import main

raise SystemExit(main())
