"""Peak RSS growth of an SGD training step (batch 2, 3x224x224) of an image spec and of its timm
reference, each model in a fresh process, as benchmarks/run.py's cpu-memory does for the video
models (issue 22, item 5); median of 2 per model.

    .venv/bin/python benchmarks/memory_image.py hiera_t_image
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ENV = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}


def status(key: str) -> float:
    """A /proc/self/status entry in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def child(name: str, which: str) -> None:
    """One model's training step, twice; print the second step's peak RSS growth."""
    import torch

    import mvitdsl
    from mvitdsl.backend import bench

    torch.set_num_threads(2)
    spec = mvitdsl.load_spec(Path(__file__).resolve().parent.parent / "specs" / f"{name}.mv")
    opts = bench.BenchOptions(train=True)
    torch.manual_seed(0)
    if which == "ref":
        assert spec.reference is not None, f"{name} states no reference"
        model = bench.reference_model(spec, spec.reference.source, opts)
    else:
        model = bench.build_model(spec, opts)
    step = bench.step(model, torch.randn(2, 3, 224, 224), opts)
    step()
    Path("/proc/self/clear_refs").write_text("5")
    base = status("VmRSS")
    step()
    print(json.dumps({"peak": status("VmHWM") - base}))


def main() -> None:
    if len(sys.argv) > 2:
        child(sys.argv[1], sys.argv[2])
        return
    name, reps = sys.argv[1], 2
    peaks: dict[str, list[float]] = {"ref": [], "ours": []}
    for _ in range(reps):
        for w in peaks:
            cmd = [sys.executable, __file__, name, w]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=ENV)
            peaks[w].append(json.loads(out.stdout.strip().splitlines()[-1])["peak"])
    print(name, {k: round(statistics.median(v), 1) for k, v in peaks.items()}, peaks)


if __name__ == "__main__":
    main()
