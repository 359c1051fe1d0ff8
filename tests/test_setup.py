"""scripts/setup.sh: two clones on one machine share the third-party environment but each
imports its own mvitdsl; the shared environment is never written to by a clone's set-up."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, need


def shared_env() -> Path:
    key = hashlib.sha256((ROOT / "requirements/dev.txt").read_bytes()).hexdigest()[:12]
    root = Path(os.environ.get("MVITDSL_VENV_ROOT", Path.home() / ".cache/mvitdsl"))
    return root / f"venv-{key}"


def copy_clone(dest: Path) -> None:
    """The clone's files as git sees them (tracked and new, not ignored), without .venv."""
    files = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file() and not name.startswith(".venv"):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


@pytest.mark.slow
def test_two_clones_each_import_their_own_code(tmp_path):
    shared = shared_env()
    need(
        (shared / ".complete").is_file() and shutil.which("dot") is not None,
        "needs the shared environment made by `make setup` and graphviz",
    )
    root = tmp_path / "cache"
    root.mkdir()
    (root / shared.name).symlink_to(shared)  # the same shared environment, found by key
    site = subprocess.run(
        [
            str(shared / "bin/python"),
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    before = sorted(os.listdir(site))
    env = {**os.environ, "MVITDSL_VENV_ROOT": str(root)}
    env.pop("PYTHONPATH", None)
    for name in ("a", "b"):
        clone = tmp_path / name
        copy_clone(clone)
        r = subprocess.run(
            ["bash", "scripts/setup.sh"],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr
    for name in ("a", "b"):
        clone = tmp_path / name
        r = subprocess.run(
            [
                str(clone / ".venv/bin/python"),
                "-c",
                "import mvitdsl, torch; print(mvitdsl.__file__)",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == str(clone / "mvitdsl" / "__init__.py")
        r = subprocess.run(
            [str(clone / ".venv/bin/mvitdsl"), "--version"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0 and r.stdout.startswith("mvitdsl "), r.stderr
    assert sorted(os.listdir(site)) == before  # nothing installed into the shared environment


def test_a_missing_tool_fails_on_ci_and_is_skipped_elsewhere(monkeypatch):
    need(True, "present")  # nothing happens
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="missing on CI"):
        need(False, "a tool")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="a tool"):
        need(False, "a tool")
