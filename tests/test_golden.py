"""Golden files for each stage's output on specs/mvit_b.mv: the IR and the emitted fx code.
Regenerate with `make golden` and review the diff like code."""

from __future__ import annotations

import pytest
from conftest import assert_golden


def test_ir_golden(mvit_b_spec):
    assert_golden("mvit_b.ir.json", mvit_b_spec.model.model_dump_json(indent=2) + "\n")


def test_emitted_code_golden(mvit_b_spec):
    pytest.importorskip("torch")
    import mvitdsl

    gm = mvitdsl.build(mvit_b_spec, device="meta")
    parts = [f"# ---- top\n{gm.code.strip()}\n"]
    parts += [f"# ---- blocks.{i}\n{b.code.strip()}\n" for i, b in enumerate(gm.blocks)]
    assert_golden("mvit_b.code.py.txt", "\n".join(parts))
