"""IR -> torch.fx.GraphModule, built node by node (nothing is traced).

The top-level GraphModule calls `blocks.{i}`, each a GraphModule of its own, so checkpointing,
FSDP wrapping and regional compilation can work per block. Parameter names are torchvision's,
so its MViT state_dicts load with strict=True.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from ..analysis import naming, shapes
from ..analysis.graph import BlockFlow, blocks_in_order, build_graph
from ..ir import Block, Dims3, Loc, Model, Pool
from . import runtime

Arg = Any


def stack_trace(loc: Loc, model: str) -> str:
    """A traceback-shaped string, so gm.print_readable() shows the .mv line above each node."""
    return f'  File "{loc.file}", line {loc.line}, in {model}\n    {loc.text}\n'


class Emitter:
    """Appends nodes to one fx.Graph and collects the modules the nodes call, by target name."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.graph = fx.Graph()
        self.modules: dict[str, Any] = {}
        self.nd = model.spatial_dims

    def module(self, target: str, module: nn.Module, *args: Arg) -> fx.Node:
        self.modules[target] = module
        return self.graph.call_module(target, args)

    def fn(self, target: Any, *args: Arg, **kwargs: Arg) -> fx.Node:
        return self.graph.call_function(target, args, kwargs)

    def method(self, name: str, *args: Arg) -> fx.Node:
        return self.graph.call_method(name, args)

    def attr(self, target: str, value: torch.Tensor) -> fx.Node:
        self.modules[target] = value
        return self.graph.get_attr(target)

    def finish(self, output: fx.Node, loc: Loc, class_name: str) -> fx.GraphModule:
        self.graph.output(output)
        trace = stack_trace(loc, self.model.name)
        for node in self.graph.nodes:
            node.meta.setdefault("stack_trace", trace)
        gm = fx.GraphModule(self.modules, self.graph, class_name=class_name)
        gm.graph.lint()  # every node well-formed, every target present: fail here, not at run time
        return gm

    def grid(self, g: Dims3) -> Any:  # (T, H, W) for video, (H, W) for images
        return self.model.spatial(g)

    # -- shared pieces

    def layer_norm(self, target: str, dim: int, x: fx.Node) -> fx.Node:
        return self.module(target, nn.LayerNorm(dim, eps=self.model.norm_eps), x)

    def split_cls(
        self,
        x: fx.Node,
        dim: int,
        length: int | None = None,
    ) -> tuple[fx.Node | None, fx.Node]:
        """(cls token, the other tokens) along the sequence dim; (None, x) without cls.
        Given the length, one split_with_sizes: its backward is one cat, not two zero-filled
        full-size tensors as for two slices."""
        if not self.model.tokens.cls:
            return None, x
        if length is not None:
            parts = self.method("split", x, [1, length - 1], dim)
            return self.fn(operator.getitem, parts, 0), self.fn(operator.getitem, parts, 1)
        before = (slice(None),) * dim
        return (
            self.fn(operator.getitem, x, before + (slice(None, 1),)),
            self.fn(operator.getitem, x, before + (slice(1, None),)),
        )

    def join_cls(self, cls: fx.Node | None, x: fx.Node, dim: int) -> fx.Node:
        return x if cls is None else self.fn(torch.cat, [cls, x], dim=dim)


