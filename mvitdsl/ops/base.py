"""What every op module shares: the shape arithmetic on (T, H, W) grids, the flow of shapes
through a block, costs, the rules an op kind registers, and drawing as plain data.

Imports nothing of torch or graphviz: an op's emission imports torch inside its emit functions,
and its drawing is data that draw/block.py renders."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from math import lcm, prod
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

from ..nodes import Dims3, Node, Pool

if TYPE_CHECKING:
    from ..ir import Block, Model

Shape = tuple[int, ...]
Value = Any  # an fx.Node in the emitter (typed Any here: ops import torch only when emitting)


# ---------------------------------------------------------------- shape arithmetic


def window_out(n: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution or pooling window along one dim (PyTorch's floor rule)."""
    return (n + 2 * padding - kernel) // stride + 1


def grid_out(grid: Dims3, kernel: Dims3, stride: Dims3, padding: Dims3) -> Dims3:
    t, h, w = (window_out(n, k, s, p) for n, k, s, p in zip(grid, kernel, stride, padding))
    return (t, h, w)


def pooled(grid: Dims3, pool: Pool) -> Dims3:
    """The grid after a Q / K / V pooling; unchanged when the pooling does not exist."""
    return grid_out(grid, pool.kernel, pool.stride, pool.padding) if pool.exists else grid


