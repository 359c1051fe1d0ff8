"""The VS Code extension (editors/vscode/, issue 26 item 2): its manifest and pins everywhere;
where npm is installed, the grammar's scope test (vscode-tmgrammar-test), the client's smoke
test and the .vsix build (editors/vscode/build.sh, node_modules cached outside the clone)."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, need

EXT = ROOT / "editors" / "vscode"
GRAMMAR = ROOT / "mvitdsl" / "lsp" / "mvitdsl.tmLanguage.json"


def manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXT / "package.json").read_text())
    return data


def test_the_manifest_declares_the_language_grammar_and_server_setting() -> None:
    m = manifest()
    assert m["repository"] and m["license"] == "MIT" and (EXT / "LICENSE").is_file()
    assert m["engines"]["vscode"].startswith("^1.")
    contributes = m["contributes"]
    (language,) = contributes["languages"]
    assert language["extensions"] == [".mv"] and language["id"] == "mvitdsl"
    (grammar,) = contributes["grammars"]
    assert grammar["scopeName"] == json.loads(GRAMMAR.read_text())["scopeName"]
    assert grammar["path"] == "./syntaxes/mvitdsl.tmLanguage.json"  # build-grammar.js copies it
    setting = contributes["configuration"]["properties"]["mvitdsl.server.command"]
    assert setting["default"] == ["mvitdsl", "lsp"]
    config = json.loads((EXT / "language-configuration.json").read_text())
    assert config["comments"] == {"lineComment": "#"} and ["{", "}"] in config["brackets"]


def test_the_npm_packages_are_pinned_by_the_lockfile() -> None:
    lock = json.loads((EXT / "package-lock.json").read_text())["packages"]
    versions = {k.removeprefix("node_modules/"): v["version"] for k, v in lock.items() if k}
    assert versions["vscode-languageclient"].startswith("9.")
    assert versions["@vscode/vsce"].startswith("3.")  # vsce 4 needs Node 22
    assert "vscode-tmgrammar-test" in versions
    pins: dict[str, str] = {**manifest()["dependencies"], **manifest()["devDependencies"]}
    for name, pin in pins.items():
        assert pin == versions[name], name  # exact pins, the lockfile's


@pytest.fixture(scope="module")
def build() -> subprocess.CompletedProcess[str]:
    """editors/vscode/build.sh once: npm ci into the cache (when the lockfile is new), the
    grammar's scope test, the .vsix."""
    need(shutil.which("npm") is not None, "npm is not installed")
    return subprocess.run(
        ["bash", str(EXT / "build.sh")], capture_output=True, text=True, timeout=600
    )


def test_the_grammar_scopes_hold_and_the_vsix_builds(
    build: subprocess.CompletedProcess[str],
) -> None:
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert "test/spec.test.mv run successfuly" in build.stdout  # (sic: the tool's spelling)
    with zipfile.ZipFile(EXT / "build" / "mvitdsl.vsix") as z:
        names = set(z.namelist())
        assert json.loads(z.read("extension/syntaxes/mvitdsl.tmLanguage.json")) == json.loads(
            GRAMMAR.read_text()
        )  # one grammar: the server's, copied at build time
        shipped = json.loads(z.read("extension/package.json"))
    assert shipped["version"] == manifest()["version"]
    assert {"extension/extension.js", "extension/language-configuration.json"} <= names
    assert "extension/node_modules/vscode-languageclient/package.json" in names
    assert not [n for n in names if n.startswith("extension/node_modules/@vscode/vsce/")]


def test_the_client_starts_the_configured_server(build: subprocess.CompletedProcess[str]) -> None:
    r = subprocess.run(
        ["node", str(EXT / "test" / "smoke.js")], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0 and "smoke: ok" in r.stdout, r.stdout + r.stderr


def test_a_grammar_test_line_that_is_wrong_fails(
    build: subprocess.CompletedProcess[str], tmp_path: Path
) -> None:
    good = (EXT / "test" / "spec.test.mv").read_text()
    bad = tmp_path / "bad.test.mv"
    bad.write_text(good.replace("support.constant.option.mvitdsl", "keyword.bogus.mvitdsl"))
    tool = EXT / "node_modules" / ".bin" / "vscode-tmgrammar-test"
    r = subprocess.run(
        [str(tool), "-g", str(GRAMMAR), str(bad)], capture_output=True, text=True, timeout=120
    )
    assert r.returncode != 0 and "keyword.bogus.mvitdsl" in r.stdout + r.stderr
