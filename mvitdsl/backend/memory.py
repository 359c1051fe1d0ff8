"""The peak memory of one call, on CUDA (the allocator's peak) or on the CPU (the growth of the
process' RSS high-water mark, Linux): what `mvitdsl bench` and `mvitdsl search` report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch


def peak_memory_gib(fn: Callable[[], object], device: str) -> tuple[float, str]:
    """Peak memory of one call: the CUDA allocator's peak, or on the CPU (Linux) the growth of
    the process' RSS high-water mark over one call, after the C allocator has handed its cached
    free memory back to the kernel (glibc's malloc_trim) and the kernel's mark is reset: without
    the trim a warmed-up heap serves the call from pages already counted and the growth reads ~0."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() / 2**30, "cuda allocator peak"
    status = Path("/proc/self/status")
    if not status.exists():
        return float("nan"), "unavailable"
    trimmed = _malloc_trim()
    Path("/proc/self/clear_refs").write_text("5")
    base = _status_kib(status, "VmRSS")
    fn()
    growth = max(0, _status_kib(status, "VmHWM") - base)
    how = "RSS high-water growth" + (" after malloc_trim" if trimmed else " (no malloc_trim)")
    return growth / 2**20, how


def _malloc_trim() -> bool:
    """Return the C heap's free pages to the kernel (glibc); False where there is no such call."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # musl, or no libc by that name
        return False
    trim(0)
    return True


def _status_kib(status: Path, key: str) -> int:
    for line in status.read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)
