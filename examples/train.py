"""Train any spec on synthetic clips, on one process or many (torch.distributed).

    .venv/bin/python examples/train.py examples/tiny.mv --steps 20
    .venv/bin/torchrun --nproc_per_node 2 examples/train.py examples/tiny.mv --parallel ddp
    .venv/bin/torchrun --nproc_per_node 2 examples/train.py examples/tiny.mv --parallel fsdp \\
        --checkpoint scale3 --out runs/tiny

Each rank draws its own fixed set of clips and labels (seeded by rank) and learns them by heart,
so the loss must go down. DDP replicates the model; FSDP2 `fully_shard`s every block, then the
root. With --out, each rank writes rank{R}.json: the losses (averaged over ranks) and a digest
of the full parameters, so replicas can be compared.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

import mvitdsl


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("spec", type=Path)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=4, help="clips per rank per step")
    p.add_argument("--clips", type=int, default=8, help="synthetic clips per rank")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--parallel", choices=("none", "ddp", "fsdp"), default="ddp")
    p.add_argument("--checkpoint", nargs="*", default=None,
                   help="stages (or block indices) to recompute in backward; empty = all")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (CPU or CUDA)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    return p.parse_args()


def setup() -> tuple[int, int, torch.device]:
    """Join the process group when launched by torchrun; gloo on CPU, nccl on CUDA."""
    if "WORLD_SIZE" not in os.environ:
        return 0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank = dist.get_rank()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    return rank, dist.get_world_size(), torch.device("cuda" if cuda else "cpu")


def checkpoint_selection(values: list[str] | None) -> object:
    if values is None:
        return False
    if not values:
        return True
    return [int(v) if v.isdigit() else v for v in values]


def make_model(args: argparse.Namespace, device: torch.device, world: int) -> nn.Module:
    spec = mvitdsl.load_spec(args.spec)
    torch.manual_seed(args.seed)  # the same initial weights on every rank
    gm = mvitdsl.build(spec, device=device, checkpoint=checkpoint_selection(args.checkpoint))
    if world == 1 or args.parallel == "none":
        return gm
    if args.parallel == "ddp":
        return nn.parallel.DistributedDataParallel(gm)
    from torch.distributed.fsdp import fully_shard

    for block in gm.blocks:
        fully_shard(block)
    fully_shard(gm)
    return gm


def synthetic_clips(spec_path: Path, n: int, rank: int, device: torch.device,
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """n random clips of the spec's input size and n random labels, different per rank."""
    from mvitdsl.backend.export import input_shape

    model = mvitdsl.load_spec(spec_path).model
    g = torch.Generator().manual_seed(1000 + rank)
    x = torch.randn(n, *input_shape(model), generator=g)
    y = torch.randint(0, model.head.classes, (n,), generator=g)
    return x.to(device), y.to(device)


def mean_over_ranks(value: torch.Tensor, world: int) -> float:
    value = value.detach().float().clone()
    if world > 1:
        dist.all_reduce(value)
        value /= world
    return float(value)


def parameter_digest(model: nn.Module) -> str:
    """sha256 of every full parameter (sharded ones gathered), in name order."""
    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        full = p.full_tensor() if hasattr(p, "full_tensor") else p
        h.update(name.encode())
        h.update(full.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def train(args: argparse.Namespace) -> dict[str, object]:
    rank, world, device = setup()
    model = make_model(args, device, world)
    x, y = synthetic_clips(args.spec, args.clips, rank, device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    losses = []
    torch.manual_seed(args.seed + rank)  # drop path differs per rank, as on real data
    for step in range(args.steps):
        idx = torch.arange(step * args.batch, (step + 1) * args.batch) % args.clips
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(mean_over_ranks(loss, world))
        if rank == 0:
            print(f"step {step:4d}  loss {losses[-1]:.4f}", flush=True)
    result = {"rank": rank, "world": world, "parallel": args.parallel, "losses": losses,
              "digest": parameter_digest(model)}
    if world > 1:
        # DDP's reducer holds the process group: free it while the group is alive, and let
        # every rank finish before any closes its connections (else gloo aborted a rank at
        # exit now and then, about 1 run in 12)
        del model, opt, loss
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()
    return result


def main() -> None:
    args = parse_args()
    result = train(args)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"rank{result['rank']}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
