"""Per-stage activation checkpointing (`build(spec, checkpoint=...)`): same gradients, fewer
saved activations, parameter names unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
import torch  # noqa: E402

import mvitdsl  # noqa: E402
from mvitdsl.backend.passes.checkpoint import checkpointed_blocks  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SPECS = {"tiny": ROOT / "examples" / "tiny.mv", "mvitv2_s": ROOT / "specs" / "mvitv2_s.mv"}
SMALL = {"tiny": None, "mvitv2_s": (3, 4, 64, 64)}


def build(name: str, checkpoint: object) -> torch.fx.GraphModule:
    torch.manual_seed(0)
    return mvitdsl.build(
        mvitdsl.load_spec(SPECS[name], input_size=SMALL[name]), checkpoint=checkpoint
    ).train()


def grads_and_saved(gm: torch.nn.Module, x: torch.Tensor) -> tuple[dict, int]:
    """Gradients of a fixed loss (drop path active, same RNG seed) and bytes autograd saved."""
    saved = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        saved += t.numel() * t.element_size()
        return t

    torch.manual_seed(1)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = gm(x).square().mean()
    loss.backward()
    return {n: p.grad for n, p in gm.named_parameters()}, saved


@pytest.mark.parametrize("name", ["tiny", "mvitv2_s"])
def test_checkpointing_gives_the_same_gradients_and_saves_less(name: str) -> None:
    plain = build(name, False)
    x = torch.randn(2, *(SMALL[name] or (3, 4, 32, 32)))
    expected, saved_plain = grads_and_saved(plain, x)
    for selection in (True, ["scale3"]):
        gm = build(name, selection)
        gm.load_state_dict(plain.state_dict(), strict=True)
        got, saved = grads_and_saved(gm, x)
        assert saved < saved_plain, selection
        assert list(got) == list(expected)
        for key in expected:
            torch.testing.assert_close(got[key], expected[key], atol=1e-6, rtol=1e-5, msg=key)


def test_only_the_chosen_stage_is_checkpointed() -> None:
    gm = build("mvitv2_s", ["scale5"])
    calls = [
        n
        for n in gm.graph.nodes
        if n.op == "call_function" and n.target is torch.utils.checkpoint.checkpoint
    ]
    assert [n.args[0].target for n in calls] == ["blocks.14", "blocks.15"]
    assert "torch.utils.checkpoint.checkpoint" in gm.code


def test_selection_by_index_and_bad_selection() -> None:
    model = mvitdsl.load_spec(SPECS["mvitv2_s"]).model
    assert checkpointed_blocks(model, [0, "scale3"]) == {0, 1, 2}
    assert checkpointed_blocks(model, "all") == set(range(16))
    with pytest.raises(ValueError, match="scale9"):
        checkpointed_blocks(model, ["scale9"])
