"""Property tests: the checker equals execution on random specs, its shape rejections are real,
and nothing but SpecError ever escapes from hostile input.

Bounded by the `ci` hypothesis profile; `make fuzz` runs the `fuzz` profile. Counts of what was
generated and how it ended go to build/property_counts.json.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from math import prod
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from spec_gen import ROOT, SHAPE_CODES, Tally, mutated_specs, spec_texts

import mvitdsl
from mvitdsl import SpecError

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

TALLY = Tally()
SHIPPED = [p.read_text() for p in sorted((ROOT / "specs").glob("*.mv"))]
LARK_NAMES = ("__ANON", "_NL", "RBRACE", "LBRACE", "$END", "NUMBER", "Token(", "Traceback")
BATCH = 2


@pytest.fixture(scope="module", autouse=True)
def _write_counts() -> Iterator[None]:
    yield
    TALLY.write()


def _input(spec: mvitdsl.Spec) -> Any:
    m = spec.model
    size = (
        (m.input.channels, *m.input.size)
        if m.input.kind == "video"
        else (m.input.channels, *m.input.size[1:])
    )
    return torch.randn(BATCH, *size)


def _run(gm: Any, x: Any) -> tuple[Any, dict[int, tuple[tuple[int, ...], tuple[int, ...]]]]:
    """Run gm on x; returns the output and each block's (input shape, output shape)."""
    seen: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    for i, block in enumerate(gm.blocks):
        block.register_forward_hook(
            lambda m, a, out, i=i: seen.__setitem__(i, (tuple(a[0].shape), tuple(out.shape)))
        )
    with torch.no_grad():
        out = gm(x)
    return out, seen


def assert_matches_execution(spec: mvitdsl.Spec) -> None:
    """Block output shapes, parameter count and matmul MACs equal what the module does."""
    report = mvitdsl.analyze(spec)
    gm = mvitdsl.build(spec).eval()
    out, seen = _run(gm, _input(spec))
    assert tuple(out.shape) == (BATCH, spec.model.head.classes)
    assert {i: o for i, (_, o) in seen.items()} == {
        b.index: (BATCH, b.len_q, b.dim_out) for b in report.blocks
    }
    assert sum(p.numel() for p in gm.parameters()) == report.params
    gm = gm.to("meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        gm(_input(spec)[:1].to("meta"))  # the report counts MACs per sample
    assert counter.get_total_flops() == 2 * report.macs


def runtime_verdict(text: str) -> str:
    """How a spec the checker rejected behaves when built anyway: 'raises', or how it is wrong
    ('output', 'batch', 'partial-windows', 'width'); 'fine' would be a false alarm."""
    spec = mvitdsl.load_spec(text=text, check=False)
    stem: list[tuple[int, ...]] = []
    try:
        gm = mvitdsl.build(spec).eval()
        gm.conv_proj.register_forward_hook(lambda m, a, out: stem.append(tuple(out.shape[2:])))
        out, seen = _run(gm, _input(spec))
    except Exception:  # any failure at build or run time proves the rejection right
        return "raises"
    m = spec.model
    cls = int(m.tokens.cls)
    if tuple(out.shape) != (BATCH, m.head.classes):
        return "output"
    grid = stem[0] if m.input.kind == "video" else (1, *stem[0])
    if m.tokens.position == "separable" and (
        gm.pos_encoding.temporal_pos.shape[0] != grid[0]
        or gm.pos_encoding.spatial_pos.shape[0] != grid[1] * grid[2]
    ):
        return "positions"  # the tables do not line up with the frames and the pixels
    if m.tokens.position == "joint" and gm.pos_encoding.pos_embed.shape[1] != prod(grid) + cls:
        return "positions"  # one embedding broadcast over several tokens: it ran, but wrong
    for block in m.blocks:
        (b_in, l_in, _), (b_out, l_out, _) = seen[block.index]
        if b_in != BATCH or b_out != BATCH:
            return "batch"
        if (l_out - cls) * prod(block.pool_q.stride) != l_in - cls:
            return "partial-windows"  # the grid is not the input grid divided by the stride
        stage = next(s for s in m.stages if s.name == block.stage)
        attn = gm.blocks[block.index].attn
        width = attn.q.out_features if hasattr(attn, "q") else attn.qkv.out_features // 3
        if width != stage.dim:
            return "width"  # attention runs at another width than the stage table says
    return "fine"


def located(e: SpecError, text: str) -> None:
    """Every diagnostic has a code, a line inside the file, and words without Lark's names."""
    lines = text.count("\n") + 1
    for d in e.diagnostics:
        assert d.span is not None and 1 <= d.span.line <= lines + 1, d
    rendered = e.render()
    assert not any(name in rendered for name in LARK_NAMES), rendered


def check_generated(test: str, text: str) -> None:
    try:
        spec = mvitdsl.load_spec(text=text)
    except SpecError as e:
        located(e, text)
        codes = {d.code for d in e.diagnostics}
        for code in codes:
            TALLY.add(test + ":codes", code)
        if codes <= SHAPE_CODES:
            verdict = runtime_verdict(text)
            TALLY.add(test, f"rejected:{verdict}")
            assert verdict != "fine", f"false alarm {sorted(codes)}:\n{text}\n{e}"
        else:
            TALLY.add(test, "rejected:other")
        return
    except Exception:
        TALLY.add(test, "escaped")
        raise
    TALLY.add(test, "accepted")
    assert_matches_execution(spec)


@given(spec_texts())
def test_property_random_specs_run_as_predicted(text: str) -> None:
    check_generated("random_specs", text)


@given(spec_texts(near_miss=True))
def test_property_near_miss_rejections_are_real(text: str) -> None:
    check_generated("near_miss", text)


class Hang(BaseException):
    """A case ran past HANG_S. A BaseException: neither the SpecError / Exception clauses below
    nor hypothesis's shrinking catch it, so the hung case fails at once."""


HANG_S = 60  # checking a hostile spec takes milliseconds: a minute is a hang on any machine


@contextmanager
def hang_guard(seconds: int = HANG_S) -> Iterator[None]:
    """Raise Hang in the test's thread when the block runs for `seconds` (SIGALRM)."""

    def hung(signum: int, frame: object) -> None:
        raise Hang(f"a spec took more than {seconds} s to check: a hang")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _hostile(test: str, text: str) -> None:
    with hang_guard():
        try:
            spec = mvitdsl.load_spec(text=text)
            mvitdsl.analyze(spec)
        except SpecError as e:
            located(e, text)
            TALLY.add(test, "rejected")
        except Exception:
            TALLY.add(test, "escaped")
            raise
        else:
            TALLY.add(test, "accepted")


@given(mutated_specs(SHIPPED))
def test_property_mutated_shipped_specs_fail_cleanly(text: str) -> None:
    _hostile("mutations", text)


@given(
    st.text(alphabet=st.sampled_from(list('model{}\n x->1234567890,.#"eE_abc×\t')), max_size=300)
)
def test_property_arbitrary_text_fails_cleanly(text: str) -> None:
    _hostile("arbitrary_text", text)
