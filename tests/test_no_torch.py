"""Parsing, checking and analysis never import torch (or graphviz)."""

from __future__ import annotations

import subprocess
import sys

from conftest import SPECS


def test_check_path_imports_neither_torch_nor_graphviz():
    script = (
        "import sys, mvitdsl\n"
        f"spec = mvitdsl.load_spec({str(SPECS / 'mvit_b.mv')!r})\n"
        "report = mvitdsl.analyze(spec)\n"
        "from mvitdsl.cli import main\n"
        f"main(['check', {str(SPECS / 'mvit_b.mv')!r}, '--format', 'json'])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'graphviz' not in sys.modules, 'graphviz was imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
