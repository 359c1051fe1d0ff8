"""Issue 23 items 4 and 6, Swin at run-time sizes: one module built at 224 runs at other sizes
the way timm's `dynamic_img_size=True` does (the grid padded to whole windows, the shift mask
computed for the padded grid, the padding cropped; windows and shifts as built), outputs and
gradients, and features (`outputs`); the size rule is stated by `check` and enforced in one line."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
import torch  # noqa: E402

timm = pytest.importorskip("timm")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_grad_parity import assert_grads_match, grads, perturbed  # noqa: E402
from torch import nn  # noqa: E402

import mvitdsl  # noqa: E402
from mvitdsl import load_spec  # noqa: E402
from mvitdsl.backend.weights import convert_state_dict  # noqa: E402

# swin_t's layout (patch 4, window 7, four stages, the last one window at 224) at small widths
NARROW = """model swin_narrow {
  input      image 3x224x224
  patch      conv 4x4 stride 4x4 -> 16, norm on
  tokens     no_cls, position none
  attention  pool_kv off, dim_change merge, mlp_ratio 2, scope window, window 7x7,
             shift alternate, rel_pos table
  stages {
    s1  2   16  1  1x1
    s2  2   32  2  2x2
    s3  2   64  2  2x2
    s4  2  128  4  2x2
  }
  head       norm, mean, classes 5
  norm       eps 1e-5
}
"""


pytestmark = pytest.mark.usefixtures("one_thread")


def narrow_pair() -> tuple[nn.Module, nn.Module]:
    """Ours (built at 224) and timm's class with dynamic_img_size, same perturbed weights."""
    spec = load_spec(text=NARROW)
    torch.manual_seed(0)  # the same weights every run: a failure reproduces
    ref = timm.models.swin_transformer.SwinTransformer(
        img_size=224, patch_size=4, window_size=7, embed_dim=16, depths=(2, 2, 2, 2),
        num_heads=(1, 2, 2, 4), mlp_ratio=2.0, num_classes=5, dynamic_img_size=True,
    )  # fmt: skip
    ref = perturbed(ref)
    gm = mvitdsl.build(spec).eval()
    gm.load_state_dict(convert_state_dict(ref.state_dict(), "timm", spec=spec), strict=True)
    return gm, ref


@pytest.mark.parametrize("size", [(64, 96), (128, 160)], ids=["64x96", "128x160"])
def test_one_swin_module_equals_timm_dynamic_at_other_sizes(size: tuple[int, int]) -> None:
    """At grids 7 does not divide (16x24 ... 2x3; 32x40 ... 4x5), shifted and padded windows
    in every stage: logits <= 1e-4 relative, every gradient within assert_grads_match's bound."""
    gm, ref = narrow_pair()
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ours, want = gm(x), ref(x)
    assert ours.shape == want.shape == (2, 5)
    assert ((ours - want).abs().max() / want.abs().max()).item() <= 1e-4
    spec = load_spec(text=NARROW)
    assert_grads_match(grads(gm, x), convert_state_dict(grads(ref, x), "timm", spec=spec))


def test_the_swin_size_rule_is_stated_and_enforced(capsys: pytest.CaptureFixture[str]) -> None:
    """swin_t's rule is the strides' (multiples of 32), `check` prints it, and a size off the
    rule is refused with one line naming it (not a reshape error deep in a block)."""
    from mvitdsl.cli import main

    rule = mvitdsl.size_rule("specs/swin_t.mv")
    assert rule.text == "H and W: multiples of 32, at least 32"
    assert rule.legal((1, 64, 96)) and not rule.legal((1, 100, 224))
    assert main(["check", "specs/swin_t.mv"]) == 0
    assert "size rule: H and W: multiples of 32, at least 32" in capsys.readouterr().out
    gm = mvitdsl.build(load_spec(text=NARROW)).eval()
    with torch.no_grad(), pytest.raises(ValueError) as e:
        gm(torch.randn(1, 3, 100, 224))
    assert "does not follow the size rule: H and W: multiples of 32" in str(e.value)
    assert "\n" not in str(e.value)


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6))
def test_swin_runs_at_every_size_of_its_rule(h: int, w: int) -> None:
    """Any size of the rule (including grids smaller than a window) gives the classes."""
    spec = load_spec(text=NARROW)
    with torch.device("meta"):
        gm = mvitdsl.build(spec)
        out = gm(torch.empty(1, 3, 32 * h, 32 * w))
    assert tuple(out.shape) == (1, 5)


def test_swin_features_follow_the_run_time_grid() -> None:
    """`outputs` of a Swin built at 224, run at 64x96: every stage's map at its run-time grid."""
    spec = load_spec(
        text=NARROW.replace("  norm       eps", "  outputs    s1, s4\n  norm       eps")
    )
    gm = mvitdsl.build(spec).eval()
    with torch.no_grad():
        maps = gm(torch.randn(1, 3, 64, 96))
    assert {k: tuple(v.shape) for k, v in maps.items()} == {
        "s1": (1, 16, 16, 24),
        "s4": (1, 128, 2, 3),
    }
