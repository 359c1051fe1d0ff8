"""`mvitdsl compile` artifacts: relocatable, no pickles, import without mvitdsl."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")

import mvitdsl  # noqa: E402
from mvitdsl.backend.artifact import write_artifact  # noqa: E402


def test_moved_artifact_imports_without_mvitdsl_and_matches(mvit_b_spec, tmp_path):
    gm = mvitdsl.build(mvit_b_spec).eval()
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
    x = torch.randn(1, 3, 16, 224, 224)
    torch.save(x, tmp_path / "x.pt")
    with torch.no_grad():
        expected = gm(x)
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
