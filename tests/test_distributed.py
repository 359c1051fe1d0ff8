"""examples/train.py under `torchrun --nproc_per_node 2` on CPU (gloo): DDP, and FSDP2
`fully_shard` per block with a checkpointed stage. The loss goes down; replicas agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parent.parent


def torchrun(tmp_path: Path, *extra: str) -> list[dict]:
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(ROOT / "examples" / "train.py"),
        str(ROOT / "examples" / "tiny.mv"),
        "--steps",
        "8",
        "--out",
        str(out),
        *extra,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return [json.loads((out / f"rank{i}.json").read_text()) for i in range(2)]


def check(ranks: list[dict]) -> None:
    assert [r["world"] for r in ranks] == [2, 2]
    losses = ranks[0]["losses"]
    assert ranks[1]["losses"] == losses  # logged loss is the mean over ranks
    assert sum(losses[-2:]) < 0.8 * sum(losses[:2]), losses
    assert ranks[0]["digest"] == ranks[1]["digest"]


def test_ddp_two_processes_learn_and_stay_identical(tmp_path: Path) -> None:
    check(torchrun(tmp_path, "--parallel", "ddp"))


def test_fsdp2_per_block_with_checkpointing_learns_and_stays_identical(tmp_path: Path) -> None:
    check(torchrun(tmp_path, "--parallel", "fsdp", "--checkpoint", "scale3"))
