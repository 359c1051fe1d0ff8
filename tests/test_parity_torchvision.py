"""The compiled MViT-B is torchvision's mvit_v1_b: same names, same numbers. `make test`
compares them at 3x4x64x64 (torchvision built at that size); the `full` twins at the spec's
own 3x16x224x224."""

from __future__ import annotations

from unittest import mock

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from torch import nn  # noqa: E402

import mvitdsl  # noqa: E402

SIZES = [
    pytest.param((3, 4, 64, 64), id="small"),
    pytest.param(None, id="full", marks=pytest.mark.full),
]


def mvit_v1_b_at(size: tuple[int, ...] | None) -> nn.Module:
    """torchvision's mvit_v1_b, at its own 16x224x224 (None) or built for another clip size."""
    from torchvision.models.video import mvit as tvm

    if size is None:
        return tvm.mvit_v1_b()
    original = tvm._mvit

    def sized(**kw):
        kw["temporal_size"], kw["spatial_size"] = size[1], (size[2], size[3])
        return original(**kw)

    with mock.patch.object(tvm, "_mvit", sized):
        return tvm.mvit_v1_b()


@pytest.fixture(scope="module", params=SIZES)
def pair(request, mvit_b_spec):
    size = request.param
    torch.manual_seed(0)
    ref = mvit_v1_b_at(size).eval()
    spec = mvit_b_spec if size is None else mvitdsl.resize(mvit_b_spec, size)
    gm = mvitdsl.build(spec).eval()
    gm.load_state_dict(ref.state_dict(), strict=True)
    return gm, ref, size or (3, 16, 224, 224)


def test_state_dict_names_and_shapes_are_torchvisions(mvit_b_spec):
    with torch.device("meta"):  # names and shapes need no values
        ref = torchvision.models.video.mvit_v1_b().state_dict()
    ours = mvitdsl.build(mvit_b_spec, device="meta").state_dict()
    assert set(ours) == set(ref)
    shapes = {k: tuple(v.shape) for k, v in ours.items()}
    assert shapes == {k: tuple(v.shape) for k, v in ref.items()}


def test_eval_logits_match_torchvision(pair):
    gm, ref, size = pair
    torch.manual_seed(1)
    x = torch.randn(2, *size)
    with torch.no_grad():
        ours, theirs = gm(x), ref(x)
    assert ours.shape == (2, 400)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)


def test_batch_size_is_dynamic(pair):
    gm, ref, size = pair
    x = torch.randn(3, *size)
    with torch.no_grad():
        torch.testing.assert_close(gm(x[:1]), ref(x[:1]), atol=1e-4, rtol=0)
        assert gm(x).shape == (3, 400)


def test_blocks_are_graph_modules(pair):
    gm, _, _ = pair
    assert isinstance(gm, torch.fx.GraphModule)
    assert len(gm.blocks) == 16
    assert all(isinstance(b, torch.fx.GraphModule) for b in gm.blocks)


def test_every_node_points_back_to_the_spec(pair):
    gm, _, _ = pair
    for module in [gm, *gm.blocks]:
        for node in module.graph.nodes:
            assert (
                "specs/mvit_b.mv" in node.meta["stack_trace"]
                or "mvit_b.mv" in node.meta["stack_trace"]
            ), node
    text = gm.blocks[1].print_readable(print_output=False)
    assert "mvit_b.mv:12" in text and "scale3" in text
