"""Bytes autograd saves for backward in one training forward, torchvision vs compiled, same weights
(distinct storages, so views count once). Tells saved activations from transient peaks.

    .venv/bin/python benchmarks/saved_tensors.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import pair  # noqa: E402


def saved_mib(model: torch.nn.Module, x: torch.Tensor) -> float:
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = max(seen.get(storage.data_ptr(), 0), storage.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return sum(seen.values()) / 2**20


def main() -> None:
    for name in ("mvit_b", "mvitv2_s"):
        ref, gm = pair(name, (3, 8, 128, 128))
        x = torch.randn(2, 3, 8, 128, 128)
        tv, ours = saved_mib(ref, x), saved_mib(gm, x)
        print(f"{name} (2,3,8,128,128): saved for backward torchvision {tv:.1f} MiB, "
              f"compiled {ours:.1f} MiB, ratio {tv / ours:.3f}x")


if __name__ == "__main__":
    main()
