"""`mvitdsl compile` artifacts: relocatable, no pickles, import without mvitdsl."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from conftest import SPECS  # noqa: E402

import mvitdsl  # noqa: E402
from mvitdsl.backend.artifact import (  # noqa: E402
    MANIFEST,
    import_artifact,
    write_artifact,
    written_files,
)
from mvitdsl.backend.passes.optimize import semantic_graph  # noqa: E402


@pytest.mark.parametrize(
    "size",
    [
        pytest.param((3, 4, 64, 64), id="small"),  # the 16 blocks, on a smaller clip
        pytest.param((3, 16, 224, 224), id="full", marks=pytest.mark.full),
    ],
)
def test_moved_artifact_imports_without_mvitdsl_and_matches(mvit_b_spec, tmp_path, size):
    gm = mvitdsl.build(mvitdsl.resize(mvit_b_spec, size)).eval()
    write_artifact(
        gm,
        tmp_path / "first" / "mvit_b",
        name="mvit_b",
        source_file="specs/mvit_b.mv",
        source_text="",
    )
    moved = tmp_path / "elsewhere" / "mvit_b"
    shutil.move(str(tmp_path / "first" / "mvit_b"), moved)
    shutil.rmtree(tmp_path / "first")
    torch.manual_seed(0)
    x = torch.randn(1, *size)
    torch.save(x, tmp_path / "x.pt")
    with torch.no_grad():
        fast = gm(x)
        with semantic_graph(gm):  # what the artifact was written from, bit for bit
            expected = gm(x)
    # the CPU layer's kernels (oneDNN's matmul) sum in another order: equal up to rounding
    torch.testing.assert_close(fast, expected, atol=1e-5, rtol=1e-5)
    script = textwrap.dedent(f"""
        import sys
        sys.modules["mvitdsl"] = None  # any import of mvitdsl now fails
        sys.path.insert(0, {str(moved.parent)!r})
        import torch, mvit_b
        gm = mvit_b.load()
        assert isinstance(gm, torch.fx.GraphModule)
        assert isinstance(gm.blocks[0], torch.fx.GraphModule)
        with torch.no_grad():
            out = gm(torch.load({str(tmp_path / "x.pt")!r}))
        torch.save(out, {str(tmp_path / "out.pt")!r})
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    out = torch.load(tmp_path / "out.pt")
    torch.testing.assert_close(out, expected, atol=0, rtol=0)
    assert not any(p.suffix in (".pt", ".pkl", ".pth") for p in moved.iterdir())


# ------------------------------------------------------------------ output folders and init

TINY = """\
model tiny {
  input image 3x32x32
  patch conv 4x4 stride 4x4 -> 8
  tokens cls, position none
  stages {
    s1  1   8  2  1x1
    s2  1  16  4  2x2
  }
}
"""


def compile_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mvitdsl", "compile", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


@pytest.fixture()
def tiny_spec(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.mv"
    path.write_text(TINY)
    return path


def test_compile_refuses_a_folder_holding_a_users_file_and_keeps_it(tiny_spec, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "thesis.tex").write_text("three years of work")
    r = compile_cli(str(tiny_spec), "-o", str(project))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert str(project) in r.stderr and "not an mvitdsl artifact" in r.stderr
    assert (project / "thesis.tex").read_text() == "three years of work"
    assert sorted(p.name for p in project.iterdir()) == ["thesis.tex"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".project.")]


