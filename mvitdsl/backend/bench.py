"""A spec's measured speed on this device (what `mvitdsl bench` prints: cli/bench.py), and the
one timing loop of the code base (benchmarks/run.py and `make bench` use `time_alternating` too).

Throughput (clips or images per second), latency median and spread, peak memory (the CUDA
allocator's, or on the CPU the RSS high-water growth over one call after malloc_trim), the time
per stage (one instrumented pass, hooks around the blocks of each stage), achieved TFLOP/s (2 FLOP
per analytic MAC, a training step counted as 3x the forward) and its fraction of the device's
peak: measured by a short dense matmul probe at that dtype, or a vendor figure given with
--peak-tflops.
`--against torchvision|timm` runs the reference model with the same weights, alternating.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..analysis.analyze import Report, analyze
from ..ir import NamedModel, Referenced
from .export import input_shape
from .memory import peak_memory_gib as peak_memory_gib
from .reference import load_reference_weights as load_reference_weights
from .reference import reference_model as reference_model
from .reference import reference_name as reference_name

SCHEMA = 1  # the JSON shape's version; `kind` names the shape (as every JSON output)
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class BenchOptions:
    """What to measure: settings as data (the CLI fills them in)."""

    device: str = "cpu"
    dtype: str = "fp32"  # fp32, or bf16 / fp16 autocast
    pure: bool = False  # build(dtype=...) in bf16/fp16 instead of autocast
    batch: int = 1
    train: bool = False
    compile: str = "none"  # none, regional (each block; identical blocks share one), whole
    optimize: bool | str = "auto"
    reps: int = 5
    warmup: int = 1
    threads: int | None = None
    peak_tflops: float | None = None
    against: str | None = None
    progress: Callable[[str], None] | None = None  # told each step (the CLI prints them)

    def __post_init__(self) -> None:
        for what, value, lo in (
            ("reps", self.reps, 1),
            ("warmup", self.warmup, 0),
            ("batch", self.batch, 1),
            ("threads", 1 if self.threads is None else self.threads, 1),
        ):
            if not isinstance(value, int) or value < lo:
                raise ValueError(f"bench {what} must be a whole number >= {lo}, not {value!r}")


@dataclass
class Timing:
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_alternating(
    fns: dict[str, Callable[[], object]],
    reps: int,
    device: str = "cpu",
    warmup: int = 1,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Timing]:
    """Seconds per call of each fn, calling them in turn so that all see the same load; also
    process CPU seconds (on a shared machine with one thread, the steadier measure). The only
    timing loop of mvitdsl: `mvitdsl bench`, benchmarks/run.py and `make bench` use it."""
    out = {k: Timing() for k in fns}
    for rep in range(warmup + reps):
        for key, fn in fns.items():
            sync(device)
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            sync(device)
            if rep >= warmup:
                out[key].seconds.append(time.perf_counter() - start)
                out[key].cpu_seconds.append(time.process_time() - start_cpu)
        if progress is not None:
            label = "warm-up" if rep < warmup else f"rep {rep - warmup + 1}/{reps}"
            last = ", ".join(
                f"{k} {t.seconds[-1] * 1e3:.1f} ms" for k, t in out.items() if t.seconds
            )
            progress(f"{label}{': ' + last if last else ''}")
    return out


# -- the steps timed


def autocast(device: str, dtype: str, pure: bool) -> Any:
    enabled = dtype != "fp32" and not pure
    return torch.autocast(torch.device(device).type, dtype=DTYPES[dtype], enabled=enabled)


def eval_step(model: nn.Module, x: torch.Tensor, opts: BenchOptions) -> Callable[[], object]:
    model.eval()

    def run() -> object:
        with torch.inference_mode(), autocast(opts.device, opts.dtype, opts.pure):
            return model(x)

    return run


def _loss(out: Any, labels: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy on logits; a feature model's maps (a list, tuple or dict of tensors, as
    SAM2's trunk and the references' forward_intermediates give them): the sum of their mean
    squares, so that every map takes part in the backward."""
    if isinstance(out, torch.Tensor):
        assert labels is not None
        return nn.functional.cross_entropy(out.float(), labels)
    maps = out.values() if isinstance(out, dict) else out
    return torch.stack([m.float().square().mean() for m in maps]).sum()


