"""The differential test: random torchvision MSBlockConfig lists, timm MultiScaleVitCfgs and
timm SwinTransformer configs (tests/differential_swin.py) and timm PyramidVisionTransformerV2
configs (tests/differential_pvt.py), written as .mv text, built, loaded
strictly with the reference's weights, and compared on logits (1e-4 of the output scale) and
analyze().params. Bounded here (MVITDSL_DIFF_CASES per family, 6 by default); `make fuzz`
runs 1,000 torchvision and 500 timm configs."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("timm")

import differential  # noqa: E402

CASES = int(os.environ.get("MVITDSL_DIFF_CASES", "6"))
# What the language cannot write yet, by reason (tests/differential.py raises NotExpressible).
KNOWN_GAPS: tuple[str, ...] = ()


@pytest.mark.parametrize("family", ["torchvision", "timm", "swin", "pvt"])
def test_differential_random_reference_configs_are_expressible_and_equal(family, capsys):
    scale = 2 if family == "torchvision" else 1
    check_counts(differential.count(family, CASES * scale), capsys)


@pytest.mark.full
def test_differential_more_random_swin_configs(capsys):
    """60 Swin configs (the default run's smaller twin: 6, above)."""
    check_counts(differential.count("swin", 60, start=1000), capsys)


@pytest.mark.full
def test_differential_more_random_pvt_configs(capsys):
    """100 PVTv2 configs (the default run's smaller twin: 6, above)."""
    check_counts(differential.count("pvt", 100, start=1000), capsys)


def check_counts(counts: differential.Counts, capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print("\n" + counts.line())
    bad = {k: v for k, v in counts.examples.items() if k not in ("rejected", "not_expressible")}
    assert bad == {}
    gaps = counts.examples.get("not_expressible", [])
    assert all(any(g in e for g in KNOWN_GAPS) for e in gaps), gaps
    assert counts.generated > 0
