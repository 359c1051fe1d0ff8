"""The analysis report: per-stage and per-block rows, shares, JSON, and the activation-memory
estimate held against what autograd really keeps for backward."""

from __future__ import annotations

import json

import pytest
from conftest import SPECS
from test_cli import run

import mvitdsl
from mvitdsl.analysis.report_text import render_blocks


def test_mvit_b_stage_rows_carry_tokens_heads_and_attention(mvit_b_spec):
    stages = mvitdsl.analyze(mvit_b_spec).stages
    rows = [(s.tokens, s.tokens_no_cls, s.head_dim, s.grid_kv, s.attention) for s in stages]
    assert rows == [
        (25089, 25088, 96, (8, 7, 7), (25089, 393)),
        (6273, 6272, 96, (8, 7, 7), (6273, 393)),
        (1569, 1568, 96, (8, 7, 7), (1569, 393)),
        (393, 392, 96, (8, 7, 7), (393, 393)),
    ]


def test_stage_sums_and_shares_add_up(mvit_b_spec):
    report = mvitdsl.analyze(mvit_b_spec)
    assert sum(s.macs for s in report.stages) + report.stem.macs + report.head.macs == report.macs
    assert sum(s.params for s in report.stages) + report.stem.params + report.head.params == (
        report.params
    )
    for share in [s.share for s in report.stages] + [b.share for b in report.blocks]:
        assert sum(share.values()) == pytest.approx(1.0)
    assert sum(report.totals.share.values()) == pytest.approx(1.0)


def test_memory_scales_with_batch_and_dtype(mvit_b_spec):
    base = mvitdsl.analyze(mvit_b_spec).activation_bytes
    assert mvitdsl.analyze(mvit_b_spec, batch=8, dtype="bf16").activation_bytes == 4 * base


def test_check_with_batch_and_dtype_shows_stage_and_block_details():
    # --blocks shows the details; --batch/--dtype alone print the memory line (issue 26)
    r = run("check", str(SPECS / "mvit_b.mv"), "--batch", "8", "--dtype", "bf16", "--blocks")
    assert r.returncode == 0, r.stderr
    assert "scale3      6,273    6,272     2   96      8x7x7      6273x393" in r.stdout
    assert "activation memory for a training step at batch 8, bf16:" in r.stdout
    assert "MAC share: attention" in r.stdout


def test_json_report_has_every_field():
    r = run("check", str(SPECS / "mvit_b.mv"), "--format", "json", "--batch", "8")
    report = json.loads(r.stdout)["report"]
    stage = report["stages"][1]
    assert {
        "grid",
        "tokens",
        "tokens_no_cls",
        "heads",
        "head_dim",
        "grid_kv",
        "attention",
        "params",
        "macs",
        "macs_fvcore",
        "share",
        "activation_bytes",
    } <= set(stage)
    block = report["blocks"][1]
    assert {
        "grid_in",
        "grid_q",
        "grid_kv",
        "len_in",
        "len_q",
        "len_q_no_cls",
        "len_kv",
        "len_kv_no_cls",
        "attention",
        "share",
        "activation_bytes",
    } <= set(block)
    assert report["batch"] == 8 and set(report["share"]) == {
        "attention",
        "mlp",
        "pooling",
        "stem_head",
    }


def test_render_blocks_has_one_line_per_block(mvit_b_spec):
    text = render_blocks(mvitdsl.analyze(mvit_b_spec))
    assert sum(line.startswith(("    0 ", "   15 ")) for line in text.splitlines()) == 2


pytest.importorskip("torch")
import torch  # noqa: E402


def saved_activation_bytes(spec: mvitdsl.Spec) -> int:
    """Bytes autograd keeps for backward in one training forward at batch 1 (weights excluded,
    each storage counted once)."""
    gm = mvitdsl.build(spec).train()
    weights = {p.untyped_storage().data_ptr() for p in gm.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in weights:
            seen[ptr] = t.untyped_storage().nbytes()
        return t

    m = spec.model
    size = (m.input.channels, *(m.input.size if m.input.kind == "video" else m.input.size[1:]))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        gm(torch.randn(1, *size))
    return sum(seen.values())


@pytest.mark.parametrize(
    "name, size",
    [("mvit_b.mv", (3, 4, 64, 64)), ("mvitv2_s.mv", (3, 4, 64, 64)), ("mvit_b.mv", (3, 8, 96, 96))],
)
def test_activation_estimate_is_within_20_percent_of_what_autograd_saves(name, size):
    spec = mvitdsl.spec.resize(mvitdsl.load_spec(SPECS / name), size)
    estimate = mvitdsl.analyze(spec).activation_bytes
    measured = saved_activation_bytes(spec)
    assert 0.8 < estimate / measured < 1.2, (estimate, measured)
