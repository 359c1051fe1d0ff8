"""Multi-scale features into a feature pyramid and a small segmentation head.

    .venv/bin/python examples/dense.py examples/tiny_image.mv --steps 30
    .venv/bin/torchrun --nproc_per_node 2 examples/dense.py examples/tiny_image.mv --out runs/seg

`build(spec, features=[...], feature_norm=True)` returns an ordered dict of (B, C, H, W) maps,
one per stage, and `gm.feature_info` their channels and strides: exactly what
`torchvision.ops.FeaturePyramidNetwork` takes. A 3x3 conv on the pyramid levels summed at the
finest level's size, upsampled to the input, predicts a class per pixel; it learns synthetic
masks (bright rectangles, one class per colour channel). Video specs give (B, C, T, H, W) maps;
fold T into the batch first.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
from collections import OrderedDict
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torchvision.ops import FeaturePyramidNetwork

import mvitdsl


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("spec", type=Path)
    p.add_argument("--features", nargs="*", default=None, help="stages (default: all)")
    p.add_argument("--weights", default=None, help="backbone checkpoint (head ignored)")
    p.add_argument("--classes", type=int, default=3, help="mask classes, background included")
    p.add_argument("--channels", type=int, default=32, help="pyramid width")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--images", type=int, default=8, help="synthetic images per rank")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    return p.parse_args()


def setup() -> tuple[int, int, torch.device]:
    """Join the process group when launched by torchrun; gloo on CPU, nccl on CUDA."""
    if "WORLD_SIZE" not in os.environ:
        return 0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    return dist.get_rank(), dist.get_world_size(), torch.device("cuda" if cuda else "cpu")


class Segmenter(nn.Module):
    """MViT features -> FPN -> per-pixel logits at the input size."""

    def __init__(self, backbone: nn.Module, channels: int, classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        info = backbone.feature_info
        self.fpn = FeaturePyramidNetwork([i["num_chs"] for i in info], channels)
        self.head = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.GELU(), nn.Conv2d(channels, classes, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels = list(self.fpn(OrderedDict(self.backbone(x))).values())
        size = levels[0].shape[-2:]  # every level, upsampled to the finest, summed
        fused = sum(nn.functional.interpolate(p, size=size, mode="bilinear") for p in levels)
        logits = self.head(fused)
        return nn.functional.interpolate(logits, size=x.shape[-2:], mode="bilinear")


def synthetic(n: int, size: tuple[int, int, int], classes: int, rank: int):
    """Images with a bright rectangle per foreground class (in that class's colour channel) and
    their masks; different per rank."""
    g = torch.Generator().manual_seed(1000 + rank)
    c, h, w = size
    x = 0.1 * torch.randn(n, c, h, w, generator=g)
    y = torch.zeros(n, h, w, dtype=torch.long)
    for i in range(n):
        for k in range(1, classes):
            y0, x0 = (int(v) for v in torch.randint(0, h // 2, (2,), generator=g))
            hh, ww = (int(v) for v in torch.randint(h // 4, h // 2, (2,), generator=g))
            y[i, y0 : y0 + hh, x0 : x0 + ww] = k
            x[i, (k - 1) % c, y0 : y0 + hh, x0 : x0 + ww] += 1.0
    return x, y


def main() -> None:
    args = parse_args()
    rank, world, device = setup()
    spec = mvitdsl.load_spec(args.spec)
    if spec.model.input.kind != "image":
        raise SystemExit("dense.py trains on images; give an image spec")
    stages = args.features or [s.name for s in spec.model.stages]
    torch.manual_seed(args.seed)  # the same initial weights on every rank
    backbone = mvitdsl.build(spec, features=stages, feature_norm=True, weights=args.weights)
    if rank == 0:
        for info in backbone.feature_info:
            print(f"{info['name']}: {info['num_chs']} channels, stride {info['reduction']}")
    model: nn.Module = Segmenter(backbone, args.channels, args.classes).to(device)
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    c, _, h, w = (spec.model.input.channels, *spec.model.input.size)
    x, y = synthetic(args.images, (c, h, w), args.classes, rank)
    x, y = x.to(device), y.to(device)
    losses = []
    for step in range(args.steps):
        idx = torch.arange(step * args.batch, (step + 1) * args.batch) % args.images
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = loss.detach().clone()
        if world > 1:
            dist.all_reduce(value)
            value /= world
        losses.append(float(value))
        if rank == 0 and (step % 5 == 0 or step == args.steps - 1):
            print(f"step {step:3d}  loss {losses[-1]:.4f}", flush=True)
    result = {"rank": rank, "world": world, "losses": losses}
    if world > 1:
        del model, opt, loss
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"rank{rank}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
