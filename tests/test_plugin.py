"""Specs that validate themselves in their users' projects: the pytest plugin collects one item
per spec and fails with the diagnostics; the pre-commit hooks of .pre-commit-hooks.yaml run
(as `repo: local`, `language: system` hooks: nothing is fetched)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from conftest import ROOT

TINY = (ROOT / "examples" / "tiny.mv").read_text()
WRONG = TINY.replace("expect     params 67946", "expect     params 67000")


def project(tmp_path: Path) -> Path:
    """A user's project: two good specs (one extends the other) and one with a wrong figure."""
    specs = tmp_path / "specs"
    specs.mkdir(parents=True)
    (specs / "tiny.mv").write_text(TINY)
    (specs / "wide.mv").write_text(
        'model wide extends "tiny.mv" tiny {\n  input      video 3x4x64x64\n'
        "  expect     output 64x2x8x8\n}\n"
    )
    (specs / "wrong.mv").write_text(WRONG.replace("model tiny", "model wrong"))
    return tmp_path


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


def pytest_in(where: Path, *args: str) -> subprocess.CompletedProcess[str]:
    installed = any(e.name == "mvitdsl" for e in entry_points(group="pytest11"))
    plugin = [] if installed else ["-p", "mvitdsl.pytest_plugin"]
    return subprocess.run(
        [sys.executable, "-m", "pytest", *plugin, "-p", "no:cacheprovider", "-q", *args],
        cwd=where,
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_plugin_is_a_pytest11_entry_point():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["project"]["entry-points"]["pytest11"] == {"mvitdsl": "mvitdsl.pytest_plugin"}


def test_plugin_collects_one_item_per_spec_and_fails_with_the_diagnostic(tmp_path: Path):
    where = project(tmp_path)
    r = pytest_in(where, "--mvitdsl", "specs", "-rA")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "1 failed, 2 passed" in r.stdout
    for name in ("tiny", "wide"):
        assert f"PASSED specs/{name}.mv::check" in r.stdout
    assert "FAILED specs/wrong.mv::check" in r.stdout
    assert "error[E308]: expected params 67000, computed 67946" in r.stdout
    assert "specs/wrong.mv:15:21: error[E308]" in r.stdout and "1 error in" in r.stdout
    assert "Traceback" not in r.stdout


def test_plugin_is_off_unless_asked_and_the_ini_option_turns_it_on(tmp_path: Path):
    where = project(tmp_path)
    (where / "specs" / "wrong.mv").unlink()
    assert pytest_in(where, "specs").returncode == 5  # nothing collected
    (where / "pytest.ini").write_text("[pytest]\nmvitdsl_specs = true\n")
    r = pytest_in(where, "specs")
    assert r.returncode == 0 and "2 passed" in r.stdout, r.stdout + r.stderr


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_pre_commit_hooks_run_in_a_project(tmp_path: Path):
    pytest.importorskip("pre_commit")
    yaml = pytest.importorskip("yaml")  # pre-commit's own dependency
    where = project(tmp_path / "repo")
    (where / "specs" / "wrong.mv").unlink()
    manifest = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    hooks = []
    for hook in manifest:  # the published hooks, run with this checkout's mvitdsl
        entry = hook["entry"].replace("mvitdsl", f"{sys.executable} -m mvitdsl", 1)
        hooks.append({**hook, "entry": entry, "language": "system"})
    config = {"repos": [{"repo": "local", "hooks": hooks}]}
    (where / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))

    def run() -> subprocess.CompletedProcess[str]:
        subprocess.run(["git", "add", "-A"], cwd=where, check=True)
        return subprocess.run(
            [sys.executable, "-m", "pre_commit", "run", "--all-files"],
            cwd=where,
            env=env(PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home")),
            capture_output=True,
            text=True,
            timeout=300,
        )

    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=where, check=True)
    r = run()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "mvitdsl check" in r.stdout and "mvitdsl fmt --check" in r.stdout
    (where / "specs" / "tiny.mv").write_text(TINY.replace("  input      video", "  input video"))
    (where / "specs" / "wrong.mv").write_text(WRONG.replace("model tiny", "model wrong"))
    r = run()
    assert r.returncode == 1
    assert "error[E308]: expected params 67000, computed 67946" in r.stdout
    assert "would reformat specs/tiny.mv" in r.stdout


def test_the_plugin_imports_no_torch():
    script = "import sys, mvitdsl.pytest_plugin\nassert 'torch' not in sys.modules\n"
    r = subprocess.run([sys.executable, "-c", script], env=env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
