"""Hiera in the language: mask-unit windows with the one-block lag, Hiera's block as settings,
exact costs, and logits equal to timm's Hiera."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from conftest import SPECS

import mvitdsl
from mvitdsl import analyze, load_spec
from mvitdsl.ir import Block
from mvitdsl.ops import window

TINY_HIERA = """
model hiera_small_test {
  input      image 3x64x64
  patch      conv 7x7 stride 4x4 pad 3x3 -> 32
  tokens     no_cls, position joint
  attention  pool max, kernel_q 2x2, pool_pad zero, pool_kv off, skip_pool like_q,
             dim_change attention, mlp_ratio 4, mask_unit 4x4, scope global
  stages {
    s1  1   32  1  1x1  scope=mask_unit
    s2  2   64  2  2x2  scope=mask_unit
    s3  2  128  4  2x2
  }
  head       norm, mean, order pool_norm, classes 10
}
"""


def test_hiera_tiny_costs_and_grids() -> None:
    report = analyze(load_spec(SPECS / "hiera_t_image.mv"))
    assert report.params == 27_910_216
    assert round(report.macs / 1e9, 3) == 4.901
    assert round(report.macs_fvcore / 1e9, 3) == 4.914
    assert [s.grid[1:] for s in report.stages] == [(56, 56), (28, 28), (14, 14), (7, 7)]


def _window(b: Block) -> tuple[Any, Any, str]:
    """A block's (K/V window, Q window, the stage whose scope it keeps): (None, None, "") when
    it attends globally."""
    w = window.of(b)
    return (w.window_kv, w.window_q, w.scope_from) if w is not None else (None, None, "")


def _scope(b: Block) -> str:
    w = window.of(b)
    return w.scope if w is not None else "global"


def test_scope_lags_one_block() -> None:
    """A stage's first block attends in the previous stage's scope: windows 8, 8/4, 4, 4/2, then
    global; the K/V window is the mask unit over the Q strides applied before the block."""
    model = load_spec(SPECS / "hiera_t_image.mv").model
    windows = [_window(b)[:2] for b in model.blocks]
    assert windows[:5] == [
        ((1, 8, 8), (1, 8, 8)),
        ((1, 8, 8), (1, 4, 4)),
        ((1, 4, 4), (1, 4, 4)),
        ((1, 4, 4), (1, 2, 2)),
        (None, None),
    ]
    assert all(w == (None, None) for w in windows[4:])
    assert [_window(b)[2] for b in model.blocks[:4]] == ["", "scale2", "", "scale3"]
    b1 = model.blocks[1]
    assert b1.pool_q.kernel == b1.pool_q.stride == (1, 2, 2)
    assert b1.pool_q.padding == (0, 0, 0) and not b1.pool_kv.exists
    assert b1.pool_skip.kernel == (1, 2, 2) and b1.pool_skip.padding == (0, 0, 0)


# (edits to TINY_HIERA, the code, the line the diagnostic points at, a phrase of its message)
BROKEN = {
    "no mask unit": ([("mask_unit 4x4, ", "")], "E210", 9, "sets no 'mask_unit'"),
    "cls token": ([("no_cls, position joint", "cls, position joint")], "E210", 9, "cls token"),
    "grid": ([("3x64x64", "3x40x40")], "E309", 9, "grid 10x10 is not divisible by window 4x4"),
    "lagged window": (
        [("mask_unit 4x4", "mask_unit 2x2"), ("128  4  2x2", "128  4  2x2  scope=mask_unit")],
        "E309",
        10,  # block 3 is stage s3's first: it attends in s2's scope, so the s2 row is blamed
        "the scope of stage 's2'",
    ),
    "rel pos": ([("mlp_ratio 4,", "mlp_ratio 4, rel_pos decomposed,")], "E309", 9, "relative"),
    "padded Q pool": ([("pool_pad zero", "pool_pad half")], "E309", 9, "same windows"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_scope_mistakes_are_located(case: str) -> None:
    edits, code, line, phrase = BROKEN[case]
    text = TINY_HIERA
    for old, new in edits:
        assert old in text
        text = text.replace(old, new, 1)
    with pytest.raises(mvitdsl.SpecError) as info:
        load_spec(text=text)
    (d,) = info.value.diagnostics
    assert (d.code, d.span.line) == (code, line) and phrase in d.message, d


IMAGE = {
    "hiera_t_image.mv": "hiera_tiny_224",
    "hiera_s_image.mv": "hiera_small_224",
    "hiera_b_image.mv": "hiera_base_224",
    "hiera_b_plus_image.mv": "hiera_base_plus_224",
    "hiera_l_image.mv": "hiera_large_224",
    "hiera_h_image.mv": "hiera_huge_224",
}
VIDEO_ARGS = dict(
    num_classes=400,
    stages=(2, 3, 16, 3),
    q_pool=3,
    q_stride=(1, 2, 2),
    mask_unit_size=(1, 8, 8),
    patch_kernel=(3, 7, 7),
    patch_stride=(2, 4, 4),
    patch_padding=(1, 3, 3),
    sep_pos_embed=True,
)

pytest.importorskip("torch")
import torch  # noqa: E402

timm = pytest.importorskip("timm")

from timm.models.hiera import Hiera  # noqa: E402

from mvitdsl.backend.weights import convert_state_dict  # noqa: E402


def _input(spec: mvitdsl.Spec, batch: int = 1, device: str = "meta") -> torch.Tensor:
    i = spec.model.input
    size = i.size if i.kind == "video" else i.size[1:]
    return torch.empty(batch, i.channels, *size, device=device)


def _perturbed(model: torch.nn.Module) -> torch.nn.Module:
    """Random values in every tensor (norms and biases too), so a swapped name shows."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model.eval()


