"""Every graph rewrite has one signature, `pass(gm) -> gm` (backend/passes/): each rewrites in
place and returns the module it was given; a factory checks its arguments before any graph."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from torch import fx  # noqa: E402

import mvitdsl  # noqa: E402
from mvitdsl.backend.passes.checkpoint import checkpoint, checkpointed_blocks  # noqa: E402
from mvitdsl.backend.passes.compiled import compiled  # noqa: E402
from mvitdsl.backend.passes.features import features  # noqa: E402
from mvitdsl.backend.passes.optimize import is_optimized, optimize, semantic  # noqa: E402
from mvitdsl.spec import Spec  # noqa: E402

TINY = Path(__file__).resolve().parent.parent / "examples" / "tiny.mv"


@pytest.fixture(scope="module")
def spec() -> Spec:
    return mvitdsl.load_spec(TINY)


def _fresh(spec: Spec) -> fx.GraphModule:
    return mvitdsl.build(spec, device="meta", optimize=False)


@pytest.mark.parametrize("name", ["checkpoint", "features", "optimize", "semantic", "compiled"])
def test_each_pass_rewrites_in_place_and_returns_its_module(spec: Spec, name: str) -> None:
    model = spec.model
    passes = {
        "checkpoint": checkpoint(checkpointed_blocks(model, True)),
        "features": features(model, [model.stages[-1].name]),
        "optimize": optimize,
        "semantic": semantic,
        "compiled": compiled("regional"),  # torch.compile compiles at the first call
    }
    gm = _fresh(spec)
    assert passes[name](gm) is gm


def test_checkpoint_and_features_rewrite_the_top_graph(spec: Spec) -> None:
    gm = checkpoint([0])(_fresh(spec))
    calls = [n for n in gm.graph.nodes if n.target is torch.utils.checkpoint.checkpoint]
    assert [n.args[0].target for n in calls] == ["blocks.0"]
    last = spec.model.stages[-1].name
    gm = features(spec.model, [last])(_fresh(spec))
    info: list[dict[str, object]] = gm.feature_info  # type: ignore[assignment]
    assert [i["name"] for i in info] == [last]


def test_optimize_and_semantic_are_inverse_passes(spec: Spec) -> None:
    gm = _fresh(spec)
    codes = [m.code for m in gm.modules() if isinstance(m, fx.GraphModule)]
    assert is_optimized(optimize(gm))
    assert not is_optimized(semantic(gm))
    assert [m.code for m in gm.modules() if isinstance(m, fx.GraphModule)] == codes


def test_a_factory_refuses_bad_arguments_before_any_graph(spec: Spec) -> None:
    with pytest.raises(ValueError, match="nowhere"):
        features(spec.model, ["nowhere"])
    with pytest.raises(ValueError, match="neither a stage"):
        checkpointed_blocks(spec.model, ["nowhere"])
    with pytest.raises(ValueError, match="compile="):
        compiled("fast")
