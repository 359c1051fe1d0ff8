"""Profile one CPU eval forward of the compiled model and torchvision's, same weights.

    .venv/bin/python benchmarks/profile_cpu.py [mvit_b|mvitv2_s] [T]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torchvision
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import mvitdsl  # noqa: E402

REFS = {"mvit_b": torchvision.models.video.mvit_v1_b,
        "mvitv2_s": torchvision.models.video.mvit_v2_s}


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "mvit_b"
    frames = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    torch.manual_seed(0)
    ref = REFS[name]().eval()
    gm = mvitdsl.build(mvitdsl.load_spec(Path(f"specs/{name}.mv"))).eval()
    gm.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(1, 3, frames, 224, 224)
    for label, model in (("torchvision", ref), ("compiled", gm)):
        with torch.inference_mode():
            model(x)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                model(x)
        print(f"==== {label}")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14))


if __name__ == "__main__":
    main()
