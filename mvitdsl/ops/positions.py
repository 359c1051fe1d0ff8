"""The cls token and the absolute positions, one rule set per kind (none, separable, joint,
sincos): the tables' names and shapes, whether they fit the token grid, their emission."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..nodes import Dims3, Loc, Node
from .base import EmitsModel, Shape, Value
from .patch import nominal_grid

if TYPE_CHECKING:
    from ..ir import Model

CLASS_TOKEN = "pos_encoding.class_token"
POS_EMBED = "pos_encoding.pos_embed"  # joint positions (1, L, D); sincos's fixed buffer
SPATIAL_POS = "pos_encoding.spatial_pos"  # separable positions: (H*W, D), (T, D), (D,)
TEMPORAL_POS = "pos_encoding.temporal_pos"
CLASS_POS = "pos_encoding.class_pos"

Position = Literal["none", "separable", "joint", "sincos"]


class Tokens(Node):
    """Token options: a cls token, and the kind of absolute position embedding."""

    cls: bool
    position: Position
    loc: Loc


@dataclass(frozen=True)
class Kind:
    """One kind of absolute positions: its learned tables, a fixed buffer, whether the tables
    (sized from the nominal grid) fit a token grid, and its emission (None: nothing added)."""

    tables: Callable[[int, Dims3, bool], dict[str, Shape]]
    buffers: Callable[[int, Dims3, bool], dict[str, Shape]]
    fits: Callable[[Dims3, Dims3], bool]
    emit: Callable[[EmitsModel], Value] | None


def _none(d: int, nom: Dims3, cls: bool) -> dict[str, Shape]:
    return {}


def _joint(d: int, nom: Dims3, cls: bool) -> dict[str, Shape]:
    t, h, w = nom
    return {POS_EMBED: (1, t * h * w + int(cls), d)}


def _separable(d: int, nom: Dims3, cls: bool) -> dict[str, Shape]:
    t, h, w = nom
    out: dict[str, Shape] = {SPATIAL_POS: (h * w, d), TEMPORAL_POS: (t, d)}
    return out | ({CLASS_POS: (d,)} if cls else {})


def _same_count(grid: Dims3, nom: Dims3) -> bool:
    return grid[0] * grid[1] * grid[2] == nom[0] * nom[1] * nom[2]


def _same_t_and_hw(grid: Dims3, nom: Dims3) -> bool:
    return grid[0] == nom[0] and grid[1] * grid[2] == nom[1] * nom[2]


def emit_table(e: EmitsModel, name: str) -> Value:
    """A cls token or position table, shaped as `tables` lays it out."""
    import torch
    from torch import nn

    shape = learned_shapes(e.model)[name]
    return e.attr(name, nn.Parameter(torch.zeros(shape)))


def emit_joint(e: EmitsModel) -> Value:
    """The table resized to the run-time grid when it differs from the nominal one."""
    return emit_at_grid(e, emit_table(e, POS_EMBED))


def emit_sincos(e: EmitsModel) -> Value:
    """Fixed: a buffer, not a parameter (resized as a joint table at other sizes)."""
    from ..backend.runtime import sincos_positions

    m = e.model
    fixed = sincos_positions(m.patch.dim, nominal_grid(m), m.tokens.cls).unsqueeze(0)
    return emit_at_grid(e, e.attr(POS_EMBED, fixed))


def emit_at_grid(e: EmitsModel, table: Value) -> Value:
    """A joint table at the run-time grid: space bicubic, time linear, cls row kept (the
    load-time resize's function)."""
    from ..backend.runtime import joint_at

    return e.fn(joint_at, table, nominal_grid(e.model), e.grid_node(), e.model.tokens.cls)


def emit_separable(e: EmitsModel) -> Value:
    """temporal + spatial (+ class) as torchvision, at the run-time grid: (1, L, D)."""
    from ..backend.runtime import separable_positions

    m = e.model
    temporal = emit_table(e, TEMPORAL_POS)
    spatial = emit_table(e, SPATIAL_POS)
    class_pos = emit_table(e, CLASS_POS) if m.tokens.cls else None
    grid = e.grid_node()
    return e.fn(separable_positions, temporal, spatial, class_pos, nominal_grid(m), grid)


KINDS: dict[str, Kind] = {
    "none": Kind(_none, _none, lambda grid, nom: True, None),
    "separable": Kind(_separable, _none, _same_t_and_hw, emit_separable),
    "joint": Kind(_joint, _none, _same_count, emit_joint),
    "sincos": Kind(_none, _joint, _same_count, emit_sincos),
}


def learned_shapes(model: Model) -> dict[str, Shape]:
    """The cls token and the learned position tables, sized from the nominal patch grid: the one
    home of their layout (the emitter creates them, the analysis counts them, from this)."""
    d, cls = model.patch.dim, model.tokens.cls
    out: dict[str, Shape] = {CLASS_TOKEN: (d,)} if cls else {}
    return out | KINDS[model.tokens.position].tables(d, nominal_grid(model), cls)


def buffer_shapes(model: Model) -> dict[str, Shape]:
    """Fixed position buffers (sincos's, under pos_embed): in the state dict, not parameters."""
    d, cls = model.patch.dim, model.tokens.cls
    return KINDS[model.tokens.position].buffers(d, nominal_grid(model), cls)


def fits(position: str, grid: Dims3, nom: Dims3) -> bool:
    """Whether the absolute positions, sized from input // stride, line up with the tokens:
    joint needs the same count; separable the same T and the same H*W."""
    return KINDS[position].fits(grid, nom)


def check(c: Any, grid: Dims3) -> None:
    """Positions sized for another grid (E307); sincos's width rule (E307)."""
    m = c.model
    nom = nominal_grid(m)
    if min(grid) >= 1 and not fits(m.tokens.position, grid, nom):
        c.r.error(
            "E307",
            f"the patch embedding makes a {c.fmt(grid)} token grid, but "
            f"'position {m.tokens.position}' is sized for {c.fmt(nom)} (input size "
            f"{c.fmt(m.input.size)} // patch stride {c.fmt(m.patch.stride)})",
            c.setting_span("tokens"),
            "choose an input size divisible by the "
            "patch stride and an odd kernel with pad kernel//2, or 'position none'",
        )
    if m.tokens.position == "sincos" and m.patch.dim % 16:
        c.r.error(
            "E307",
            f"'position sincos' needs an embedding width divisible by 16 (a quarter for "
            f"time, three for space, each half sin, half cos); the width is {m.patch.dim}",
            c.setting_span("tokens"),
            "choose a patch width divisible by 16, or 'position joint'",
        )


def emit(e: EmitsModel, x: Value) -> Value:
    """The cls token in front of the patch tokens, then the positions added: (B, L, D)."""
    import operator

    import torch

    m, d = e.model, e.model.patch.dim
    if m.tokens.cls:
        token = emit_table(e, CLASS_TOKEN)
        token = e.method("reshape", token, 1, 1, d)
        batch = e.method("size", x, 0)
        token = e.method("expand", token, batch, -1, -1)
        x = e.fn(torch.cat, [token, x], dim=1)
    kind = KINDS[m.tokens.position]
    return x if kind.emit is None else e.fn(operator.add, x, kind.emit(e))
