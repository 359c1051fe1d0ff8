"""The cls token and the absolute positions, one rule set per kind (none, separable, joint,
sincos, windowed): the tables' names and shapes, whether they fit the token grid, their
emission. `windowed` (SAM2's HieraDet): a G x G table interpolated bicubically (no antialias)
to the run-time grid plus a window table tiled over it, computed every forward."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import SerializerFunctionWrapHandler, model_serializer

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
WINDOW_POS = "pos_encoding.pos_embed_window"  # windowed: the tiled window table (1, D, w, w)
# the reference dialects' names (SlowFast, timm; SAM2's windowed positions)
REFERENCE_NAMES = {
    "cls_token": CLASS_TOKEN,
    "pos_embed": POS_EMBED,
    "pos_embed_spatial": SPATIAL_POS,
    "pos_embed_temporal": TEMPORAL_POS,
    "pos_embed_class": CLASS_POS,
    "pos_embed_window": WINDOW_POS,
}

Position = Literal["none", "separable", "joint", "sincos", "windowed"]


class Tokens(Node):
    """Token options: a cls token, the kind of absolute position embedding, and the windowed
    kind's two tables (its G x G grid, its window)."""

    cls: bool
    position: Position
    loc: Loc
    pos_table: Dims3 | None = None
    pos_window: Dims3 | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # the windowed tables are written only where set: other models' IR stays as it was
        out: dict[str, Any] = handler(self)
        return {k: v for k, v in out.items() if v is not None or k not in _WINDOWED}


_WINDOWED = ("pos_table", "pos_window")


@dataclass(frozen=True)
class Kind:
    """One kind of absolute positions: its learned tables, a fixed buffer, whether the tables
    (sized from the nominal grid) fit a token grid, and its emission (None: nothing added)."""

    tables: Callable[[int, Dims3, Tokens], dict[str, Shape]]
    buffers: Callable[[int, Dims3, Tokens], dict[str, Shape]]
    fits: Callable[[Dims3, Dims3, Tokens], bool]
    emit: Callable[[EmitsModel], Value] | None


def _none(d: int, nom: Dims3, tokens: Tokens) -> dict[str, Shape]:
    return {}


def _joint(d: int, nom: Dims3, tokens: Tokens) -> dict[str, Shape]:
    t, h, w = nom
    return {POS_EMBED: (1, t * h * w + int(tokens.cls), d)}


def _separable(d: int, nom: Dims3, tokens: Tokens) -> dict[str, Shape]:
    t, h, w = nom
    out: dict[str, Shape] = {SPATIAL_POS: (h * w, d), TEMPORAL_POS: (t, d)}
    return out | ({CLASS_POS: (d,)} if tokens.cls else {})


def _windowed(d: int, nom: Dims3, tokens: Tokens) -> dict[str, Shape]:
    """timm's layout, channels first: pos_embed (1, D, G, G), pos_embed_window (1, D, w, w)."""
    table, window = tokens.pos_table or (1, 1, 1), tokens.pos_window or (1, 1, 1)
    return {POS_EMBED: (1, d, table[1], table[2]), WINDOW_POS: (1, d, window[1], window[2])}


def _same_count(grid: Dims3, nom: Dims3, tokens: Tokens) -> bool:
    return grid[0] * grid[1] * grid[2] == nom[0] * nom[1] * nom[2]


def _same_t_and_hw(grid: Dims3, nom: Dims3, tokens: Tokens) -> bool:
    return grid[0] == nom[0] and grid[1] * grid[2] == nom[1] * nom[2]


def _whole_windows(grid: Dims3, nom: Dims3, tokens: Tokens) -> bool:
    """The window table tiles the grid: whole windows (any size: the G table is interpolated)."""
    return not any(n % w for n, w in zip(grid, period(tokens)))


