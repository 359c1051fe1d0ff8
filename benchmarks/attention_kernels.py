"""SDPA against `kernels.plain` (matmul, softmax, matmul: what `kernels.attention` runs when its
rule picks the plain ops) on the attention shapes of issue 22's table: why `kernels.attention`
takes the plain ops in training for short sequences and learned masks, and keeps SDPA otherwise.
The shapes are recorded from the models themselves (eval batch 1 at the spec's size, training
batch 2 at the table's training input); wall time, medians of alternating calls, forward
(inference) or forward + backward (training).

    .venv/bin/python benchmarks/attention_kernels.py [--threads 2] [--reps 25] [--only SPEC ...]
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import mvitdsl  # noqa: E402
from mvitdsl.backend import kernels  # noqa: E402
from mvitdsl.backend.export import input_shape  # noqa: E402

SPECS = ("mvit_b", "mvitv2_s", "mvitv2_t_image", "hiera_b_image", "swin_t")
Case = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...] | None, bool]


class Shapes(TorchFunctionMode):
    """Counts the (q, k, mask, mask learned) shapes of every attention call, Swin's included."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: collections.Counter[Case] = collections.Counter()

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            q, k = args[:2]
            m = kwargs.get("attn_mask")
            mask = None if m is None else tuple(m.shape)
            self.seen[
                (tuple(q.shape), tuple(k.shape), mask, bool(m is not None and m.requires_grad))
            ] += 1
        return func(*args, **kwargs)


def shapes(name: str, train: bool) -> collections.Counter[Case]:
    spec = mvitdsl.load_spec(ROOT / "specs" / f"{name}.mv")
    size = tuple(input_shape(spec.model))
    size = (3, 8, 128, 128) if train and len(size) == 4 else size
    gm = mvitdsl.build(
        mvitdsl.load_spec(ROOT / "specs" / f"{name}.mv", input_size=size), optimize=False
    )
    rec = Shapes()
    with rec, torch.set_grad_enabled(train):
        gm.train(train)(torch.randn(2 if train else 1, *size))
    return rec.seen


def timed(case: Case, train: bool, reps: int) -> dict[str, float]:
    qs, ks, ms, learned = case
    q, k, v = (torch.randn(s, requires_grad=train) for s in (qs, ks, ks))
    mask = None if ms is None else torch.randn(ms, requires_grad=train and learned)
    grad = torch.randn(qs)
    fns = {"sdpa": F.scaled_dot_product_attention, "plain": kernels.plain}

    def call(fn: Any) -> None:
        with torch.set_grad_enabled(train):  # by keyword: SDPA's fifth argument is dropout_p
            out = fn(q, k, v, attn_mask=mask, scale=qs[-1] ** -0.5)
            if train:
                out.backward(grad)

    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        call(fn)
    for _ in range(reps):
        for key, fn in fns.items():
            start = time.perf_counter()
            call(fn)
            times[key].append(time.perf_counter() - start)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The options; argparse's exit 2 with a message for a bad one."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=25)
    p.add_argument("--only", nargs="+", choices=SPECS, default=list(SPECS))
    args = p.parse_args(argv)
    if args.threads < 1 or args.reps < 1:
        p.error("--threads and --reps take a whole number >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    print("| spec | mode | q | k | mask | calls | SDPA | plain | SDPA / plain | taken |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.only:
        for train in (False, True):
            total = {"sdpa": 0.0, "plain": 0.0, "taken": 0.0}
            for case, calls in shapes(name, train).items():
                t = timed(case, train, args.reps)
                qs, ks, ms, learned = case
                q, k = torch.empty(qs, requires_grad=train), torch.empty(ks)
                m = None if ms is None else torch.empty(ms, requires_grad=train and learned)
                with torch.set_grad_enabled(train):
                    plain = kernels._short_attention(q, k, k, m)
                mask = "-" if ms is None else ("learned" if learned else "fixed")
                mode = "train" if train else "eval"
                print(
                    f"| {name} | {mode} | {'x'.join(map(str, qs))} | {'x'.join(map(str, ks))} "
                    f"| {mask} | {calls} | {t['sdpa']:.3f} ms | {t['plain']:.3f} ms "
                    f"| {t['sdpa'] / t['plain']:.2f}x | {'plain' if plain else 'SDPA'} |",
                    flush=True,
                )
                total["sdpa"] += calls * t["sdpa"]
                total["plain"] += calls * t["plain"]
                total["taken"] += calls * t["plain" if plain else "sdpa"]
            print(
                f"| {name} | {'train' if train else 'eval'} | all | | | | {total['sdpa']:.1f} ms "
                f"| {total['plain']:.1f} ms | | {total['taken']:.1f} ms |",
                flush=True,
            )


if __name__ == "__main__":
    main()
