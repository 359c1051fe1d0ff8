"""The differential test's Swin generator: random timm `SwinTransformer` configurations (depths,
widths, heads, windows, patch sizes, MLP ratios, qkv bias), each written as .mv text. Run by
tests/differential.py (family `swin`)."""

from __future__ import annotations

import random
from typing import Any

import torch
from differential import Case, _perturb


def draw_swin(rng: random.Random) -> dict[str, Any]:
    """A random timm Swin: grids that the window divides at every stage, or (a last grid of
    window + 1) grids padded to whole windows, as both pad; windows clamped to small late grids
    as timm does (there written as the stage's `window=` cell)."""
    stages = rng.randint(1, 3)
    window = rng.choice([2, 3, 4])
    patch = rng.choice([2, 4])
    # the last stage's grid: every larger grid before it a multiple of the window
    last = rng.choice(
        [window, 2 * window, window + 1] + ([window // 2] if window in (2, 4) else [])
    )
    grid = last * 2 ** (stages - 1)
    heads = tuple(rng.choice([1, 2, 4]) for _ in range(stages))
    return dict(
        img_size=grid * patch,
        patch_size=patch,
        window_size=window,
        embed_dim=rng.choice([8, 12, 16]),  # timm doubles it per stage (an int only)
        depths=tuple(rng.randint(1, 3) for _ in range(stages)),
        num_heads=heads,
        mlp_ratio=rng.choice([4.0, 2.0, 1.5]),
        qkv_bias=rng.random() < 0.7,
        num_classes=rng.randint(1, 7),
    )


def swin_spec(cfg: dict[str, Any]) -> str:
    """A timm Swin config as a spec: one row per stage, the window cell where the grid is
    smaller than the window."""
    grid, w, rows = cfg["img_size"] // cfg["patch_size"], cfg["window_size"], []
    dims = [cfg["embed_dim"] * 2**i for i in range(len(cfg["depths"]))]
    for i, (depth, dim, heads) in enumerate(zip(cfg["depths"], dims, cfg["num_heads"])):
        grid //= 2 if i else 1
        cell = f"  window={grid}x{grid}" if grid < w else ""
        stride = "2x2" if i else "1x1"
        rows.append(f"    s{i}  {depth}  {dim}  {heads}  {stride}{cell}")
    p = cfg["patch_size"]
    return "\n".join(
        [
            "model swin_random {",
            f"  input      image 3x{cfg['img_size']}x{cfg['img_size']}",
            f"  patch      conv {p}x{p} stride {p}x{p} -> {dims[0]}, norm on",
            "  tokens     no_cls, position none",
            f"  attention  pool_kv off, dim_change merge, mlp_ratio {cfg['mlp_ratio']:g},",
            f"             qkv_bias {'on' if cfg['qkv_bias'] else 'off'}, scope window,",
            f"             window {w}x{w}, shift alternate, rel_pos table",
            "  stages {",
            *rows,
            "  }",
            f"  head       norm, mean, classes {cfg['num_classes']}",
            "  norm       eps 1e-5",
            "}",
            "",
        ]
    )


def swin_case(seed: int) -> Case:
    from timm.models.swin_transformer import SwinTransformer

    cfg = draw_swin(random.Random(seed))
    case = Case("swin", seed, dialect="timm", note={"cfg": cfg})
    torch.manual_seed(seed)
    case.ref = _perturb(SwinTransformer(**cfg), seed)
    case.x = torch.randn(2, 3, cfg["img_size"], cfg["img_size"])
    case.write = lambda: swin_spec(cfg)
    return case
