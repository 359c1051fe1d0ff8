"""The IR: frozen pydantic models with every default filled and every stage expanded to blocks.

Grids and strides are always (T, H, W); image models have T = 1 and `input.kind == "image"`.
"""

from __future__ import annotations

from math import prod
from typing import Literal

from pydantic import BaseModel, ConfigDict

from .diagnostics import Span

Dims3 = tuple[int, int, int]
PoolMode = Literal["conv", "avg", "max"]
RelPos = Literal["none", "decomposed"]
ResidualPool = Literal["none", "tokens", "all"]
Qkv = Literal["fused", "separate"]


def default_kernel(stride: Dims3) -> Dims3:
    """SlowFast's pooling kernel for a stride: s + 1 where s > 1, else s. The one home of the
    rule: Q and K/V pools without a written kernel, and the residual's skip max-pool."""
    k = tuple(s + 1 if s > 1 else s for s in stride)
    return (k[0], k[1], k[2])


def spatial(dims: tuple[int, ...], video: bool) -> tuple[int, ...]:
    """A (T, H, W) grid, kernel or stride as the model's convolutions see it and as the spec writes
    it: all three for video, (H, W) for images (whose T is always 1). The one home of that rule."""
    return tuple(dims) if video else tuple(dims[1:])


def with_t(size: tuple[int, ...], video: bool) -> tuple[int, ...]:
    """The inverse: (C, T, H, W) from a video size, (C, 1, H, W) from an image's (C, H, W)."""
    return tuple(size) if video else (size[0], 1, *size[-2:])