def _parity(ref: torch.nn.Module, spec: mvitdsl.Spec, x: torch.Tensor) -> None:
    gm = mvitdsl.build(spec).eval()
    gm.load_state_dict(convert_state_dict(ref.state_dict(), "timm", spec=spec), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), ref(x), atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", sorted(IMAGE))
def test_params_equal_timm_on_meta(name: str) -> None:
    with torch.device("meta"):
        ref = timm.create_model(IMAGE[name], pretrained=False)
    want = sum(p.numel() for p in ref.parameters())
    assert analyze(load_spec(SPECS / name)).params == want


def test_video_params_equal_timm_on_meta() -> None:
    with torch.device("meta"):
        ref = Hiera(img_size=(16, 224, 224), **VIDEO_ARGS)  # type: ignore[arg-type]
    want = sum(p.numel() for p in ref.parameters())
    assert analyze(load_spec(SPECS / "hiera_b_16x224.mv")).params == want


@pytest.mark.parametrize("name", ["hiera_t_image.mv", "hiera_b_16x224.mv"])
def test_flop_counter_equals_analysis_on_meta(name: str) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    spec = load_spec(SPECS / name)
    report = analyze(spec)
    gm = mvitdsl.build(spec, device="meta").eval()
    assert sum(p.numel() for p in gm.parameters()) == report.params
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out = gm(_input(spec))
    assert counter.get_total_flops() == 2 * report.macs
    assert tuple(out.shape) == (1, spec.model.head.classes)


def test_hiera_tiny_logits_equal_timm() -> None:
    torch.manual_seed(0)
    ref = _perturbed(timm.create_model("hiera_tiny_224", pretrained=False))
    spec = load_spec(SPECS / "hiera_t_image.mv")
    _parity(ref, spec, torch.randn(2, 3, 224, 224))


def test_small_hiera_logits_equal_timm() -> None:
    """Two mask-unit stages at 64x64 (mask unit 4x4), so the lag block's windows are exercised."""
    torch.manual_seed(0)
    _parity(_perturbed(_small_timm_hiera()), load_spec(text=TINY_HIERA), torch.randn(2, 3, 64, 64))


def test_video_hiera_logits_equal_timm_at_a_small_input() -> None:
    torch.manual_seed(0)
    ref = _perturbed(Hiera(img_size=(4, 64, 64), **VIDEO_ARGS))  # type: ignore[arg-type]
    spec = load_spec(SPECS / "hiera_b_16x224.mv", input_size=(3, 4, 64, 64))
    _parity(ref, spec, torch.randn(2, 3, 4, 64, 64))


def test_check_blocks_and_resolved_show_windows_and_the_lag() -> None:
    from mvitdsl.analysis.report_text import render_blocks
    from mvitdsl.language.resolved import render_resolved

    spec = load_spec(SPECS / "hiera_t_image.mv")
    lines = render_blocks(analyze(spec)).splitlines()
    block1 = next(line for line in lines if line.split()[:2] == ["1", "scale3"])
    assert "49 windows K/V 8x8 Q 4x4, previous stage's scope" in block1
    assert "16x64" in block1  # one window's L_Q x L_K
    text = render_resolved(spec)
    assert "block 1   scale3     mask_unit, window K/V 8x8 Q 4x4 (scope of scale2)" in text
    assert "block 4   scale4     global" in text
    again = load_spec(text=text).model.blocks
    assert [b.model_dump(exclude={"loc"}) for b in again] == [
        b.model_dump(exclude={"loc"}) for b in spec.model.blocks
    ]


def _small_timm_hiera() -> torch.nn.Module:
    return Hiera(
        img_size=(64, 64),
        embed_dim=32,
        num_heads=1,
        num_classes=10,
        stages=(1, 2, 2),
        q_pool=2,
        mask_unit_size=(4, 4),
        mask_unit_attn=(True, True, False),
    )