def nominal(grid: Dims3, stride: Dims3) -> Dims3:
    """The reference implementations' bookkeeping grid, size // stride (used for positions)."""
    return (grid[0] // stride[0], grid[1] // stride[1], grid[2] // stride[2])


def lcm3(a: Dims3, b: Dims3) -> Dims3:
    """The per-dim least common multiple of two grids."""
    return (lcm(a[0], b[0]), lcm(a[1], b[1]), lcm(a[2], b[2]))


def tokens(grid: Dims3, cls: bool) -> int:
    return prod(grid) + int(cls)


def linear(rows: int, d_in: int, d_out: int, bias: bool = True) -> tuple[int, int]:
    """(params, MACs) of a Linear applied to `rows` tokens."""
    return d_in * d_out + (d_out if bias else 0), rows * d_in * d_out


# ---------------------------------------------------------------- flow and costs


@dataclass(frozen=True)
class BlockFlow:
    """The shape flow through one block; grids are (T, H, W), lengths include the cls token."""

    grid_in: Dims3
    nominal_in: Dims3
    grid_q: Dims3
    grid_kv: Dims3
    grid_skip: Dims3
    nominal_out: Dims3
    len_in: int
    len_q: int
    len_kv: int
    rel_pos: tuple[int, int, int] | None
    grid_entered: Dims3 | None = None  # the grid the branches see, when an op at `enter` changes it

    @property
    def grid_out(self) -> Dims3:
        return self.grid_q

    @property
    def grid_branches(self) -> Dims3:
        """The grid norm1 and the attention see: the input's, or the entered one."""
        return self.grid_entered or self.grid_in


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


# ---------------------------------------------------------------- drawing as data


@dataclass(frozen=True)
class DrawNode:
    """A node of a block drawing: id, label (lines joined by \\n) and graphviz attributes."""

    id: str
    label: str
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DrawEdge:
    tail: str
    head: str
    label: str
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SameRank:
    """Nodes drawn side by side, in this order."""

    ids: tuple[str, ...]


DrawItem = DrawNode | DrawEdge | SameRank


class Labels(Protocol):
    """The texts of one model's drawing (draw.diagram.Shapes): grids in its dimensionality."""

    video: bool
    cls: bool

    def grid(self, grid: Any) -> str: ...
    def size(self, grid: Dims3, channels: int | str) -> str: ...
    def pool(self, pool: Pool) -> str: ...


@dataclass(frozen=True)
class Sketch:
    """An op's part of a block drawing: its items, and the node and width its path ends at."""

    items: tuple[DrawItem, ...]
    end: str
    dim: int

    @classmethod
    def box(cls, node: str, label: str, src: str, edge: str, dim: int, fill: str = "") -> Sketch:
        """The common sketch: one node (filled with `fill` if given) fed by one edge from `src`,
        its path ending there at width `dim`."""
        attrs = {"fillcolor": fill} if fill else {}
        return cls((DrawNode(node, label, attrs), DrawEdge(src, node, edge)), node, dim)


def lines(*parts: str) -> str:
    """A multi-line label (graphviz's centred line break), empty parts left out."""
    return "\\n".join(p for p in parts if p)


# ---------------------------------------------------------------- what an op kind registers

FlowRule = Callable[["Model", "Block", Any, Dims3, Dims3], dict[str, Any]]
CostRule = Callable[["Model", "Block", Any, BlockFlow], Costs]
SavedRule = Callable[["Block", Any, BlockFlow], int]
ShapeRule = Callable[["Model", "Block", Any, BlockFlow], dict[str, Shape]]
CheckRule = Callable[[Any, "Block", Any, BlockFlow], bool]
RowRule = Callable[["Block", Any, BlockFlow], dict[str, Any]]
EmitRule = Callable[[Any, Any, Value, Value], Value]
DrawRule = Callable[["Block", Any, BlockFlow, Labels, str, int], Sketch]
PeriodRule = Callable[["Block", Any], Dims3]
MakeRule = Callable[["Making", tuple[Node, ...], Any], Node | None]

# The places of the pre-norm residual block where an op takes part, in the order they run
# (`enter`: before norm1, mapping the block input to the attention width; patch merging;
# `exit`: after the second residual add, on the block output; a stage's closing norm).
HOOKS = (
    "enter",
    "attend",
    "shortcut_attention",
    "scale_attention",
    "shortcut_mlp",
    "mlp",
    "scale_mlp",
    "exit",
)


# ---------------------------------------------------------------- made from settings, named

# The places of a block's op list that the ops made from settings fill (language/expand.py builds
# the pooling attention, the MLP, projection, skip pool and layer scale itself): `enter` (first,
# before norm1), `attention` (in place of the pooling attention, from it), `scope` (in place of
# that attention, from it: its windows; not in the blocks a row's `global` cell lists), `mlp` (in
# place of the plain MLP, from it), `exit` (last). A slot takes the first op its makers (in
# REGISTRY order) return; a maker also sees the ops made before its slot's.
SLOTS = ("enter", "attention", "scope", "mlp", "exit")


class Making(NamedTuple):
    """What a block's ops are made from: the options in effect for its stage (`opts`; the
    stage whose scope it keeps in `scope_opts`, named `scope_from` when not its own), its widths
    (in, attention, out), Q and K/V strides, the Q strides before it, its place in the stage."""

    opts: Mapping[str, Any]
    scope_opts: Mapping[str, Any]
    scope_from: str
    widths: tuple[int, int, int]
    stride_q: Dims3
    stride_kv: Dims3
    strides_before: Dims3
    j: int
    last: bool

    @property
    def changes(self) -> bool:
        """The block strides Q or changes width (where an entering op maps its input)."""
        return self.stride_q != (1, 1, 1) or self.widths[0] != self.widths[2]


@dataclass(frozen=True)
class StageName:
    """A reference dialect's name for an op a stage holds once (timm's `layers.{s}.downsample`,
    `parent` and `part`): ours is `ours` in the stage's first or last block."""

    parent: str
    part: str
    block: Literal["first", "last"]
    ours: str


@dataclass(frozen=True)
class Rules:
    """One op kind: its IR record and its rule for each pipeline stage (None: takes no part)."""

    kind: str
    record: type[Node]
    flow: FlowRule | None = None
    costs: CostRule | None = None
    saved: SavedRule | None = None  # activation elements a training step keeps
    shapes: ShapeRule | None = None  # state-dict entries, relative to `blocks.{i}.`
    check: CheckRule | None = None  # reports through the checker; True: stop the block's rules
    row: RowRule | None = None  # fields of the report's block row
    period: PeriodRule | None = None  # what the block's input grid must be a multiple of
    emit: dict[str, EmitRule] = field(default_factory=dict)  # HOOKS -> emission
    draw: dict[str, DrawRule] = field(default_factory=dict)  # HOOKS -> drawing
    slot: str = ""  # the SLOTS place its `make` fills
    make: MakeRule | None = None  # the op from a block's settings, or None where they ask for none
    names: tuple[tuple[str, str], ...] = ()  # reference names inside a block -> ours (regex, repl)
    stage_names: tuple[StageName, ...] = ()  # reference names of a stage's once-only ops


class EmitsModel(Protocol):
    """What an op's emit function may call on an emitter (backend.emit.Emitter)."""

    model: Model
    nd: int
    memo: dict[Any, Value]  # run-time sizes computed once per graph

    def module(self, target: str, module: Any, *args: Value) -> Value: ...
    def fn(self, target: Any, *args: Value, **kwargs: Value) -> Value: ...
    def method(self, name: str, *args: Value) -> Value: ...
    def attr(self, target: str, value: Any) -> Value: ...
    def grid(self, g: Dims3) -> Any: ...
    def layer_norm(self, target: str, dim: int, x: Value) -> Value: ...
    def split_cls(self, x: Value, dim: int) -> tuple[Value, Value]: ...
    def join_cls(self, cls: Value, x: Value, dim: int) -> Value: ...
    def graph_loc(self, node: Value, loc: Any) -> None: ...
    def grid_node(self) -> Value: ...


class Emits(EmitsModel, Protocol):
    """What a block op's emit function may call on the block emitter (BlockEmitter)."""

    block: Block
    flow: BlockFlow

    def graph_input(self) -> Value: ...