def train_step(model: nn.Module, x: torch.Tensor, opts: BenchOptions) -> Callable[[], object]:
    """One SGD step: forward, cross-entropy on fixed labels, backward (through a GradScaler
    for fp16 autocast), update."""
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9)
    device_type = torch.device(opts.device).type
    scaler = torch.amp.GradScaler(device_type, enabled=opts.dtype == "fp16" and not opts.pure)
    labels: torch.Tensor | None = None

    def run() -> object:
        nonlocal labels
        opt.zero_grad(set_to_none=True)
        with autocast(opts.device, opts.dtype, opts.pure):
            out = model(x)
        if labels is None and isinstance(out, torch.Tensor):
            labels = torch.arange(x.shape[0], device=x.device) % out.shape[-1]
        loss = _loss(out, labels)
        scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
        scaler.step(opt)
        scaler.update()
        return loss

    return run


def step(model: nn.Module, x: torch.Tensor, opts: BenchOptions) -> Callable[[], object]:
    return (train_step if opts.train else eval_step)(model, x, opts)


# -- the models


def build_model(spec: NamedModel, opts: BenchOptions) -> nn.Module:
    from .build import build_module

    dtype = DTYPES[opts.dtype] if opts.pure else None
    return build_module(
        spec.model, device=opts.device, dtype=dtype, optimize=opts.optimize, compile=opts.compile
    )


# -- what is measured besides time


def matmul_peak_tflops(device: str, dtype: torch.dtype) -> float:
    """The device's practical dense-matmul peak at this dtype: a short probe (TFLOP/s)."""
    n = 8192 if device.startswith("cuda") else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    t = time_alternating({"mm": lambda: a @ b}, 5, device, warmup=2)["mm"].median
    return 2 * n**3 / t / 1e12


def stage_times_ms(
    gm: nn.Module, spec: NamedModel, fn: Callable[[], object], device: str
) -> dict[str, float]:
    """Milliseconds per stage in one call, from hooks around the stage's first and last block
    (CUDA synchronised); `stem` and `head` are what lies before and after the blocks."""
    blocks = getattr(gm, "blocks", None)
    if blocks is None:
        return {}
    marks: dict[str, float] = {}
    handles = _mark_stages(blocks, spec, marks, device)
    try:
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        end = time.perf_counter()
    finally:
        for h in handles:
            h.remove()
    if not all(s.name + "/end" in marks for s in spec.model.stages):
        return {}
    # in training, the backward and the update come after the last block's forward
    training = any(p.grad is not None for p in gm.parameters())
    return _stage_table(marks, spec, start, end, "head+backward" if training else "head")


def _mark_stages(blocks: Any, spec: NamedModel, marks: dict[str, float], device: str) -> list[Any]:
    """Hooks that note the time into `marks` before each stage's first block and after its
    last; the handles, to remove them."""

    def mark(name: str) -> Callable[..., None]:
        def hook(*_: object) -> None:
            sync(device)
            marks[name] = time.perf_counter()

        return hook

    handles = []
    for stage in spec.model.stages:
        first, last = blocks[stage.first], blocks[stage.first + stage.depth - 1]
        handles.append(first.register_forward_pre_hook(mark(stage.name + "/start")))
        handles.append(last.register_forward_hook(mark(stage.name + "/end")))
    return handles


def _stage_table(
    marks: dict[str, float], spec: NamedModel, start: float, end: float, head: str
) -> dict[str, float]:
    """Milliseconds of the stem, each stage and the head (named `head`) from the marks."""
    stages = spec.model.stages
    out = {"stem": (marks[stages[0].name + "/start"] - start) * 1e3}
    for s in stages:
        out[s.name] = (marks[s.name + "/end"] - marks[s.name + "/start"]) * 1e3
    out[head] = (end - marks[stages[-1].name + "/end"]) * 1e3
    return out


# -- the whole measurement


def run(spec: Referenced, opts: BenchOptions) -> dict[str, Any]:
    """Build, warm up, measure; a JSON-ready dict (keys shared with `mvitdsl check --format
    json` where they mean the same: schema, params, gmacs, gmacs_fvcore, activation_gib)."""
    say = opts.progress or (lambda _: None)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    report = analyze(spec.model, batch=opts.batch, dtype=opts.dtype)
    say(f"building {spec.name} on {opts.device}")
    torch.manual_seed(0)
    gm = build_model(spec, opts)
    size = input_shape(spec.model)
    in_dtype = DTYPES[opts.dtype] if opts.pure else torch.float32
    x = torch.randn(opts.batch, *size, device=opts.device, dtype=in_dtype)
    runners = _runners(_models(gm, spec, opts), x, opts)
    say("warming up" + (f" (torch.compile, {opts.compile})" if opts.compile != "none" else ""))
    timings = time_alternating(
        runners, opts.reps, opts.device, warmup=opts.warmup, progress=lambda s: say(s)
    )
    ours = timings["mvitdsl"]
    power = _tflops(ours.median, report.macs, opts, say)  # the probe runs before the memory
    mem, mem_source = peak_memory_gib(runners["mvitdsl"], opts.device)
    stages = stage_times_ms(gm, spec, step(gm, x, opts), opts.device)
    result = {**_describe(spec, opts, size, report), **_speed(ours, opts)}
    result.update(peak_mem_gib=mem, peak_mem_source=mem_source, stages_ms=stages, **power)
    if opts.against:
        result["against"] = _against(timings, spec, opts)
    return result


