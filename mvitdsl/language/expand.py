"""The stage table -> one ir.Block per block, with strides, kernels, widths and every per-stage
option resolved (a row's `key=value` cells over the model-wide `attention` and `train` values)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from .. import ir, ops
from .read import StageDraft

Widths = tuple[int, int, int]  # a block's (dim_in, dim_attn, dim_out)
ONE: ir.Dims3 = (1, 1, 1)


class Running(NamedTuple):
    """What the blocks before a stage hand to it: the next block's index, the width, the
    running K/V stride and the product of the Q strides so far."""

    first: int
    dim_in: int
    kv: ir.Dims3
    strides: ir.Dims3


class Expanded(NamedTuple):
    """The stage table expanded: its Stages, each row's Blocks, and each row's shape (blocks
    equal to the row's but for their index and drop-path rate; the row's own without a memo)."""

    stages: tuple[ir.Stage, ...]
    parts: tuple[tuple[ir.Block, ...], ...]
    shapes: tuple[tuple[ir.Block, ...], ...]


def expand(
    rows: list[StageDraft],
    att: ir.Attention,
    embed_dim: int,
    drop_path: float,
    memo: dict[Any, Any] | None = None,
) -> Expanded:
    """The stage table -> one Block per block, with strides, kernels, widths resolved. `memo`
    (a sweep's, over many variants of one base) keeps each row's blocks by everything they are
    built from, so a row that another variant already has is not built again: its tuple of
    blocks, and of its shape, is then the same object (the sweep looks costs up by identity)."""
    total = sum(r.depth for r in rows)
    stage_opts, keys = _stage_options(rows, att, drop_path, memo)
    state = Running(0, embed_dim, att.stride_kv or ONE, ONE)
    stages: list[ir.Stage] = []
    parts: list[tuple[ir.Block, ...]] = []
    shapes: list[tuple[ir.Block, ...]] = []
    for s in range(len(rows)):
        if memo is None:
            stage, part, state = _expand_stage(rows, s, att, (stage_opts, keys), total, state, None)
            shape = part
        else:
            stage, part, shape, state = _row(memo, rows, s, att, (stage_opts, keys), total, state)
        if stage is not None:
            stages.append(stage)
        parts.append(part)
        shapes.append(shape)
    return Expanded(tuple(stages), tuple(parts), tuple(shapes))


def _row(
    memo: dict[Any, Any],
    rows: list[StageDraft],
    s: int,
    att: ir.Attention,
    stage: tuple[list[dict[str, Any]], list[tuple[int, int]]],
    total: int,
    state: Running,
) -> tuple[ir.Stage | None, tuple[ir.Block, ...], tuple[ir.Block, ...], Running]:
    """A row's Stage and blocks, its shape and the state it leaves, with a memo: the blocks are
    built once per shape (all they are built from but the index of the row's first block and
    the depth that drop-path rates spread over), then placed at each index and rate met."""
    stage_opts, keys = stage
    after = rows[s + 1].dim if s + 1 < len(rows) else None
    shape_key = ("row", keys[s][1], keys[s - 1][0] if s else -1, after, state[1:])
    spread = total if stage_opts[s]["drop_path"] else 0  # rates depend on the depth
    hit = memo.get((shape_key, state.first, spread))
    if hit is None:
        shaped = memo.get(shape_key)
        if shaped is None:
            shaped = memo[shape_key] = _expand_stage(rows, s, att, stage, total, state, memo)
        built, shape, leaves = shaped
        placed = tuple(
            _placed_copy(memo, b, state.first + j, _rate(stage_opts[s], state.first + j, total))
            for j, b in enumerate(shape)
        )
        if built is not None and built.first != state.first:
            built = built.model_copy(update={"first": state.first})
        hit = memo[(shape_key, state.first, spread)] = (
            built, placed, shape, leaves._replace(first=state.first + rows[s].depth),
        )  # fmt: skip
    return hit


def _placed_copy(memo: dict[Any, Any], block: ir.Block, at: int, rate: float) -> ir.Block:
    """The block at index `at` with drop-path rate `rate`: itself, or a copy with the two fields
    replaced, not validated again (trusted: an int and a float, the types a fresh build gives
    them; a test holds the IR equal to a fresh lowering's), made once per (block, at, rate)."""
    if block.index == at and block.drop_path == rate:
        return block
    key = ("placed", id(block), at, rate)  # the shape's entry holds the block: its id is kept
    copied = memo.get(key)
    if copied is None:
        copied = memo[key] = block.model_copy(update={"index": at, "drop_path": rate})
    return copied


def _rate(opts: dict[str, Any], at: int, total: int) -> float:
    """Stochastic depth grows linearly over the blocks, from 0 to the model's `drop_path`."""
    return float(opts["drop_path"] * at / (total - 1)) if total > 1 else 0.0


def _expand_stage(
    rows: list[StageDraft],
    s: int,
    att: ir.Attention,
    stage: tuple[list[dict[str, Any]], list[tuple[int, int]]],
    total: int,
    state: Running,
    memo: dict[Any, Any] | None,
) -> tuple[ir.Stage | None, tuple[ir.Block, ...], Running]:
    """One row's blocks (and its Stage), from what the blocks before it hand to it. With a memo,
    the row's shape: a block another row has (the same position in its stage, widths, strides
    and options) is that block, whatever its index and drop-path rate."""
    stage_opts, keys = stage
    row, opts = rows[s], stage_opts[s]
    index, dim_in, kv_running, strides_before = state
    made: list[ir.Block] = []
    for j in range(row.depth):
        stride_q = row.stride_q if j == 0 else ONE
        if att.stride_kv_adaptive and j == 0 and stride_q != ONE:
            kv_running = _divide(kv_running, stride_q)
        stride_kv = (row.stride_kv or kv_running) if opts["pool_kv"] else ONE
        if opts["pool_kv"] and opts["stride_kv_global"] and j in (opts.get("global_blocks") or ()):
            stride_kv = _times(stride_kv, opts["stride_kv_global"])
        widths = _widths(att, rows, s, j, dim_in)
        at = index + j
        rate = _rate(opts, at, total)
        shape, block = None, None
        if memo is not None:
            lag = keys[s - 1][0] if j == 0 and s > 0 else -1  # the previous stage's scope
            # j: an op's maker sees the block's place in its stage (ops.Making), not its index
            last = j == row.depth - 1
            shape = ("block", keys[s][0], lag, j, last, widths, stride_q, stride_kv, strides_before)
            block = memo.get(shape)  # built at another index and rate: _row places it
        if block is None:
            m = _making(rows, stage_opts, s, j, widths, (stride_q, stride_kv, strides_before))
            block = _block(row, at, m, rate)
            if memo is not None:
                memo[shape] = block
        made.append(block)
        strides_before = _times(strides_before, stride_q)
        dim_in = widths[2]
    built = _stage(row, index, bool(opts["pool_kv"])) if row.depth else None
    return built, tuple(made), Running(index + row.depth, dim_in, kv_running, strides_before)


def _making(
    rows: list[StageDraft],
    stage_opts: list[dict[str, Any]],
    s: int,
    j: int,
    widths: Widths,
    strides: tuple[ir.Dims3, ir.Dims3, ir.Dims3],
) -> ops.Making:
    """What block j of stage s is made from (`strides`: its Q and K/V strides, the Q strides
    before it): a stage's first block keeps the previous stage's scope where `scope_lag`."""
    opts = stage_opts[s]
    lag = j == 0 and s > 0 and bool(opts["scope_lag"])
    return ops.Making(
        opts=opts,
        scope_opts=stage_opts[s - 1] if lag else opts,
        scope_from=rows[s - 1].name if lag else "",
        widths=widths,
        stride_q=strides[0],
        stride_kv=strides[1],
        strides_before=strides[2],
        j=j,
        last=j == rows[s].depth - 1,
    )


def _stage_options(
    rows: list[StageDraft], att: ir.Attention, drop_path: float, memo: dict[Any, Any] | None
) -> tuple[list[dict[str, Any]], list[tuple[int, int]]]:
    """Each stage's options (once per stage, not per block) and, with a memo, its key. Drafts are
    read-only and a sweep's variants share the rows they do not change, so a row is known by its
    identity (the entry holds the row: its id is not reused while the memo lives)."""
    if memo is None:
        return [options(att, drop_path, r) for r in rows], []
    # by identity (the lowering's memo shares equal Attention objects): hashing one per variant
    # costs more than the whole lookup; the entry holds it, so its id is not reused
    hit = memo.get(("attention", id(att), drop_path))
    if hit is None:
        hit = memo[("attention", id(att), drop_path)] = (len(memo), att)
    number = hit[0]
    opts, keys = [], []
    for r in rows:
        hit = memo.get(("row", number, id(r)))
        if hit is None:
            o = options(att, drop_path, r)
            hit = memo[("row", number, id(r))] = (r, o, _stage_key(memo, o, r))
        opts.append(hit[1])
        keys.append(hit[2])
    return opts, keys


def _stage_key(memo: dict[Any, Any], opts: dict[str, Any], row: StageDraft) -> tuple[int, int]:
    """Two small numbers, so that keys hash fast: one for what a row's blocks are built from
    besides their position and widths (its options, name, heads, location), one for all of the
    row that its blocks and Stage are built from (also its depth, width, strides, columns)."""
    frozen = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in sorted(opts.items()))
    blocks = ("stage blocks", frozen, row.name, row.heads, row.loc)
    whole = (blocks, row.depth, row.dim, row.stride_q, row.stride_kv, row.kv_off,
             tuple(sorted(row.columns.items())))  # fmt: skip
    return memo.setdefault(blocks, len(memo)), memo.setdefault(whole, len(memo))


def options(att: ir.Attention, drop_path: float, row: StageDraft) -> dict[str, Any]:
    """The options in effect for a row's blocks: its cells over the model-wide values."""
    out: dict[str, Any] = att.model_dump(exclude={"loc"})
    out["drop_path"] = drop_path
    if row.stride_kv is not None:  # a written K/V stride turns K/V pooling on for the stage
        out["pool_kv"] = True
    out.update({k: v for k, v in row.cells.items() if v is not None})
    return out


def _times(a: ir.Dims3, b: ir.Dims3) -> ir.Dims3:
    return (a[0] * b[0], a[1] * b[1], a[2] * b[2])


def _made(makers: tuple[Any, ...], m: ops.Making, made: tuple[Any, ...], current: Any) -> Any:
    """The op the first of a slot's `makers` makes from the block's settings, or None."""
    for make in makers:
        op = make(m, made, current)
        if op is not None:
            return op
    return None


_MAKERS: list[Any] = [(), {}]  # the registry's rules when last read, and their makers by slot


def _makers() -> dict[str, tuple[Any, ...]]:
    """Each slot's makers in registry order, read again when the registry changes (a test may
    add to it): comparing its rules by identity costs less than reading them per block."""
    now = tuple(ops.REGISTRY.values())
    if now != _MAKERS[0]:
        table = {s: tuple(r.make for r in now if r.slot == s and r.make) for s in ops.SLOTS}
        _MAKERS[:] = [now, table]
    made: dict[str, tuple[Any, ...]] = _MAKERS[1]
    return made


def _widths(att: ir.Attention, rows: list[StageDraft], s: int, j: int, dim_in: int) -> Widths:
    """Block j of stage s changes width at the last block (`mlp`: to the next stage's dim, or
    the row's `dim_out` cell) or at the first (`attention`)."""
    row = rows[s]
    if att.dim_change == "mlp":
        if j < row.depth - 1:
            return dim_in, dim_in, row.dim
        after = rows[s + 1].dim if s + 1 < len(rows) else row.dim
        return dim_in, dim_in, row.cells.get("dim_out") or after
    return dim_in, row.dim, row.dim


def _half(kernel: ir.Dims3) -> ir.Dims3:
    return (kernel[0] // 2, kernel[1] // 2, kernel[2] // 2)


def _divide(kv: ir.Dims3, q: ir.Dims3) -> ir.Dims3:
    return (max(kv[0] // q[0], 1), max(kv[1] // q[1], 1), max(kv[2] // q[2], 1))


def _block(row: StageDraft, index: int, m: ops.Making, drop_path: float) -> ir.Block:
    """One block's plan: widths, heads, its drop-path rate, and its ops."""
    dim_in, dim_attn, dim_out = m.widths
    return ir.Block(
        index=index,
        stage=row.name,
        dim_in=dim_in,
        dim_attn=dim_attn,
        dim_out=dim_out,
        heads=row.heads,
        drop_path=drop_path,
        loc=row.loc,
        ops=_ops(m),
    )


def _ops(m: ops.Making) -> tuple[ops.BlockOp, ...]:
    """Attention, the MLP, and where they apply the projection, skip pool and layer scale, in
    the order their state-dict names come; the registered ops made from the settings take their
    slots (ops/base.py SLOTS): first, in place of the attention (then its scope) or the MLP,
    last."""
    opts, widths, makers = m.opts, m.widths, _makers()
    out: list[Any] = []
    entering = _made(makers["enter"], m, (), None)
    if entering is not None:
        out.append(entering)
    # an op entering the block strides its grid: Q is not strided again
    pool_q = _pool_q(opts, ONE if entering is not None else m.stride_q)
    pooling = ops.PoolingAttention(
        pool_q=pool_q,
        pool_kv=_pool_kv(opts, m.stride_kv),
        qkv_bias=opts["qkv_bias"],
        rel_pos=opts["rel_pos"],
        residual_pool=opts["residual_pool"],
        qkv="separate" if opts["pool_first"] else opts["qkv"],
        pool_first=opts["pool_first"],
    )
    attention = _made(makers["attention"], m, tuple(out), pooling) or pooling
    if m.j not in (opts.get("global_blocks") or ()):  # a listed block attends globally
        attention = _made(makers["scope"], m, tuple(out), attention) or attention
    out.append(attention)
    mlp = ops.Mlp(hidden=int(widths[1] * opts["mlp_ratio"]))
    out.append(_made(makers["mlp"], m, tuple(out), mlp) or mlp)
    if widths[0] != widths[2] and entering is None:
        out.append(ops.Project(branch=opts["dim_change"]))
    if pool_q.stride != ONE:
        out.append(ops.SkipPool(pool=_pool_skip(opts, pool_q)))
    if opts["layer_scale"]:
        out.append(ops.LayerScale(init=float(opts["layer_scale"])))
    exiting = _made(makers["exit"], m, tuple(out), None)
    if exiting is not None:
        out.append(exiting)
    return tuple(out)


def _pool(opts: Mapping[str, Any], kernel: ir.Dims3, stride: ir.Dims3) -> ir.Pool:
    padding = _half(kernel) if opts["pool_pad"] == "half" else (0, 0, 0)
    return ir.Pool(mode=opts["pool_mode"], kernel=kernel, stride=stride, padding=padding)


def _pool_q(opts: Mapping[str, Any], stride: ir.Dims3) -> ir.Pool:
    """Q is pooled where it is strided, or in every block with `pool_q_blocks all`."""
    pooled = opts["pool_q_blocks"] == "all" or stride != ONE
    kernel = (opts["kernel_q"] or ir.default_kernel(stride)) if pooled else ONE
    return _pool(opts, kernel, stride)


def _pool_kv(opts: Mapping[str, Any], stride: ir.Dims3) -> ir.Pool:
    kernel = (opts["kernel_kv"] or ir.default_kernel(stride)) if opts["pool_kv"] else ONE
    return _pool(opts, kernel, stride)


def _pool_skip(opts: Mapping[str, Any], q: ir.Pool) -> ir.Pool:
    """The residual's max-pool where Q is strided: s+1 kernel with k//2 padding, or `like_q`:
    the Q pool's kernel and stride with padding 0."""
    if opts["skip_pool"] == "like_q":
        return ir.Pool(mode="max", kernel=q.kernel, stride=q.stride, padding=(0, 0, 0))
    kernel = ir.default_kernel(q.stride)
    return ir.Pool(mode="max", kernel=kernel, stride=q.stride, padding=_half(kernel))


def _stage(row: StageDraft, first: int, pool_kv: bool) -> ir.Stage:
    return ir.Stage(
        name=row.name,
        first=first,
        depth=row.depth,
        dim=row.dim,
        heads=row.heads,
        stride_q=row.stride_q,
        stride_kv_written=row.stride_kv if pool_kv else ONE,
        loc=row.loc,
        columns=row.columns,
    )
