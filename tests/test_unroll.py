"""The unrolled token order (backend/order.py, passes/unroll.py): Hiera runs without window
partitions and strided pools and computes the semantic graph's numbers (outputs, gradients,
feature maps, any size the size rule allows); a model the pass does not recognise keeps the
semantic graph; and the optimize layer stays undoable (passes/rewrite.py)."""

from __future__ import annotations

import copy
import re
from math import prod
from typing import Any

import pytest
from conftest import SPECS

pytest.importorskip("torch")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import mvitdsl  # noqa: E402
from mvitdsl.backend import order  # noqa: E402
from mvitdsl.backend.passes import optimize as layer  # noqa: E402

TINY = (3, 64, 64)


def _pair(name: str, size: tuple[int, ...], **kw: Any) -> tuple[Any, Any]:
    """The optimized model and its semantic twin, same weights."""
    torch.manual_seed(0)
    gm = mvitdsl.build(mvitdsl.load_spec(SPECS / f"{name}.mv", input_size=size), **kw).eval()
    return gm, layer.semantic(copy.deepcopy(gm))


def _unrolled(gm: Any) -> bool:
    return "to_unrolled" in gm.code


def _close_grads(a: Any, b: Any, x: torch.Tensor) -> None:
    for m in (a, b):
        m.zero_grad()
        m(x).square().sum().backward()
    ref = dict(b.named_parameters())
    floor = 1e-4 * max(p.grad.abs().max().item() for p in ref.values())
    for name, p in a.named_parameters():
        want = ref[name].grad
        scale = max(want.abs().max().item(), floor)
        assert (p.grad - want).abs().max().item() <= 1e-4 * scale, name


@pytest.mark.parametrize(
    ("name", "size"),
    [("hiera_t_image", TINY), ("hiera_t_image", (3, 96, 128)), ("hiera_b_16x224", (3, 4, 64, 64))],
)
def test_hiera_runs_unrolled_and_equals_the_semantic_graph(
    name: str, size: tuple[int, ...]
) -> None:
    gm, sem = _pair(name, size)
    assert _unrolled(gm) and not _unrolled(sem)
    assert "runtime_window_partition(" not in gm.blocks[0].code
    assert "functional.max_pool" not in gm.blocks[1].code
    x = torch.randn(2, *size)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), sem(x), atol=1e-5, rtol=1e-5)
    _close_grads(gm, sem, x)


def test_feature_maps_come_back_in_raster_order() -> None:
    gm, sem = _pair("hiera_t_image", TINY, features=["scale2", "scale3", "scale4", "scale5"])
    assert _unrolled(gm) and gm.code.count("from_unrolled(") == 4
    x = torch.randn(1, *TINY)
    with torch.no_grad():
        got, want = gm(x), sem(x)
    for k in want:
        torch.testing.assert_close(got[k], want[k], atol=1e-5, rtol=1e-5)


def test_checkpointed_blocks_are_unrolled_too() -> None:
    gm, sem = _pair("hiera_t_image", TINY, checkpoint=True)
    assert _unrolled(gm)
    _close_grads(gm, sem, torch.randn(2, *TINY))


def test_unrecognised_models_keep_the_semantic_graph() -> None:
    """No windows (MViTv2), and a mask unit the strides do not divide (4x4 pooled three times:
    the last pool would mix windows): the pass leaves the graph alone."""
    gm, _ = _pair("mvitv2_t_image", TINY)
    assert not _unrolled(gm)
    text = (SPECS / "hiera_t_image.mv").read_text().replace("mask_unit 8x8", "mask_unit 4x4")
    text = re.sub(r"expect .*\n", "", text)
    spec = mvitdsl.load_spec(text=text, input_size=TINY)
    windowed: Any = mvitdsl.build(spec).eval()
    assert not _unrolled(windowed) and "runtime_window_partition(" in windowed.blocks[0].code


def test_an_unknown_op_in_a_block_keeps_the_semantic_graph() -> None:
    """A call the pass has not been told is order-free (here a padded-window stand-in) stops
    it: the graph stays semantic rather than wrong."""
    torch.manual_seed(0)
    spec = mvitdsl.load_spec(SPECS / "hiera_t_image.mv", input_size=TINY)
    gm: Any = mvitdsl.build(spec, optimize=False).eval()
    block = gm.blocks[0]
    (first,) = [n for n in block.graph.nodes if n.name == "norm1"]
    with block.graph.inserting_after(first):
        odd = block.graph.call_function(torch.roll, (first, 1, 1))
    first.replace_all_uses_with(odd, delete_user_cb=lambda u: u is not odd)
    block.recompile()
    layer.optimize(gm)
    assert layer.is_optimized(gm) and not _unrolled(gm)


