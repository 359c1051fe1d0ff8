"""The op registry (mvitdsl/ops/): every record registered under its own kind, a new op kind
plugged in with one module and one registry line, and the block flows computed once per spec."""

from __future__ import annotations

import operator
import typing
from math import prod
from pathlib import Path
from typing import Any, Literal

import pytest
import torch
from conftest import SPECS

import mvitdsl
from mvitdsl import ops
from mvitdsl.analysis.naming import expected_shapes
from mvitdsl.backend.emit import emit
from mvitdsl.ir import Block, Model
from mvitdsl.nodes import Node
from mvitdsl.ops import block as ops_block
from mvitdsl.ops.base import BlockFlow, Costs, Emits, Rules, Shape, Value

TINY = Path(__file__).resolve().parent.parent / "examples" / "tiny.mv"


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
