"""`build(compile=)` and `bench --compile`: regional compilation shares one compiled graph among
identical blocks (by default only the blocks that repeat are compiled), keeps outputs and
gradients equal to eager, and refuses bad modes in words.
(aot_eager here, the graph capture without inductor's code generation: the mechanism, quickly;
benchmarks/compile_modes.py measures inductor's first call and speed.)"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import mvitdsl  # noqa: E402
from mvitdsl.backend import runtime  # noqa: E402
from mvitdsl.backend.passes.compiled import (  # noqa: E402
    MODES,
    REPEATS,
    TensorDropPath,
    compile_arg,
    compiled,
    identical_blocks,
)
from mvitdsl.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# tiny.mv with three blocks in its last stage: blocks 2 and 3 are identical but for drop rate
REPEATED = (
    (ROOT / "examples" / "tiny.mv")
    .read_text()
    .replace("scale3       1   64", "scale3       3   64")
    .replace("expect     params 67946, output 64x2x4x4\n", "")
)


@pytest.fixture(scope="module")
def spec() -> Any:
    return mvitdsl.load_spec(text=REPEATED)


def test_identical_blocks_group_by_code_settings_and_shapes_not_drop_rate(spec: Any) -> None:
    gm = mvitdsl.build(spec, device="meta")
    assert identical_blocks(gm) == [[0], [1], [2, 3]]
    rates = [m.p for m in gm.modules() if isinstance(m, runtime.DropPath)]
    assert len(set(rates)) > 2  # the rates differ from block to block, the group holds anyway


def _train_step(gm: Any, x: Any) -> tuple[Any, list[Any]]:
    gm.train()
    gm.zero_grad(set_to_none=True)
    out = gm(x)
    out.square().mean().backward()
    return out.detach(), [p.grad for p in gm.parameters()]


def _eager(spec: Any) -> Any:
    torch.manual_seed(0)
    eager = mvitdsl.build(spec)
    for m in eager.modules():  # no stochastic depth: eager and compiled draw different masks
        if isinstance(m, runtime.DropPath):
            m.p = 0.0
    return eager


def test_regional_shares_one_graph_per_group_and_equals_eager(spec: Any) -> None:
    from torch._dynamo.utils import counters

    eager = _eager(spec)
    gm = compiled("regional", backend="aot_eager", repeats=1)(copy.deepcopy(eager))
    assert gm.state_dict().keys() == eager.state_dict().keys()
    torch._dynamo.reset()
    counters.clear()
    x = torch.randn(2, 3, 4, 32, 32)
    eager.eval(), gm.eval()
    with torch.no_grad():
        torch.testing.assert_close(gm(x), eager(x), rtol=0, atol=1e-6)
    assert counters["stats"]["unique_graphs"] == 3  # three groups, four blocks
    out, grads = _train_step(gm, x)
    ref, ref_grads = _train_step(eager, x)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-6)
    assert counters["stats"]["unique_graphs"] == 6  # and three more in training


def test_regional_by_default_compiles_the_repeated_blocks_only(spec: Any) -> None:
    from torch._dynamo.utils import counters

    assert REPEATS == 2
    eager = _eager(spec)
    gm = compiled("regional", backend="aot_eager")(copy.deepcopy(eager))
    blocks = gm.get_submodule("blocks").children()
    compiled_blocks = [i for i, b in enumerate(blocks) if b._compiled_call_impl is not None]
    assert compiled_blocks == [2, 3]  # blocks 0 and 1 have no twin: eager
    torch._dynamo.reset()
    counters.clear()
    x = torch.randn(2, 3, 4, 32, 32)
    eager.eval(), gm.eval()
    with torch.no_grad():  # eval only: training through a group is the test above's
        torch.testing.assert_close(gm(x), eager(x), rtol=0, atol=1e-6)
    assert counters["stats"]["unique_graphs"] == 1  # one group compiled, shared by two blocks


@settings(max_examples=40, deadline=None)
@given(st.one_of(st.integers(-3, 5), st.booleans(), st.floats(0, 3), st.text(max_size=3)))
def test_property_repeats_is_a_count_of_blocks_or_refused(value: Any) -> None:
    try:
        compiled("regional", repeats=value)
    except ValueError as e:
        assert "repeats=" in str(e)
        assert not (isinstance(value, int) and not isinstance(value, bool) and value >= 1)
    else:
        assert isinstance(value, int) and not isinstance(value, bool) and value >= 1


def test_tensor_drop_path_drops_whole_samples_at_its_rate() -> None:
    m = runtime.DropPath(0.5)
    TensorDropPath.adopt(m, None)
    assert "keep" not in m.state_dict()  # the state dict keeps its names
    x = torch.ones(4000, 3, 2)
    torch.manual_seed(0)
    y = m.train()(x)
    per_sample = y.flatten(1)
    assert ((per_sample == 0).all(1) | (per_sample == 2).all(1)).all()
    assert 0.45 < (per_sample[:, 0] == 0).float().mean().item() < 0.55
    assert m.eval()(x) is x


def test_whole_and_none_keep_the_module() -> None:
    gm = mvitdsl.build(ROOT / "examples" / "tiny.mv", device="meta", compile="whole")
    assert isinstance(gm, torch.fx.GraphModule) and gm._compiled_call_impl is not None
    gm = mvitdsl.build(ROOT / "examples" / "tiny.mv", device="meta", compile="none")
    assert gm._compiled_call_impl is None


@pytest.mark.parametrize(
    ("value", "error"),
    [("fast", ValueError), ("Regional", ValueError), ("", ValueError), (1, TypeError)],
)
def test_bad_compile_modes_are_refused_in_words(value: Any, error: type) -> None:
    with pytest.raises(error, match="compile="):
        mvitdsl.build(ROOT / "examples" / "tiny.mv", device="meta", compile=value)


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.sampled_from([*MODES, True, False, None]), st.text(max_size=12), st.integers()))
def test_property_compile_arg_names_a_mode_or_says_why_not(value: Any) -> None:
    try:
        mode = compile_arg(value)
    except (TypeError, ValueError) as e:
        assert "compile=" in str(e)
    else:
        assert mode in MODES


def test_bench_compile_flag_refuses_an_unknown_mode(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["bench", str(ROOT / "examples" / "tiny.mv"), "--compile", "fast"])
    assert exit_.value.code == 2
    assert "invalid choice: 'fast'" in capsys.readouterr().err
