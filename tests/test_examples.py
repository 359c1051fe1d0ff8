"""Every example runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_cross_family_sweep_runs_and_plots_its_joint_front(tmp_path: Path) -> None:
    out = tmp_path / "cross_family.svg"
    r = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "cross_family.py"), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import cross_family
    finally:
        sys.path.pop(0)
    head, _, *front = r.stdout.splitlines()[:-1]
    assert f"over {len(cross_family.BASES)} families" in head
    assert front and all(line.split()[0] in cross_family.BASES for line in front)
    gmacs = [float(line.split()[1]) for line in front]
    params = [int(line.split()[3].replace(",", "")) for line in front]
    # a front under the shared budgets: more GMACs buy more parameters, never fewer
    assert gmacs == sorted(gmacs) and params == sorted(params)
    assert max(gmacs) <= cross_family.BUDGETS.gmacs and max(params) <= cross_family.BUDGETS.params
    text = out.read_text()
    assert all(f"base ({name})" in text for name in cross_family.BASES)
    assert "joint Pareto front" in text


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