class Node(BaseModel):
    """Base of every IR model: immutable, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Loc(Node):
    """Where in the spec a value was set (file, line, column); carried into fx node metadata."""

    file: str
    line: int
    column: int
    text: str = ""
    end_line: int = 0  # 0: the end is not known (a point)
    end_column: int = 0

    def span(self) -> Span:
        """The located region, for diagnostics (a point is one character wide)."""
        if self.end_line:
            return Span(self.file, self.line, self.column, self.end_line, self.end_column)
        return Span(self.file, self.line, self.column, self.line, self.column + 1)


class Input(Node):
    """The clip (video) or picture (image) the model takes, without the batch dimension."""

    kind: Literal["video", "image"]
    channels: int
    size: Dims3
    grid_rounding: Literal["exact", "ceil"] = "exact"
    loc: Loc


class Patch(Node):
    """The patch embedding: a strided convolution that cuts the input into tokens."""

    kernel: Dims3
    stride: Dims3
    padding: Dims3
    dim: int
    loc: Loc


class Tokens(Node):
    """Token options: a cls token, and the kind of absolute position embedding."""

    cls: bool
    position: Literal["none", "separable", "joint", "sincos"]
    loc: Loc


class Pool(Node):
    """One pooling of Q, K, V or the residual; absent when kernel and stride are all 1."""

    mode: PoolMode
    kernel: Dims3
    stride: Dims3
    padding: Dims3

    @property
    def exists(self) -> bool:
        return not (prod(self.kernel) == 1 and prod(self.stride) == 1)


class Block(Node):
    """One MHPA block with everything the emitter needs; the unit of the block graph."""

    index: int
    stage: str
    dim_in: int
    dim_attn: int
    dim_out: int
    heads: int
    mlp_hidden: int
    pool_q: Pool
    pool_kv: Pool
    pool_skip: Pool  # the residual's max-pool where Q is strided (kernel 1 elsewhere)
    qkv_bias: bool
    rel_pos: RelPos
    residual_pool: ResidualPool
    drop_path: float
    loc: Loc
    qkv: Qkv = "fused"  # one Linear to 3A, or separate q, k, v Linears
    pool_first: bool = False  # pool the input (its own heads) before the separate projections
    layer_scale: float = 0.0  # the initial gammas of the two branches; 0: no layer scale

    @property
    def pool_head_dim(self) -> int:
        """The channels per head the Q/K/V pools see: the input's with pool-first."""
        return self.dim_in // self.heads if self.pool_first else self.head_dim

    scope: Literal["global", "mask_unit", "window"] = "global"  # the scope in effect
    window: Dims3 | None = None  # the K/V window the block attends in (None: global)
    scope_from: str = ""  # the stage whose scope the block uses, when not its own (the lag)

    @property
    def window_q(self) -> Dims3 | None:
        """The Q window: the K/V window divided by the block's Q stride."""
        if self.window is None:
            return None
        w, s = self.window, self.pool_q.stride
        return (max(w[0] // s[0], 1), max(w[1] // s[1], 1), max(w[2] // s[2], 1))

    @property
    def head_dim(self) -> int:
        return self.dim_attn // self.heads

    @property
    def has_project(self) -> bool:
        return self.dim_in != self.dim_out

    @property
    def has_skip_pool(self) -> bool:
        return prod(self.pool_q.stride) > 1


class Stage(Node):
    """A row of the stage table: blocks [first, first + depth) at one resolution and width."""

    name: str
    first: int
    depth: int
    dim: int
    heads: int
    stride_q: Dims3
    stride_kv: Dims3 | None
    loc: Loc
    columns: dict[str, Loc] = {}  # where each column and `key=value` cell of the row is

    def column(self, name: str) -> Loc:
        """Where the row writes `name` (a column or a cell), else the whole row."""
        return self.columns.get(name, self.loc)


class Attention(Node):
    """The model-wide block options (a stage row may override the per-stage ones: the blocks
    carry the values in effect)."""

    pool_mode: PoolMode
    kernel_q: Dims3 | None
    kernel_kv: Dims3 | None
    pool_q_blocks: Literal["first", "all"]
    stride_kv: Dims3 | None
    stride_kv_adaptive: bool
    pool_kv: bool
    pool_pad: Literal["half", "zero"]
    skip_pool: Literal["s_plus_1", "like_q"]
    mlp_ratio: float
    dim_change: Literal["mlp", "attention"]
    rel_pos: RelPos
    residual_pool: ResidualPool
    qkv_bias: bool
    dropout: float
    loc: Loc
    scope: Literal["global", "mask_unit", "window"] = "global"
    window: Dims3 | None = None  # the fixed window of `scope window`
    scope_lag: bool = True  # a stage's first block keeps the previous stage's scope
    mask_unit: Dims3 | None = None  # Hiera's mask unit, in tokens of the patch grid
    qkv: Qkv = "fused"
    pool_first: bool = False
    layer_scale: float = 0.0


class Head(Node):
    """The classifier: LayerNorm, cls token or mean over the patch tokens, dropout, linear."""

    norm: bool
    pool: Literal["cls", "mean"]
    order: Literal["norm_pool", "pool_norm"] = "norm_pool"
    dropout: float
    classes: int
    loc: Loc


class Outputs(Node):
    """`outputs scale2, scale3, norm`: feature maps after these stages instead of logits."""

    stages: tuple[str, ...]
    norm: bool
    loc: Loc


class Budget(Node):
    """The guard rails of `mvitdsl check` (E306)."""

    params: float
    activation_gib: float


class Model(Node):
    """A whole model, lowered: what `build` emits and what `analyze` measures."""

    name: str
    input: Input
    patch: Patch
    tokens: Tokens
    attention: Attention
    stages: tuple[Stage, ...]
    blocks: tuple[Block, ...]
    head: Head
    drop_path: float
    norm_eps: float
    budget: Budget
    pool_norm_eps: float | None = None  # the Q/K/V pools' LayerNorms; None: norm_eps
    source_file: str
    loc: Loc  # the `model` line
    where: dict[str, Loc] = {}  # where each written setting is (a table: its key)

    def setting_loc(self, key: str) -> Loc:
        """Where the spec sets `key`; the model's first line when it does not."""
        return self.where.get(key, self.loc)

    outputs: Outputs | None = None

    @property
    def video(self) -> bool:
        return self.input.kind == "video"

    @property
    def spatial_dims(self) -> int:
        """3 for video (Conv3d and 3-D pooling), 2 for images (Conv2d, 2-D pooling)."""
        return 3 if self.video else 2

    def spatial(self, dims: Dims3) -> tuple[int, ...]:
        """`dims` as this model's convolutions see them: (T, H, W), or (H, W) for images."""
        return spatial(dims, self.video)
