"""The command line: tables on success, located diagnostics (never a traceback) on failure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SPECS

GOOD = SPECS / "mvit_b.mv"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mvitdsl", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def test_check_prints_the_stage_table():
    r = run("check", str(GOOD))
    assert r.returncode == 0, r.stderr
    assert "36,610,672" in r.stdout and "70.599" in r.stdout
    for row in ("96×8×56×56", "192×8×28×28", "384×8×14×14", "768×8×7×7"):
        assert row in r.stdout


def test_check_json_is_machine_readable():
    r = run("check", str(GOOD), "--format", "json")
    data = json.loads(r.stdout)
    assert data["ok"] and data["report"]["params"] == 36_610_672


BROKEN = {
    "unknown key": (
        "  tokens     cls, position separable\n",
        "  tokens     cls, positon separable\n",
        "error[E203]: unknown option 'positon' in 'tokens'",
    ),
    "unknown setting": (
        "  head       norm",
        "  heads      norm",
        "error[E200]: unknown setting 'heads'",
    ),
    "heads do not divide dim": (
        "scale3       2  192      2",
        "scale3       2  192      5",
        "error[E300]: dim 192 is not divisible by 5 heads",
    ),
    "Q stride does not fit": (
        "scale5       2  768      8  1x2x2",
        "scale5       2  768      8  1x3x3",
        "error[E302]: stride_q 1x3x3 of block 14 leaves a fractional",
    ),
    "syntax error": ("  stages {", "  stages {{", "error[E101]: unexpected '{'"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_specs_exit_1_with_a_located_diagnostic(case, tmp_path):
    old, new, expected = BROKEN[case]
    text = GOOD.read_text()
    assert old in text
    path = tmp_path / "broken.mv"
    path.write_text(text.replace(old, new))
    r = run("check", str(path))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert expected in r.stderr
    first = r.stderr.splitlines()[0]
    assert first.startswith(f"{path}:") and first.split(":")[1].isdigit()
    assert "^" in r.stderr  # the caret under the span


def test_compile_writes_an_artifact(tmp_path):
    r = run("compile", str(GOOD), "-o", str(tmp_path / "art"))
    assert r.returncode == 0, r.stderr
    assert "36,610,672" in r.stdout
    names = sorted(p.name for p in (tmp_path / "art").iterdir())
    assert names == [
        "__init__.py",
        "finetune.py",
        "model.py",
        "mvitdsl-artifact.json",
        "runtime.py",
        "spec.mv",
        "weights.safetensors",
    ]


def test_every_command_is_one_module_laid_out_the_same_way():
    """cli/ holds one module per command, each with add_parser(subparsers) and run(args)."""
    from mvitdsl import cli as entry

    folder = Path(entry.__file__).parent
    helpers = {"__init__", "__main__", "common"}
    modules = {p.stem for p in folder.glob("*.py")} - helpers
    assert modules == {m.__name__.rsplit(".", 1)[1] for m in entry.COMMANDS}
    assert modules == {
        "check", "compile", "list", "bench", "draw", "fmt", "sweep", "search", "diff", "report",
        "lsp",
    }  # fmt: skip
    for command in entry.COMMANDS:
        assert callable(command.add_parser) and callable(command.run), command.__name__


def test_source_choices_of_check_and_compile_are_the_dialect_table():
    import argparse

    from mvitdsl.analysis.naming import SOURCES
    from mvitdsl.cli import parser

    sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command in ("check", "compile"):
        (source,) = [a for a in sub.choices[command]._actions if "--source" in a.option_strings]
        assert tuple(source.choices) == SOURCES, command
    assert {"hiera", "pytorchvideo"} <= set(SOURCES)
