"""The stage table -> one ir.Block per block, with strides, kernels and widths resolved."""

from __future__ import annotations

from collections.abc import Iterator

from .. import ir
from .read import StageDraft

Widths = tuple[int, int, int]  # a block's (dim_in, dim_attn, dim_out)


def expand(
    rows: list[StageDraft], att: ir.Attention, embed_dim: int, drop_path: float
) -> tuple[tuple[ir.Stage, ...], tuple[ir.Block, ...]]:
    """The stage table -> one Block per block, with strides, kernels, widths resolved."""
    total = sum(r.depth for r in rows)
    kv_running = att.stride_kv or (1, 1, 1)
    blocks: list[ir.Block] = []
    stages: list[ir.Stage] = []
    dim_in = embed_dim
    for index, s, row, j in _stage_blocks(rows):
        stride_q = row.stride_q if j == 0 else (1, 1, 1)
        if att.stride_kv_adaptive and j == 0 and stride_q != (1, 1, 1):
            kv_running = _divide(kv_running, stride_q)
        stride_kv = (1, 1, 1) if row.kv_off else row.stride_kv or kv_running
        widths = _widths(att, rows, s, j, dim_in)
        rate = drop_path * index / (total - 1) if total > 1 else 0.0
        blocks.append(_block(att, row, index, widths, stride_q, stride_kv, rate))
        dim_in = widths[2]
        if j == 0:
            stages.append(_stage(row, index))
    return tuple(stages), tuple(blocks)


def _stage_blocks(rows: list[StageDraft]) -> Iterator[tuple[int, int, StageDraft, int]]:
    """(block index, stage index, stage row, index inside the stage) for every block."""
    index = 0
    for s, row in enumerate(rows):
        for j in range(row.depth):
            yield index, s, row, j
            index += 1


def _widths(att: ir.Attention, rows: list[StageDraft], s: int, j: int, dim_in: int) -> Widths:
    """Block j of stage s changes width at the last block (`mlp`) or at the first (`attention`)."""
    row = rows[s]
    if att.dim_change == "mlp":
        last = j == row.depth - 1 and s + 1 < len(rows)
        return dim_in, dim_in, rows[s + 1].dim if last else row.dim
    return dim_in, row.dim, row.dim


def _divide(kv: ir.Dims3, q: ir.Dims3) -> ir.Dims3:
    return (max(kv[0] // q[0], 1), max(kv[1] // q[1], 1), max(kv[2] // q[2], 1))


def _block(
    att: ir.Attention,
    row: StageDraft,
    index: int,
    widths: Widths,
    stride_q: ir.Dims3,
    stride_kv: ir.Dims3,
    drop_path: float,
) -> ir.Block:
    """One block's plan: widths, heads, MLP width, pools and its drop-path rate."""
    dim_in, dim_attn, dim_out = widths
    return ir.Block(
        index=index,
        stage=row.name,
        dim_in=dim_in,
        dim_attn=dim_attn,
        dim_out=dim_out,
        heads=row.heads,
        mlp_hidden=int(dim_attn * att.mlp_ratio),
        pool_q=_pool_q(att, stride_q),
        pool_kv=_pool_kv(att, row, stride_kv),
        drop_path=drop_path,
        loc=row.loc,
    )


def _pool_q(att: ir.Attention, stride: ir.Dims3) -> ir.Pool:
    """Q is pooled where it is strided, or in every block with `pool_q_blocks all`."""
    pooled = att.pool_q_blocks == "all" or stride != (1, 1, 1)
    kernel = (att.kernel_q or ir.default_kernel(stride)) if pooled else (1, 1, 1)
    return ir.Pool(mode=att.pool_mode, kernel=kernel, stride=stride)


def _pool_kv(att: ir.Attention, row: StageDraft, stride: ir.Dims3) -> ir.Pool:
    kernel = (1, 1, 1) if row.kv_off else att.kernel_kv or ir.default_kernel(stride)
    return ir.Pool(mode=att.pool_mode, kernel=kernel, stride=stride)


def _stage(row: StageDraft, first: int) -> ir.Stage:
    return ir.Stage(
        name=row.name,
        first=first,
        depth=row.depth,
        dim=row.dim,
        heads=row.heads,
        stride_q=row.stride_q,
        stride_kv=(1, 1, 1) if row.kv_off else row.stride_kv,
        loc=row.loc,
    )
