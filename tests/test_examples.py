"""Every example runs."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_quickstart_runs():
    r = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    assert "mvit_b: 36,610,672 params, 70.599 GMACs" in r.stdout
    assert "loaded torchvision's mvit_v1_b state_dict (strict)" in r.stdout
    assert "error[E300]" in r.stdout
