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


def test_sam2_trunk_runs_at_two_sizes_into_an_fpn():
    r = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "sam2_trunk.py"), "--sizes", "64x64", "64x96"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    assert "sam2_hiera_t: 154 tensors loaded from timm's names" in r.stdout
    lines = [line for line in r.stdout.splitlines() if "FPN" in line]
    assert [line.split(":")[0] for line in lines] == ["64x64", "64x96"]
    assert "scale5 (256, 2, 3)" in lines[1]
    assert all(float(line.rsplit(" ", 1)[1]) <= 1e-5 for line in lines)  # max |diff| vs timm
