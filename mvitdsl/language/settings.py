"""Every word of the language, declared once, as data: the one table.

Each option of each setting has a kind, its choices or range, its default, a one-line doc, an
example, its older spellings and the word a sweep PATH may also name it by; the stage table's
columns have their kinds and limits. Every consumer reads this table: the reader (read.py:
values, columns, cells, old spellings with W001), the lowering (lower.py: required settings,
defaults), merge's exclusive flags (merge.py), the resolved printer (resolved.py), `fmt`
(old spellings rewritten), sweep PATHs and their aliases (overrides.py), and docs/LANGUAGE.md
(docs.py, `make docs`; tests/test_language_doc.py fails when it is stale). An option marked
`per_stage` may also be written as a `key=value` cell in a stage row, where it overrides the
model-wide value for that stage's blocks. What a number, a size and a name are: lexical.py.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["flag", "word", "switch", "number", "integer", "size", "indexes", "custom"]


@dataclass(frozen=True)
class Range:
    """A closed or half-open interval of numbers: [lo, hi], (lo, hi], [lo, hi) ..."""

    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False

    def __contains__(self, value: float) -> bool:
        above = value > self.lo if self.lo_open else value >= self.lo
        below = value < self.hi if self.hi_open else value <= self.hi
        return above and below

    def __str__(self) -> str:
        return (
            f"{'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"
        )


@dataclass(frozen=True)
class Option:
    """One option word of a setting, with everything the reader, lowering and docs need."""

    word: str
    kind: Kind
    default: Any
    doc: str
    example: str
    choices: tuple[str, ...] = ()
    range: Range | None = None
    per_stage: bool = False
    key: str = ""  # the Draft / IR key it sets; the word when empty
    what: str = ""  # what messages call the value; the word when empty
    default_text: str = ""  # how the docs state the default when it is not a plain value
    old: tuple[str, ...] = ()  # older spellings: still read, with warning W001; fmt rewrites them
    path: str = ""  # the word a sweep PATH also names the value by (`patch.dim` for `->`)

    @property
    def field(self) -> str:
        return self.key or self.word

    @property
    def spellings(self) -> tuple[str, ...]:
        """The word and its older spellings."""
        return (self.word, *self.old)

    @property
    def name(self) -> str:
        return self.what or self.word


@dataclass(frozen=True)
class Setting:
    """A setting: a key and its options, in the order the docs list them."""

    key: str
    doc: str
    example: str
    options: tuple[Option, ...]
    required: bool = False

    def option(self, word: str) -> Option:
        return next(o for o in self.options if o.word == word)

    def renamed(self) -> dict[str, str]:
        """Old spelling -> option word, for the options renamed in this setting."""
        return {old: o.word for o in self.options for old in o.old}

    def exclusive(self) -> tuple[tuple[str, ...], ...]:
        """Flags that set one field and so exclude each other (`cls` / `no_cls`)."""
        fields = dict.fromkeys(o.field for o in self.options if o.kind == "flag")
        groups = (
            tuple(o.word for o in self.options if o.kind == "flag" and o.field == f) for f in fields
        )
        return tuple(g for g in groups if len(g) > 1)


UNIT = Range(0, 1, hi_open=True)  # probabilities that must leave something: dropout, drop path
COUNT = Range(1, 1_000_000)  # widths, sizes, blocks: anything larger is a typo
MAX_INT = 1_000_000

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "input",
        "the clip (video CxTxHxW) or picture (image CxHxW) the model takes",
        "input video 3x16x224x224",
        (
            Option(
                "video",
                "custom",
                None,
                "a clip: channels x frames x height x width",
                "input video 3x16x224x224",
                range=COUNT,
                key="kind",
                path="size",
            ),
            Option(
                "image",
                "custom",
                None,
                "a picture: channels x height x width",
                "input image 3x224x224",
                range=COUNT,
                key="kind",
                path="size",
            ),
            Option(
                "grid_rounding",
                "word",
                "exact",
                "`ceil` accepts grids that a Q stride does not divide (reference ceil rule)",
                "input image 3x225x225, grid_rounding ceil",
                choices=("exact", "ceil"),
            ),
        ),
        required=True,
    ),
    Setting(
        "patch",
        "the patch embedding: a strided Conv3d (video) or Conv2d (image)",
        "patch conv 3x7x7 stride 2x4x4 pad 1x3x3 -> 96",
        (
            Option(
                "conv",
                "size",
                None,
                "the kernel",
                "patch conv 3x7x7",
                range=COUNT,
                key="kernel",
                default_text="required",
                path="kernel",
            ),
            Option(
                "stride",
                "size",
                None,
                "the stride",
                "patch conv 4x4 stride 4x4",
                range=COUNT,
                default_text="the kernel",
            ),
            Option(
                "pad",
                "size",
                (0, 0, 0),
                "the zero padding",
                "patch conv 3x3 pad 1x1",
                range=Range(0, MAX_INT),
                key="padding",
                default_text="0",
                path="padding",
            ),
            Option(
                "->",
                "integer",
                None,
                "the embedding width",
                "patch conv 4x4 -> 96",
                range=COUNT,
                key="dim",
                what="embed dim",
                default_text="the first stage's dim",
                path="dim",
            ),
            Option(
                "norm",
                "switch",
                False,
                "a LayerNorm over the tokens after the convolution (Swin)",
                "patch conv 4x4 stride 4x4 -> 96, norm on",
            ),
        ),
        required=True,
    ),
    Setting(
        "tokens",
        "the cls token and the absolute position embedding",
        "tokens cls, position separable",
        (
            Option("cls", "flag", True, "prepend a learned class token", "tokens cls"),
            Option("no_cls", "flag", False, "no class token", "tokens no_cls", key="cls"),
            Option(
                "position",
                "word",
                "none",
                "absolute positions: none, separable "
                "(temporal + spatial, torchvision v1), joint (one table), sincos (a fixed "
                "3-D sin-cos table, SlowFast USE_FIXED_SINCOS_POS; width a multiple of 16) or "
                "windowed (SAM2: a `pos_table` interpolated bicubically to the grid plus a "
                "`pos_window` table tiled over it)",
                "tokens cls, position joint",
                choices=("none", "separable", "joint", "sincos", "windowed"),
            ),
            Option(
                "pos_table",
                "size",
                None,
                "with `position windowed`: the G x G table, interpolated bicubically (no "
                "antialias) to the token grid at every forward",
                "tokens no_cls, position windowed, pos_table 7x7, pos_window 8x8",
                range=COUNT,
                default_text="none",
            ),
            Option(
                "pos_window",
                "size",
                None,
                "with `position windowed`: the window table tiled over the token grid (the grid "
                "must be whole windows of it)",
                "tokens no_cls, position windowed, pos_table 7x7, pos_window 8x8",
                range=COUNT,
                default_text="none",
            ),
        ),
    ),
    Setting(
        "attention",
        "block options for every block; those marked per-stage can be overridden in a stage row",
        "attention pool conv 3x3x3, pool_q_blocks first, stride_kv adaptive 1x8x8",
        (
            Option(
                "pool",
                "custom",
                "conv",
                "pooling mode of Q, K and V, and optionally the kernel of both",
                "attention pool avg 3x3x3",
                choices=("conv", "avg", "max"),
                per_stage=True,
                key="pool_mode",
            ),
            Option(
                "kernel_q",
                "size",
                None,
                "Q pooling kernel",
                "attention kernel_q 3x3x3",
                range=COUNT,
                per_stage=True,
                default_text="s+1 rule from the stride",
            ),
            Option(
                "kernel_kv",
                "size",
                None,
                "K/V pooling kernel",
                "attention kernel_kv 3x3x3",
                range=COUNT,
                per_stage=True,
                default_text="s+1 rule from the stride",
            ),
            Option(
                "pool_q_blocks",
                "word",
                "first",
                "pool Q only where strided (first, v1) or in every block (all, v2)",
                "attention pool_q_blocks all",
                choices=("first", "all"),
                per_stage=True,
                old=("pool_q",),  # issue 12  # rename_vocab: keep
            ),
            Option(
                "stride_kv",
                "custom",
                None,
                "K/V stride; `adaptive` divides it by each Q stride",
                "attention stride_kv adaptive 1x8x8",
                range=COUNT,
                default_text="1 (no K/V stride)",
                old=("kv_stride",),  # issue 12  # rename_vocab: keep
            ),
            Option(
                "pool_kv",
                "switch",
                True,
                "K/V pooling on or off (the stage row's `off` cell is `pool_kv=off`)",
                "attention pool_kv off",
                per_stage=True,
            ),
            Option(
                "pool_pad",
                "word",
                "half",
                "pooling padding: half the kernel (k//2) or zero",
                "attention pool_pad zero",
                choices=("half", "zero"),
                per_stage=True,
            ),
            Option(
                "skip_pool",
                "word",
                "s_plus_1",
                "the residual's max-pool where Q is strided: "
                "kernel s+1 (padding k//2), or like_q (Q's kernel and stride, padding 0)",
                "attention skip_pool like_q",
                choices=("s_plus_1", "like_q"),
                per_stage=True,
            ),
            Option(
                "mlp_ratio",
                "number",
                4.0,
                "MLP hidden width over the block's width",
                "attention mlp_ratio 2",
                range=Range(0, 64, lo_open=True),
                per_stage=True,
            ),
            Option(
                "dim_change",
                "word",
                "mlp",
                "where a stage changes width: the last block's "
                "MLP (v1), the first block's attention (v2), patch merging before the first "
                "block (Swin: each stride_q neighbourhood concatenated, LayerNorm, Linear), or an "
                "overlapping conv embedding before it (PVTv2: kernel s+1, stride s, padding "
                "k//2, LayerNorm)",
                "attention dim_change attention",
                choices=("mlp", "attention", "merge", "embed"),
            ),
            Option(
                "rel_pos",
                "word",
                "none",
                "relative positions: MViTv2's decomposed tables, or Swin's bias table "
                "(one learned bias per head and window offset; needs `scope window`)",
                "attention rel_pos decomposed",
                choices=("none", "decomposed", "table"),
                per_stage=True,
            ),
            Option(
                "residual_pool",
                "word",
                "none",
                "MViTv2's residual pooling: add pooled Q "
                "to the attention output (tokens: not the cls token)",
                "attention residual_pool all",
                choices=("none", "tokens", "all"),
                per_stage=True,
            ),
            Option(
                "qkv_bias",
                "switch",
                True,
                "bias of the q, k, v projection",
                "attention qkv_bias off",
                per_stage=True,
            ),
            Option(
                "scope",
                "word",
                "global",
                "what a query attends to: every token (global), the tokens of its mask-unit "
                "window (Hiera), or of a fixed `window` (HieraDet), or windows of the pooled q, "
                "k, v (pooled_window, detectron2's MViTv2: Q window = window / stride_q, K/V "
                "window = window / stride_kv, pooled grids zero-padded to whole windows); a "
                "stage's first block keeps the previous stage's scope",
                "attention mask_unit 8x8, scope mask_unit",
                choices=("global", "mask_unit", "window", "pooled_window"),
                per_stage=True,
            ),
            Option(
                "scope_lag",
                "switch",
                True,
                "a stage's first block keeps the previous stage's scope (Hiera, HieraDet); "
                "`scope_lag=off` on a row that continues a stage makes per-block exceptions "
                "(e.g. one global block) by splitting the stage",
                "s3b  1  576  8  1x1  scope=global scope_lag=off",
                per_stage=True,
            ),
            Option(
                "window",
                "size",
                None,
                "with `scope window`: the window, in tokens of the grid the block's K/V see "
                "(the Q window is it over the block's Q stride); with `scope pooled_window`: in "
                "tokens of the block's input grid (Q and K/V windows are it over their strides)",
                "s2  2  192  2  2x2  scope=window window=14x14",
                range=COUNT,
                per_stage=True,
                default_text="none",
            ),
            Option(
                "stride_kv_global",
                "size",
                None,
                "the K/V stride of the blocks a stage's `global` cell lists, as a multiple of "
                "the stage's K/V stride (detectron2's MViTv2: 2x2 in stages 3 and 4)",
                "scale3  2  192  2  2x2  global=1 stride_kv_global=2x2",
                range=COUNT,
                per_stage=True,
                default_text="none (the stage's)",
            ),
            Option(
                "shift",
                "word",
                "none",
                "with `scope window`: Swin's shifted windows: every other block of a stage rolls "
                "the grid by half a window and masks the tokens the roll made neighbours (not "
                "where the grid is one window)",
                "attention scope window, window 7x7, shift alternate",
                choices=("none", "alternate"),
                per_stage=True,
            ),
            Option(
                "mask_unit",
                "size",
                None,
                "the mask unit in tokens at the patch grid; the window of `scope mask_unit` is "
                "the mask unit divided by the Q strides applied before the block",
                "attention mask_unit 8x8, scope mask_unit",
                range=COUNT,
                default_text="none",
            ),
            Option(
                "qkv",
                "word",
                "fused",
                "the q, k, v projections: one fused Linear (torchvision, timm) or three "
                "(separate: pytorchvideo, SlowFast SEPARATE_QKV)",
                "attention qkv separate",
                choices=("fused", "separate"),
                per_stage=True,
            ),
            Option(
                "pool_first",
                "switch",
                False,
                "pool the normed input before separate q, k, v projections (pytorchvideo, "
                "SlowFast POOL_FIRST; the pools work on the input width's heads)",
                "attention qkv separate, pool_first on",
                per_stage=True,
            ),
            Option(
                "layer_scale",
                "number",
                0.0,
                "layer scale: learned per-channel gammas, initialised to this value, that "
                "multiply the attention and MLP branches (SlowFast LAYER_SCALE_INIT_VALUE; 0: off)",
                "attention layer_scale 1e-4",
                range=Range(0, 1e6),
                per_stage=True,
            ),
            Option(
                "reduce",
                "integer",
                None,
                "PVTv2's spatial-reduction attention: q from every token, k and v from the "
                "tokens reduced by a conv of this kernel and stride and a LayerNorm (1: none)",
                "s2  2  64  1  1x1  reduce=8",
                range=COUNT,
                per_stage=True,
                default_text="none",
            ),
            Option(
                "reduce_mode",
                "word",
                "conv",
                "with `reduce`: the strided conv, or `linear` (PVTv2-li): k and v from the "
                "tokens average-pooled to 7x7, a 1x1 conv, LayerNorm and GELU, and a ReLU "
                "before the MLP's conv",
                "attention reduce_mode linear",
                choices=("conv", "linear"),
            ),
            Option(
                "mlp_conv",
                "switch",
                False,
                "a depthwise 3x3 conv (with bias) between the MLP's first Linear and its GELU "
                "(PVTv2)",
                "attention mlp_conv on",
                per_stage=True,
            ),
            Option(
                "stage_norm",
                "switch",
                False,
                "a LayerNorm after each stage's last block (PVTv2)",
                "attention stage_norm on",
            ),
            Option(
                "dropout",
                "number",
                0.0,
                "dropout after the attention projection and in the MLP",
                "attention dropout 0.1",
                range=UNIT,
            ),
        ),
    ),
    Setting(
        "head",
        "the classifier: LayerNorm, pooling, dropout, linear",
        "head norm, cls, dropout 0.5, classes 400",
        (
            Option("norm", "flag", True, "a LayerNorm in the head", "head norm, mean"),
            Option(
                "no_norm",
                "flag",
                False,
                "no LayerNorm in the head",
                "head no_norm, mean",
                key="norm",
            ),
            Option(
                "cls",
                "flag",
                "cls",
                "classify from the cls token",
                "head cls",
                key="pool",
                default_text="cls with a cls token, else mean",
            ),
            Option(
                "mean",
                "flag",
                "mean",
                "classify from the mean over the patch tokens (never the cls token)",
                "head mean",
                key="pool",
                default_text="cls with a cls token, else mean",
            ),
            Option(
                "order",
                "word",
                "norm_pool",
                "norm_pool: LayerNorm over every token, then "
                "pool (timm, torchvision); pool_norm: pool, then LayerNorm (Hiera)",
                "head norm, mean, order pool_norm",
                choices=("norm_pool", "pool_norm"),
            ),
            Option(
                "dropout",
                "number",
                0.0,
                "dropout before the linear layer",
                "head dropout 0.5",
                range=UNIT,
            ),
            Option(
                "classes",
                "integer",
                1000,
                "number of classes",
                "head classes 400",
                range=Range(1, 10 * MAX_INT),
            ),
        ),
    ),
    Setting(
        "train",
        "training-only options",
        "train drop_path 0.2",
        (
            Option(
                "drop_path",
                "number",
                0.0,
                "stochastic depth, linear over the blocks up to "
                "this rate (per stage: that stage's blocks use this peak)",
                "train drop_path 0.2",
                range=UNIT,
                per_stage=True,
            ),
        ),
    ),
    Setting(
        "norm",
        "LayerNorm options",
        "norm eps 1e-6",
        (
            Option(
                "eps",
                "number",
                1e-6,
                "LayerNorm epsilon",
                "norm eps 1e-5",
                range=Range(0, 1, lo_open=True),
                key="norm_eps",
            ),
            Option(
                "pool_eps",
                "number",
                None,
                "epsilon of the LayerNorms right after a convolution: the Q, K, V conv pools "
                "(pytorchvideo: 1e-5), the patch embedding's `norm`, and PVTv2's stage "
                "embeddings and spatial reduction (timm: 1e-5)",
                "norm eps 1e-6, pool_eps 1e-5",
                range=Range(0, 1, lo_open=True),
                key="pool_norm_eps",
                default_text="eps",
            ),
        ),
    ),
    Setting(
        "budget",
        "raise the guard rails of `mvitdsl check` (refused above: E306)",
        "budget params 4e9, activation_gib 256",
        (
            Option(
                "params",
                "number",
                2e9,
                "most parameters",
                "budget params 4e9",
                range=Range(0, 1e15, lo_open=True),
            ),
            Option(
                "activation_gib",
                "number",
                128.0,
                "most GiB of activations in a training step at batch 1 (fp32)",
                "budget activation_gib 256",
                range=Range(0, 1e9, lo_open=True),
            ),
        ),
    ),
)

BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}
# The statements read outside this table, each by its own reader: `outputs` (read.py), `expect`
# (expect.py) and `reference` (reference.py); the docs, the editor's grammar and the highlighter
# list them beside SETTINGS.
STATEMENTS: tuple[str, ...] = ("outputs", "expect", "reference")

# Old spelling -> option word, over every setting (W001 when read; `fmt` rewrites them).
RENAMED_OPTIONS: dict[str, str] = {k: v for s in SETTINGS for k, v in s.renamed().items()}

MAX_BLOCKS = 512
MAX_ROWS = 64


@dataclass(frozen=True)
class Column:
    """A positional column of the stage table: its kind and limits."""

    word: str
    kind: Literal["name", "integer", "size", "stride_kv"]
    doc: str
    range: Range | None = None
    old: tuple[str, ...] = ()  # older words a sweep PATH still names the column by
    optional: bool = False


# The stage table: positional columns, then `key=value` cells.
COLUMNS: tuple[Column, ...] = (
    Column("name", "name", "the stage's name (a child spec overrides a row by it)"),
    Column("blocks", "integer", "number of blocks", Range(1, MAX_BLOCKS)),
    Column("dim", "integer", "the stage's width", COUNT),
    Column("heads", "integer", "attention heads", Range(1, 4096)),
    Column(
        "stride_q",
        "size",
        "the Q stride of the stage's first block (1x1x1: none)",
        COUNT,
        old=("pool_q",),  # the column's PATH word before issue 12  # rename_vocab: keep
    ),
    Column(
        "stride_kv",
        "stride_kv",
        "optional: the K/V stride (a size), or `off` for no K/V pooling (the cell `pool_kv=off`)",
        COUNT,
        optional=True,
    ),
)
COLUMN_WORDS: tuple[str, ...] = tuple(c.word for c in COLUMNS)
STAGES_HINT = "add a 'stages { ... }' table with one row per stage"

# Cells that only a stage row has (not a model-wide option).
ROW_CELLS: tuple[Option, ...] = (
    Option(
        "dim_out",
        "integer",
        None,
        "with `dim_change mlp`: the width the stage's last "
        "block's MLP outputs (a channel change in the final block)",
        "s4  1  768  8  1x1  dim_out=1024",
        range=COUNT,
        per_stage=True,
        default_text="the next stage's dim",
    ),
    Option(
        "global",
        "indexes",
        (),
        "the stage's blocks (0-based within the stage, a comma list without spaces, or one "
        "index) that attend globally whatever the stage's scope (SAM2's global_att_blocks)",
        "scale4  7  384  4  2x2  global=2,4,6",
        range=Range(0, MAX_BLOCKS - 1),
        per_stage=True,
        key="global_blocks",
        what="global block",
        default_text="none",
    ),
)


def required() -> dict[str, str]:
    """The statements a model must write, in the order they are reported, each with a hint."""
    out = {s.key: f"add '{s.example}'" for s in SETTINGS if s.required}
    out["stages"] = STAGES_HINT
    return out


def stage_cells() -> dict[str, tuple[str, Option]]:
    """Every `key=value` cell a stage row accepts: key -> (setting, option)."""
    out = {o.word: (s.key, o) for s in SETTINGS for o in s.options if o.per_stage}
    out.update({o.word: ("stages", o) for o in ROW_CELLS})
    return out


def defaults(key: str) -> dict[str, Any]:
    """The default of every field of a setting (flags: the default of their field); a fresh
    dict, the caller's to change."""
    return dict(_defaults(key))


@functools.cache
def _defaults(key: str) -> dict[str, Any]:
    # read once per setting: the table is constant (a sweep lowers thousands of variants)
    out: dict[str, Any] = {}
    for o in BY_KEY[key].options:
        if o.kind == "flag":
            out.setdefault(o.field, o.default)
        else:
            out[o.field] = o.default
    return out
