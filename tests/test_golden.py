"""Golden files for each stage's output: the IR and the emitted fx code of mvit_b (v1 video),
mvitv2_s (v2 video: relative positions, residual pooling) and mvitv2_t_image (the image path).
Paths in them read from the repository root. Regenerate with `make golden`; review the diff."""

from __future__ import annotations

import pytest
from conftest import SPECS, assert_golden, rel

import mvitdsl

GOLDEN_SPECS = ("mvit_b", "mvitv2_s", "mvitv2_t_image")


@pytest.mark.parametrize("name", GOLDEN_SPECS)
def test_ir_golden(name: str) -> None:
    spec = mvitdsl.load_spec(SPECS / f"{name}.mv")
    assert_golden(f"{name}.ir.json", rel(spec.model.model_dump_json(indent=2)) + "\n")


@pytest.mark.parametrize("name", GOLDEN_SPECS)
def test_emitted_code_golden(name: str) -> None:
    pytest.importorskip("torch")
    gm = mvitdsl.build(mvitdsl.load_spec(SPECS / f"{name}.mv"), device="meta")
    parts = [f"# ---- top\n{gm.code.strip()}\n"]
    parts += [f"# ---- blocks.{i}\n{b.code.strip()}\n" for i, b in enumerate(gm.blocks)]
    assert_golden(f"{name}.code.py.txt", rel("\n".join(parts)))
