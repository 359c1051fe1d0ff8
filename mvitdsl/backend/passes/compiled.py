"""The compiled pass: `torch.compile` over a built model, whole or by region (`build(compile=)`).

"regional" compiles the blocks that repeat, one compiled callable per group of identical blocks
(same generated code, same submodule kinds and settings, same parameter shapes): the blocks of a
group share one class, hence one forward code object, and torch.compile (which inlines nn
modules and passes their parameters as graph inputs) traces that code once for all of them.
A block with no twin (a stage's first or last block) stays eager: compiling it costs what it
costs in whole-model compile (inductor's code generation and C++ compilation, per distinct
kernel, are most of the first call) and, on the CPU, buys little at steady state
(docs/PERFORMANCE.md, "Compile that starts fast"); `repeats=1` compiles every group (a
model with no two identical blocks runs eager otherwise).
Stochastic depth's rate, the one setting that differs from block to block of a stage, is held
as a tensor in regional mode, so the rate is a graph input rather than a constant to guard on.
"whole" is `gm.compile()`: one graph for the model. Both keep state-dict names and the module's
type; compiling happens at the first call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import fx, nn

from .. import runtime

MODES = ("none", "regional", "whole")
REPEATS = 2  # regional: the fewest identical blocks a group needs to be compiled


def compile_arg(value: Any) -> str:
    """`build(compile=)`: False / None / "none", "regional", "whole" (or True); the mode's name,
    or TypeError / ValueError with a message."""
    if value is None or value is False:
        return "none"
    if value is True:
        return "whole"
    if not isinstance(value, str):
        raise TypeError(
            f"compile= takes 'regional', 'whole', 'none', True or False, not {type(value).__name__}"
        )
    if value not in MODES:
        raise ValueError(f"compile={value!r}: expected one of {', '.join(map(repr, MODES))}")
    return value


def compiled(
    mode: str, backend: str = "inductor", repeats: int = REPEATS
) -> Callable[[fx.GraphModule], fx.GraphModule]:
    """The pass for `mode` (see compile_arg): torch.compile with `backend`, whole or by region
    (the groups of at least `repeats` identical blocks)."""
    mode = compile_arg(mode)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats={repeats!r}: expected a whole number of blocks, at least 1")

    def run(gm: fx.GraphModule) -> fx.GraphModule:
        if mode == "whole":
            gm.compile(backend=backend)
        elif mode == "regional":
            blocks = gm.get_submodule("blocks")
            for group in identical_blocks(gm):
                if len(group) >= repeats:
                    _compile_group([blocks.get_submodule(str(i)) for i in group], backend)
        return gm

    return run


def identical_blocks(gm: fx.GraphModule) -> list[list[int]]:
    """The indices of gm.blocks grouped by `block_key`, in block order."""
    blocks = getattr(gm, "blocks", None)
    if not isinstance(blocks, nn.ModuleList):
        raise ValueError("compile='regional' needs a model with blocks (gm.blocks)")
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, block in enumerate(blocks):
        groups.setdefault(block_key(block), []).append(i)
    return list(groups.values())


def block_key(block: nn.Module) -> tuple[Any, ...]:
    """What two blocks must share to share compiled code: the generated code and the functions
    it calls, each submodule's kind and settings (but the drop rate), each tensor's shape."""
    if not isinstance(block, fx.GraphModule):
        raise ValueError(f"compile='regional' needs GraphModule blocks, not {type(block).__name__}")
    calls = tuple(
        (n.op, n.target if n.op != "call_function" else id(n.target)) for n in block.graph.nodes
    )
    modules = tuple(
        (name, type(m).__qualname__, "" if isinstance(m, runtime.DropPath) else m.extra_repr())
        for name, m in block.named_modules()
        if name
    )
    tensors = tuple(
        (name, tuple(t.shape), t.dtype, t.device, t.requires_grad)
        for name, t in (*block.named_parameters(), *block.named_buffers())
    )
    return block.code, calls, modules, tensors


def _compile_group(blocks: list[nn.Module], backend: str) -> None:
    shared = type(blocks[0])  # one class: one forward code object for the group
    for block in blocks:
        block.__class__ = shared
        device = next((t.device for t in block.parameters()), None)
        for m in block.modules():
            if isinstance(m, runtime.DropPath) and not isinstance(m, TensorDropPath):
                TensorDropPath.adopt(m, device)
        block.compile(backend=backend)


class TensorDropPath(runtime.DropPath):
    """DropPath whose rate is a (non-persistent) tensor: blocks that differ only in their rate
    share one compiled graph. Outside training it is the identity, as DropPath."""

    keep: torch.Tensor

    @classmethod
    def adopt(cls, m: runtime.DropPath, device: torch.device | None) -> None:
        m.__class__ = cls
        m.register_buffer("keep", torch.tensor(1.0 - m.p, device=device), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        keep = self.keep.to(x.device, x.dtype)
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask.div_(keep)
