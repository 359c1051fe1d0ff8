"""The compiled MViT-B is torchvision's mvit_v1_b: same names, same numbers."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

import mvitdsl  # noqa: E402


@pytest.fixture(scope="module")
def pair(mvit_b_spec):
    torch.manual_seed(0)
    ref = torchvision.models.video.mvit_v1_b().eval()
    gm = mvitdsl.build(mvit_b_spec).eval()
    gm.load_state_dict(ref.state_dict(), strict=True)
    return gm, ref


def test_state_dict_names_and_shapes_are_torchvisions(mvit_b_spec):
    ref = torchvision.models.video.mvit_v1_b().state_dict()
    ours = mvitdsl.build(mvit_b_spec).state_dict()
    assert set(ours) == set(ref)
    shapes = {k: tuple(v.shape) for k, v in ours.items()}
    assert shapes == {k: tuple(v.shape) for k, v in ref.items()}


def test_eval_logits_match_torchvision(pair):
    gm, ref = pair
    torch.manual_seed(1)
    x = torch.randn(2, 3, 16, 224, 224)
    with torch.no_grad():
        ours, theirs = gm(x), ref(x)
    assert ours.shape == (2, 400)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)


def test_batch_size_is_dynamic(pair):
    gm, ref = pair
    x = torch.randn(3, 3, 16, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(gm(x[:1]), ref(x[:1]), atol=1e-4, rtol=0)
        assert gm(x).shape == (3, 400)


def test_blocks_are_graph_modules(pair):
    gm, _ = pair
    assert isinstance(gm, torch.fx.GraphModule)
    assert len(gm.blocks) == 16
    assert all(isinstance(b, torch.fx.GraphModule) for b in gm.blocks)


def test_every_node_points_back_to_the_spec(pair):
    gm, _ = pair
    for module in [gm, *gm.blocks]:
        for node in module.graph.nodes:
            assert (
                "specs/mvit_b.mv" in node.meta["stack_trace"]
                or "mvit_b.mv" in node.meta["stack_trace"]
            ), node
    text = gm.blocks[1].print_readable(print_output=False)
    assert "mvit_b.mv:12" in text and "scale3" in text
