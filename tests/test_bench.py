"""`mvitdsl bench`: runs on a small spec, prints text and JSON with the shared keys, compares
with torchvision side by side, and does not import torch before the spec is checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = str(ROOT / "examples" / "tiny.mv")


def test_a_spec_error_is_reported_before_torch_is_imported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mv"
    bad.write_text("model broken {\n  input video 3x4x32x32\n}\n")
    script = (
        "import sys\nfrom mvitdsl.cli import main\n"
        f"rc = main(['bench', {str(bad)!r}])\n"
        "assert rc == 1, rc\nassert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_bench_json_has_the_shared_keys(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    from mvitdsl.cli import main

    rc = main(
        [
            "bench",
            TINY,
            "--batch",
            "2",
            "--reps",
            "2",
            "--train",
            "--dtype",
            "bf16",
            "--format",
            "json",
            "--peak-tflops",
            "1.0",
        ]
    )
    assert rc == 0
    r = json.loads(capsys.readouterr().out)
    for key in (
        "schema",
        "params",
        "gmacs",
        "gmacs_fvcore",
        "activation_gib",
        "clips_per_s",
        "latency_ms_median",
        "peak_mem_gib",
        "tflops",
        "mfu",
        "stages_ms",
    ):
        assert key in r, key
    assert r["mode"] == "train" and r["dtype"] == "bf16 autocast"
    assert r["peak_source"].startswith("vendor")
    assert r["mfu"] == pytest.approx(r["tflops"] / 1.0)
    assert r["tflops"] == pytest.approx(
        2 * 3 * r["gmacs"] * 1e9 * r["batch"] / (r["latency_ms_median"] / 1e3) / 1e12
    )
    assert set(r["stages_ms"]) >= {"stem", "scale2", "scale3"}


def test_bench_text_against_torchvision(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torchvision")
    from mvitdsl.cli import main

    rc = main(
        [
            "bench",
            str(ROOT / "specs" / "mvit_b.mv"),
            "--input",
            "3x4x64x64",
            "--reps",
            "1",
            "--against",
            "torchvision",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "clips/s" in out and "torchvision mvit_v1_b" in out and "ratio" in out
    assert "measured: dense fp32 matmul probe" in out


def test_against_an_unknown_reference_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    from mvitdsl.cli import main

    assert main(["bench", TINY, "--reps", "1", "--against", "timm"]) == 2
    assert "no timm model is known for tiny" in capsys.readouterr().err
