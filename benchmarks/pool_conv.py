"""The pooling convs in training: aten's depthwise conv backward vs the CPU layer's.

    .venv/bin/python benchmarks/pool_conv.py [--threads 1]

For each (heads, grid, stride) of MViT's pools at the training size (2, 3, 8, 128, 128), one
depthwise conv over all heads (the emitter's form), forward + backward, reading q as the
strided channels-last view of a (B, L, 3A) qkv output, as the emitted graph does. "aten" is
F.conv2d/3d with autograd's (oneDNN's) backward; "ours" is the op mvitdsl::pool_conv (which
backend/kernels.pool_conv uses for 3-D pools only, as these figures say). Prints the median ms of
both (alternated) and the peak RSS growth of one step of each in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from mvitdsl.backend import kernels  # noqa: E402,F401  registers mvitdsl::pool_conv

HEAD_DIM = 96
VIDEO = [  # (heads, grid, stride) of mvitv2_s / mvit_b pools at 8x128x128
    (1, (4, 32, 32), (1, 1, 1)),
    (1, (4, 32, 32), (1, 8, 8)),
    (2, (4, 32, 32), (1, 2, 2)),
    (2, (4, 32, 32), (1, 4, 4)),
    (2, (4, 16, 16), (1, 1, 1)),
    (2, (4, 16, 16), (1, 4, 4)),
    (4, (4, 16, 16), (1, 2, 2)),
    (4, (4, 8, 8), (1, 1, 1)),
    (4, (4, 8, 8), (1, 2, 2)),
    (8, (4, 8, 8), (1, 2, 2)),
    (8, (4, 4, 4), (1, 1, 1)),
]
IMAGE = [  # 2-D pools of the image models at 224
    (1, (56, 56), (1, 1)),
    (2, (56, 56), (2, 2)),
    (4, (28, 28), (2, 2)),
    (4, (14, 14), (2, 2)),
    (8, (14, 14), (2, 2)),
    (8, (7, 7), (1, 1)),
]
MALLOC_ENV = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}


def step_fn(heads: int, grid: tuple[int, ...], stride: tuple[int, ...], ours: bool):  # noqa: ANN201
    a = heads * HEAD_DIM
    qkv = torch.randn(2, 1 + grid[0] * grid[1] * (grid[2] if len(grid) == 3 else 1), 3 * a,
                      requires_grad=True)
    weight = torch.randn(HEAD_DIM, 1, *(3,) * len(grid), requires_grad=True)
    conv = F.conv3d if len(grid) == 3 else F.conv2d

    def step() -> None:
        q = qkv.unflatten(2, (3, a)).unbind(2)[0][:, 1:]
        t = q.transpose(1, 2).unflatten(2, grid)
        w = weight.repeat(heads, *(1,) * (len(grid) + 1))
        padding = (1,) * len(grid)  # kernel 3
        if ours:
            out = torch.ops.mvitdsl.pool_conv(t, weight, list(stride), list(padding))
        else:
            out = conv(t, w, None, stride, padding, 1, a)
        out.flatten(2).transpose(1, 2).sum().backward()

    return step


def peak_child(case: str, ours: bool) -> None:
    heads, grid, stride = json.loads(case)
    step = step_fn(heads, tuple(grid), tuple(stride), ours)
    step()
    Path("/proc/self/clear_refs").write_text("5")
    base = _mib("VmRSS")
    step()
    print(_mib("VmHWM") - base)


def _mib(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def peak(case: tuple, ours: bool, threads: int) -> float:
    out = subprocess.run([sys.executable, __file__, "--threads", str(threads), "--child",
                          json.dumps(case), str(int(ours))], capture_output=True, text=True,
                         check=True, env=MALLOC_ENV)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=9)
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        return peak_child(args.child[0], args.child[1] == "1")
    print(f"torch {torch.__version__}, {args.threads} thread(s); forward + backward of one "
          "pooling conv, median ms; peak RSS growth of one step, MiB")
    for heads, grid, stride in VIDEO + IMAGE:
        steps = {o: step_fn(heads, grid, stride, o) for o in (False, True)}
        times: dict[bool, list[float]] = {False: [], True: []}
        for rep in range(args.reps + 1):
            for ours_, step in steps.items():
                start = time.perf_counter()
                step()
                if rep:
                    times[ours_].append(time.perf_counter() - start)
        aten, ours = (statistics.median(times[d]) * 1e3 for d in (False, True))
        mem = [peak((heads, grid, stride), d, args.threads) for d in (False, True)]
        print(f"{heads} heads {'x'.join(map(str, grid)):>8} stride {'x'.join(map(str, stride)):>5}"
              f"  aten {aten:6.2f} ms  ours {ours:6.2f} ms  speed-up {aten / ours:4.2f}x  "
              f"peak aten {mem[0]:5.1f} ours {mem[1]:5.1f} MiB", flush=True)


if __name__ == "__main__":
    main()
