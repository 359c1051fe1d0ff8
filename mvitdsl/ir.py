"""The IR: frozen pydantic models with every default filled and every stage expanded to blocks.

Grids and strides are always (T, H, W); image models have T = 1 and `input.kind == "image"`.
"""

from __future__ import annotations

from math import prod
from typing import Any, Literal, Protocol

from pydantic import ConfigDict

from . import ops
from .nodes import Dims3, Loc, Node, Pool, PoolMode, default_kernel, spatial, with_t
from .ops import AttentionOp, BlockOp
from .ops.attention import Qkv, RelPos, ResidualPool
from .ops.head import Head
from .ops.patch import Patch
from .ops.positions import Tokens

__all__ = [  # the building blocks live in nodes.py, the op records in ops/: one import here
    "Dims3",
    "Head",
    "Patch",
    "Tokens",
    "Loc",
    "Node",
    "Pool",
    "PoolMode",
    "Qkv",
    "RelPos",
    "ResidualPool",
    "default_kernel",
    "spatial",
    "with_t",
]


class Input(Node):
    """The clip (video) or picture (image) the model takes, without the batch dimension."""

    kind: Literal["video", "image"]
    channels: int
    size: Dims3
    grid_rounding: Literal["exact", "ceil"] = "exact"
    loc: Loc
    # the size the `input` line writes, where the model is checked and built at another (an
    # override, `resize`); the rules of the spec as written (a Swin window that fits its grid,
    # E309) hold there
    written: Dims3 | None = None

    @property
    def own(self) -> Dims3:
        """The spec's written input size."""
        return self.written or self.size

    def at(self, size: Dims3, channels: int | None = None) -> Input:
        """The same input at another (T, H, W) size, remembering the written one."""
        own = self.own
        update = {"size": size, "written": None if size == own else own}
        return self.model_copy(update={**update, "channels": channels or self.channels})


class Block(Node):
    """One block: its widths and heads, and the ops it holds (ops/: attention of one kind, the
    MLP, and where present the residual projection, the skip pool and layer scale), in the
    order their state-dict names come."""

    index: int
    stage: str
    dim_in: int
    dim_attn: int
    dim_out: int
    heads: int
    drop_path: float
    loc: Loc
    ops: tuple[BlockOp, ...]

    @property
    def attention_op(self) -> AttentionOp:
        """The block's attention (pooling, or windowed)."""
        return next(op for op in self.ops if isinstance(op, ops.attention.AttentionOptions))

    @property
    def pool_q(self) -> Pool:
        return self.attention_op.pool_q

    @property
    def pool_kv(self) -> Pool:
        return self.attention_op.pool_kv

    @property
    def pool_skip(self) -> Pool:
        """The residual's max-pool where Q is strided (kernel 1 elsewhere)."""
        found = next((op.pool for op in self.ops if isinstance(op, ops.SkipPool)), None)
        return found or Pool(mode="max", kernel=(1, 1, 1), stride=(1, 1, 1), padding=(0, 0, 0))

    @property
    def mlp_hidden(self) -> int:
        return next(op.hidden for op in self.ops if isinstance(op, ops.mlp.MlpOptions))

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
    stride_kv_written: Dims3 | None  # the row's stride_kv column: None when it writes none (the
    # running K/V stride applies; each block's is its pool_kv), (1, 1, 1) with K/V pooling off
    loc: Loc
    columns: dict[str, Loc] = {}  # where each column and `key=value` cell of the row is

    def column(self, name: str) -> Loc:
        """Where the row writes `name` (a column or a cell), else the whole row."""
        return self.columns.get(name, self.loc)


class Attention(Node):
    """The model-wide block options (a stage row may override the per-stage ones: the blocks
    carry the values in effect). The fields are the ones the lowering and the MViT block read;
    every other option of language/settings.py's `attention` (one an op module's `make` reads,
    e.g. Swin's `shift`, PVTv2's `reduce`) is held as data beside them, declared only in the
    table."""

    model_config = ConfigDict(frozen=True, extra="allow")

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
    dim_change: str  # one of the table's choices: `mlp`, `attention`, or an entering op's
    rel_pos: RelPos
    residual_pool: ResidualPool
    qkv_bias: bool
    dropout: float
    loc: Loc
    scope: Literal["global", "mask_unit", "window", "pooled_window"] = "global"
    window: Dims3 | None = None  # the fixed window of `scope window` or `scope pooled_window`
    scope_lag: bool = True  # a stage's first block keeps the previous stage's scope
    mask_unit: Dims3 | None = None  # Hiera's mask unit, in tokens of the patch grid
    qkv: Qkv = "fused"
    pool_first: bool = False
    layer_scale: float = 0.0
    stride_kv_global: Dims3 | None = None  # a listed global block's K/V stride, over the stage's


class Outputs(Node):
    """`outputs scale2, scale3, norm`: feature maps after these stages instead of logits."""

    stages: tuple[str, ...]
    norm: bool
    loc: Loc


class Budget(Node):
    """The guard rails of `mvitdsl check` (E306)."""

    params: float
    activation_gib: float


# the implementations a spec may name as the one its model equals (`reference SOURCE NAME`)
ReferenceSource = Literal["torchvision", "timm"]


class Reference(Node):
    """`reference timm swin_tiny_patch4_window7_224`: the implementation the spec's model equals,
    which `mvitdsl bench --against` and benchmarks/table.py build beside it (never inherited)."""

    source: ReferenceSource
    name: str
    loc: Loc


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


# ---------------------------------------------------------------- what later stages read of a spec
# The driver's mvitdsl.spec.Spec has all of these; a later stage names the narrowest it needs, so
# no stage imports the driver.


class HasModel(Protocol):
    """Anything that carries a lowered model (a checked spec)."""

    @property
    def model(self) -> Model: ...


class NamedModel(HasModel, Protocol):
    """A lowered model and the spec's name (bench, drawing)."""

    @property
    def name(self) -> str: ...


class Referenced(NamedModel, Protocol):
    """A named model and the implementation its spec states it equals, if any (bench)."""

    @property
    def reference(self) -> Reference | None: ...


class SpecSource(NamedModel, Protocol):
    """A lowered model with the resolved statements it came from and its path (diff, the
    resolved printer)."""

    @property
    def statements(self) -> tuple[Any, ...]: ...
    @property
    def path(self) -> str: ...
