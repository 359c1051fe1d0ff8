"""The shipped specs' files by name: specs/*.mv, in the wheel as mvitdsl/specs/ (pyproject
force-include). Below `spec.py` (`load_spec(name="mvit_b")`, `mvitdsl check mvit_b`); the listing
(`mvitdsl list`) is the command's, in cli/list.py. Imports nothing of ours.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def specs_dir() -> Path:
    """Where the shipped specs are: inside the installed package, else the source checkout's."""
    for candidate in (_HERE / "specs", _HERE.parent / "specs"):
        if candidate.is_dir() and any(candidate.glob("*.mv")):
            return candidate
    raise FileNotFoundError("no shipped specs found (looked in mvitdsl/specs and specs/)")


def names() -> list[str]:
    """The shipped specs' names, sorted."""
    return sorted(p.stem for p in specs_dir().glob("*.mv"))


def shipped_path(name: str) -> Path | None:
    """The file of a shipped spec called `name` (with or without .mv), or None."""
    stem = name[:-3] if name.endswith(".mv") else name
    if "/" in stem or "\\" in stem:
        return None
    try:
        path = specs_dir() / f"{stem}.mv"
    except FileNotFoundError:
        return None
    return path if path.is_file() else None


def describe(path: Path) -> str:
    """The spec's first comment line: where the architecture comes from."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
        if line.strip():
            break
    return ""
