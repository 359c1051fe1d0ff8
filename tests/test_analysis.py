"""The static report equals the published numbers and what the built module does."""

from __future__ import annotations

import pytest

import mvitdsl


def test_mvit_b_totals_are_the_published_ones(mvit_b_spec):
    report = mvitdsl.analyze(mvit_b_spec)
    assert report.params == 36_610_672
    assert abs(report.macs / 70.599e9 - 1) < 5e-4
    assert abs(report.macs_fvcore / 70.804e9 - 1) < 5e-4


def test_mvit_b_stage_rows_are_table_2(mvit_b_spec):
    rows = [(s.name, s.dim, s.grid, s.blocks, s.heads) for s in mvitdsl.analyze(mvit_b_spec).stages]
    assert rows == [
        ("scale2", 96, (8, 56, 56), 1, 1),
        ("scale3", 192, (8, 28, 28), 2, 2),
        ("scale4", 384, (8, 14, 14), 11, 4),
        ("scale5", 768, (8, 7, 7), 2, 8),
    ]


def test_mvit_b_block_rows_show_what_each_block_emits(mvit_b_spec):
    blocks = mvitdsl.analyze(mvit_b_spec).blocks
    assert [b.dim_out for b in blocks][:3] == [192, 192, 384]  # v1: the MLP changes width
    b1 = blocks[1]
    assert (b1.grid_in, b1.grid_q, b1.grid_kv) == ((8, 56, 56), (8, 28, 28), (8, 14, 14))
    assert b1.attention == (6273, 1569)


torch = pytest.importorskip("torch")


def test_params_equal_numel_of_the_built_module(mvit_b_spec):
    gm = mvitdsl.build(mvit_b_spec, device="meta")
    assert sum(p.numel() for p in gm.parameters()) == mvitdsl.analyze(mvit_b_spec).params


def test_macs_equal_flop_counter_on_meta_device(mvit_b_spec):
    from torch.utils.flop_counter import FlopCounterMode

    gm = mvitdsl.build(mvit_b_spec, device="meta").eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        gm(torch.empty(1, 3, 16, 224, 224, device="meta"))
    assert counter.get_total_flops() == 2 * mvitdsl.analyze(mvit_b_spec).macs


def test_every_block_output_shape_is_predicted(mvit_b_spec):
    gm = mvitdsl.build(mvit_b_spec, device="meta").eval()
    report = mvitdsl.analyze(mvit_b_spec)
    seen: dict[int, tuple[int, ...]] = {}
    for i, block in enumerate(gm.blocks):
        block.register_forward_hook(lambda m, a, out, i=i: seen.__setitem__(i, tuple(out.shape)))
    with torch.no_grad():
        gm(torch.empty(2, 3, 16, 224, 224, device="meta"))
    assert seen == {b.index: (2, b.len_q, b.dim_out) for b in report.blocks}