def _models(gm: nn.Module, spec: Referenced, opts: BenchOptions) -> dict[str, nn.Module]:
    """Ours, and with --against the reference, its weights copied into ours."""
    models: dict[str, nn.Module] = {"mvitdsl": gm}
    if opts.against:
        ref = reference_model(spec, opts.against, opts)
        load_reference_weights(gm, ref, spec, opts.against)
        models[opts.against] = ref
    return models


def _runners(
    models: dict[str, nn.Module], x: torch.Tensor, opts: BenchOptions
) -> dict[str, Callable[[], object]]:
    runners: dict[str, Callable[[], object]] = {}
    for key, model in models.items():
        # ours is compiled as build(compile=) says; the reference whole, when ours is compiled
        compiled = key != "mvitdsl" and opts.compile != "none"
        target: Any = torch.compile(model) if compiled else model
        runners[key] = step(target, x, opts)
    return runners


def _describe(
    spec: NamedModel, opts: BenchOptions, size: tuple[int, ...], report: Report
) -> dict[str, Any]:
    """What was measured: the spec, device, settings and the analytic sizes."""
    return {
        "schema": SCHEMA,
        "kind": "bench",
        "spec": spec.name,
        "device": _device_name(opts.device),
        "dtype": _dtype_label(opts),
        "mode": "train" if opts.train else "eval",
        "compile": opts.compile,
        "optimize": opts.optimize,
        "threads": torch.get_num_threads(),
        "batch": opts.batch,
        "input": list(size),
        "params": report.params,
        "gmacs": report.macs / 1e9,
        "gmacs_fvcore": report.macs_fvcore / 1e9,
        "activation_gib": report.activation_bytes / 2**30,
        "reps": opts.reps,
    }


def _speed(ours: Timing, opts: BenchOptions) -> dict[str, Any]:
    """Throughput and latency of ours."""
    per_step = ours.median
    return {
        "clips_per_s": opts.batch / per_step,
        "latency_ms_median": per_step * 1e3,
        "latency_ms_min": min(ours.seconds) * 1e3,
        "latency_ms_max": max(ours.seconds) * 1e3,
        "latency_ms_iqr": _iqr(ours.seconds) * 1e3,
    }


def _tflops(
    per_step: float, macs: int, opts: BenchOptions, say: Callable[[str], None]
) -> dict[str, Any]:
    """Achieved TFLOP/s, the peak it is compared with (probed unless given) and the fraction."""
    flop = 2 * macs * opts.batch * (3 if opts.train else 1)  # macs: per clip
    tflops = flop / per_step / 1e12
    if opts.peak_tflops is not None:
        peak, peak_source = opts.peak_tflops, "vendor figure (--peak-tflops)"
    else:
        say("probing the matmul peak")
        peak = matmul_peak_tflops(opts.device, DTYPES[opts.dtype])
        peak_source = f"measured: dense {opts.dtype} matmul probe"
    return {"tflops": tflops, "peak_tflops": peak, "peak_source": peak_source, "mfu": tflops / peak}


def _against(timings: dict[str, Timing], spec: Referenced, opts: BenchOptions) -> dict[str, Any]:
    assert opts.against is not None
    theirs, per_step = timings[opts.against], timings["mvitdsl"].median
    return {
        "reference": f"{opts.against} {reference_name(spec, opts.against)}",
        "latency_ms_median": theirs.median * 1e3,
        "clips_per_s": opts.batch / theirs.median,
        "ratio": theirs.median / per_step,  # > 1: mvitdsl is faster
    }


def _dtype_label(opts: BenchOptions) -> str:
    if opts.dtype == "fp32":
        return "fp32"
    return opts.dtype + (" (pure)" if opts.pure else " autocast")


def _iqr(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    q = statistics.quantiles(values, n=4)
    return q[2] - q[0]


def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return f"cpu ({torch.get_num_threads()} threads)"
