"""mvitdsl: a declarative language and compiler for Multiscale Vision Transformers.

    spec = mvitdsl.load_spec("specs/mvit_b.mv")     # parse + lower + shape-check (no torch)
    report = mvitdsl.analyze(spec)                  # shapes, params, MACs per stage and block
    gm = mvitdsl.build(spec)                        # torch.fx.GraphModule, torchvision names
    gm = mvitdsl.compile("specs/mvit_b.mv")         # all of the above in one call

Importing mvitdsl does not import torch; `build` and `compile` do.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .analysis.analyze import Report, analyze
from .backend.weights import convert_state_dict
from .diagnostics import Diagnostic, SpecError
from .spec import Spec, load_spec, resize

if TYPE_CHECKING:
    import torch
    from torch import fx

    from .explore.run import SweepRun

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
    "sweep",
    "param_groups",
    "__version__",
]


def build(
    spec: Spec,
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
) -> fx.GraphModule:
    """Emit the GraphModule of a checked spec, with fresh weights, on `device` in `dtype`.

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
    """
    from .backend.emit import emit

    if input is not None:
        spec = resize(spec, input)
    if classes is not None:
        spec = with_classes(spec, classes)
    import contextlib

    import torch

    # Create the parameters where they will live: on "meta" a 667M-parameter model costs nothing.
    with torch.device(device) if device is not None else contextlib.nullcontext():
        gm = emit(spec.model)
    gm = _finish(gm, spec, weights, source, classes, features, feature_norm)
    if device is not None or dtype is not None:
        gm = gm.to(device=device, dtype=dtype)
    if checkpoint is not False:
        from .backend.passes import checkpoint_blocks, checkpointed_blocks

        gm = checkpoint_blocks(gm, checkpointed_blocks(spec.model, checkpoint))
    return gm


def with_classes(spec: Spec, classes: int) -> Spec:
    """The spec with another number of classes (only the classifier changes)."""
    if classes < 1:
        raise ValueError(f"classes={classes}: need at least one class")
    head = spec.model.head.model_copy(update={"classes": classes})
    model = spec.model.model_copy(update={"head": head})
    return Spec(model, spec.ast, spec.statements, spec.sources)


def _finish(
    gm: fx.GraphModule,
    spec: Spec,
    weights: Any,
    source: str | None,
    classes: int | None,
    features: Any,
    feature_norm: bool | None,
) -> fx.GraphModule:
    """Indexable head, feature outputs, then weights (a feature model ignores the head's)."""
    from .backend.finetune import indexable_head

    outputs = spec.model.outputs
    if features is None and outputs is not None:
        features = list(outputs.stages)
    if feature_norm is None:
        feature_norm = outputs is not None and outputs.norm
    if features is not None and features is not False:
        from .backend.features import to_features

        gm = to_features(gm, spec.model, features, norm=feature_norm)
    else:
        indexable_head(gm)
    if weights is not None:
        import logging

        from .backend.load import load_into

        report = load_into(gm, spec.model, weights, source, new_head=classes is not None)
        gm.load_report = report  # type: ignore[assignment]
        logging.getLogger("mvitdsl").info("%s", report.render())
    return gm


def compile(path_or_text: str | Path, **kw: Any) -> fx.GraphModule:  # noqa: A001
    """load_spec + build in one call; keyword arguments go to build."""
    return build(load_spec(path_or_text), **kw)


def sweep(base: Spec | str | Path, vary: Any = (), **kw: Any) -> SweepRun:
    """Rows (dicts) of a design-space sweep over a base spec; no torch. Keywords: `set`,
    `where`, `mode`, `samples`, `seed`, `max_variants`, `budgets`, `batch`, `dtype`, `pareto`,
    `join`, `emit` (see mvitdsl.explore.run.SweepRun).

        for row in mvitdsl.sweep("specs/mvit_b.mv", vary={"scale4.blocks": "8..16:2"}):
            print(row["id"], row["params"], row["gmacs"], row["pareto"])
    """
    from .explore.run import SweepRun

    return SweepRun(base, vary, **kw)


def diff(a: Spec | str | Path, b: Spec | str | Path) -> dict[str, Any]:
    """The settings, stage rows and per-stage costs that differ between two specs (JSON-ready)."""
    from .analysis.diff import diff_specs

    load = lambda s: s if isinstance(s, Spec) else load_spec(s)  # noqa: E731
    return diff_specs(load(a), load(b))


def param_groups(model: torch.nn.Module, **kw: Any) -> list[dict[str, Any]]:
    """Optimizer groups for fine-tuning: no weight decay on positions, norms and biases, and
    layer-wise lr decay with `layer_decay=` (see mvitdsl.backend.finetune.param_groups)."""
    from .backend.finetune import param_groups as groups

    return groups(model, **kw)