class BlockEmitter(Emitter):
    """One MHPA block: x (B, L_in, C_in) -> (B, L_q, C_out)."""

    def __init__(self, model: Model, block: Block, flow: BlockFlow) -> None:
        super().__init__(model)
        self.block, self.flow = block, flow

    def emit(self) -> fx.GraphModule:
        b, m = self.block, self.model
        x = self.graph.placeholder("x")
        x_norm = self.layer_norm(naming.NORM1, b.dim_in, x)
        attn = self.attention(x_norm)
        v2_proj = b.has_project and m.attention.dim_change == "attention"
        res = self.module(naming.PROJECT, nn.Linear(b.dim_in, b.dim_out), x_norm) if v2_proj else x
        if b.has_skip_pool:
            res = self.skip_pool(res, b.dim_attn)
        attn = self.layer_scale("gamma_1", b.dim_attn, attn)
        x = self.fn(operator.add, res, self.drop_path(attn))
        x_norm2 = self.layer_norm(naming.NORM2, b.dim_attn, x)
        v1_proj = b.has_project and m.attention.dim_change == "mlp"
        res2 = (
            self.module(naming.PROJECT, nn.Linear(b.dim_in, b.dim_out), x_norm2) if v1_proj else x
        )
        mlp = self.layer_scale("gamma_2", b.dim_out, self.mlp(x_norm2))
        x = self.fn(operator.add, res2, self.drop_path(mlp))
        return self.finish(x, b.loc, f"Block{b.index}")

    def layer_scale(self, target: str, dim: int, x: fx.Node) -> fx.Node:
        """SlowFast's layer scale: x * gamma, gamma learned, initialised to the set value."""
        if not self.block.layer_scale:
            return x
        gamma = nn.Parameter(torch.full((dim,), self.block.layer_scale))
        return self.fn(operator.mul, x, self.attr(target, gamma))

    def drop_path(self, x: fx.Node) -> fx.Node:
        if self.block.drop_path == 0.0:
            return x
        return self.module(naming.DROP_PATH, runtime.DropPath(self.block.drop_path), x)

    def mlp(self, x: fx.Node) -> fx.Node:
        b = self.block
        h = self.module(naming.MLP_FC1, nn.Linear(b.dim_attn, b.mlp_hidden), x)
        h = self.module(naming.MLP_ACT, nn.GELU(), h)
        if self.model.attention.dropout > 0:
            h = self.module(naming.MLP_DROP1, nn.Dropout(self.model.attention.dropout), h)
        h = self.module(naming.MLP_FC2, nn.Linear(b.mlp_hidden, b.dim_out), h)
        if self.model.attention.dropout > 0:
            h = self.module(naming.MLP_DROP2, nn.Dropout(self.model.attention.dropout), h)
        return h

    def attention(self, x: fx.Node) -> fx.Node:
        b, flow, att = self.block, self.flow, self.model.attention
        hd = b.head_dim
        if b.pool_first:
            q, k, v = self.pool_first_qkv(x)
        else:
            q, k, v = self.qkv(x)
            k = self.pool(naming.pool("k"), k, b.pool_kv)
            v = self.pool(naming.pool("v"), v, b.pool_kv)
            q = self.pool(naming.pool("q"), q, b.pool_q)
        if b.window is not None:
            o = self.windowed(q, k, v)
        else:
            mask = self.rel_pos(q) if flow.rel_pos is not None else None
            o = self.fn(F.scaled_dot_product_attention, q, k, v, attn_mask=mask, scale=hd**-0.5)
        o = self.residual_pool(o, q)
        # (B, heads, L_q, hd) -> (B, L_q, A)
        o = self.method("transpose", o, 1, 2)
        o = self.method("reshape", o, -1, flow.len_q, b.dim_attn)
        o = self.module(naming.ATTN_PROJECT, nn.Linear(b.dim_attn, b.dim_attn), o)
        if att.dropout > 0:
            o = self.module(naming.ATTN_DROPOUT, nn.Dropout(att.dropout), o)
        return o

    def windowed(self, q: fx.Node, k: fx.Node, v: fx.Node) -> fx.Node:
        """Attention inside mask-unit windows, in raster layout: partition Q (its grid, the Q
        window) and K/V (theirs, the K/V window) into the same windows, attend, merge back."""
        b, flow = self.block, self.flow
        assert b.window is not None and b.window_q is not None
        qw = self.fn(runtime.window_partition, q, flow.grid_q, b.window_q)
        kw = self.fn(runtime.window_partition, k, flow.grid_kv, b.window)
        vw = self.fn(runtime.window_partition, v, flow.grid_kv, b.window)
        o = self.fn(F.scaled_dot_product_attention, qw, kw, vw, scale=b.head_dim**-0.5)
        return self.fn(runtime.window_merge, o, b.heads, flow.grid_q, b.window_q)

    def qkv(self, x: fx.Node) -> tuple[fx.Node, fx.Node, fx.Node]:
        """q, k, v as (B, L, A): views of one fused Linear, or three separate Linears."""
        b, a = self.block, self.block.dim_attn
        if b.qkv == "separate":
            return (
                self.module("attn.q", nn.Linear(b.dim_in, a, bias=b.qkv_bias), x),
                self.module("attn.k", nn.Linear(b.dim_in, a, bias=b.qkv_bias), x),
                self.module("attn.v", nn.Linear(b.dim_in, a, bias=b.qkv_bias), x),
            )
        qkv = self.module(naming.QKV, nn.Linear(b.dim_in, 3 * a, bias=b.qkv_bias), x)
        # (B, L, 3A) -> (B, L, 3, A) -> q, k, v as (B, L, A) views, read channels-last by the
        # pools; unbind's backward is one stack, not three zero-filled copies of qkv
        qkv = self.method("unbind", self.method("unflatten", qkv, 2, (3, a)), 2)
        q, k, v = (self.fn(operator.getitem, qkv, i) for i in range(3))
        return q, k, v

    def pool_first_qkv(self, x: fx.Node) -> tuple[fx.Node, fx.Node, fx.Node]:
        """Pool-first (pytorchvideo, SlowFast POOL_FIRST): pool the normed input, split into
        the block's heads, then project each of q, k, v: -> (B, heads, L', hd)."""
        b = self.block
        out = []
        for which, pool in (("q", b.pool_q), ("k", b.pool_kv), ("v", b.pool_kv)):
            t = self.pool(naming.pool(which), x, pool, b.pool_head_dim)
            t = self.method("flatten", self.method("transpose", t, 1, 2), 2)  # (B, L', C_in)
            linear = nn.Linear(b.dim_in, b.dim_attn, bias=b.qkv_bias)
            t = self.module(f"attn.{which}", linear, t)
            t = self.method("unflatten", t, 2, (b.heads, b.head_dim))
            out.append(self.method("transpose", t, 1, 2))
        return out[0], out[1], out[2]

    def pool(self, target: str, x: fx.Node, pool: Pool, hd: int | None = None) -> fx.Node:
        """Pool one of q, k, v: (B, L, heads * hd) -> (B, heads, L', hd); cls bypasses it.

        The pool runs channels-last on all heads at once (one depthwise conv over A channels,
        the per-head kernel shared), reading a view of x."""
        b, flow = self.block, self.flow
        heads, hd = b.heads, hd or b.head_dim
        if pool.exists:
            cls, t = self.split_cls(x, 1, flow.len_in)
            t = self.channels_last(t, flow.grid_in)
            t = self.pool_op(target + naming.POOL_CONV, t, pool, hd)
            # (B, A, T', H', W') channels-last -> (B, T'H'W', A): a view
            t = self.method("flatten", t, 2)
            t = self.method("transpose", t, 1, 2)
            x = self.join_cls(cls, t, 1)
        # (B, L', A) -> (B, L', heads, hd) [-> LayerNorm(hd)] -> (B, heads, L', hd)
        x = self.method("unflatten", x, 2, (heads, hd))
        if pool.exists and pool.mode == "conv":
            eps = self.model.pool_norm_eps
            norm = nn.LayerNorm(hd, eps=self.model.norm_eps if eps is None else eps)
            x = self.module(target + naming.POOL_NORM, norm, x)
        return self.method("transpose", x, 1, 2)

    def channels_last(self, t: fx.Node, grid: Dims3) -> fx.Node:
        """(B, THW, C) -> (B, C, T, H, W): a strided channels-last view, no copy (the CPU
        layer makes a dense copy in inference: backend/optimize.py)."""
        t = self.method("transpose", t, 1, 2)
        return self.method("unflatten", t, 2, self.grid(grid))

    def pool_op(self, target: str, t: fx.Node, pool: Pool, hd: int) -> fx.Node:
        kernel, stride, padding = (self.grid(v) for v in (pool.kernel, pool.stride, pool.padding))
        if pool.mode == "conv":
            # torchvision's per-head Conv3d(hd, hd, groups=hd) weight; depthwise_conv shares
            # it over the heads
            conv = nn.Conv3d if self.nd == 3 else nn.Conv2d
            made = conv(hd, hd, kernel, stride=stride, padding=padding, groups=hd, bias=False)
            w = self.attr(target + ".weight", made.weight)
            return self.fn(runtime.depthwise_conv, t, w, stride, padding)
        fns = {
            ("max", 3): F.max_pool3d,
            ("max", 2): F.max_pool2d,
            ("avg", 3): F.avg_pool3d,
            ("avg", 2): F.avg_pool2d,
        }
        return self.fn(fns[pool.mode, self.nd], t, kernel, stride, padding)

    def skip_pool(self, x: fx.Node, dim: int) -> fx.Node:
        """Max-pool the residual like Q, channels-last: (B, L_in, C) -> (B, L_q, C)."""
        flow, skip = self.flow, self.block.pool_skip
        kernel, stride, padding = skip.kernel, skip.stride, skip.padding
        cls, t = self.split_cls(x, 1, flow.len_in)
        # (B, THW, C) -> (B, C, T, H, W): a view of x (saved by norm1 anyway), so training
        # keeps no extra copy; at batch 1 it is already dense channels-last
        t = self.method("transpose", t, 1, 2)
        t = self.method("unflatten", t, 2, self.grid(flow.grid_in))
        pool = F.max_pool3d if self.nd == 3 else F.max_pool2d
        t = self.fn(pool, t, self.grid(kernel), self.grid(stride), self.grid(padding))
        # (B, C, T', H', W') channels-last -> (B, T'H'W', C): a view
        t = self.method("flatten", t, 2)
        t = self.method("transpose", t, 1, 2)
        return self.join_cls(cls, t, 1)

    def rel_pos(self, q: fx.Node) -> fx.Node:
        flow, hd = self.flow, self.block.head_dim
        assert flow.rel_pos is not None
        t_len, h_len, w_len = flow.rel_pos
        tables = {}
        for axis, length in (("t", t_len), ("h", h_len), ("w", w_len)):
            if length:
                param = nn.Parameter(torch.zeros(length, hd))
                tables[axis] = self.attr(naming.rel_pos(axis), param)
        return self.fn(
            runtime.rel_pos_bias,
            q,
            flow.grid_q,
            flow.grid_kv,
            tables.get("t"),
            tables["h"],
            tables["w"],
            self.model.tokens.cls,
        )

    def residual_pool(self, o: fx.Node, q: fx.Node) -> fx.Node:
        kind = self.block.residual_pool
        if kind == "none":
            return o
        if kind == "all" or not self.model.tokens.cls:
            return self.fn(operator.add, o, q)
        o_cls, o_rest = self.split_cls(o, 2, self.flow.len_q)
        _, q_rest = self.split_cls(q, 2, self.flow.len_q)
        return self.join_cls(o_cls, self.fn(operator.add, o_rest, q_rest), 2)


