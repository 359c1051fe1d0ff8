"""Compiled specs vs torchvision, side by side in one process: `make bench`.

Each measurement alternates the two models (same weights), repeats, and prints medians and the
ratio torchvision / compiled (> 1 means the compiled model is faster or smaller).

    .venv/bin/python benchmarks/run.py        # CPU eval, CPU train, memory; CUDA if present
    .venv/bin/python benchmarks/run.py --only cpu-eval --reps 7 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torchvision
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import mvitdsl  # noqa: E402
from mvitdsl.backend.bench import time_alternating  # noqa: E402

SPECS = ("mvit_b", "mvitv2_s")  # the specs whose `reference` is a torchvision model
EVAL_INPUT = (3, 16, 224, 224)
TRAIN_INPUT = (3, 8, 128, 128)  # 112 leaves a 3.5-wide grid at the last Q stride
TRAIN_BATCH = 2


def reference(name: str, size: tuple[int, ...]) -> nn.Module:
    """torchvision's model for a spec at input size (C, T, H, W); its builders fix T and H, W,
    so the size is patched into the private `_mvit` call they all make."""
    stated = mvitdsl.load_spec(ROOT / "specs" / f"{name}.mv", check=False).reference
    assert stated is not None and stated.source == "torchvision", f"{name}: {stated}"
    video = torchvision.models.video.mvit
    original = video._mvit

    def sized(**kw: object) -> nn.Module:
        kw.update(temporal_size=size[1], spatial_size=(size[2], size[3]))
        return original(**kw)

    video._mvit = sized
    try:
        return getattr(torchvision.models.video, stated.name)()
    finally:
        video._mvit = original


def pair(name: str, size: tuple[int, ...], device: str = "cpu") -> tuple[nn.Module, nn.Module]:
    """(torchvision, compiled) with the same random weights."""
    torch.manual_seed(0)
    ref = reference(name, size).to(device)
    spec = mvitdsl.load_spec(ROOT / "specs" / f"{name}.mv", input_size=size)
    gm = mvitdsl.build(spec, device=device)
    gm.load_state_dict(ref.state_dict(), strict=True)
    return ref, gm


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def alternate(fns: dict[str, Callable[[], object]], reps: int, device: str = "cpu",
              warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each fn, alternating (mvitdsl.backend.bench.time_alternating,
    the one timing loop), and the median process CPU seconds under "<key>/cpu"."""
    timings = time_alternating(fns, reps, device, warmup=warmup)
    out = {k: t.median for k, t in timings.items()}
    out.update({f"{k}/cpu": statistics.median(t.cpu_seconds) for k, t in timings.items()})
    return out


def eval_fn(model: nn.Module, x: torch.Tensor, autocast: torch.dtype | None = None
            ) -> Callable[[], object]:
    model.eval()

    def run() -> object:
        with torch.inference_mode(), torch.autocast(x.device.type, dtype=autocast or torch.float32,
                                                    enabled=autocast is not None):
            return model(x)
    return run


def train_fn(model: nn.Module, x: torch.Tensor, classes: int = 400) -> Callable[[], object]:
    """One SGD step: forward, cross-entropy on fixed labels, backward, update."""
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    labels = torch.arange(x.shape[0], device=x.device) % classes

    def run() -> object:
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), labels)
        loss.backward()
        opt.step()
        return loss
    return run


def row(label: str, medians: dict[str, float], unit: str = "s") -> dict[str, object]:
    tv, ours = medians["torchvision"], medians["compiled"]
    line = (f"{label:<46} torchvision {tv:9.4f} {unit}  compiled {ours:9.4f} {unit}  "
            f"ratio {tv / ours:5.2f}x")
    out: dict[str, object] = {"what": label, "torchvision": tv, "compiled": ours,
                              "ratio": tv / ours, "unit": unit}
    if "compiled/cpu" in medians and unit == "s":
        cpu_ratio = medians["torchvision/cpu"] / medians["compiled/cpu"]
        line += f"  (CPU-time ratio {cpu_ratio:5.2f}x)"
        out["cpu_ratio"] = cpu_ratio
    print(line, flush=True)
    return out


def cpu_eval(name: str, reps: int) -> dict[str, object]:
    ref, gm = pair(name, EVAL_INPUT)
    x = torch.randn(1, *EVAL_INPUT)
    with torch.inference_mode():
        torch.testing.assert_close(gm.eval()(x), ref.eval()(x), atol=1e-4, rtol=0)
    med = alternate({"torchvision": eval_fn(ref, x), "compiled": eval_fn(gm, x)}, reps)
    return row(f"cpu eval fp32 {name} (1,{','.join(map(str, EVAL_INPUT))})", med)


def cpu_train(name: str, reps: int) -> dict[str, object]:
    ref, gm = pair(name, TRAIN_INPUT)
    x = torch.randn(TRAIN_BATCH, *TRAIN_INPUT)
    med = alternate({"torchvision": train_fn(ref, x), "compiled": train_fn(gm, x)}, reps)
    size = ",".join(map(str, (TRAIN_BATCH, *TRAIN_INPUT)))
    return row(f"cpu train step fp32 {name} ({size})", med)


