"""The op registry (mvitdsl/ops/): every record registered under its own kind, a new op kind
plugged in with one module and one registry line, and the block flows computed once per spec."""

from __future__ import annotations

import dataclasses
import operator
import re
import typing
from math import prod
from pathlib import Path
from typing import Any, Literal

import pytest
import torch
from conftest import SPECS

import mvitdsl
from mvitdsl import ops
from mvitdsl.analysis import naming
from mvitdsl.analysis.naming import expected_shapes
from mvitdsl.backend.emit import emit
from mvitdsl.ir import Block, Model
from mvitdsl.nodes import Node
from mvitdsl.ops import block as ops_block
from mvitdsl.ops.base import BlockFlow, Costs, Emits, Making, Rules, Shape, StageName, Value
from mvitdsl.ops.stage_norm import StageNorm

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "examples" / "tiny.mv"


def test_every_record_is_registered_under_its_kind() -> None:
    members = typing.get_args(typing.get_args(ops.BlockOp)[0])
    assert {m.model_fields["kind"].default for m in members} == set(ops.REGISTRY)
    for kind, rules in ops.REGISTRY.items():
        assert rules.record.model_fields["kind"].default == kind
        assert rules.record in members


def test_shipped_specs_use_every_block_op_kind() -> None:
    """Each registered kind is exercised by a shipped spec (so the goldens and parity cover it)
    or by tests/test_reference_options.py (layer scale)."""
    used = {
        op.kind
        for path in SPECS.glob("*.mv")
        for b in mvitdsl.load_spec(path).model.blocks
        for op in b.ops
    }
    assert set(ops.REGISTRY) - used <= {"layer_scale"}


# ---------------------------------------------------------------- a new op kind, end to end


class OutputBias(Node):
    """A toy op: a learned per-channel bias on the MLP branch's output."""

    kind: Literal["output_bias"] = "output_bias"


def _costs(model: Model, block: Block, op: OutputBias, flow: BlockFlow) -> Costs:
    return Costs(params=block.dim_out)


def _shapes(model: Model, block: Block, op: OutputBias, flow: BlockFlow) -> dict[str, Shape]:
    return {"output_bias": (block.dim_out,)}


def _emit(e: Emits, op: OutputBias, x: Value, normed: Value) -> Value:
    bias = torch.nn.Parameter(torch.zeros(e.block.dim_out))
    return e.fn(operator.add, x, e.attr("output_bias", bias))


def test_a_new_op_kind_is_one_module_and_one_registry_line(monkeypatch: Any) -> None:
    """Registered (the one line), the op is counted, named and emitted by every stage, with no
    change outside its own rules; the analysis agrees with the built module."""
    rules = Rules(
        kind="output_bias",
        record=OutputBias,
        costs=_costs,
        shapes=_shapes,
        emit={"scale_mlp": _emit},
    )
    monkeypatch.setitem(ops.REGISTRY, "output_bias", rules)
    model = mvitdsl.load_spec(TINY).model
    blocks = tuple(b.model_copy(update={"ops": (*b.ops, OutputBias())}) for b in model.blocks)
    biased = model.model_copy(update={"blocks": blocks})
    report = mvitdsl.analyze(biased)
    assert report.params == mvitdsl.analyze(model).params + sum(b.dim_out for b in blocks)
    gm = emit(biased)
    state = gm.state_dict()
    assert {f"blocks.{b.index}.output_bias" for b in blocks} <= set(state)
    assert {k: tuple(v.shape) for k, v in state.items()} == expected_shapes(biased)
    assert report.params == sum(p.numel() for p in gm.parameters())
    x = torch.randn(1, model.input.channels, *model.input.size)
    assert gm(x).shape == (1, model.head.classes)


# ---------------------------------------------------------------- family knowledge in op modules

# The MViT block language/expand.py builds itself; every other kind is made by its own module.
CORE = {"pooling_attention", "mlp", "project", "skip_pool", "layer_scale"}
CONSUMERS = ("mvitdsl/analysis/naming.py", "mvitdsl/language/expand.py")


def _family_words(rules: Rules) -> list[str]:
    """What would name an op kind in a consumer: its record, kind, module (imported or reached
    through `ops.`), its reference names and the words of its stage-level names."""
    module = rules.record.__module__.rsplit(".", 1)[-1]
    words = [rf"\b{rules.record.__name__}\b", f"[\"']{rules.kind}[\"']", rf"\bops\.{module}\b"]
    words += [rf"from \.\.ops(\.{module})? import[^\n]*\b{module}\b", rf"^\s+{module},$"]
    words += [re.escape(text) for pair in rules.names for text in pair]
    words += [rf"[\"'(|]{re.escape(n.part)}[\"'|)\\]" for n in rules.stage_names]
    return words


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_consumers_name_no_op_kind_outside_the_mvit_block(consumer: str) -> None:
    """naming.py and expand.py reach the ops of the other families (Swin, PVTv2, windows)
    through the registry only: their names and construction are the op modules' data."""
    text = (ROOT / consumer).read_text()
    for kind, rules in ops.REGISTRY.items():
        if kind in CORE:
            continue
        for word in _family_words(rules):
            assert not re.search(word, text, re.MULTILINE), (consumer, kind, word)


