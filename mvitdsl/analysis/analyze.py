"""Per-stage and per-block shapes, parameters and multiply-adds, computed from the spec alone.

Two MAC conventions, both in multiply-adds: "matmul" counts conv, linear and matmul (torch's
FlopCounterMode total / 2, torchvision's documented GFLOPS); "fvcore" adds LayerNorm at 5 per
element (SlowFast logs, timm benchmarks). Never imports torch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from math import prod
from typing import Any, Protocol

from ..ir import Block, Dims3, Model
from . import naming, shapes
from .graph import BlockFlow, blocks_in_order, build_graph


class Checked(Protocol):
    """A checked spec (mvitdsl.spec.Spec): its model, and the report the checks already made."""

    @property
    def model(self) -> Model: ...
    @property
    def report(self) -> Report | None: ...


DTYPE_BYTES = {"fp32": 4, "float32": 4, "bf16": 2, "bfloat16": 2, "fp16": 2, "float16": 2}


@dataclass(frozen=True)
class Costs:
    """Parameters and multiply-adds of one part of the model, split by kind of work."""

    params: int = 0
    attn_macs: int = 0  # qkv, attention matmuls, relative positions, output projection
    mlp_macs: int = 0  # MLP and the residual projection
    pool_macs: int = 0  # Q/K/V conv pooling
    other_macs: int = 0  # stem and head
    norm_elems: int = 0  # elements normalised by LayerNorm (fvcore counts 5 per element)

    @property
    def macs(self) -> int:
        return self.attn_macs + self.mlp_macs + self.pool_macs + self.other_macs

    @property
    def macs_fvcore(self) -> int:
        return self.macs + 5 * self.norm_elems

    @property
    def share(self) -> dict[str, float]:
        """Fractions of the matmul-only MACs: attention, MLP, pooling, stem and head."""
        total = self.macs or 1
        return {
            "attention": self.attn_macs / total,
            "mlp": self.mlp_macs / total,
            "pooling": self.pool_macs / total,
            "stem_head": self.other_macs / total,
        }

    def __add__(self, other: Costs) -> Costs:
        return Costs(*(a + b for a, b in zip(_fields(self), _fields(other))))


def _fields(c: Costs) -> tuple[int, ...]:
    return (c.params, c.attn_macs, c.mlp_macs, c.pool_macs, c.other_macs, c.norm_elems)


@dataclass(frozen=True)
class BlockRow:
    """One block as it really runs: what it takes, what it emits, what it costs."""

    index: int
    stage: str
    dim_in: int
    dim_attn: int
    dim_out: int
    heads: int
    head_dim: int
    grid_in: Dims3
    grid_q: Dims3
    grid_kv: Dims3
    len_q: int
    len_kv: int
    len_q_no_cls: int
    attention: tuple[int, int]  # the L_Q x L_K attention matrix per head
    params: int
    macs: int
    macs_fvcore: int
    costs: Costs
    activation_bytes: int
    len_in: int = 0  # tokens in, cls included
    len_kv_no_cls: int = 0
    share: dict[str, float] = field(default_factory=dict)
    scope: str = "global"  # "global", or "mask_unit" (windows), "+lag" when the previous stage's
    windows: int = 1  # attention windows; `attention` is then one window's L_Q x L_K
    window_q: Dims3 | None = None
    window_kv: Dims3 | None = None


@dataclass(frozen=True)
class StageRow:
    """One row of the paper's Table 2: a stage at its working width and output grid."""

    name: str
    operators: str
    grid: Dims3
    dim: int
    blocks: int
    heads: int
    params: int
    macs: int
    macs_fvcore: int
    head_dim: int = 0
    tokens: int = 0  # sequence length at the stage's output grid, cls included
    tokens_no_cls: int = 0
    grid_kv: Dims3 = (0, 0, 0)  # K/V grid of the stage's later blocks (the first sees 2x)
    attention: tuple[int, int] = (0, 0)  # L_Q x L_K per head in the stage's later blocks
    activation_bytes: int = 0
    share: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    """Everything known about a model before it is built."""

    name: str
    input_size: tuple[int, ...]  # (C, T, H, W); T = 1 for images
    stages: tuple[StageRow, ...]
    blocks: tuple[BlockRow, ...]
    totals: Costs
    stem: Costs
    head: Costs
    model: Model
    batch: int = 1
    dtype: str = "fp32"
    activation_bytes: int = 0
    outputs: list[dict[str, Any]] = field(default_factory=list)  # feature maps (`outputs`)
    feature_params: int | None = None  # the feature model's parameters, with `outputs`

    @property
    def params(self) -> int:
        return self.totals.params

    @property
    def macs(self) -> int:
        """Multiply-adds, matmul-only convention (FlopCounterMode total / 2)."""
        return self.totals.macs

    @property
    def macs_fvcore(self) -> int:
        """Multiply-adds, fvcore convention (LayerNorm counted at 5 per element)."""
        return self.totals.macs_fvcore

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON data, in the one vocabulary of every JSON output (GLOSSARY):
        `params`, `gmacs`, `gmacs_fvcore`, `activation_gib`, beside the exact integers."""
        data = asdict(self)
        data["model"] = self.model.name
        data["params"], data["macs"], data["macs_fvcore"] = self.params, self.macs, self.macs_fvcore
        data["share"] = self.totals.share
        for row in (data, *data["stages"], *data["blocks"]):
            with_units(row)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def with_units(row: dict[str, Any]) -> dict[str, Any]:
    """Add `gmacs`, `gmacs_fvcore` and `activation_gib` beside the exact counts of a JSON row."""
    if "macs" in row:
        row["gmacs"] = round(row["macs"] / 1e9, 6)
    if "macs_fvcore" in row:
        row["gmacs_fvcore"] = round(row["macs_fvcore"] / 1e9, 6)
    if "activation_bytes" in row:
        row["activation_gib"] = round(row["activation_bytes"] / 2**30, 6)
    return row


# ---------------------------------------------------------------- costs per part


def linear(tokens: int, d_in: int, d_out: int, bias: bool = True) -> tuple[int, int]:
    """(params, MACs) of a Linear applied to `tokens` rows."""
    return d_in * d_out + (d_out if bias else 0), tokens * d_in * d_out


def pool_costs(model: Model, block: Block, flow: BlockFlow) -> Costs:
    hd, heads = block.pool_head_dim, block.heads
    params = macs = norm = 0
    for pool, grid, length, count in (
        (block.pool_q, flow.grid_q, flow.len_q, 1),
        (block.pool_kv, flow.grid_kv, flow.len_kv, 2),
    ):
        if not pool.exists or pool.mode != "conv":
            continue
        params += count * (hd * prod(pool.kernel) + 2 * hd)
        macs += count * heads * prod(grid) * hd * prod(pool.kernel)
        norm += count * heads * length * hd
    return Costs(params=params, pool_macs=macs, norm_elems=norm)


def attention_costs(model: Model, block: Block, flow: BlockFlow) -> Costs:
    a, hd, heads = block.dim_attn, block.head_dim, block.heads
    qkv_p, qkv_m = linear(flow.len_in, block.dim_in, 3 * a, block.qkv_bias)
    if block.pool_first:  # the projections see the pooled tokens
        qkv_m = block.dim_in * a * (flow.len_q + 2 * flow.len_kv)
    proj_p, proj_m = linear(flow.len_q, a, a)
    # each query attends to its window's K/V tokens (all of them when global)
    attended = prod(block.window) if block.window is not None else flow.len_kv
    matmuls = 2 * heads * flow.len_q * attended * hd
    rel_p = rel_m = 0
    if flow.rel_pos is not None:
        rel_p = sum(flow.rel_pos) * hd
        used = sum(n for n, size in zip(flow.grid_kv, flow.rel_pos) if size)
        rel_m = heads * prod(flow.grid_q) * used * hd
    norm = flow.len_in * block.dim_in
    gamma = a if block.layer_scale else 0
    return Costs(
        params=qkv_p + proj_p + rel_p + 2 * block.dim_in + gamma,
        attn_macs=qkv_m + proj_m + matmuls + rel_m,
        norm_elems=norm,
    )


def mlp_costs(model: Model, block: Block, flow: BlockFlow) -> Costs:
    fc1_p, fc1_m = linear(flow.len_q, block.dim_attn, block.mlp_hidden)
    fc2_p, fc2_m = linear(flow.len_q, block.mlp_hidden, block.dim_out)
    proj_p = proj_m = 0
    if block.has_project:
        rows = flow.len_in if model.attention.dim_change == "attention" else flow.len_q
        proj_p, proj_m = linear(rows, block.dim_in, block.dim_out)
    gamma = block.dim_out if block.layer_scale else 0
    return Costs(
        params=fc1_p + fc2_p + proj_p + 2 * block.dim_attn + gamma,
        mlp_macs=fc1_m + fc2_m + proj_m,
        norm_elems=flow.len_q * block.dim_attn,
    )


def block_costs(model: Model, block: Block, flow: BlockFlow) -> Costs:
    return (
        attention_costs(model, block, flow)
        + mlp_costs(model, block, flow)
        + pool_costs(model, block, flow)
    )


def stem_costs(model: Model) -> Costs:
    p, d = model.patch, model.patch.dim
    grid = shapes.patch_grid(model)
    params = model.input.channels * d * prod(p.kernel) + d
    macs = prod(grid) * d * model.input.channels * prod(p.kernel)
    params += sum(prod(shape) for shape in naming.position_shapes(model).values())
    return Costs(params=params, other_macs=macs)


def head_costs(model: Model, grid: Dims3) -> Costs:
    c = model.blocks[-1].dim_out
    fc_p, fc_m = linear(1, c, model.head.classes)
    norm_p = 2 * c if model.head.norm else 0
    normed = shapes.tokens(grid, model.tokens.cls) if model.head.order == "norm_pool" else 1
    norm_e = normed * c if model.head.norm else 0
    return Costs(params=fc_p + norm_p, other_macs=fc_m, norm_elems=norm_e)


# ---------------------------------------------------------------- activation memory


def activation_elems(block: Block, flow: BlockFlow) -> int:
    """Elements a training step keeps for backward in one block (an estimate, per sample):
    inputs of each linear, norm and pooling, the attention matrix, and the MLP hidden."""
    a, h, hd = block.dim_attn, block.heads, block.head_dim
    saved = 2 * flow.len_in * block.dim_in  # block input, norm1 output
    saved += flow.len_in * 3 * a  # qkv
    saved += h * hd * (2 * flow.len_q + 4 * flow.len_kv)  # pooled q, k, v before/after norm
    attended = prod(block.window) if block.window is not None else flow.len_kv
    saved += h * flow.len_q * attended  # attention probabilities (per window when windowed)
    saved += 3 * flow.len_q * a  # attention output, residual sum, norm2 output
    saved += 2 * flow.len_q * block.mlp_hidden  # MLP hidden before and after GELU
    if flow.rel_pos is not None:
        saved += h * flow.len_q * flow.len_kv  # the relative-position logits (the attn mask)
        saved += 3 * h * flow.len_q * hd  # the queries, copied once per einsum over t, h, w
    return saved


# ---------------------------------------------------------------- the report


def operators(model: Model, dim: int, stage: str | None = None) -> str:
    """The paper's operator column; the MLP ratio is the stage's own (a `mlp_ratio=` cell)."""
    ratio = model.attention.mlp_ratio
    first = next((b for b in model.blocks if b.stage == stage), None)
    if first is not None:
        ratio = first.mlp_hidden / first.dim_attn
    return f"MHPA({dim}), MLP({round(dim * ratio)})"


def analyze(spec: Checked | Model, *, batch: int = 1, dtype: str = "fp32") -> Report:
    """Shapes, parameters and MACs per stage and per block; no torch import.

    `batch` (>= 1) and `dtype` ("fp32", "bf16", "fp16") size the activation memory; a bad value
    is a TypeError / ValueError with a message."""
    model = spec if isinstance(spec, Model) else getattr(spec, "model", None)
    if not isinstance(model, Model):
        raise TypeError(f"analyze takes a Spec from load_spec, not {type(spec).__name__}")
    if not isinstance(batch, int) or isinstance(batch, bool):
        raise TypeError(f"batch= must be a whole number, not {batch!r}")
    if not 1 <= batch <= MAX_BATCH:
        raise ValueError(f"batch= must be between 1 and {MAX_BATCH:,}, not {batch}")
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"dtype= must be one of {', '.join(DTYPE_BYTES)}, not {dtype!r}")
    if isinstance(spec, Model):
        return _analyze(spec, batch, dtype)
    made = spec.report  # a checked spec carries the report its budget check made (batch 1, fp32)
    if made is not None and (made.batch, made.dtype) == (batch, dtype):
        return made
    return _analyze(model, batch, dtype)


MAX_BATCH = 1_000_000


def _analyze(model: Model, batch: int, dtype: str) -> Report:
    nbytes = DTYPE_BYTES[dtype]
    rows: list[BlockRow] = []
    stem = total = stem_costs(model)
    grid = shapes.patch_grid(model)
    for block, flow in blocks_in_order(build_graph(model)):
        c = block_costs(model, block, flow)
        total, grid = total + c, flow.grid_out
        rows.append(block_row(block, flow, c, activation_elems(block, flow) * batch * nbytes))
    head = head_costs(model, grid)
    stem_elems = shapes.tokens(shapes.patch_grid(model), model.tokens.cls) * model.patch.dim
    return Report(
        name=model.name,
        input_size=(model.input.channels, *model.input.size),
        stages=tuple(stage_row(model, s, rows) for s in model.stages),
        blocks=tuple(rows),
        totals=total + head,
        stem=stem,
        head=head,
        model=model,
        batch=batch,
        dtype=dtype,
        activation_bytes=sum(r.activation_bytes for r in rows) + 2 * stem_elems * batch * nbytes,
        **_outputs_extra(model, stem, rows),
    )


def _outputs_extra(model: Model, stem: Costs, rows: list[BlockRow]) -> dict[str, Any]:
    """With an `outputs` setting: the maps, and the feature model's parameters (the blocks
    after the last output and the head pruned, a LayerNorm per map with `norm`)."""
    from .outputs import spec_outputs

    info = spec_outputs(model)
    if not info or model.outputs is None:
        return {}
    last = max(int(i["module"].split(".")[1]) for i in info)
    params = stem.params + sum(r.params for r in rows if r.index <= last)
    if model.outputs.norm:
        params += sum(2 * i["num_chs"] for i in info)
    return {"outputs": info, "feature_params": params}


def block_row(block: Block, flow: BlockFlow, c: Costs, activation_bytes: int) -> BlockRow:
    """A block's row of the report: its widths, grids and sequence lengths, and its costs."""
    return BlockRow(
        index=block.index,
        stage=block.stage,
        dim_in=block.dim_in,
        dim_attn=block.dim_attn,
        dim_out=block.dim_out,
        heads=block.heads,
        head_dim=block.head_dim,
        grid_in=flow.grid_in,
        grid_q=flow.grid_q,
        grid_kv=flow.grid_kv,
        len_q=flow.len_q,
        len_kv=flow.len_kv,
        len_q_no_cls=prod(flow.grid_q),
        attention=_attention_size(block, flow),
        params=c.params,
        macs=c.macs,
        macs_fvcore=c.macs_fvcore,
        costs=c,
        activation_bytes=activation_bytes,
        len_in=flow.len_in,
        len_kv_no_cls=prod(flow.grid_kv),
        share=c.share,
        scope=_scope(block),
        windows=prod(flow.grid_kv) // prod(block.window) if block.window is not None else 1,
        window_q=block.window_q,
        window_kv=block.window,
    )


