"""The wheel: built from this clone, installed into a fresh virtual environment (no network:
`--system-site-packages`, the pinned third-party packages added by a .pth file), it checks a
shipped spec; the grammar and py.typed are inside."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT, SPECS


def third_party_sites() -> list[str]:
    """The site-packages folders this interpreter imports lark, pydantic and networkx from."""
    import lark
    import networkx
    import pydantic

    return sorted({str(Path(m.__file__).resolve().parents[1]) for m in (lark, networkx, pydantic)})


@pytest.mark.slow
def test_the_wheel_installs_and_checks_a_shipped_spec(tmp_path):
    dist = tmp_path / "dist"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(dist),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    (wheel,) = dist.glob("mvitdsl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "mvitdsl/grammars/mvit.lark" in names and "mvitdsl/py.typed" in names
    assert "mvitdsl/backend/artifact.py" in names

    env_dir = tmp_path / "fresh"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(env_dir)],
        check=True,
        timeout=120,
    )
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    lines = [f"import site; site.addsitedir({s!r})" for s in third_party_sites()]
    Path(purelib, "zz_third_party.pth").write_text("\n".join(lines) + "\n")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    r = subprocess.run(
        [str(python), "-c", "import mvitdsl; print(mvitdsl.__file__)"],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and r.stdout.startswith(purelib), (r.stdout, r.stderr)
    r = subprocess.run(
        [str(env_dir / "bin" / "mvitdsl"), "check", str(SPECS / "mvitv2_s.mv")],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "34,537,744" in r.stdout