def test_the_family_words_find_what_they_look_for() -> None:
    """The scan above finds a family's op wherever a consumer names it (it can fail)."""
    named = {
        "swin_attention": (
            "from ..ops import attention, swin",
            "x = ops.SwinAttention(window=w)",
            "if op.kind == 'swin_attention':",
            "y = ops.swin.BIAS_TABLE",
            '(r"^attn\\.relative_position_bias_table$", "attn.rel_pos_table")',
        ),
        "patch_merge": ('m = re.match(r"^layers\\.(\\d+)\\.(downsample)\\.(.*)$", name)',),
        "stage_embed": ("from ..ops import (\n    attention,\n    embed,\n)",),
    }
    for kind, lines in named.items():
        words = _family_words(ops.REGISTRY[kind])
        for line in lines:
            assert any(re.search(w, line, re.MULTILINE) for w in words), (kind, line)


def test_a_registered_op_gets_its_reference_names_without_edits(monkeypatch: Any) -> None:
    """A new kind's `names` rename inside blocks of every dialect, and its `stage_names` a
    timm stage's once-only op into the stage's first or last block."""
    rules = Rules(
        kind="output_bias",
        record=OutputBias,
        names=((r"^gate\.bias$", "output_bias"),),
        stage_names=(StageName("stages", "gate", "last", "closing_bias"),),
    )
    monkeypatch.setitem(ops.REGISTRY, "output_bias", rules)
    model = mvitdsl.load_spec(TINY).model
    second = model.stages[1]
    assert naming.rename("stages.1.blocks.0.gate.bias", "timm", model) == (
        f"blocks.{second.first}.output_bias"
    )
    assert naming.rename("blocks.1.gate.bias", "slowfast", model) == "blocks.1.output_bias"
    last = second.first + second.depth - 1
    assert (
        naming.rename("stages.1.gate.weight", "timm", model) == f"blocks.{last}.closing_bias.weight"
    )
    assert naming.rename("stages.9.gate.weight", "timm", model) == "stages.9.gate.weight"
    monkeypatch.delitem(ops.REGISTRY, "output_bias")
    assert naming.rename("blocks.1.gate.bias", "slowfast", model) == "blocks.1.gate.bias"


def test_a_registered_maker_fills_its_slot_without_edits(monkeypatch: Any) -> None:
    """expand.py asks the registry for the ops a block's settings make: a maker registered for
    the `exit` slot (here: a norm closing each stage's first block) is placed last in exactly
    the blocks it makes one for, counted and named like the shipped one."""

    def first_closes(m: Making, made: tuple[Any, ...], current: None) -> StageNorm | None:
        return StageNorm() if m.j == 0 else None

    text = re.sub(r"\n\s*expect .*", "", TINY.read_text())  # its figures are the plain model's
    plain = mvitdsl.load_spec(text=text).model
    changed = dataclasses.replace(ops.REGISTRY["stage_norm"], make=first_closes)
    monkeypatch.setitem(ops.REGISTRY, "stage_norm", changed)
    closed = mvitdsl.load_spec(text=text).model
    firsts = {s.first for s in closed.stages}
    assert [isinstance(b.ops[-1], StageNorm) for b in closed.blocks] == [
        b.index in firsts for b in closed.blocks
    ]
    extra = sum(2 * b.dim_out for b in closed.blocks if b.index in firsts)
    assert mvitdsl.analyze(closed).params == mvitdsl.analyze(plain).params + extra
    assert {f"blocks.{i}.stage_norm.weight" for i in firsts} <= set(expected_shapes(closed))


def test_the_attention_record_holds_every_option_of_the_table() -> None:
    """ir.Attention holds each `attention` option of the one table, an option only an op module
    reads (Swin's, PVTv2's) as data rather than a field: declared once, read by its maker."""
    from mvitdsl.language import settings

    attention = mvitdsl.load_spec(SPECS / "pvt_v2_b2_li.mv").model.attention
    held = set(attention.model_dump(exclude={"loc"})) - {"stride_kv_adaptive"}
    assert held == set(settings.defaults("attention"))
    data = {"shift", "reduce", "reduce_mode", "mlp_conv", "stage_norm"}
    assert data <= set(attention.model_extra or {})
    assert attention.model_extra is not None and attention.model_extra["reduce_mode"] == "linear"


# ---------------------------------------------------------------- the facts, handed down


def test_the_block_flows_are_computed_once_per_spec(monkeypatch: Any) -> None:
    """load_spec computes each block's flow once (the checker, the analysis and the feature
    outputs share them); build and the block drawing take them from the spec's report."""
    calls: list[int] = []
    real = ops_block.flow

    def counted(model: Model, block: Block, grid: Any, nominal: Any) -> BlockFlow:
        calls.append(block.index)
        return real(model, block, grid, nominal)

    monkeypatch.setattr(ops_block, "flow", counted)
    spec = mvitdsl.load_spec(SPECS / "mvitv2_t_image.mv")
    assert sorted(calls) == [b.index for b in spec.model.blocks]
    calls.clear()
    with torch.device("meta"):
        mvitdsl.build(spec)
    mvitdsl.analyze(spec)
    assert calls == []


@pytest.mark.parametrize("name", ["mvit_b", "mvitv2_s", "hiera_t_image"])
def test_block_costs_are_the_sum_of_the_op_costs(name: str) -> None:
    """Every block's parameters are its ops' plus norm1's: nothing is counted outside an op."""
    spec = mvitdsl.load_spec(SPECS / f"{name}.mv")
    assert spec.report is not None
    for b, flow, row in zip(spec.model.blocks, spec.report.flows, spec.report.blocks):
        own = [ops.REGISTRY[op.kind].costs for op in b.ops]
        summed = sum(c(spec.model, b, op, flow).params for c, op in zip(own, b.ops) if c)
        assert row.params == summed + 2 * b.dim_in
        names = ops_block.shapes(spec.model, b, flow)
        assert row.params == sum(prod(s) for s in names.values())
