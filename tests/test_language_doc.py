"""docs/LANGUAGE.md is generated from the settings table, and the README's language table
names every setting, option and stage cell of it (and nothing else)."""

from __future__ import annotations

import os
import re

from conftest import ROOT

from mvitdsl.language import settings
from mvitdsl.language.docs import render

DOC = ROOT / "docs" / "LANGUAGE.md"


def test_language_doc_is_current():
    text = render()
    if os.environ.get("MVITDSL_UPDATE_GOLDEN") == "1":
        DOC.write_text(text)
    assert DOC.read_text() == text, "docs/LANGUAGE.md is stale: run `make docs`"


def _readme_table() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## The language in one screen")
    return readme[start : readme.index("\n## ", start + 1)]


def _words(code: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*|->", code))


def test_readme_language_table_agrees_with_the_settings_table():
    table = _readme_table()
    code = " ".join(re.findall(r"`([^`]*)`", table))
    words = _words(code)
    for s in settings.SETTINGS:
        assert s.key in words, f"README's language table lacks the setting {s.key!r}"
        for o in s.options:
            assert o.word in words, f"README's language table lacks {s.key} {o.word!r}"
            for choice in o.choices:
                assert choice in words, f"README's language table lacks {o.word} {choice!r}"
    for cell in settings.stage_cells():
        assert f"{cell}=" in code.replace(" ", ""), f"README lacks the stage cell {cell}="
    # and each row's first cell starts with a setting the table knows (or a table word)
    known = {s.key for s in settings.SETTINGS} | {"stages", "model", "stage"}
    for row in re.findall(r"^\| `([a-z_]+)", table, flags=re.M):
        assert row in known or any(row == o.word for s in settings.SETTINGS for o in s.options), (
            f"README's language table names {row!r}, which settings.py does not declare"
        )


def test_every_statement_beside_the_table_has_its_section():
    """settings.STATEMENTS (`outputs`, `expect`, `reference`, read by their own readers) are
    documented after the table, each under its own heading."""
    text = render()
    for key in settings.STATEMENTS:
        assert f"\n## `{key}`\n" in text, key