def peak_rss_child(name: str, which: str) -> None:
    """In a fresh process holding one model: RSS before a training step and its peak during
    it (MiB); the kernel's high-water mark is reset first (clear_refs 5)."""
    torch.manual_seed(0)
    if which == "torchvision":
        model = reference(name, TRAIN_INPUT)
    else:
        spec = mvitdsl.load_spec(ROOT / "specs" / f"{name}.mv", input_size=TRAIN_INPUT)
        model = mvitdsl.build(spec)
    step = train_fn(model, torch.randn(TRAIN_BATCH, *TRAIN_INPUT))
    step()  # optimizer state and allocator caches exist from here on
    Path("/proc/self/clear_refs").write_text("5")
    base = _status_mib("VmRSS")
    step()
    print(json.dumps({"peak_mib": _status_mib("VmHWM"), "base_mib": base}))


def _status_mib(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


# Large blocks straight from mmap and back to the kernel on free, so RSS follows live tensors.
MALLOC_ENV = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}


def cpu_memory(name: str, reps: int) -> dict[str, object]:
    """Peak RSS growth during a training step (activations and gradients' temporaries), each
    model in its own process, alternating; median."""
    peaks: dict[str, list[float]] = {"torchvision": [], "compiled": []}
    for _ in range(reps):
        for which in peaks:
            out = subprocess.run([sys.executable, __file__, "--child-memory", name, which],
                                 capture_output=True, text=True, check=True, env=MALLOC_ENV)
            got = json.loads(out.stdout.strip().splitlines()[-1])
            peaks[which].append(got["peak_mib"] - got["base_mib"])
    med = {k: statistics.median(v) for k, v in peaks.items()}
    size = ",".join(map(str, (TRAIN_BATCH, *TRAIN_INPUT)))
    return row(f"cpu train step peak RSS growth {name} ({size})", med, "MiB")


def matmul_peak(dtype: torch.dtype, n: int = 8192) -> float:
    """Measured dense matmul throughput of this GPU in FLOP/s (the practical peak)."""
    a = torch.randn(n, n, device="cuda", dtype=dtype)
    b = torch.randn(n, n, device="cuda", dtype=dtype)
    med = alternate({"mm": lambda: a @ b}, 10, "cuda", warmup=3)["mm"]
    return 2 * n**3 / med


def cuda_bench(name: str, reps: int, batch: int) -> list[dict[str, object]]:
    """Eval throughput (bf16 autocast and fp32), peak memory and matmul utilisation on CUDA."""
    ref, gm = pair(name, EVAL_INPUT, "cuda")
    x = torch.randn(batch, *EVAL_INPUT, device="cuda")
    macs = mvitdsl.analyze(mvitdsl.load_spec(ROOT / "specs" / f"{name}.mv")).macs * batch
    out = []
    for label, dtype in (("bf16 autocast", torch.bfloat16), ("fp32", torch.float32)):
        med = alternate({"torchvision": eval_fn(ref, x, dtype if dtype != torch.float32 else None),
                         "compiled": eval_fn(gm, x, dtype if dtype != torch.float32 else None)},
                        reps, "cuda", warmup=3)
        med = {k: med[k] for k in ("torchvision", "compiled")}  # wall clock only on a GPU
        clips = {k: batch / v for k, v in med.items()}
        r = row(f"cuda eval {label} {name} batch {batch} (s/batch)", med)
        peak = matmul_peak(dtype)
        r["clips_per_s"] = clips
        r["matmul_fraction"] = {k: 2 * macs / v / peak for k, v in med.items()}
        r["measured_matmul_peak_tflops"] = peak / 1e12
        print(f"    clips/s tv {clips['torchvision']:.1f} compiled {clips['compiled']:.1f}; "
              f"fraction of measured {dtype} matmul peak ({peak / 1e12:.0f} TFLOP/s): "
              f"tv {r['matmul_fraction']['torchvision']:.3f} "  # type: ignore[index]
              f"compiled {r['matmul_fraction']['compiled']:.3f}", flush=True)  # type: ignore[index]
        out.append(r)
    out.append(cuda_memory(name, ref, gm, x))
    return out


def cuda_memory(name: str, ref: nn.Module, gm: nn.Module, x: torch.Tensor) -> dict[str, object]:
    """Peak allocated GPU memory of a bf16-autocast training step."""
    peaks = {}
    for which, model in (("torchvision", ref), ("compiled", gm)):
        step = train_fn(model, x[:2])
        with torch.autocast("cuda", dtype=torch.bfloat16):
            step()
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            step()
        torch.cuda.synchronize()
        peaks[which] = torch.cuda.max_memory_allocated() / 2**20
    return row(f"cuda train bf16 peak memory {name} batch 2", peaks, "MiB")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--specs", nargs="+", default=list(SPECS))
    p.add_argument("--only", nargs="+", default=["cpu-eval", "cpu-train", "cpu-memory", "cuda"],
                   choices=["cpu-eval", "cpu-train", "cpu-memory", "cuda"])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--cuda-batch", type=int, default=8)
    p.add_argument("--json", type=Path, help="also write the rows here")
    p.add_argument("--child-memory", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.child_memory:
        return peak_rss_child(*args.child_memory)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
          f"{args.threads} threads, reps {args.reps}; ratio = torchvision / compiled", flush=True)
    rows: list[dict[str, object]] = []
    for name in args.specs:
        if "cpu-eval" in args.only:
            rows.append(cpu_eval(name, args.reps))
        if "cpu-train" in args.only:
            rows.append(cpu_train(name, args.reps))
        if "cpu-memory" in args.only:
            rows.append(cpu_memory(name, max(1, args.reps // 2)))
        if "cuda" in args.only and torch.cuda.is_available():
            rows.extend(cuda_bench(name, args.reps, args.cuda_batch))
    if "cuda" in args.only and not torch.cuda.is_available():
        print("cuda: no CUDA device here; no GPU figures measured")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":
    main()
