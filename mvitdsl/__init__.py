"""mvitdsl: a declarative language and compiler for Multiscale Vision Transformers.

    spec = mvitdsl.load_spec("specs/mvit_b.mv")     # parse + lower + shape-check (no torch)
    spec = mvitdsl.load_spec(text="model ... { }")  # spec text goes through text= only
    report = mvitdsl.analyze(spec)                  # shapes, params, MACs per stage and block
    gm = mvitdsl.build(spec)                        # torch.fx.GraphModule, torchvision names
    gm = mvitdsl.compile("specs/mvit_b.mv")         # all of the above in one call

Importing mvitdsl does not import torch; `build` and `compile` do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .analysis.analyze import Report, analyze
from .backend.weights import convert_state_dict
from .diagnostics import Diagnostic, SpecError
from .spec import Spec, load_spec, resize

if TYPE_CHECKING:
    import torch
    from torch import fx

    from .analysis.sizes import SizeRule
    from .explore.multi import MultiSweep
    from .explore.run import SweepRun
    from .explore.search import SearchResult

__version__ = "0.1.0"
__all__ = [
    "Diagnostic",
    "Report",
    "Spec",
    "SpecError",
    "analyze",
    "build",
    "compile",
    "convert_state_dict",
    "diff",
    "load_spec",
    "search",
    "sweep",
    "param_groups",
    "resize",
    "size_rule",
    "__version__",
]


def build(
    spec: Spec | str | Path,
    *,
    device: Any = None,
    dtype: torch.dtype | None = None,
    input: tuple[int, ...] | None = None,
    checkpoint: Any = False,
    weights: Any = None,
    source: str | None = None,
    classes: int | None = None,
    features: Any = None,
    feature_norm: bool | None = None,
    optimize: bool | str = "auto",
    compile: bool | str = False,  # noqa: A002
) -> fx.GraphModule:
    """Emit the GraphModule of a checked spec, with fresh weights, on `device` in `dtype`.

    `spec` is a Spec from load_spec, or a .mv file name (str or Path), which is loaded first.
    `input` overrides the spec's input size, (C, T, H, W) for video or (C, H, W) for images.
    `checkpoint` recomputes blocks in backward: True, stage names ("scale4") or block indices.
    `weights`: a state_dict, a .pt/.pth/.safetensors path or "torchvision:ENUM.NAME", converted
    from `source`'s names (default: guessed), position tables resized to the input size, loaded
    strictly; the load report is `gm.load_report` (raises WeightsError if they do not fit).
    `classes`: a new classifier with that many classes (fresh), every other tensor kept.
    `features`: stage names or indices (or a count of last stages): the model returns an ordered
    dict of maps instead of logits (`gm.feature_info`); `feature_norm` adds a LayerNorm per map.
    Both default to the spec's `outputs` setting, if any; `features=False` gives logits anyway.
    `gm.head[1] = nn.Linear(...)` swaps the classifier, as on torchvision's models.
    Weights are initialised from torch's global RNG: seed it with torch.manual_seed first.
    Raises SpecError, or TypeError / ValueError with a message for an argument it cannot use.
    `optimize` applies the CPU optimisation layer (backend/passes/optimize.py) over the semantic
    graph: "auto" when built for the CPU, True, or False for the semantic graph alone. Its choices
    are made on the tensors at run time, so `.to("cuda")` and autocast stay correct.
    `compile`: torch.compile at the first call: "regional" (the blocks that repeat, one compiled
    graph per group of identical blocks: a first call in a fraction of the time), "whole" (or
    True: one graph), False / "none" (eager). The module keeps its type and state-dict names.
    """
    spec = _adjusted(_as_spec(spec), input, classes)
    options: dict[str, Any] = {"device": device, "dtype": dtype, "checkpoint": checkpoint}
    options |= {"weights": weights, "source": source, "features": features}
    options |= {"feature_norm": feature_norm, "optimize": optimize, "compile": compile}
    return _emit(spec, new_head=classes is not None, **options)


def _as_spec(spec: Any) -> Spec:
    """`build`'s spec argument as a Spec: a .mv file name is loaded; anything else is refused."""
    if isinstance(spec, (str, Path)):
        return load_spec(spec)
    if not isinstance(spec, Spec):
        raise TypeError(
            f"build takes a Spec (mvitdsl.load_spec(path)) or a .mv file name, "
            f"not {type(spec).__name__}"
        )
    return spec


def _adjusted(spec: Spec, input: tuple[int, ...] | None, classes: int | None) -> Spec:
    """The spec at `build`'s input size and class count, where those are given."""
    if input is not None:
        spec = resize(spec, input)
    if classes is not None:
        spec = with_classes(spec, classes)
    return spec


