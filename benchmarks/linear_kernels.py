"""aten's Linear GEMMs against oneDNN's (`torch.ops.mkldnn._linear_pointwise`) on Hiera-T's and
the image MViTv2's shapes: forward, input gradient, weight gradient; thread CPU time, medians of
alternating calls (issue 22: why `kernels.Linear` exists).

    .venv/bin/python benchmarks/linear_kernels.py [--threads 1] [--reps 40]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

# (rows M, in K, out N, calls in one Hiera-T eval at 224)
SHAPES = [(3136, 96, 288, 2), (3136, 96, 384, 2), (3136, 384, 96, 2), (784, 192, 576, 2),
          (784, 192, 768, 2), (784, 768, 192, 2), (196, 384, 1152, 7), (196, 384, 1536, 7),
          (196, 1536, 384, 7), (196, 384, 384, 7), (49, 768, 2304, 2), (49, 768, 3072, 2),
          (49, 3072, 768, 2)]


def medians(fns: dict[str, Callable[[], object]], reps: int) -> dict[str, float]:
    for f in fns.values():
        f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            t = time.thread_time()
            f()
            times[k].append(time.thread_time() - t)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def _cases(dnn: Any, x: Tensor, w: Tensor, b: Tensor, g: Tensor) -> dict[str, Callable[[], object]]:
    """aten's and oneDNN's forward, input gradient and weight gradient of one linear shape."""
    return {
        "forward aten": lambda: F.linear(x, w, b),
        "forward onednn": lambda: dnn(x, w, b, "none", [], ""),
        "grad input aten": lambda: g.mm(w),
        "grad input onednn": lambda: dnn(g, w.t(), None, "none", [], ""),
        "grad weight aten": lambda: g.t().mm(x),
        "grad weight onednn": lambda: dnn(g.t(), x.t(), None, "none", [], ""),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=40)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    dnn = torch.ops.mkldnn._linear_pointwise
    total: dict[str, float] = {}
    for m, k, n, calls in SHAPES:
        x, w, b, g = torch.randn(m, k), torch.randn(n, k) * 0.05, torch.randn(n), torch.randn(m, n)
        with torch.no_grad():
            got = medians(_cases(dnn, x, w, b, g), args.reps)
        print((m, k, n), {key: round(v, 3) for key, v in got.items()})
        for key, v in got.items():
            total[key] = total.get(key, 0.0) + v * calls
    print("weighted by calls (ms):", {key: round(v, 1) for key, v in total.items()})


if __name__ == "__main__":
    main()