def test_recompiling_replaces_the_artifact_and_keeps_a_users_file_inside_it(tiny_spec, tmp_path):
    out = tmp_path / "tiny_art"
    assert compile_cli(str(tiny_spec), "-o", str(out)).returncode == 0
    (out / "notes.txt").write_text("mine")
    r = compile_cli(str(tiny_spec), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert (out / "notes.txt").read_text() == "mine"
    manifest = json.loads((out / MANIFEST).read_text())
    assert "notes.txt" not in manifest["files"] and "weights.safetensors" in manifest["files"]
    assert manifest["spec_sha256"] == hashlib.sha256((out / "spec.mv").read_bytes()).hexdigest()
    assert (
        manifest["weights"]["sha256"]
        == hashlib.sha256((out / "weights.safetensors").read_bytes()).hexdigest()
    )
    assert {"mvitdsl", "torch", "model", "input"} <= set(manifest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.mv", "tiny_art"]  # no leftovers


def test_an_artifact_written_before_manifests_is_recognised_and_replaced(tiny_spec, tmp_path):
    out = tmp_path / "old_art"
    assert compile_cli(str(tiny_spec), "-o", str(out)).returncode == 0
    (out / MANIFEST).unlink()  # what an older mvitdsl wrote
    assert written_files(out) is not None
    assert compile_cli(str(tiny_spec), "-o", str(out)).returncode == 0
    assert (out / MANIFEST).is_file()


def test_an_interrupted_compile_leaves_the_previous_artifact_loadable(tmp_path, monkeypatch):
    spec = mvitdsl.load_spec(text=TINY)
    out = tmp_path / "tiny_art"
    torch.manual_seed(0)
    first = mvitdsl.build(spec)
    write_artifact(
        first, out, name="tiny", source_file="tiny.mv", source_text=TINY, input_size=(3, 32, 32)
    )
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    def crash(state: dict, path: str, metadata: dict) -> None:
        Path(path).write_bytes(b"\0" * 100)  # half a file, then the process "dies"
        raise KeyboardInterrupt

    import mvitdsl.backend.artifact as artifact

    monkeypatch.setattr(artifact, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        write_artifact(
            mvitdsl.build(spec),
            out,
            name="tiny",
            source_file="tiny.mv",
            source_text=TINY,
            input_size=(3, 32, 32),
        )
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny_art"]
    gm = import_artifact(out).load()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad(), semantic_graph(first):  # the graph the artifact was written from
        torch.testing.assert_close(gm(x), first.eval()(x), atol=0, rtol=0)


def test_the_artifacts_build_initialises_like_mvitdsl_build(tmp_path):
    spec = mvitdsl.load_spec(SPECS / "mvitv2_t_image.mv", input_size=(3, 64, 64))
    torch.manual_seed(0)
    ours = mvitdsl.build(spec)
    write_artifact(
        ours,
        tmp_path / "t_art",
        name="mvitv2_t_image",
        source_file="x.mv",
        source_text="",
        input_size=(3, 64, 64),
    )
    package = import_artifact(tmp_path / "t_art")
    torch.manual_seed(1)
    theirs = package.build()
    with torch.no_grad():
        assert torch.isfinite(theirs.eval()(torch.randn(2, 3, 64, 64))).all()
    want = dict(ours.state_dict())
    got = dict(theirs.state_dict())
    assert want.keys() == got.keys()
    for name, a in want.items():
        b = got[name].float()
        a = a.float()
        if a.std() == 0:  # a constant: ones or zeros
            assert abs(b.mean() - a.mean()) <= 0.01 and b.std() <= 0.01, name
        else:
            # 10%; tensors of under 1,000 values get 3 standard errors of a std estimate
            tol = max(0.1, 3 * (2 / a.numel()) ** 0.5)
            assert abs(b.std() - a.std()) <= tol * a.std(), name
            assert abs(b.mean() - a.mean()) <= tol * a.std() + 0.01, name


def test_a_wrong_input_shape_gets_one_line(tmp_path):
    spec = mvitdsl.load_spec(text=TINY)
    write_artifact(
        mvitdsl.build(spec),
        tmp_path / "tiny_art",
        name="tiny",
        source_file="t.mv",
        source_text=TINY,
        input_size=(3, 32, 32),
    )
    gm = import_artifact(tmp_path / "tiny_art").build()
    ref = gm(torch.randn(1, 3, 32, 32)).shape
    assert gm(torch.randn(1, 3, 64, 64)).shape == ref  # any size the rule allows (issue 21)
    rule = mvitdsl.size_rule(spec).text
    with pytest.raises(ValueError) as info:
        gm(torch.randn(1, 3, 36, 64))
    assert str(info.value) == f"input of shape 1x3x36x64 does not follow the size rule: {rule}"
    with pytest.raises(ValueError, match=r"^tiny expects \(B, 3, H, W\), got \(3, 32, 32\)$"):
        gm(torch.randn(3, 32, 32))


def test_spec_mv_is_the_resolved_spec_with_the_input_override(tmp_path):
    out = tmp_path / "art"
    r = compile_cli(str(SPECS / "mvitv2_s_image.mv"), "--input", "3x96x96", "-o", str(out))
    assert r.returncode == 0, r.stderr
    text = (out / "spec.mv").read_text()
    assert "extends" not in text and "stages {" in text
    assert "3x96x96" in text and "--input" in text
    moved = tmp_path / "elsewhere.mv"
    moved.write_text(text)  # self-contained: parses on its own, far from its parents
    assert mvitdsl.load_spec(moved).model.input.size == (1, 96, 96)


def test_a_model_named_like_a_package_does_not_shadow_it(tmp_path):
    spec = tmp_path / "torch.mv"
    spec.write_text(TINY.replace("model tiny", "model torch"))
    r = compile_cli(str(spec), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "build" / "torch_model" / MANIFEST).is_file()
    r = compile_cli(str(spec), "-o", str(tmp_path / "numpy"), cwd=tmp_path)
    assert r.returncode == 1 and "shadow" in r.stderr and "Traceback" not in r.stderr