def _attention_size(block: Block, flow: BlockFlow) -> tuple[int, int]:
    """L_Q x L_K of one attention matrix per head: one window's when windowed."""
    if block.window is None or block.window_q is None:
        return flow.len_q, flow.len_kv
    return prod(block.window_q), prod(block.window)


def _scope(block: Block) -> str:
    if block.window is None:
        return "global"
    return f"{block.scope}+lag" if block.scope_from else block.scope


def stage_row(model: Model, stage: Any, rows: list[BlockRow]) -> StageRow:
    mine = rows[stage.first : stage.first + stage.depth]
    costs = sum((r.costs for r in mine), Costs())
    last = mine[-1]
    return StageRow(
        name=stage.name,
        operators=operators(model, stage.dim, stage.name),
        grid=mine[0].grid_q,
        dim=stage.dim,
        blocks=stage.depth,
        heads=stage.heads,
        params=costs.params,
        macs=costs.macs,
        macs_fvcore=costs.macs_fvcore,
        head_dim=stage.dim // stage.heads,
        tokens=mine[0].len_q,
        tokens_no_cls=mine[0].len_q_no_cls,
        grid_kv=last.grid_kv,
        attention=last.attention,
        activation_bytes=sum(r.activation_bytes for r in mine),
        share=costs.share,
    )
