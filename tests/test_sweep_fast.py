"""The sweep's memos against a fresh analysis: every value a block's or the head's costs and rules
read must be in the keys (explore/walk.py), so varying one (a window, the head's order) gives new
costs and verdicts, each equal to `analyze` / `check` of the variant written out as its own spec."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from conftest import SPECS
from hypothesis import given, settings
from hypothesis import strategies as st

import mvitdsl
from mvitdsl.analysis.analyze import analyze
from mvitdsl.diagnostics import SpecError
from mvitdsl.explore.axes import combinations
from mvitdsl.explore.run import SweepRun
from mvitdsl.language import overrides
from mvitdsl.language.lower import Lowering
from mvitdsl.spec import load_spec

GIB = 2**30


def _same_as_fresh(row: dict[str, object], path: Path) -> None:
    """The row's costs (kept) or diagnostics (rejected) equal a fresh load of its own spec."""
    if not row["ok"]:
        with pytest.raises(SpecError) as e:
            analyze(load_spec(path))
        got = [(d.code, d.message) for d in e.value.diagnostics]
        assert got == [(d["code"], d["message"]) for d in row["diagnostics"]]  # type: ignore[attr-defined]
        return
    report = analyze(load_spec(path))
    assert (row["params"], row["gmacs"], row["gmacs_fvcore"]) == (
        report.params,
        report.macs / 1e9,
        report.macs_fvcore / 1e9,
    ), row["values"]
    assert row["activation_gib"] == report.activation_bytes / GIB


def _write(run: SweepRun, row: dict[str, object], folder: Path) -> Path:
    """The variant as a child spec of its base (as --emit writes a kept one)."""
    combo = tuple(a.values.index(str(row["values"][a.label])) for a in run.axes)  # type: ignore[index]
    out = run.evaluator.assign(run.axes, combo, run.derived)
    targets = {run.evaluator.target(p): t for p, t in out.assigned.items()}
    statements = overrides.apply(run.base.statements, targets, run.base.ast.span)
    parent = str(Path(run.base.path).resolve())
    text = overrides.child_text("v", parent, run.base.ast.name, run.base.statements, statements)
    path = folder / f"{row['id']}.mv"
    path.write_text(text)
    return path


def test_a_varied_window_gets_its_own_costs_and_verdict(tmp_path: Path) -> None:
    """7x7 first: a memo keyed without the window would hand 14x14, 5x5 and 4x4 its costs (5x5
    does not tile the 28x28 grid: it pads it to 30x30, no longer E309, and has its own)."""
    vary = {"scale3.window": "7x7,14x14,5x5,4x4", "scale4.blocks": "2,4"}
    run = SweepRun(SPECS / "swin_t.mv", vary, pareto=None)
    out = list(run)
    by = {(r["values"]["scale3.window"], r["values"]["scale4.blocks"]): r for r in out}
    assert by[("7x7", 2)]["gmacs"] != by[("14x14", 2)]["gmacs"]
    assert by[("7x7", 2)]["gmacs"] != by[("4x4", 2)]["gmacs"]
    assert len({by[(w, 2)]["gmacs"] for w in ("7x7", "14x14", "5x5", "4x4")}) == 4
    assert by[("5x5", 2)]["ok"] and by[("5x5", 4)]["ok"] and by[("4x4", 4)]["ok"]
    for row in out:
        _same_as_fresh(row, _write(run, row, tmp_path))


def test_the_heads_order_is_in_the_head_costs_key(tmp_path: Path) -> None:
    run = SweepRun(SPECS / "mvit_b.mv", {"head.order": "norm_pool,pool_norm"}, pareto=None)
    out = list(run)
    assert out[0]["gmacs_fvcore"] != out[1]["gmacs_fvcore"]
    for row in out:
        _same_as_fresh(row, _write(run, row, tmp_path))


CASES = [
    ("swin_t.mv", {"scale2.window": "7x7,14x14,8x8", "scale3.window": "7x7,4x4,14x14",
                   "scale4.blocks": "2,3,6", "scale3.mlp_ratio": "2,4",
                   "attention.shift": "alternate,none"}),
    ("hiera_t_image.mv", {"scale2.blocks": "1,2", "scale3.scope": "mask_unit,global",
                          "attention.mask_unit": "8x8,4x4,16x16", "scale4.blocks": "1,3"}),
    ("mvit_b.mv", {"scale2.blocks": "1,2", "scale3.blocks": "1,5", "scale3.stride_q": "1x2x2,1x3x3",
                   "scale4.heads": "8,5", "attention.pool_pad": "half,zero"}),
]  # fmt: skip


