"""examples/finetune.py and examples/dense.py run at tiny sizes, alone and under torchrun with
2 processes (gloo on CPU); the loss goes down and the ranks agree on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

pytest.importorskip("torch")
pytest.importorskip("torchvision")

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}


def run(tmp_path: Path, script: str, spec: str, *extra: str, procs: int = 1) -> list[dict]:
    out = tmp_path / "run"
    launch = (
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            str(procs),
        ]
        if procs > 1
        else [sys.executable]
    )
    cmd = [
        *launch,
        str(ROOT / "examples" / script),
        str(ROOT / "examples" / spec),
        "--out",
        str(out),
        *extra,
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=ENV, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    ranks = [json.loads((out / f"rank{i}.json").read_text()) for i in range(procs)]
    assert all(r["losses"] == ranks[0]["losses"] for r in ranks)
    return ranks


def falls(losses: list[float]) -> bool:
    return sum(losses[-3:]) < 0.8 * sum(losses[:3])


def test_finetune_new_classes_and_clip_length(tmp_path: Path) -> None:
    (result,) = run(tmp_path, "finetune.py", "tiny.mv", "--frames", "8", "--classes", "5")
    assert result["input"] == [3, 8, 32, 32]
    assert result["resized"] == ["pos_encoding.temporal_pos"]
    assert falls(result["losses"]), result["losses"]


def test_finetune_under_torchrun(tmp_path: Path) -> None:
    ranks = run(tmp_path, "finetune.py", "tiny.mv", "--frames", "8", "--steps", "8", procs=2)
    assert [r["world"] for r in ranks] == [2, 2]
    assert falls(ranks[0]["losses"]), ranks[0]["losses"]


def test_dense_fpn_segmentation(tmp_path: Path) -> None:
    (result,) = run(tmp_path, "dense.py", "tiny_image.mv", "--steps", "20")
    assert falls(result["losses"]), result["losses"]


def test_dense_under_torchrun(tmp_path: Path) -> None:
    ranks = run(tmp_path, "dense.py", "tiny_image.mv", "--steps", "12", procs=2)
    assert [r["world"] for r in ranks] == [2, 2]
    assert falls(ranks[0]["losses"]), ranks[0]["losses"]
