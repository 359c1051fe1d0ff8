"""IR -> torch.fx.GraphModule, built node by node (nothing is traced).

The top-level GraphModule calls `blocks.{i}`, each a GraphModule of its own, so checkpointing,
FSDP wrapping and regional compilation can work per block. Parameter names are torchvision's,
so its MViT state_dicts load with strict=True.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch import fx, nn

from ..analysis import naming
from ..analysis.graph import BlockFlow, with_flows
from ..analysis.sizes import size_rule
from ..ir import Block, Dims3, Loc, Model
from ..ops import block as ops_block
from ..ops import head, patch, positions
from .runtime import check_size

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
        self.grid_at: fx.Node | None = None  # the run-time token grid (T, H, W) here
        self.memo: dict[Any, fx.Node] = {}  # run-time sizes computed once per graph

    def grid_node(self) -> fx.Node:
        """The run-time (T, H, W) token grid of the tokens being emitted."""
        assert self.grid_at is not None, "no token grid yet: the patch embedding sets it"
        return self.grid_at

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

    def graph_loc(self, node: fx.Node, loc: Loc) -> None:
        node.meta["stack_trace"] = stack_trace(loc, self.model.name)

    def grid(self, g: Dims3) -> Any:  # (T, H, W) for video, (H, W) for images
        return self.model.spatial(g)

    # -- shared pieces

    def layer_norm(self, target: str, dim: int, x: fx.Node) -> fx.Node:
        return self.module(target, nn.LayerNorm(dim, eps=self.model.norm_eps), x)

    def split_cls(self, x: fx.Node, dim: int) -> tuple[fx.Node | None, fx.Node]:
        """(cls token, the other tokens) along the sequence dim; (None, x) without cls.
        One split_with_sizes (the length read at run time): its backward is one cat, not two
        zero-filled full-size tensors as for two slices."""
        if not self.model.tokens.cls:
            return None, x
        rest = self.fn(operator.sub, self.method("size", x, dim), 1)
        parts = self.method("split", x, [1, rest], dim)
        return self.fn(operator.getitem, parts, 0), self.fn(operator.getitem, parts, 1)

    def join_cls(self, cls: fx.Node | None, x: fx.Node, dim: int) -> fx.Node:
        return x if cls is None else self.fn(torch.cat, [cls, x], dim=dim)


class BlockEmitter(Emitter):
    """One block: x (B, L_in, C_in) -> (B, L_q, C_out); the ops emit themselves (ops/)."""

    def __init__(self, model: Model, block: Block, flow: BlockFlow) -> None:
        super().__init__(model)
        self.block, self.flow = block, flow

    def graph_input(self) -> fx.Node:
        """x, and the run-time token grid (the spec's own by default, so `blocks[i](x)` runs
        at the reference size)."""
        x = self.graph.placeholder("x")
        self.grid_at = self.graph.placeholder("grid", default_value=self.flow.grid_in)
        return x

    def emit(self) -> fx.GraphModule:
        b = self.block
        return self.finish(ops_block.emit_block(self), b.loc, f"Block{b.index}")


class ModelEmitter(Emitter):
    """Stem, positions, the block calls, and the head: (B, C, T, H, W) -> (B, classes)."""

    def __init__(self, model: Model, flows: tuple[BlockFlow, ...] | None = None) -> None:
        super().__init__(model)
        self.flows = flows

    def emit(self) -> fx.GraphModule:
        m = self.model
        x = self.graph.placeholder("x")
        x = self.fn(check_size, x, *_rule_args(m))  # one line naming the rule, not deep in torch
        x, self.grid_at = patch.emit(self, x)
        x = positions.emit(self, x)  # stem: patches, cls token, positions
        blocks = []
        for block, flow in with_flows(m, self.flows):
            gm = BlockEmitter(m, block, flow).emit()
            grid_out = ops_block.emit_grid_out(self, block, self.grid_at, flow)
            x = self.module(naming.block(block.index), gm, x, self.grid_at)
            x.meta["stack_trace"] = stack_trace(block.loc, m.name)
            x.meta[GRID_OUT] = self.grid_at = grid_out  # the features pass unflattens with it
            blocks.append(gm)
        x = head.emit(self, x)
        gm = self.finish(x, m.head.loc, _class_name(m.name))
        gm.blocks = nn.ModuleList(blocks)  # so that gm.blocks[i] works
        return gm


GRID_OUT = "mvitdsl_grid_out"  # a block call's meta: the run-time grid of its output


def _rule_args(model: Model) -> tuple[Any, ...]:
    """check_size's arguments: multiples and least sizes of the input's axes, the rule's text."""
    rule = size_rule(model)
    return (model.spatial(rule.multiple), model.spatial(rule.least), rule.text)


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


def emit(model: Model, flows: tuple[BlockFlow, ...] | None = None) -> fx.GraphModule:
    """The GraphModule for a lowered, checked model, with freshly initialised weights
    (`flows`: the block flows of its report, when already computed)."""
    gm = ModelEmitter(model, flows).emit()
    init_weights(gm)
    return gm
