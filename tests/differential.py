"""The differential test's generators: random torchvision `MSBlockConfig` lists and timm
`MultiScaleVitCfg`s, each written as .mv text, built, loaded with the reference's weights
(strictly, through convert_state_dict), and compared on logits and parameter counts.

Every case ends as one outcome: `equal`, `not_expressible` (the language cannot write it; the
reason is kept), `rejected` (the reference itself does not run it: not counted as generated),
`params` (analyze().params differs), `load` (a strict load failed) or `logits` (outputs differ
by more than 1e-4 of the output scale). `python tests/differential.py TV TIMM [SWIN [PVT]]`
draws until TV torchvision, TIMM timm MViT, SWIN timm Swin configs (tests/differential_swin.py)
and PVT timm PVTv2 configs (tests/differential_pvt.py) are generated, prints the counts and
writes them to build/differential_counts.json.
"""

from __future__ import annotations

import json
import random
import sys
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import mvitdsl
from mvitdsl.backend.weights import convert_state_dict

COUNTS_FILE = Path(__file__).resolve().parent.parent / "build" / "differential_counts.json"


class NotExpressible(Exception):
    """The drawn config has no spelling in the language (the reason is the message)."""


@dataclass
class Case:
    """One drawn architecture: the reference, the spec text, and an input."""

    family: str
    seed: int
    ref: torch.nn.Module | None = None
    text: str = ""
    x: torch.Tensor | None = None
    dialect: str = "torchvision"
    note: dict[str, Any] = field(default_factory=dict)
    write: Any = None  # () -> the spec text, or NotExpressible


def _x(values: Any) -> str:
    return "x".join(str(int(v)) for v in values)


