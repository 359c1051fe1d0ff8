"""The stage table -> one ir.Block per block, with strides, kernels, widths and every per-stage
option resolved (a row's `key=value` cells over the model-wide `attention` and `train` values)."""

from __future__ import annotations

from typing import Any, NamedTuple

from .. import ir, ops
from .read import StageDraft

Widths = tuple[int, int, int]  # a block's (dim_in, dim_attn, dim_out)
ONE: ir.Dims3 = (1, 1, 1)
ZERO: ir.Dims3 = (0, 0, 0)


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
        last = j == row.depth - 1  # PVTv2's stage norm closes the row
        shape, block = None, None
        if memo is not None:
            lag = keys[s - 1][0] if j == 0 and s > 0 else -1  # the previous stage's scope
            # j: Swin's shift alternates inside the stage, whatever the block's index
            shape = ("block", keys[s][0], lag, j, last, widths, stride_q, stride_kv, strides_before)
            block = memo.get(shape)  # built at another index and rate: _row places it
        if block is None:
            block = _block(opts, row, at, widths, (stride_q, stride_kv), rate, last)
            block = _scoped(block, att, stage_opts, rows, s, j, strides_before)
            if memo is not None:
                memo[shape] = block
        made.append(block)
        strides_before = _times(strides_before, stride_q)
        dim_in = widths[2]
    built = _stage(row, index, bool(opts["pool_kv"])) if row.depth else None
    return built, tuple(made), Running(index + row.depth, dim_in, kv_running, strides_before)


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


def _scoped(
    block: ir.Block,
    att: ir.Attention,
    stage_opts: list[dict[str, Any]],
    rows: list[StageDraft],
    s: int,
    j: int,
    strides_before: ir.Dims3,
) -> ir.Block:
    """The block's attention scope: Swin's shifted windows (a shift or a bias table asked for:
    the stage's own window, no lag); else a stage's first block keeps the previous stage's scope
    (Hiera's one-block lag); a mask-unit scope attends in the mask unit divided by the Q strides
    applied before the block (the checker reports a mask unit they do not divide); windows after
    pooling (`pooled_window`) take the window as written, the Q and K/V windows follow from it.
    A block the row's `global` cell lists attends globally whatever the scope."""
    own = stage_opts[s]
    if j in (own.get("global_blocks") or ()):
        return block
    if own["rel_pos"] == "table" or own["shift"] != "none":  # Swin: its own stage's window
        window = own["window"] if own["scope"] == "window" else None
        shifted = own["shift"] == "alternate" and j % 2 == 1
        return _swapped(block, ops.SwinAttention, window=window, shift=shifted)
    lag = j == 0 and s > 0 and bool(own["scope_lag"])
    opts = stage_opts[s - 1 if lag else s]
    if opts["scope"] == "pooled_window" and opts["window"] is not None:
        scope_from = rows[s - 1].name if lag else ""
        return _swapped(
            block, ops.PooledWindowAttention, window=opts["window"], scope_from=scope_from
        )
    if opts["scope"] == "mask_unit" and att.mask_unit is not None:
        window = _divide(att.mask_unit, strides_before)
    elif opts["scope"] == "window" and opts["window"] is not None:
        window = opts["window"]
    else:
        return block
    return _swapped(
        block,
        ops.WindowAttention,
        scope=opts["scope"],
        window_kv=window,
        scope_from=rows[s - 1].name if lag else "",
    )


def _swapped(block: ir.Block, kind: Any, **fields: Any) -> ir.Block:
    """The block with its pooling attention replaced by a windowed kind (same options)."""
    pooling = block.attention_op
    extra: dict[str, Any] = {}
    if kind is ops.SwinAttention:
        extra["table"] = pooling.rel_pos == "table"
        merge = next((op for op in block.ops if isinstance(op, ops.PatchMerge)), None)
        if merge is not None:  # Q's grid is the merged one: its geometry in `pool_q` (as PVTv2)
            extra["pool_q"] = ir.Pool(
                mode=pooling.pool_q.mode, kernel=merge.stride, stride=merge.stride, padding=ZERO
            )
    dumped = pooling.model_dump(exclude={"kind", *extra})
    made = kind(**dumped, **fields, **extra)
    swapped = tuple(made if op is pooling else op for op in block.ops)
    return block.model_copy(update={"ops": swapped})


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


def _block(
    opts: dict[str, Any],
    row: StageDraft,
    index: int,
    widths: Widths,
    strides: tuple[ir.Dims3, ir.Dims3],
    drop_path: float,
    last: bool,
) -> ir.Block:
    """One block's plan: widths, heads, its drop-path rate, and its ops (`strides`: Q, K/V;
    `last`: the row's last block)."""
    dim_in, dim_attn, dim_out = widths
    return ir.Block(
        index=index,
        stage=row.name,
        dim_in=dim_in,
        dim_attn=dim_attn,
        dim_out=dim_out,
        heads=row.heads,
        drop_path=drop_path,
        loc=row.loc,
        ops=_ops(opts, widths, strides, last),
    )