@pytest.mark.parametrize("name, vary", CASES)
def test_random_variants_equal_a_fresh_analysis(
    name: str, vary: dict[str, str], tmp_path: Path
) -> None:
    """The whole grid is swept (so the memos fill in grid order), then random variants are
    each checked and analysed on their own, and their IR lowered afresh."""
    run = SweepRun(SPECS / name, vary, pareto=None)
    out = list(run)
    assert {r["ok"] for r in out} == {True, False} or name == "swin_t.mv"
    ev, base = run.evaluator, run.evaluator.base
    picked = random.Random(name).sample(out, 6)
    for row in picked:
        _same_as_fresh(row, _write(run, row, tmp_path))
    combos = list(combinations(run.axes, "grid"))
    for combo in random.Random(1).sample(combos, 12):
        variant = ev.assign(run.axes, combo, run.derived)
        targets = {ev.target(p): text for p, text in variant.assigned.items()}
        fast = ev.lower_fast(targets, variant)
        statements = overrides.apply(base.statements, targets, base.ast.span)
        assert fast == Lowering(base.ast, statements, base.sources).run(), variant.values


def test_the_sweep_with_a_window_axis_is_the_plain_lowering() -> None:
    vary = {"scale3.window": "7x7,14x14", "scale4.window": "7x7,14x14", "scale5.blocks": "1,2"}
    fast = list(mvitdsl.sweep(SPECS / "swin_t.mv", vary=vary, pareto=None))
    slow_run = SweepRun(SPECS / "swin_t.mv", vary, pareto=None)
    slow_run.evaluator.fast = False
    assert fast == list(slow_run)
    assert len({r["gmacs"] for r in fast}) == len(fast)


def test_the_rules_read_the_walks_strides_not_the_blocks_index() -> None:
    """A row's shape may hold blocks built at another index (explore/walk.py): a block moved to
    index 0 gets the same verdict, as the Q strides before it are the walk's. scale5's second
    block sees 8x8 of strides before it, which a 4x4 mask unit does not divide (E309)."""
    from mvitdsl.explore.walk import Walk, parts_of

    vary = {"scale5.scope": "mask_unit", "attention.mask_unit": "4x4"}
    run = SweepRun(SPECS / "hiera_t_image.mv", vary, pareto=None)
    (row,) = list(run)
    assert [d["code"] for d in row["diagnostics"]] == ["E309"]
    assert "not divisible by the Q strides before it, 8x8" in row["diagnostics"][0]["message"]
    ev = run.evaluator
    variant = ev.assign(run.axes, (0, 0), run.derived)
    model = ev.lower_fast({ev.target(p): t for p, t in variant.assigned.items()}, variant)
    assert model is not None
    parts = parts_of(model)
    moved = tuple(tuple(b.model_copy(update={"index": 0}) for b in part) for part in parts)
    own, at_zero = Walk().rows(model, parts), Walk().rows(model, moved)
    assert [r.passed for r in own] == [r.passed for r in at_zero] == [True, True, True, False]
    assert [r.costs for r in own] == [r.costs for r in at_zero]


PATHS = st.sampled_from(["scale2.blocks", "scale3.dim", "attention.mlp_ratio", "head.classes",
                         "input.size", "a.b", "scale10.heads"])  # fmt: skip
TEXTS = st.sampled_from(["1", "2.50", "2.5", "1x2x2", "0.2", "all", "3e2", "300", "off"])


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(PATHS, TEXTS, max_size=6))
def test_fast_variant_ids_are_the_ids(assigned: dict[str, str]) -> None:
    """The sweep's memoised ids (outcome.VariantIds) are variant_id's, byte for byte."""
    from mvitdsl.explore.axes import text_of, value_of
    from mvitdsl.explore.outcome import VariantIds, variant_id

    ids = VariantIds(lambda text: text_of(value_of(text)))
    assert ids(assigned) == variant_id(assigned) == ids(dict(reversed(assigned.items())))