def _perturb(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random values in every tensor (norms, biases, positions), so a swapped name shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model.eval()


# ---------------------------------------------------------------- torchvision


def draw_torchvision(rng: random.Random) -> dict[str, Any]:
    """A random torchvision MViT: per-block MSBlockConfig fields and the model-level flags."""
    patch = rng.choice(
        [
            ((3, 7, 7), (2, 4, 4), (1, 3, 3)),
            ((1, 4, 4), (1, 4, 4), (0, 0, 0)),
            ((3, 3, 3), (1, 2, 2), (1, 1, 1)),
            ((2, 4, 4), (2, 4, 4), (0, 0, 0)),
        ]
    )
    temporal, spatial = rng.choice([4, 2]), rng.choice([(32, 32), (32, 16), (16, 32), (16, 16)])
    grid = [temporal // patch[1][0], spatial[0] // patch[1][1], spatial[1] // patch[1][2]]
    blocks = []
    dim = rng.choice([4, 8, 12])
    for _ in range(rng.randint(2, 5)):  # torchvision divides by (blocks - 1)
        heads = rng.choice([h for h in (1, 2, 4) if dim % h == 0])
        out = rng.choice([dim, dim, 2 * dim, dim + 4]) if dim < 32 else dim
        stride_q = [2 if g % 2 == 0 and g > 1 and rng.random() < 0.3 else 1 for g in grid]
        grid = [g // s for g, s in zip(grid, stride_q)]
        blocks.append(
            dict(
                num_heads=heads,
                input_channels=dim,
                output_channels=out,
                kernel_q=[rng.choice([1, 3, 3, 5]) for _ in range(3)],
                kernel_kv=[rng.choice([1, 3, 3, 5, 2]) for _ in range(3)],
                stride_q=stride_q,
                stride_kv=[rng.choice([1, 1, 2, 4]) for _ in range(3)],
            )
        )
        dim = out
    residual_pool = rng.random() < 0.5
    return dict(
        spatial_size=spatial,
        temporal_size=temporal,
        blocks=blocks,
        residual_pool=residual_pool,
        residual_with_cls_embed=rng.random() < 0.5,
        rel_pos_embed=rng.random() < 0.5,
        proj_after_attn=rng.random() < 0.5,
        num_classes=rng.randint(1, 7),
        patch_embed_kernel=patch[0],
        patch_embed_stride=patch[1],
        patch_embed_padding=patch[2],
    )


def torchvision_spec(cfg: dict[str, Any]) -> str:
    """A torchvision config as a spec: one stage per block, per-block kernels as cells."""
    blocks = cfg["blocks"]
    v2 = cfg["proj_after_attn"]
    rows = []
    for i, b in enumerate(blocks):
        cells = f"kernel_q={_x(b['kernel_q'])} kernel_kv={_x(b['kernel_kv'])}"
        dim = b["output_channels"] if v2 else b["input_channels"]
        if not v2 and i == len(blocks) - 1:
            cells += f" dim_out={b['output_channels']}"
        rows.append(
            f"    b{i}  1  {dim}  {b['num_heads']}  {_x(b['stride_q'])}  "
            f"{_x(b['stride_kv'])}  {cells}"
        )
    residual = "none"
    if cfg["residual_pool"]:
        residual = "all" if cfg["residual_with_cls_embed"] else "tokens"
    t, (h, w) = cfg["temporal_size"], cfg["spatial_size"]
    return "\n".join(
        [
            "model tv_random {",
            f"  input      video 3x{t}x{h}x{w}",
            f"  patch      conv {_x(cfg['patch_embed_kernel'])}"
            f" stride {_x(cfg['patch_embed_stride'])}"
            f" pad {_x(cfg['patch_embed_padding'])} -> {blocks[0]['input_channels']}",
            f"  tokens     cls, position {'none' if cfg['rel_pos_embed'] else 'separable'}",
            "  attention  pool conv, pool_q_blocks all,"
            f" dim_change {'attention' if v2 else 'mlp'},",
            f"             rel_pos {'decomposed' if cfg['rel_pos_embed'] else 'none'},"
            f" residual_pool {residual}",
            "  stages {",
            *rows,
            "  }",
            f"  head       norm, cls, classes {cfg['num_classes']}",
            "}",
            "",
        ]
    )


def torchvision_case(seed: int) -> Case:
    from torchvision.models.video.mvit import MSBlockConfig, MViT

    cfg = draw_torchvision(random.Random(seed))
    case = Case("torchvision", seed, note={"cfg": cfg})
    case.write = lambda: torchvision_spec(cfg)
    torch.manual_seed(seed)
    kwargs = {k: v for k, v in cfg.items() if k != "blocks"}
    case.ref = _perturb(
        MViT(block_setting=[MSBlockConfig(**b) for b in cfg["blocks"]], **kwargs), seed
    )
    case.x = torch.randn(2, 3, cfg["temporal_size"], *cfg["spatial_size"])
    return case


# ---------------------------------------------------------------- timm


def draw_timm(rng: random.Random) -> dict[str, Any]:
    """A random timm MultiScaleVitCfg (every field its class runs with) plus the model's
    image size, classes and global pool."""
    n = rng.randint(1, 4)
    rel_pos = rng.choice(["spatial", "none"])  # timm's rel-pos needs square grids
    strides = [(2, 2), (2, 2), (1, 1)] + ([] if rel_pos == "spatial" else [(1, 2), (2, 1)])
    patch = rng.choice(
        [
            ((4, 4), (4, 4), (0, 0)),
            ((7, 7), (4, 4), (3, 3)),
            ((3, 3), (2, 2), (1, 1)),
            ((2, 2), (2, 2), (0, 0)),
        ]
    )
    size = rng.choice([32, 16]) if patch[1][0] == 2 else 32
    grid = size // patch[1][0]
    stride_q = []
    for i in range(n):
        s = (1, 1)
        if i and grid > 1:
            s = rng.choice(strides)
        stride_q.append(s)
        grid //= max(s)
    embed = rng.choice([4, 8])
    heads = rng.choice([1, 2])
    per_stage = rng.random() < 0.3
    use_cls = rng.random() < 0.5
    adaptive = rng.random() < 0.6
    cfg: dict[str, Any] = dict(
        depths=tuple(rng.randint(1, 2) for _ in range(n)),
        embed_dim=(tuple(rng.choice([4, 8, 12, 16]) for _ in range(n)) if per_stage else embed),
        num_heads=(tuple(rng.choice([1, 2, 4]) for _ in range(n)) if per_stage else heads),
        mlp_ratio=rng.choice([4.0, 2.0, 1.5, 3.0]),
        pool_first=rng.random() < 0.1,  # timm's pool-first attention fails (k untransposed)
        expand_attn=rng.random() < 0.5,
        qkv_bias=rng.random() < 0.7,
        use_cls_token=use_cls,
        use_abs_pos=rng.random() < 0.5,
        residual_pooling=rng.random() < 0.5,
        mode=rng.choice(["conv", "conv", "avg", "max", "conv_unshared"]),
        kernel_qkv=rng.choice([(3, 3), (1, 1), (3, 1), (5, 5), (1, 3)]),
        stride_q=tuple(stride_q),
        stride_kv=None,
        stride_kv_adaptive=(rng.choice([(4, 4), (2, 2), (1, 1), (2, 4)]) if adaptive else None),
        patch_kernel=patch[0],
        patch_stride=patch[1],
        patch_padding=patch[2],
        rel_pos_type=rel_pos,
        norm_eps=rng.choice([1e-6, 1e-5]),
    )
    if not adaptive:
        kv = [(1, 1), (2, 2)] + ([] if rel_pos == "spatial" else [(1, 2)])
        cfg["stride_kv"] = tuple(rng.choice(kv) for _ in range(n))
    if per_stage:  # divisible widths
        cfg["embed_dim"] = tuple(d * h for d, h in zip(cfg["embed_dim"], cfg["num_heads"]))
    pool = rng.choice(["avg", "token"]) if use_cls else "avg"
    return dict(cfg=cfg, img_size=size, num_classes=rng.randint(1, 7), global_pool=pool)


def timm_spec(draw: dict[str, Any], resolved: Any) -> str:
    """A timm config (`resolved`: its MultiScaleVitCfg after __post_init__) as a spec."""
    c = resolved
    # timm's conv_unshared runs only with one head (its per-channel conv and norm are sized
    # for all heads' channels but applied per head), where it is the shared conv
    mode = "conv" if c.mode == "conv_unshared" else c.mode
    if c.pool_first:
        raise NotExpressible("pool_first (pooling before separate q/k/v projections)")
    # stage i runs at embed_dim[i] either way: `expand_attn` changes width in its first block
    # (attention), else timm's stage i-1 changes to it in its last block's MLP
    rows = [
        f"    s{i}  {c.depths[i]}  {c.embed_dim[i]}  {c.num_heads[i]}  {_x(c.stride_q[i])}"
        f"  {_x(c.stride_kv[i])}"
        for i in range(len(c.depths))
    ]
    residual = "all" if c.residual_pooling else "none"
    k = _x(c.kernel_qkv)
    head_pool = "cls" if draw["global_pool"] == "token" else "mean"
    position = "joint" if c.use_abs_pos else "none"
    return "\n".join(
        [
            "model timm_random {",
            f"  input      image 3x{draw['img_size']}x{draw['img_size']}",
            f"  patch      conv {_x(c.patch_kernel)} stride {_x(c.patch_stride)}"
            f" pad {_x(c.patch_padding)} -> {c.embed_dim[0]}",
            f"  tokens     {'cls' if c.use_cls_token else 'no_cls'}, position {position}",
            f"  attention  pool {mode} {k}, pool_q_blocks all,"
            f" dim_change {'attention' if c.expand_attn else 'mlp'},",
            f"             rel_pos {'decomposed' if c.rel_pos_type == 'spatial' else 'none'},"
            f" residual_pool {residual}, mlp_ratio {c.mlp_ratio:g},"
            f" qkv_bias {'on' if c.qkv_bias else 'off'}",
            f"  norm       eps {c.norm_eps:g}",
            "  stages {",
            *rows,
            "  }",
            f"  head       norm, {head_pool}, classes {draw['num_classes']}",
            "}",
            "",
        ]
    )


def timm_case(seed: int) -> Case:
    from timm.models.mvitv2 import MultiScaleVit, MultiScaleVitCfg

    draw = draw_timm(random.Random(seed))
    case = Case("timm", seed, dialect="timm", note={"cfg": draw})
    cfg = MultiScaleVitCfg(**draw["cfg"])
    torch.manual_seed(seed)
    case.ref = _perturb(
        MultiScaleVit(
            cfg,
            img_size=(draw["img_size"],) * 2,
            num_classes=draw["num_classes"],
            global_pool=draw["global_pool"],
        ),
        seed,
    )
    case.x = torch.randn(2, 3, draw["img_size"], draw["img_size"])
    case.write = lambda: timm_spec(draw, cfg)
    return case


# ---------------------------------------------------------------- running


def swin_case(seed: int) -> Case:
    from differential_swin import swin_case as made

    return made(seed)


def pvt_case(seed: int) -> Case:
    from differential_pvt import pvt_case as made

    return made(seed)


MAKERS = {
    "torchvision": torchvision_case,
    "timm": timm_case,
    "swin": swin_case,
    "pvt": pvt_case,
}


def run(family: str, seed: int) -> tuple[str, str]:
    """(outcome, detail) for one drawn config."""
    try:
        case = MAKERS[family](seed)
        assert case.ref is not None and case.x is not None
        with torch.no_grad():
            want = case.ref(case.x)
    except Exception as e:  # the reference does not run this config
        return "rejected", f"{type(e).__name__}: {e}"
    try:
        case.text = case.write()
    except NotExpressible as e:
        return "not_expressible", str(e)
    try:
        spec = mvitdsl.load_spec(text=case.text)
    except mvitdsl.SpecError as e:
        return "not_expressible", e.render() if hasattr(e, "render") else str(e)
    params = sum(p.numel() for p in case.ref.parameters())
    if mvitdsl.analyze(spec).params != params:
        return "params", f"{mvitdsl.analyze(spec).params} != {params}\n{case.text}"
    gm = mvitdsl.build(spec).eval()
    try:
        state = convert_state_dict(case.ref.state_dict(), case.dialect, spec=spec)  # type: ignore[arg-type]
        gm.load_state_dict(state, strict=True)
    except Exception as e:
        return "load", f"{e}\n{case.text}"
    with torch.no_grad():
        got = gm(case.x)
    scale = float(want.abs().max())
    diff = float((got - want).abs().max()) if got.shape == want.shape else float("inf")
    if diff > 1e-4 * max(scale, 1e-3):
        return "logits", f"max diff {diff:.3g} (scale {scale:.3g})\n{case.text}"
    return "equal", ""


@dataclass
class Counts:
    """generated / expressible / equal for one family, and the first failures by outcome."""

    family: str
    outcomes: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, seed: int, outcome: str, detail: str) -> None:
        self.outcomes[outcome] += 1
        if outcome != "equal":
            self.examples.setdefault(outcome, [])
            if len(self.examples[outcome]) < 3:
                self.examples[outcome].append(f"seed {seed}: {detail}")

    @property
    def generated(self) -> int:
        return sum(v for k, v in self.outcomes.items() if k != "rejected")

    @property
    def expressible(self) -> int:
        return self.generated - self.outcomes["not_expressible"]

    @property
    def equal(self) -> int:
        return self.outcomes["equal"]

    def line(self) -> str:
        return (
            f"{self.family}: generated {self.generated}, expressible {self.expressible}, "
            f"equal {self.equal} (reference rejected {self.outcomes['rejected']}; "
            f"{dict(self.outcomes)})"
        )


def count(family: str, n: int, start: int = 0, progress: bool = False) -> Counts:
    """Draw seeds from `start` until `n` configs the reference runs were generated (draws the
    reference itself rejects do not count; at most 3n draws)."""
    out = Counts(family)
    seed = start
    while out.generated < n and seed < start + 3 * n:
        try:
            outcome, detail = run(family, seed)
        except Exception:
            outcome, detail = "crash", traceback.format_exc()
        out.add(seed, outcome, detail)
        seed += 1
        if progress and outcome != "rejected" and out.generated % 50 == 0:
            print(out.line(), flush=True)
    return out


def write_counts(results: list[Counts]) -> None:
    COUNTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(COUNTS_FILE.read_text()) if COUNTS_FILE.exists() else {}
    data |= {
        r.family: {
            "generated": r.generated,
            "expressible": r.expressible,
            "equal": r.equal,
            "outcomes": dict(r.outcomes),
        }
        for r in results
    }
    COUNTS_FILE.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    torch.set_num_threads(1)
    args = (*sys.argv[1:5], "0", "0")[:4] if len(sys.argv) > 2 else ("20", "20", "20", "20")
    tv, tm, sw, pv = (int(a) for a in args)
    wanted = (("torchvision", tv), ("timm", tm), ("swin", sw), ("pvt", pv))
    results = [count(f, n, progress=True) for f, n in wanted if n]
    for r in results:
        print(r.line())
        for outcome, examples in r.examples.items():
            if outcome != "rejected":
                for e in examples:
                    print(f"  [{outcome}] {e}")
    write_counts(results)
