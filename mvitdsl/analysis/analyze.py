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

from ..ir import Block, Dims3, HasModel, Model
from ..ops import block as ops_block
from ..ops import head, patch, positions
from ..ops.base import Costs as Costs  # one home: the op rules sum them
from ..ops.base import linear as linear
from . import shapes
from .graph import BlockFlow, block_flows


class Reported(HasModel, Protocol):
    """A checked spec (mvitdsl.spec.Spec): its model, and the report the checks already made."""

    @property
    def report(self) -> Report | None: ...


DTYPE_BYTES = {"fp32": 4, "float32": 4, "bf16": 2, "bfloat16": 2, "fp16": 2, "float16": 2}


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
    flows: tuple[BlockFlow, ...] = ()  # the shapes through each block, handed down (not JSON)

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
        del data["flows"]  # the same facts as the block rows, for the later stages
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


def block_costs(model: Model, block: Block, flow: BlockFlow) -> Costs:
    """A block's parameters and MACs: the sum of its ops' (ops/)."""
    return ops_block.costs(model, block, flow)


def stem_costs(model: Model) -> Costs:
    """The patch embedding, and the cls token and learned position tables."""
    tables = sum(prod(shape) for shape in positions.learned_shapes(model).values())
    return patch.costs(model) + Costs(params=tables)


def head_costs(model: Model, grid: Dims3) -> Costs:
    return head.costs(model, grid)


# ---------------------------------------------------------------- activation memory


def activation_elems(block: Block, flow: BlockFlow) -> int:
    """Elements a training step keeps for backward in one block (an estimate, per sample)."""
    return ops_block.saved(block, flow)


# ---------------------------------------------------------------- the report


def operators(model: Model, dim: int, stage: str | None = None) -> str:
    """The paper's operator column; the MLP ratio is the stage's own (a `mlp_ratio=` cell)."""
    ratio = model.attention.mlp_ratio
    first = next((b for b in model.blocks if b.stage == stage), None)
    if first is not None:
        ratio = first.mlp_hidden / first.dim_attn
    return f"MHPA({dim}), MLP({round(dim * ratio)})"


def analyze(
    spec: Reported | Model,
    *,
    batch: int = 1,
    dtype: str = "fp32",
    flows: tuple[BlockFlow, ...] | None = None,
) -> Report:
    """Shapes, parameters and MACs per stage and per block; no torch import.

    `batch` (>= 1) and `dtype` ("fp32", "bf16", "fp16") size the activation memory; a bad value
    is a TypeError / ValueError with a message. `flows`: the block flows already computed
    (graph.block_flows), handed down instead of computed again."""
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
        return _analyze(spec, batch, dtype, flows)
    made = spec.report  # a checked spec carries the report its budget check made (batch 1, fp32)
    if made is not None and (made.batch, made.dtype) == (batch, dtype):
        return made
    return _analyze(model, batch, dtype, made.flows if made is not None else flows)


MAX_BATCH = 1_000_000


def _analyze(model: Model, batch: int, dtype: str, flows: tuple[BlockFlow, ...] | None) -> Report:
    nbytes = DTYPE_BYTES[dtype]
    rows: list[BlockRow] = []
    stem = total = stem_costs(model)
    grid = shapes.patch_grid(model)
    flows = block_flows(model) if flows is None else flows
    for block, flow in zip(model.blocks, flows):
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
        flows=flows,
        **_outputs_extra(model, stem, rows, flows),
    )


def _outputs_extra(
    model: Model, stem: Costs, rows: list[BlockRow], flows: tuple[BlockFlow, ...]
) -> dict[str, Any]:
    """With an `outputs` setting: the maps, and the feature model's parameters (the blocks
    after the last output and the head pruned, a LayerNorm per map with `norm`)."""
    from .outputs import spec_outputs

    info = spec_outputs(model, flows)
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
        params=c.params,
        macs=c.macs,
        macs_fvcore=c.macs_fvcore,
        costs=c,
        activation_bytes=activation_bytes,
        len_in=flow.len_in,
        len_kv_no_cls=prod(flow.grid_kv),
        share=c.share,
        **ops_block.row(block, flow),  # attention, scope, windows, window_q, window_kv
    )


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