def _ops(
    opts: dict[str, Any], widths: Widths, strides: tuple[ir.Dims3, ir.Dims3], last: bool
) -> tuple[ops.BlockOp, ...]:
    """Attention, the MLP, and where they apply the projection, skip pool and layer scale, in
    the order their state-dict names come."""
    stride_q, stride_kv = strides
    entering = opts["dim_change"] in ("merge", "embed")
    changing = entering and (stride_q != ONE or widths[0] != widths[2])
    pool_q = _pool_q(opts, ONE if entering else stride_q)
    out: list[ops.BlockOp] = []
    if changing:
        out.append(_entering(opts, stride_q))
    attention: ops.PoolingAttention | ops.ReductionAttention = ops.PoolingAttention(
        pool_q=pool_q,
        pool_kv=_pool_kv(opts, stride_kv),
        qkv_bias=opts["qkv_bias"],
        rel_pos=opts["rel_pos"],
        residual_pool=opts["residual_pool"],
        qkv="separate" if opts["pool_first"] else opts["qkv"],
        pool_first=opts["pool_first"],
    )
    if opts["reduce"] is not None or opts["dim_change"] == "embed":
        attention = _reduction(opts, pooling=attention, embed=out[0] if changing else None)
    hidden = int(widths[1] * opts["mlp_ratio"])
    relu = opts["reduce_mode"] == "linear"
    out += [
        attention,
        ops.ConvMlp(hidden=hidden, relu=relu) if opts["mlp_conv"] else ops.Mlp(hidden=hidden),
    ]
    if widths[0] != widths[2] and not changing:
        out.append(ops.Project(branch=opts["dim_change"]))
    if pool_q.stride != ONE:
        out.append(ops.SkipPool(pool=_pool_skip(opts, pool_q)))
    if opts["layer_scale"]:
        out.append(ops.LayerScale(init=float(opts["layer_scale"])))
    if last and opts["stage_norm"]:
        out.append(ops.StageNorm())
    return tuple(out)


def _entering(opts: dict[str, Any], stride: ir.Dims3) -> ops.PatchMerge | ops.StageEmbed:
    """The op that maps a stage's input to its grid and width before its first block's norm:
    Swin's patch merging, or PVTv2's overlapping conv embedding (the s+1 kernel rule)."""
    if opts["dim_change"] == "merge":
        return ops.PatchMerge(stride=stride)
    kernel = ir.default_kernel(stride)
    return ops.StageEmbed(kernel=kernel, stride=stride, padding=_half(kernel))


def _reduction(opts: dict[str, Any], pooling: Any, embed: Any) -> ops.ReductionAttention:
    """PVTv2's attention: Q's grid is the stage embedding's (its geometry in `pool_q`), K/V's
    the reduction's (a conv of kernel and stride `reduce`, in `pool_kv`)."""
    r = opts["reduce"] or 1
    fields = pooling.model_dump(exclude={"kind", "pool_q", "pool_kv"})
    q = pooling.pool_q
    if isinstance(embed, ops.StageEmbed):
        q = ir.Pool(mode="conv", kernel=embed.kernel, stride=embed.stride, padding=embed.padding)
    linear = opts["reduce_mode"] == "linear"
    side = (1, 1, 1) if linear else (1, r, r)
    # linear: an adaptive average pool (to a fixed grid, not a stride): K/V's mode says so
    kv = ir.Pool(mode="avg" if linear else "conv", kernel=side, stride=side, padding=ZERO)
    return ops.ReductionAttention(pool_q=q, pool_kv=kv, reduce=r, linear=linear, **fields)


def _pool(opts: dict[str, Any], kernel: ir.Dims3, stride: ir.Dims3) -> ir.Pool:
    padding = _half(kernel) if opts["pool_pad"] == "half" else (0, 0, 0)
    return ir.Pool(mode=opts["pool_mode"], kernel=kernel, stride=stride, padding=padding)


def _pool_q(opts: dict[str, Any], stride: ir.Dims3) -> ir.Pool:
    """Q is pooled where it is strided, or in every block with `pool_q_blocks all`."""
    pooled = opts["pool_q_blocks"] == "all" or stride != ONE
    kernel = (opts["kernel_q"] or ir.default_kernel(stride)) if pooled else ONE
    return _pool(opts, kernel, stride)


def _pool_kv(opts: dict[str, Any], stride: ir.Dims3) -> ir.Pool:
    kernel = (opts["kernel_kv"] or ir.default_kernel(stride)) if opts["pool_kv"] else ONE
    return _pool(opts, kernel, stride)


def _pool_skip(opts: dict[str, Any], q: ir.Pool) -> ir.Pool:
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
