"""Graph rewrites over a built GraphModule, one module per pass, one signature for all:
`pass(gm) -> gm` as torch.fx's own passes, rewriting in place and returning the same module.

A pass that needs arguments is made by a factory named after its module, which checks the
arguments and returns the pass: `checkpoint(blocks)(gm)`, `features(model, stages, norm=)(gm)`;
one that needs none is the pass itself: `optimize(gm)`, `semantic(gm)` (optimize's inverse).
docs/ARCHITECTURE.md says why this convention and not fx's PassBase / PassResult.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import fx

Pass = Callable[[fx.GraphModule], fx.GraphModule]
