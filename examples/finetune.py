"""Fine-tune from a checkpoint: other classes, another clip length, layer-wise lr decay.

    .venv/bin/python examples/finetune.py examples/tiny.mv --frames 8 --classes 5
    .venv/bin/python examples/finetune.py specs/mvit_b.mv \\
        --weights torchvision:MViT_V1_B_Weights.KINETICS400_V1 --frames 32 --classes 174
    .venv/bin/torchrun --nproc_per_node 2 examples/finetune.py examples/tiny.mv --out runs/ft

Without --weights a "pretrained" checkpoint is made first (the spec at its own size, random
weights, saved to a file), so the example runs anywhere. `build(weights=, input=, classes=)`
converts and loads it strictly, resizing the position tables to the new clip length and putting
a fresh classifier on top; the load report says which tensor went where. The optimizer takes
mvitdsl's parameter groups: no weight decay on positions, norms and biases, and a learning rate
scaled by `layer_decay ** (depth - layer)` per block.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

import mvitdsl
from mvitdsl.backend.finetune import param_groups


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("spec", type=Path)
    p.add_argument("--weights", default=None, help="checkpoint file or torchvision:ENUM.NAME")
    p.add_argument("--source", default=None, choices=("torchvision", "slowfast", "timm"))
    p.add_argument("--classes", type=int, default=5)
    p.add_argument("--frames", type=int, default=None, help="new clip length (video specs)")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--clips", type=int, default=8, help="synthetic clips per rank")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--layer-decay", type=float, default=0.75)
    p.add_argument("--weight-decay", type=float, default=0.05)
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


def pretrained_checkpoint(spec: mvitdsl.Spec, folder: Path) -> Path:
    """Stand-in for a published checkpoint: the spec at its own size, saved as a .pt file."""
    torch.manual_seed(1234)
    path = folder / f"{spec.name}_pretrained.pt"
    torch.save(mvitdsl.build(spec).state_dict(), path)
    return path


def input_size(spec: mvitdsl.Spec, frames: int | None) -> tuple[int, ...]:
    from mvitdsl.backend.export import input_shape

    size = input_shape(spec.model)
    if frames is not None and spec.model.input.kind == "video":
        size = (size[0], frames, *size[2:])
    return size


def main() -> None:
    args = parse_args()
    rank, world, device = setup()
    spec = mvitdsl.load_spec(args.spec)
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights or str(pretrained_checkpoint(spec, Path(tmp)))
        torch.manual_seed(args.seed)  # the same new classifier on every rank
        size = input_size(spec, args.frames)
        gm = mvitdsl.build(
            spec, input=size, weights=weights, source=args.source, classes=args.classes
        )
    if rank == 0:
        print(gm.load_report.render(), flush=True)
    gm = gm.to(device)
    groups = param_groups(
        gm, lr=args.lr, weight_decay=args.weight_decay, layer_decay=args.layer_decay
    )
    opt = torch.optim.AdamW(groups)
    model: nn.Module = nn.parallel.DistributedDataParallel(gm) if world > 1 else gm
    g = torch.Generator().manual_seed(1000 + rank)
    x = torch.randn(args.clips, *size, generator=g).to(device)
    y = torch.randint(0, args.classes, (args.clips,), generator=g).to(device)
    losses = []
    for step in range(args.steps):
        idx = torch.arange(step * args.batch, (step + 1) * args.batch) % args.clips
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = loss.detach().clone()
        if world > 1:
            dist.all_reduce(value)
            value /= world
        losses.append(float(value))
        if rank == 0:
            print(f"step {step:3d}  loss {losses[-1]:.4f}", flush=True)
    result = {
        "rank": rank,
        "world": world,
        "losses": losses,
        "input": list(size),
        "resized": [e.name for e in gm.load_report.of("resized")],
    }
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