def period(tokens: Tokens) -> Dims3:
    """What the token grid must be a multiple of for the positions: the window table's tile."""
    if tokens.position == "windowed" and tokens.pos_window is not None:
        return tokens.pos_window
    return (1, 1, 1)


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


def emit_windowed(e: EmitsModel) -> Value:
    """The G x G table at the run-time grid (bicubic, no antialias) plus the window table
    tiled over it: (1, H*W, D)."""
    from ..backend.runtime import windowed_positions

    table, window = emit_table(e, POS_EMBED), emit_table(e, WINDOW_POS)
    return e.fn(windowed_positions, table, window, e.grid_node())


KINDS: dict[str, Kind] = {
    "none": Kind(_none, _none, lambda grid, nom, tokens: True, None),
    "separable": Kind(_separable, _none, _same_t_and_hw, emit_separable),
    "joint": Kind(_joint, _none, _same_count, emit_joint),
    "sincos": Kind(_none, _joint, _same_count, emit_sincos),
    "windowed": Kind(_windowed, _none, _whole_windows, emit_windowed),
}


def learned_shapes(model: Model) -> dict[str, Shape]:
    """The cls token and the learned position tables, sized from the nominal patch grid: the one
    home of their layout (the emitter creates them, the analysis counts them, from this)."""
    d, tokens = model.patch.dim, model.tokens
    out: dict[str, Shape] = {CLASS_TOKEN: (d,)} if tokens.cls else {}
    return out | KINDS[tokens.position].tables(d, nominal_grid(model), tokens)


def buffer_shapes(model: Model) -> dict[str, Shape]:
    """Fixed position buffers (sincos's, under pos_embed): in the state dict, not parameters."""
    d, tokens = model.patch.dim, model.tokens
    return KINDS[tokens.position].buffers(d, nominal_grid(model), tokens)


def fits(tokens: Tokens, grid: Dims3, nom: Dims3) -> bool:
    """Whether the absolute positions, sized from input // stride, line up with the tokens:
    joint needs the same count; separable the same T and the same H*W; windowed whole
    windows."""
    return KINDS[tokens.position].fits(grid, nom, tokens)


def check(c: Any, grid: Dims3) -> None:
    """Positions sized for another grid (E307); sincos's width rule (E307)."""
    m = c.model
    nom = nominal_grid(m)
    if m.tokens.position == "windowed":
        check_windowed(c, grid)
    elif min(grid) >= 1 and not fits(m.tokens, grid, nom):
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


def check_windowed(c: Any, grid: Dims3) -> None:
    """The windowed kind needs both tables' sizes (E210) and a grid of whole windows (E307)."""
    m = c.model
    t = m.tokens
    if t.pos_table is None or t.pos_window is None:
        c.r.error(
            "E210",
            "'position windowed' needs 'pos_table' (the G x G table) and 'pos_window' (the "
            "tiled window table)",
            c.setting_span("tokens"),
            "write 'tokens no_cls, position windowed, pos_table 7x7, pos_window 8x8'",
        )
    elif min(grid) >= 1 and not fits(t, grid, nominal_grid(m)):
        w = period(t)
        c.r.error(
            "E307",
            f"the patch embedding makes a {c.fmt(grid)} token grid, but the window table "
            f"{c.fmt(w)} of 'position windowed' tiles only whole windows",
            c.setting_span("tokens"),
            f"choose an input size whose token grid is a multiple of {c.fmt(w)}, or a "
            "smaller 'pos_window'",
        )


def resized_at_load(model: Model) -> bool:
    """Whether the position tables follow the input size (a checkpoint's are resized at load);
    windowed tables keep their own sizes and are resized at every forward."""
    return model.tokens.position != "windowed"


def size_multiple(model: Model) -> Dims3:
    """The input multiple the positions ask for: the patch stride times the window table."""
    s, w = model.patch.stride, period(model.tokens)
    return (s[0] * w[0], s[1] * w[1], s[2] * w[2])


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