class ModelEmitter(Emitter):
    """Stem, positions, the block calls, and the head: (B, C, T, H, W) -> (B, classes)."""

    def emit(self) -> fx.GraphModule:
        m = self.model
        x = self.graph.placeholder("x")
        x = self.stem(x)
        blocks = []
        for block, flow in blocks_in_order(build_graph(m)):
            gm = BlockEmitter(m, block, flow).emit()
            x = self.module(naming.block(block.index), gm, x)
            x.meta["stack_trace"] = stack_trace(block.loc, m.name)
            blocks.append(gm)
        x = self.head(x)
        gm = self.finish(x, m.head.loc, _class_name(m.name))
        gm.blocks = nn.ModuleList(blocks)  # so that gm.blocks[i] works
        return gm

    def stem(self, x: fx.Node) -> fx.Node:
        m, p = self.model, self.model.patch
        conv = nn.Conv3d if self.nd == 3 else nn.Conv2d
        x = self.module(
            naming.CONV_PROJ,
            conv(
                m.input.channels,
                p.dim,
                self.grid(p.kernel),
                stride=self.grid(p.stride),
                padding=self.grid(p.padding),
            ),
            x,
        )
        self.graph_loc(x, p.loc)
        # (B, D, T', H', W') -> (B, T'H'W', D)
        x = self.method("flatten", x, 2)
        x = self.method("transpose", x, 1, 2)
        if m.tokens.cls:
            token = self.table(naming.CLASS_TOKEN)
            token = self.method("reshape", token, 1, 1, p.dim)
            batch = self.method("size", x, 0)
            token = self.method("expand", token, batch, -1, -1)
            x = self.fn(torch.cat, [token, x], dim=1)
        if m.tokens.position != "none":
            x = self.fn(operator.add, x, self.positions())
        return x

    def table(self, name: str) -> fx.Node:
        """A cls token or position table, shaped as naming.position_shapes lays it out."""
        shape = naming.position_shapes(self.model)[name]
        return self.attr(name, nn.Parameter(torch.zeros(shape)))

    def positions(self) -> fx.Node:
        """Absolute positions (1, L, D): joint, or temporal + spatial (+ class) as torchvision."""
        m, d = self.model, self.model.patch.dim
        t, h, w = shapes.patch_nominal(m)
        if m.tokens.position == "joint":
            return self.table(naming.POS_EMBED)
        if m.tokens.position == "sincos":  # fixed: a buffer, not a parameter
            fixed = runtime.sincos_positions(d, (t, h, w), m.tokens.cls).unsqueeze(0)
            return self.attr(naming.POS_EMBED, fixed)
        temporal = self.table(naming.TEMPORAL_POS)
        spatial = self.table(naming.SPATIAL_POS)
        pos = self.fn(torch.repeat_interleave, temporal, h * w, dim=0)
        pos = self.fn(operator.add, pos, self.method("repeat", spatial, t, 1))
        if m.tokens.cls:
            class_pos = self.table(naming.CLASS_POS)
            pos = self.fn(torch.cat, [self.method("reshape", class_pos, 1, d), pos], dim=0)
        return self.method("unsqueeze", pos, 0)

    def head(self, x: fx.Node) -> fx.Node:
        m = self.model
        c = m.blocks[-1].dim_out
        norm_first = m.head.order == "norm_pool"
        if m.head.norm and norm_first:
            x = self.layer_norm(naming.NORM, c, x)
        if m.head.pool == "cls":
            x = self.fn(operator.getitem, x, (slice(None), 0))
        else:  # the mean over the patch tokens: the cls token is not averaged in (as timm)
            if m.tokens.cls:
                x = self.fn(operator.getitem, x, (slice(None), slice(1, None)))
            x = self.method("mean", x, 1)
        if m.head.norm and not norm_first:
            x = self.layer_norm(naming.NORM, c, x)
        x = self.module(naming.HEAD_DROPOUT, nn.Dropout(m.head.dropout), x)
        return self.module(naming.HEAD_FC, nn.Linear(c, m.head.classes), x)

    def graph_loc(self, node: fx.Node, loc: Loc) -> None:
        node.meta["stack_trace"] = stack_trace(loc, self.model.name)


def _class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_")) or "Model"


def init_weights(gm: nn.Module) -> None:
    """timm/torchvision-style init: truncated normal 0.02 for linears and positions, LayerNorm
    to identity, zero biases."""
    for module in gm.modules():
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    for name, param in gm.named_parameters():
        if naming.is_position_table(name):
            nn.init.trunc_normal_(param, std=0.02)


def emit(model: Model) -> fx.GraphModule:
    """The GraphModule for a lowered, checked model, with freshly initialised weights."""
    gm = ModelEmitter(model).emit()
    init_weights(gm)
    return gm