def _original_names(sd: dict[str, torch.Tensor], mae: bool) -> dict[str, torch.Tensor]:
    """timm's Hiera names -> facebookresearch/hiera's (`norm.`, `head.projection.`); an MAE
    checkpoint has `encoder_norm.`, a decoder and a mask token instead of the head."""
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        k = k.replace("head.fc.", "head.projection.").replace("head.norm.", "norm.")
        if mae:
            k = k.replace("norm.", "encoder_norm.") if k.startswith("norm.") else k
        out[k] = v
    if mae:
        out["decoder_embed.weight"] = torch.zeros(8, 128)
        out["decoder_blocks.0.norm1.weight"] = torch.zeros(8)
        out["mask_token"] = torch.zeros(1, 1, 128)
    return out


@pytest.mark.parametrize("mae", [False, True], ids=["original", "mae"])
def test_original_repository_names_load(mae: bool) -> None:
    from mvitdsl.backend.weights import compare_shapes, detect_source

    ref = _perturbed(_small_timm_hiera())
    spec = load_spec(text=TINY_HIERA)
    timm_sd = ref.state_dict()
    assert detect_source(list(timm_sd)) == "timm"
    sd = _original_names(timm_sd, mae)
    assert detect_source(list(sd)) == "hiera"
    source, mismatches = compare_shapes(spec.model, {k: tuple(v.shape) for k, v in sd.items()})
    assert source == "hiera" and mismatches == []
    gm = mvitdsl.build(spec).eval()
    gm.load_state_dict(convert_state_dict(sd, spec=spec), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), ref(x), atol=1e-4, rtol=0)


def test_drawings_show_windows_and_hiera_h_stays_small() -> None:
    pytest.importorskip("graphviz")
    from mvitdsl.draw import draw, node_count

    spec = load_spec(SPECS / "hiera_t_image.mv")
    block = draw(spec, "block", block=1).source
    assert "49 mask-unit windows: K/V 8×8, Q 4×4 (previous stage's scope)" in block
    assert "16×64 per head and window" in block
    stage = draw(spec, "stage").source
    assert "K/V 4×4, Q 4×4" in stage and "mean, norm, linear" in stage
    assert node_count(draw(load_spec(SPECS / "hiera_h_image.mv"), "stage")) <= 30


# ---------------------------------------------------------------- random Hiera, against timm

from hypothesis import assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@st.composite
def random_hiera(draw: st.DrawFn) -> tuple[str, dict[str, object]]:
    """A small random Hiera as timm builds it (depths, Q-pooled stages, which stages attend in
    mask units, mask unit, width, heads) and the same model as .mv text."""
    n = draw(st.integers(2, 4))
    depths = tuple(draw(st.integers(1, 2)) for _ in range(n))
    q_pool = draw(st.integers(0, n - 1))
    mu_attn = tuple(draw(st.booleans()) for _ in range(n))
    # timm's windows are the tokens of one position of the grid left after all n - 1 unroll
    # steps (2x2 each): spatial mask units only when the mask unit is 2^(n-1) per side (else
    # they are strided token sets, which the raster semantics does not model)
    unit = 2 ** (n - 1)
    size = draw(st.sampled_from([32, 64]))
    dim, heads = draw(st.sampled_from([8, 16])), draw(st.sampled_from([1, 2]))
    rows = []
    for s, d in enumerate(depths):
        stride = "2x2" if 1 <= s <= q_pool else "1x1"
        scope = " scope=mask_unit" if mu_attn[s] else ""
        rows.append(f"    s{s} {d} {dim * 2**s} {heads * 2**s} {stride}{scope}")
    text = "\n".join(
        [
            "model random_hiera {",
            f"  input image 3x{size}x{size}",
            f"  patch conv 7x7 stride 4x4 pad 3x3 -> {dim}",
            "  tokens no_cls, position joint",
            "  attention pool max, kernel_q 2x2, pool_pad zero, pool_kv off, skip_pool like_q,",
            f"             dim_change attention, mask_unit {unit}x{unit}",
            "  stages {",
            *rows,
            "  }",
            "  head norm, mean, order pool_norm, classes 5",
            "}",
        ]
    )
    args = dict(
        img_size=(size, size),
        embed_dim=dim,
        num_heads=heads,
        num_classes=5,
        stages=depths,
        q_pool=q_pool,
        mask_unit_size=(unit, unit),
        mask_unit_attn=mu_attn,
    )
    return text, args


