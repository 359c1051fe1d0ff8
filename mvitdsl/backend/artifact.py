"""Write a compiled model as a standalone, relocatable Python package plus safetensors weights.

    build/mvit_b/__init__.py        `from . import model`; `load()` and `build()`
    build/mvit_b/model.py           generated: one nn.Module class per GraphModule, fx's code
    build/mvit_b/runtime.py         a copy of mvitdsl/runtime.py (imports only torch)
    build/mvit_b/weights.safetensors
    build/mvit_b/spec.mv            the resolved spec it was compiled from (parents merged in)
    build/mvit_b/mvitdsl-artifact.json   the manifest: files written, versions, sha256s

The package needs torch and safetensors, not mvitdsl; no pickles; relative imports only.

Writing never deletes what mvitdsl did not write: the new artifact is written into a temporary
sibling folder, its manifest last (the commit point), then swapped in; an existing folder is
replaced only when it is an artifact (it has a manifest, or the file set of an older artifact).
The text of model.py is generated in artifact_source.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from safetensors.torch import save_file
from torch import fx

from . import runtime
from .artifact_source import FOOTER, HEADER, ctor, doc_text, generate, leaf_targets, module_class
from .passes.optimize import semantic_graph

__all__ = [
    "FOOTER",
    "HEADER",
    "MANIFEST",
    "check_destination",
    "ctor",
    "generate",
    "import_artifact",
    "leaf_targets",
    "module_class",
    "shadowed_module",
    "with_umask",
    "write_artifact",
    "write_extra",
    "written_files",
]

MANIFEST = "mvitdsl-artifact.json"
# The files of an artifact written before the manifest existed (exports may sit beside them).
LEGACY_FILES = frozenset({"__init__.py", "model.py", "runtime.py", "weights.safetensors"})
LEGACY_OPTIONAL = frozenset({"spec.mv", "__pycache__", "finetune.py", "meta.json"})
LEGACY_SUFFIXES = (".onnx", ".pt2", ".onnx.data")

Progress = Callable[[str], None]


def _quiet(line: str) -> None:
    return None


def written_files(folder: Path) -> set[str] | None:
    """The names mvitdsl wrote into `folder` if it is an artifact (manifest, or an older
    artifact's file set), else None."""
    manifest = folder / MANIFEST
    if manifest.is_file():
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
            files = data["files"]
            if isinstance(files, list) and all(isinstance(f, str) for f in files):
                return {f for f in files if "/" not in f and f not in ("", ".", "..")} | {MANIFEST}
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return None
        return None
    names = {p.name for p in folder.iterdir()}
    if names >= LEGACY_FILES and all(
        n in LEGACY_FILES or n in LEGACY_OPTIONAL or n.endswith(LEGACY_SUFFIXES) for n in names
    ):
        return names
    return None


def check_destination(out: Path) -> None:
    """Refuse a destination that is a file, or a non-empty folder that is not an artifact."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder; choose another -o")
    if out.is_dir() and any(out.iterdir()) and written_files(out) is None:
        raise FileExistsError(
            f"{out} is not empty and is not an mvitdsl artifact; refusing to write into it "
            "(nothing was changed). Choose an empty or new folder with -o"
        )


def shadowed_module(folder: Path) -> str | None:
    """Why the folder's name cannot be an artifact's package name (it would shadow an installed
    module when imported), or None."""
    import importlib.util

    name = folder.name
    if not name.isidentifier():
        return None
    if name in sys.stdlib_module_names or name in SHADOW_NAMES:
        return f"'{name}' is the name of an installed module"
    try:
        found = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if found is None:
        return None
    where = [*(found.submodule_search_locations or []), found.origin or ""]
    here = str(folder.resolve())
    if any(w and str(Path(w).resolve()).startswith(here) for w in where):
        return None  # the artifact itself, importable from sys.path
    folders = [Path(w) if Path(w).is_dir() else Path(w).parent for w in where if w]
    if any((f / MANIFEST).is_file() for f in folders):
        return None  # another artifact of that name (imported earlier), not an installed module
    return f"'{name}' is the name of an installed module"


# Modules the artifact or its users import; an artifact named like one would shadow it.
SHADOW_NAMES = frozenset({"torch", "safetensors", "numpy", "mvitdsl", "torchvision", "timm"})


def write_artifact(
    gm: fx.GraphModule,
    out_dir: str | Path,
    *,
    name: str,
    source_file: str,
    source_text: str,
    input_size: tuple[int, ...] | None = None,
    exports: Callable[[Path], list[Path]] | None = None,
    progress: Progress = _quiet,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the package to out_dir, replacing an earlier artifact there; returns the directory.

    Refuses (FileExistsError, nothing touched) a non-empty folder that is not an artifact and
    (ValueError) a folder named like an installed module. `exports(tmp_dir)` may write more
    files before the manifest is written. Files that mvitdsl did not write are kept. `extra`
    (load.manifest_extra: weights' origin, preprocessing, classes, feature_info) goes to
    meta.json, offered by the package's `meta()`.
    """
    out = Path(out_dir)
    _refuse_destination(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        size = tuple(input_size) if input_size is not None else None
        _write_package(gm, tmp, name, source_file, source_text, size, extra or {})
        _write_weights(gm, tmp, name, source_file, progress)
        if exports is not None:
            exports(tmp)
        manifest = _manifest(tmp, name, source_file, source_text, size, extra or {})
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        with_umask(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # only what this call wrote
        raise
    _swap_in(tmp, out)
    return out


def _refuse_destination(out: Path) -> None:
    """Raise before anything is written: a folder named like an installed module, or one that
    check_destination refuses."""
    problem = shadowed_module(out)
    if problem:
        raise ValueError(
            f"cannot write the artifact to {out}: {problem}, and importing the artifact by "
            f"that name would shadow it; choose another folder name with -o"
        )
    check_destination(out)


def _write_package(
    gm: fx.GraphModule,
    tmp: Path,
    name: str,
    source_file: str,
    source_text: str,
    size: tuple[int, ...] | None,
    extra: dict[str, Any],
) -> None:
    """The package's text files: model.py, runtime.py, spec.mv, meta.json / finetune.py and
    __init__.py."""
    with semantic_graph(gm):  # artifacts carry the semantic graph and runtime.py only
        (tmp / "model.py").write_text(generate(gm, name, source_file, size), encoding="utf-8")
    shutil.copyfile(Path(runtime.__file__), tmp / "runtime.py")
    (tmp / "spec.mv").write_text(source_text, encoding="utf-8")
    write_extra(tmp, extra)
    (tmp / "__init__.py").write_text(
        f'"""Model {name!r}, compiled by mvitdsl from {doc_text(source_file)}."""\n'
        "from .finetune import param_groups\n"
        "from .model import build, load, meta\n\n"
        '__all__ = ["build", "load", "meta", "param_groups"]\n',
        encoding="utf-8",
    )


def _write_weights(
    gm: fx.GraphModule, tmp: Path, name: str, source_file: str, progress: Progress
) -> None:
    """weights.safetensors: the state_dict, contiguous on the CPU, with the model's name."""
    state = {k: v.detach().contiguous().cpu() for k, v in gm.state_dict().items()}
    progress(f"writing weights ({sum(v.numel() for v in state.values()):,} parameters) ...")
    save_file(
        state, str(tmp / "weights.safetensors"), metadata={"model": name, "source": source_file}
    )


def _manifest(
    tmp: Path,
    name: str,
    source_file: str,
    source_text: str,
    size: tuple[int, ...] | None,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """The manifest's content: the files written so far, versions, the spec's and weights'
    sha256 and the weights' origin."""
    import torch

    return {
        "format": 1,
        "model": name,
        "files": sorted(p.name for p in tmp.iterdir()),
        "mvitdsl": _version(),
        "torch": torch.__version__,
        "source": source_file,
        "spec_sha256": hashlib.sha256(source_text.encode("utf-8")).hexdigest(),
        "input": list(size) if size else None,
        "weights": {
            "source": (extra.get("weights") or {}).get("origin", "random init"),
            "sha256": _sha256(tmp / "weights.safetensors"),
        },
    }


def write_extra(out: Path, extra: dict[str, Any]) -> None:
    """meta.json (when there is anything to say) and finetune.py (parameter groups)."""
    import json

    from . import finetune

    shutil.copyfile(Path(finetune.__file__), out / "finetune.py")
    if extra:
        (out / "meta.json").write_text(json.dumps(extra, indent=2, default=str) + "\n")


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("mvitdsl")
    except Exception:
        return "unknown"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def with_umask(folder: Path) -> None:
    """Give the folder and what is in it the modes a plain mkdir / open would have: mkdtemp
    makes 0700 and safetensors writes 0600, but an artifact is meant to be shared."""
    mask = os.umask(0)
    os.umask(mask)  # reading the umask means setting it: put it straight back
    folder.chmod(0o777 & ~mask)
    for path in folder.rglob("*"):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


def _swap_in(tmp: Path, out: Path) -> None:
    """Move the finished artifact in place; an earlier artifact's files go, anything else stays.

    When `out` is an empty folder or missing this is one rename. Otherwise the old folder is
    renamed aside, the new one renamed in, files mvitdsl did not write are moved across, and the
    old folder is removed only when nothing else is left in it."""
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    if not out.exists():
        os.replace(tmp, out)
        return
    ours = written_files(out)
    if ours is None:  # changed since check_destination: stop, leave both
        raise FileExistsError(f"{out} changed while compiling; the new artifact is in {tmp}")
    ours = ours | {"__pycache__"}  # Python's bytecode of the files we wrote
    old = out.with_name(tmp.name.replace(".partial", ".old"))
    os.replace(out, old)
    os.replace(tmp, out)
    for entry in sorted(old.iterdir()):
        if entry.name in ours:
            if entry.is_dir() and entry.name == "__pycache__":
                shutil.rmtree(entry, ignore_errors=True)
            elif not entry.is_dir():
                entry.unlink()
        elif not (out / entry.name).exists():
            os.replace(entry, out / entry.name)  # a user's file: keep it, in the new folder
    try:
        old.rmdir()
    except OSError:
        print(f"mvitdsl: kept {old}: it holds files that could not be moved", file=sys.stderr)


def import_artifact(path: str | Path) -> types.ModuleType:
    """Import an artifact folder as a package, wherever it lies (used by tests and the CLI)."""
    import importlib.util
    import sys

    path = Path(path).resolve()
    for name in [m for m in sys.modules if m == path.name or m.startswith(path.name + ".")]:
        del sys.modules[name]  # an earlier artifact of the same name: its model.py is not ours
    spec = importlib.util.spec_from_file_location(
        path.name, path / "__init__.py", submodule_search_locations=[str(path)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.name] = module
    spec.loader.exec_module(module)
    return module