def _emit(spec: Spec, *, new_head: bool, **options: Any) -> fx.GraphModule:
    """The GraphModule of a prepared spec (the backend imports torch, so it is imported here)."""
    from .backend.build import build_module

    flows = spec.report.flows if spec.report is not None else None
    return build_module(spec.model, new_head=new_head, flows=flows, **options)


def with_classes(spec: Spec, classes: int) -> Spec:
    """The spec with another number of classes (only the classifier changes)."""
    if classes < 1:
        raise ValueError(f"classes={classes}: need at least one class")
    head = spec.model.head.model_copy(update={"classes": classes})
    model = spec.model.model_copy(update={"head": head})
    # the stated figures (`expect`) and the model it equals (`reference`) hold for its own head
    return replace(spec, model=model, report=None, expectations=(), reference=None)


def compile(  # noqa: A001
    path: str | Path | None = None,
    *,
    text: str | None = None,
    name: str | None = None,
    input: tuple[int, ...] | None = None,
    check: bool = True,
    device: Any = None,
    dtype: torch.dtype | None = None,
    checkpoint: Any = False,
    weights: Any = None,
    source: str | None = None,
    classes: int | None = None,
    features: Any = None,
    feature_norm: bool | None = None,
    optimize: bool | str = "auto",
    compile: bool | str = False,  # noqa: A002
) -> fx.GraphModule:
    """load_spec + build in one call: `path` is a .mv file name; spec text goes through `text=`,
    a shipped spec through `name=`. The other keywords are build's (`input` is load_spec's
    input_size, checked before building)."""
    spec = load_spec(path, text=text, name=name, input_size=input, check=check)
    return build(
        spec,
        device=device,
        dtype=dtype,
        checkpoint=checkpoint,
        weights=weights,
        source=source,
        classes=classes,
        features=features,
        feature_norm=feature_norm,
        optimize=optimize,
        compile=compile,
    )


def sweep(
    base: Spec | str | Path | Sequence[Spec | str | Path], vary: Any = (), **kw: Any
) -> SweepRun | MultiSweep:
    """Rows (dicts) of a design-space sweep over a base spec, or over several (a list: rows get
    a `family`, one joint front; `swin_t:PATH` applies to one base); no torch. Keywords: `set`,
    `where`, `mode`, `samples`, `seed`, `max_variants`, `budgets`, `batch`, `dtype`, `pareto`,
    `join`, `emit` (see mvitdsl.explore.run.SweepRun and mvitdsl.explore.multi.MultiSweep).

        for row in mvitdsl.sweep("specs/mvit_b.mv", vary={"scale4.blocks": "8..16:2"}):
            print(row["id"], row["params"], row["gmacs"], row["pareto"])
    """
    from .explore.multi import make_sweep

    return make_sweep(base, vary, **kw)


def search(base: Spec | str | Path, vary: Any = (), **kw: Any) -> SearchResult:
    """Search a sweep's design space with Optuna by analytic or measured objectives; the study
    lives in `storage` (a journal file beside the base by default, or an RDB URL). Keywords:
    `objectives`, `trials`, `storage`, `study`, `workers`, `devices`, `bench`, `budgets`,
    `sampler`, `seed`, `emit`, and the sweep's `set`, `where`, `mode`
    (see mvitdsl.explore.search.search).

        result = mvitdsl.search("specs/mvit_b.mv", {"scale4.blocks": "6..16:2"},
                                objectives=["params", "latency"], trials=30)
        print(result.line(), result.front)
    """
    from .explore.search import search as run

    return run(base, vary, **kw)


def diff(a: Spec | str | Path, b: Spec | str | Path) -> dict[str, Any]:
    """The settings, stage rows and per-stage costs that differ between two specs (JSON-ready)."""
    from .analysis.diff import diff_specs

    return diff_specs(_spec(a), _spec(b))


def size_rule(spec: Spec | str | Path) -> SizeRule:
    """The input sizes one built module runs at (`.text`, `.legal(grid)`, `.nearest(grid)`):
    every grid is computed from the input at run time; the spec's input is the reference."""
    from .analysis.sizes import size_rule as rule_of

    return rule_of(_spec(spec).model)


def _spec(s: Spec | str | Path) -> Spec:
    return s if isinstance(s, Spec) else load_spec(s)


def param_groups(model: torch.nn.Module, **kw: Any) -> list[dict[str, Any]]:
    """Optimizer groups for fine-tuning: no weight decay on positions, norms and biases, and
    layer-wise lr decay with `layer_decay=` (see mvitdsl.backend.finetune.param_groups)."""
    from .backend.finetune import param_groups as groups

    return groups(model, **kw)