def test_a_size_rule_allowing_partial_windows_keeps_the_semantic_graph() -> None:
    """Inputs in multiples of 16 give 4x4-token grids, not whole 8x8 mask units (what a padded
    window serves): the pass must not assume whole units there."""
    from mvitdsl.backend import runtime

    spec = mvitdsl.load_spec(SPECS / "hiera_t_image.mv", input_size=TINY)
    gm: Any = mvitdsl.build(spec, optimize=False).eval()
    (check,) = [n for n in gm.graph.nodes if n.target is runtime.check_size]
    check.args = (check.args[0], (16, 16), *check.args[2:])
    gm.recompile()
    layer.optimize(gm)
    assert layer.is_optimized(gm) and not _unrolled(gm)


def test_semantic_undoes_and_optimize_redoes() -> None:
    gm, _ = _pair("hiera_t_image", TINY)
    x = torch.randn(1, *TINY)
    with torch.no_grad():
        before = gm(x)
    layer.semantic(gm)
    assert not layer.is_optimized(gm) and not _unrolled(gm)
    assert "runtime_window_partition(" in gm.blocks[0].code
    assert "functional.max_pool2d(" in gm.blocks[1].code
    layer.optimize(gm)
    assert _unrolled(gm) and "runtime_window_partition(" not in gm.blocks[0].code
    with torch.no_grad():
        torch.testing.assert_close(gm(x), before, atol=0, rtol=0)


@st.composite
def _layouts(draw: st.DrawFn) -> tuple[Any, ...]:
    """A mask unit, strides that divide it, and a grid of whole units (T axis included)."""
    strides = [
        (
            draw(st.sampled_from([1, 2])),
            draw(st.sampled_from([1, 2, 3])),
            draw(st.sampled_from([1, 2])),
        )
        for _ in range(draw(st.integers(0, 3)))
    ]
    rest = tuple(draw(st.integers(1, 2)) for _ in range(3))
    unit = tuple(r * prod(s[a] for s in strides) for a, r in enumerate(rest))
    grid = tuple(u * draw(st.integers(1, 2)) for u in unit)
    return unit, strides, grid


@settings(max_examples=40, deadline=None)
@given(_layouts())
def test_property_unrolled_pools_and_windows_equal_raster_ones(layout: tuple[Any, ...]) -> None:
    """On random layouts: the reorders are inverse; each unrolled max pool, read back in raster
    order, is max_pool3d; attention over unrolled windows equals attention over raster ones."""
    from mvitdsl.backend import runtime

    unit, strides, grid = layout
    x = torch.randn(2, prod(grid), 3)
    u = order.to_unrolled(x, grid, unit, strides)
    assert torch.equal(order.from_unrolled(u, grid, unit, strides), x)
    q = torch.randn(2, prod(grid), 4)  # raster tokens, one head
    mine = order.to_unrolled(q, grid, unit, strides).unsqueeze(1)
    w = order.unrolled_partition(mine, grid, unit)
    got = order.unrolled_merge(F.scaled_dot_product_attention(w, w, w), 1, grid, unit)
    w = runtime.window_partition(q.unsqueeze(1), grid, unit)
    want = runtime.window_merge(F.scaled_dot_product_attention(w, w, w), 1, grid, unit)
    want = order.to_unrolled(want.transpose(1, 2).flatten(2), grid, unit, strides)
    torch.testing.assert_close(got.transpose(1, 2).flatten(2), want)
    for i, s in enumerate(strides):
        raster = x.transpose(1, 2).reshape(*x.shape[:1], x.shape[2], *grid)
        pooled = F.max_pool3d(raster, s, s).flatten(2).transpose(1, 2)
        ours = u.transpose(1, 2).reshape(*raster.shape)
        mine = order.unrolled_max_pool(ours, s, s, (0, 0, 0), unit)
        grid = tuple(g // k for g, k in zip(grid, s))
        unit = tuple(n // k for n, k in zip(unit, s))
        x, u = pooled, mine.flatten(2).transpose(1, 2)
        assert torch.equal(order.from_unrolled(u, grid, unit, strides[i + 1 :]), x)


def test_a_grid_that_does_not_split_is_refused_in_words() -> None:
    with pytest.raises(ValueError, match="does not split into mask units"):
        order.to_unrolled(torch.zeros(1, 36, 2), (1, 6, 6), (1, 4, 4), [(1, 2, 2)])
