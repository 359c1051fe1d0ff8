"""The pre-norm residual block that holds the ops, and the pipeline's way in: each function
composes the rules the block's ops registered (no stage branches on an op's fields)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..nodes import Dims3
from . import REGISTRY
from .base import (
    BlockFlow,
    Costs,
    DrawItem,
    Emits,
    EmitsModel,
    Labels,
    Rules,
    Shape,
    Sketch,
    Value,
    lcm3,
    nominal,
    tokens,
)
from .mlp import NORM2

if TYPE_CHECKING:
    from ..ir import Block, Model

NORM1 = "norm1"  # the attention branch's pre-norm
DROP_PATH = "drop_path"


def rules(op: Any) -> Rules:
    return REGISTRY[op.kind]


def flow(model: Model, block: Block, grid_in: Dims3, nominal_in: Dims3) -> BlockFlow:
    """The shapes through one block: each op's shape rule over the input grid."""
    fields: dict[str, Any] = {"grid_q": grid_in, "grid_kv": grid_in, "grid_skip": grid_in}
    fields["rel_pos"] = None
    fields["nominal_out"] = nominal(nominal_in, block.pool_q.stride)
    for op in block.ops:
        rule = rules(op).flow
        if rule is not None:
            fields.update(rule(model, block, op, grid_in, nominal_in))
    cls = model.tokens.cls
    return BlockFlow(
        grid_in=grid_in,
        nominal_in=nominal_in,
        len_in=tokens(grid_in, cls),
        len_q=tokens(fields["grid_q"], cls),
        len_kv=tokens(fields["grid_kv"], cls),
        **fields,
    )


def entering(block: Block) -> tuple[Any, ...]:
    """The ops that map the block input to the attention width before norm1 (`enter`)."""
    return tuple(op for op in block.ops if "enter" in rules(op).emit)


def entered(block: Block) -> bool:
    return bool(entering(block))


def norm1_dim(block: Block) -> int:
    return block.dim_attn if entered(block) else block.dim_in


def norm1_len(model: Model, flow: BlockFlow) -> int:
    return tokens(flow.grid_branches, model.tokens.cls)


def period(block: Block) -> Dims3:
    """What the block's input grid must be a multiple of for its grids to be exact at run
    time (its strides, its windows): the lcm of its ops' periods."""
    out: Dims3 = (1, 1, 1)
    for op in block.ops:
        rule = rules(op).period
        if rule is not None:
            out = lcm3(out, rule(block, op))
    return out


def costs(model: Model, block: Block, flow: BlockFlow) -> Costs:
    """The block's parameters and MACs: norm1 (the skeleton's), then each op's."""
    d = norm1_dim(block)
    total = Costs(params=2 * d, norm_elems=norm1_len(model, flow) * d)
    for op in block.ops:
        rule = rules(op).costs
        if rule is not None:
            total = total + rule(model, block, op, flow)
    return total


def saved(block: Block, flow: BlockFlow) -> int:
    """Elements a training step keeps for backward in one block (an estimate, per sample): the
    block input and norm1 output, the attention output, residual sum and norm2 output, and
    what each op keeps."""
    elems = 2 * flow.len_in * block.dim_in + 3 * flow.len_q * block.dim_attn
    for op in block.ops:
        rule = rules(op).saved
        if rule is not None:
            elems += rule(block, op, flow)
    return elems


def shapes(model: Model, block: Block, flow: BlockFlow) -> dict[str, Shape]:
    """The block's state-dict entries, names relative to `blocks.{i}.`, in the order the
    emitted module registers them (ops at `enter` come before norm1)."""
    d = norm1_dim(block)
    first = entering(block)
    out = _op_shapes(model, block, flow, first)
    out[f"{NORM1}.weight"], out[f"{NORM1}.bias"] = (d,), (d,)
    rest = tuple(op for op in block.ops if op not in first)
    return out | _op_shapes(model, block, flow, rest)


def _op_shapes(
    model: Model, block: Block, flow: BlockFlow, ops: tuple[Any, ...]
) -> dict[str, Shape]:
    out: dict[str, Shape] = {}
    for op in ops:
        rule = rules(op).shapes
        if rule is not None:
            out.update(rule(model, block, op, flow))
    return out


def row(block: Block, flow: BlockFlow) -> dict[str, Any]:
    """The report row's attention size and scope fields (global attention unless an op says)."""
    out: dict[str, Any] = {"scope": "global", "windows": 1, "window_q": None, "window_kv": None}
    for op in block.ops:
        rule = rules(op).row
        if rule is not None:
            out.update(rule(block, op, flow))
    return out


def check(checker: Any, block: Block, flow: BlockFlow) -> bool:
    """Each op's rules in order; True when one reported (the block's later rules are skipped)."""
    for op in block.ops:
        rule = rules(op).check
        if rule is not None and rule(checker, block, op, flow):
            return True
    return False


def emit_hook(e: Emits, hook: str, x: Value, normed: Value) -> Value:
    """Run the ops that take part at `hook` (base.HOOKS), in the block's order."""
    for op in e.block.ops:
        rule = rules(op).emit.get(hook)
        if rule is not None:
            x = rule(e, op, x, normed)
    return x


def emit_block(e: Emits) -> Value:
    """x (B, L_in, C_in) -> (B, L_q, C_out): two pre-norm residual branches."""
    import operator

    b = e.block
    x = emit_hook(e, "enter", e.graph_input(), None)
    x_norm = e.layer_norm(NORM1, norm1_dim(b), x)
    attn = emit_hook(e, "attend", x_norm, x_norm)
    res = emit_hook(e, "shortcut_attention", x, x_norm)
    attn = emit_hook(e, "scale_attention", attn, x_norm)
    x = e.fn(operator.add, res, emit_drop_path(e, attn))
    x_norm2 = e.layer_norm(NORM2, b.dim_attn, x)
    res2 = emit_hook(e, "shortcut_mlp", x, x_norm2)
    mlp = emit_hook(e, "mlp", x_norm2, x_norm2)
    mlp = emit_hook(e, "scale_mlp", mlp, x_norm2)
    return emit_hook(e, "exit", e.fn(operator.add, res2, emit_drop_path(e, mlp)), None)


def emit_grid_out(e: EmitsModel, block: Block, grid: Value, flow: BlockFlow) -> Value:
    """The run-time grid of the block's output from its input's: Q's pool."""
    from .pools import emit_grid

    return emit_grid(e, grid, block.pool_q)


def emit_drop_path(e: Emits, x: Value) -> Value:
    from ..backend.runtime import DropPath

    if e.block.drop_path == 0.0:
        return x
    return e.module(DROP_PATH, DropPath(e.block.drop_path), x)


def draw_hook(block: Block, flow: BlockFlow, s: Labels, hook: str, src: str, dim: int) -> Sketch:
    """The drawing of the ops at `hook`, chained: each starts where the previous ended."""
    items: list[DrawItem] = []
    for op in block.ops:
        rule = rules(op).draw.get(hook)
        if rule is not None:
            part = rule(block, op, flow, s, src, dim)
            items += part.items
            src, dim = part.end, part.dim
    return Sketch(tuple(items), src, dim)