@settings(max_examples=12, deadline=None)
@given(random_hiera())
def test_property_random_hiera_equals_timm(case: tuple[str, dict[str, object]]) -> None:
    """Any accepted scope layout (the lag included) computes what timm's Hiera computes; a
    rejected one is rejected for its windows or its grid, at a located cell."""
    text, args = case
    try:
        spec = load_spec(text=text)
    except mvitdsl.SpecError as e:
        assert {d.code for d in e.diagnostics} <= {"E302", "E303", "E309"}, e
        assert all(d.span is not None for d in e.diagnostics)
        assume(False)
        return
    report = analyze(spec)
    torch.manual_seed(0)
    ref = _perturbed(Hiera(**args))  # type: ignore[arg-type]
    assert report.params == sum(p.numel() for p in ref.parameters())
    _parity(ref, spec, torch.randn(2, 3, *args["img_size"]))  # type: ignore[misc]
    from torch.utils.flop_counter import FlopCounterMode

    gm = mvitdsl.build(spec, device="meta").eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        gm(_input(spec))
    assert counter.get_total_flops() == 2 * report.macs


def test_explicit_windows_equal_mask_units_where_they_agree() -> None:
    """`scope window` with a stage's window (HieraDet's window_spec) and the same one-block lag:
    Hiera-T written with explicit 8x8 and 4x4 windows is Hiera-T."""
    text = (SPECS / "hiera_t_image.mv").read_text()
    text = re.sub(r"1x1( +)scope=mask_unit", r"1x1\1scope=window window=8x8", text)
    text = re.sub(r"2x2( +)scope=mask_unit", r"2x2\1scope=window window=4x4", text)
    assert text.count("scope=window") == 2
    explicit = load_spec(text=text).model
    units = load_spec(SPECS / "hiera_t_image.mv").model
    assert [_window(b) for b in explicit.blocks] == [_window(b) for b in units.blocks]
    assert {_scope(b) for b in explicit.blocks} == {"window", "global"}
    assert analyze(explicit).macs == analyze(units).macs


def test_window_scope_without_a_size_is_located() -> None:
    text = TINY_HIERA.replace("1x1  scope=mask_unit", "1x1  scope=window")
    with pytest.raises(mvitdsl.SpecError) as info:
        load_spec(text=text)
    (d,) = info.value.diagnostics
    assert (d.code, d.span.line) == ("E210", 9) and "of no size" in d.message


def test_windowed_model_exports_and_compiles(tmp_path: Path) -> None:
    """The window partition survives torch.compile (fullgraph), torch.export -> ONNX in
    onnxruntime at another batch size, and a moved `mvitdsl compile` artifact."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from mvitdsl.backend.artifact import import_artifact
    from mvitdsl.backend.export import export_program, write_onnx
    from mvitdsl.cli import main

    spec = load_spec(text=TINY_HIERA)
    torch.manual_seed(0)
    gm = mvitdsl.build(spec).eval()
    x, x1 = torch.randn(2, 3, 64, 64), torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        want, want1 = gm(x), gm(x1)
        compiled = torch.compile(gm, backend="eager", fullgraph=True)
        torch.testing.assert_close(compiled(x), want, atol=1e-6, rtol=0)
    path = write_onnx(export_program(gm, x), tmp_path / "hiera.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for inp, expected in ((x, want), (x1, want1)):
        got = session.run(None, {session.get_inputs()[0].name: inp.numpy()})[0]
        torch.testing.assert_close(torch.from_numpy(got), expected, atol=1e-4, rtol=0)
    spec_file = tmp_path / "hiera_small.mv"
    spec_file.write_text(TINY_HIERA)
    assert main(["compile", str(spec_file), "-o", str(tmp_path / "artifact")]) == 0
    loaded = import_artifact(tmp_path / "artifact").load().eval()
    with torch.no_grad():
        assert tuple(loaded(x).shape) == (2, 10)


def test_scope_lag_off_splits_a_stage_for_per_block_exceptions() -> None:
    """HieraDet / detectron2 make chosen blocks global: split the stage into rows and turn the
    lag off on the continuation rows, so each row's first block uses the row's own scope."""
    text = TINY_HIERA.replace(
        "    s3  2  128  4  2x2\n",
        "    s3  2  128  4  2x2  scope=window window=2x2\n"
        "    s3g 1  128  4  1x1  scope=global scope_lag=off\n"
        "    s3w 1  128  4  1x1  scope=window window=2x2 scope_lag=off\n",
    )
    blocks = load_spec(text=text).model.blocks
    assert [(b.stage, _scope(b), _window(b)[0]) for b in blocks[3:]] == [
        ("s3", "mask_unit", (1, 2, 2)),  # the stage's first block: s2's scope (the lag)
        ("s3", "window", (1, 2, 2)),
        ("s3g", "global", None),
        ("s3w", "window", (1, 2, 2)),
    ]
    lagging = load_spec(text=text.replace(" scope_lag=off", "")).model.blocks
    assert (_scope(lagging[5]), _scope(lagging[6])) == ("window", "global")  # each row lags
