"""The shipped specs: specs/*.mv, in the wheel as mvitdsl/specs/ (pyproject force-include).

    mvitdsl list                       name, params, GMACs, source of every shipped spec
    mvitdsl check mvit_b               a bare name that is not a file is the shipped spec
    mvitdsl.load_spec(name="mvit_b")

Never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class Entry:
    """One line of `mvitdsl list`."""

    name: str
    params: int
    gmacs: float
    input: str
    source: str


def describe(path: Path) -> str:
    """The spec's first comment line: where the architecture comes from."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
        if line.strip():
            break
    return ""


def entries() -> list[Entry]:
    """Every shipped spec, loaded and analysed."""
    from .analysis.analyze import analyze
    from .spec import load_spec

    out = []
    for name in names():
        path = specs_dir() / f"{name}.mv"
        spec = load_spec(path)
        report = analyze(spec)
        c, (t, h, w) = spec.model.input.channels, spec.model.input.size
        size = f"{c}x{t}x{h}x{w}" if spec.model.input.kind == "video" else f"{c}x{h}x{w}"
        out.append(Entry(name, report.params, report.macs / 1e9, size, describe(path)))
    return out


def render_list(rows: list[Entry]) -> str:
    lines = [f"{'name':<18} {'input':<14} {'params':>13} {'GMACs':>9}  source"]
    for e in rows:
        lines.append(f"{e.name:<18} {e.input:<14} {e.params:>13,} {e.gmacs:>9.3f}  {e.source[:60]}")
    return "\n".join(lines)
