"""The differential test's PVTv2 generator: random timm `PyramidVisionTransformerV2`
configurations (depths, widths, heads, spatial reductions, MLP ratios, the linear variant, qkv
bias), each written as .mv text. Run by tests/differential.py (family `pvt`)."""

from __future__ import annotations

import random
from typing import Any

import torch
from differential import Case, _perturb


def draw_pvt(rng: random.Random) -> dict[str, Any]:
    """A random timm PVTv2: 1 to 4 stages, each reduction dividing its stage's grid (timm
    floors where one does not: the language reports it, E302)."""
    stages = rng.randint(1, 4)
    last = rng.choice([1, 2, 3, 4])
    grids = [last * 2 ** (stages - 1 - i) for i in range(stages)]
    heads = [rng.choice([1, 2, 4]) for _ in range(stages)]
    dims = [h * rng.choice([4, 8, 12]) for h in heads]
    return dict(
        img_size=grids[0] * 4,
        depths=tuple(rng.randint(1, 3) for _ in range(stages)),
        embed_dims=tuple(dims),
        num_heads=tuple(heads),
        sr_ratios=tuple(rng.choice([d for d in (1, 2, 4, 8) if g % d == 0]) for g in grids),
        mlp_ratios=tuple(rng.choice([1.0, 2.0, 4.0, 8.0]) for _ in range(stages)),
        qkv_bias=rng.random() < 0.7,
        linear=rng.random() < 0.3,
        num_classes=rng.randint(1, 7),
    )


def pvt_spec(cfg: dict[str, Any]) -> str:
    """A timm PVTv2 config as a spec: one row per stage with its reduction and MLP ratio."""
    rows = []
    for i, (depth, dim, heads) in enumerate(
        zip(cfg["depths"], cfg["embed_dims"], cfg["num_heads"])
    ):
        stride = "2x2" if i else "1x1"
        cells = f"reduce={cfg['sr_ratios'][i]} mlp_ratio={cfg['mlp_ratios'][i]:g}"
        rows.append(f"    s{i}  {depth}  {dim}  {heads}  {stride}  {cells}")
    size = cfg["img_size"]
    return "\n".join(
        [
            "model pvt_random {",
            f"  input      image 3x{size}x{size}",
            f"  patch      conv 7x7 stride 4x4 pad 3x3 -> {cfg['embed_dims'][0]}, norm on",
            "  tokens     no_cls, position none",
            "  attention  pool_kv off, dim_change embed, mlp_conv on, stage_norm on,",
            f"             qkv_bias {'on' if cfg['qkv_bias'] else 'off'},"
            f" reduce_mode {'linear' if cfg['linear'] else 'conv'}",
            "  stages {",
            *rows,
            "  }",
            f"  head       no_norm, mean, classes {cfg['num_classes']}",
            "  norm       eps 1e-6, pool_eps 1e-5",
            "}",
            "",
        ]
    )


def pvt_case(seed: int) -> Case:
    from timm.models.pvt_v2 import PyramidVisionTransformerV2

    cfg = draw_pvt(random.Random(seed))
    case = Case("pvt", seed, dialect="timm", note={"cfg": cfg})
    torch.manual_seed(seed)
    made = {k: v for k, v in cfg.items() if k != "img_size"}
    case.ref = _perturb(PyramidVisionTransformerV2(**made), seed)
    case.x = torch.randn(2, 3, cfg["img_size"], cfg["img_size"])
    case.write = lambda: pvt_spec(cfg)
    return case
