"""Per-stage settings (`key=value` cells), the fixed rules as settings, the head's mean over the
patch tokens, spec-setting ranges, and locations carried by the IR."""

from __future__ import annotations

import os

import pytest
from conftest import ROOT

import mvitdsl
from mvitdsl.analysis.check import check_model
from mvitdsl.language import settings

TINY = """\
model tiny {
  input image 3x32x32
  patch conv 4x4 stride 4x4 -> 8
  tokens cls, position none
  stages {
    s1  1   8  2  1x1
    s2  2  16  4  2x2
  }
}
"""


def _codes(text: str) -> list[str]:
    with pytest.raises(mvitdsl.SpecError) as info:
        mvitdsl.load_spec(text=text)
    return [d.code for d in info.value.diagnostics]


def test_a_cell_overrides_the_model_wide_value_for_its_stage_only():
    text = TINY.replace(
        "s2  2  16  4  2x2",
        "s2  2  16  4  2x2  kernel_q=1x1 mlp_ratio=2 pool=avg qkv_bias=off rel_pos=decomposed",
    ).replace("  stages {", "  attention pool max 3x3, mlp_ratio 3\n  stages {")
    m = mvitdsl.load_spec(text=text).model
    first, *second = m.blocks
    att = first.attention_op
    assert (first.pool_q.mode, first.mlp_hidden, att.qkv_bias, att.rel_pos) == (
        "max",
        24,
        True,
        "none",
    )
    for b in second:
        att = b.attention_op
        assert (b.pool_kv.mode, b.mlp_hidden, att.qkv_bias, att.rel_pos) == (
            "avg",
            32,
            False,
            "decomposed",
        )
    assert second[0].pool_q.kernel == (1, 1, 1) and second[0].pool_q.stride == (1, 2, 2)
    assert m.attention.mlp_ratio == 3.0  # the model-wide value is unchanged


def test_the_off_cell_and_kv_pool_are_one_concept():
    with_off = TINY.replace("s2  2  16  4  2x2", "s2  2  16  4  2x2  off").replace(
        "  stages {", "  attention stride_kv 2x2\n  stages {"
    )
    with_cell = with_off.replace("2x2  off", "2x2  pool_kv=off")
    a, b = (mvitdsl.load_spec(text=t).model for t in (with_off, with_cell))
    assert [x.pool_kv for x in a.blocks] == [x.pool_kv for x in b.blocks]
    assert not a.blocks[1].pool_kv.exists and a.blocks[0].pool_kv.exists
    model_wide = TINY.replace("  stages {", "  attention stride_kv 2x2, pool_kv off\n  stages {")
    assert not any(x.pool_kv.exists for x in mvitdsl.load_spec(text=model_wide).model.blocks)


def test_pool_padding_and_skip_pool_rules():
    text = TINY.replace("  stages {", "  attention pool max 3x3, pool_pad zero\n  stages {")
    b = mvitdsl.load_spec(text=text.replace("2x2\n", "2x2  pool_pad=half\n")).model.blocks[1]
    assert b.pool_q.padding == (0, 1, 1)
    assert b.pool_skip.kernel == (1, 3, 3) and b.pool_skip.padding == (0, 1, 1)
    like_q = TINY.replace("2x2\n", "2x2  skip_pool=like_q kernel_q=2x2 pool_pad=zero\n")
    b = mvitdsl.load_spec(text=like_q).model.blocks[1]
    assert (b.pool_skip.kernel, b.pool_skip.stride, b.pool_skip.padding) == (
        (1, 2, 2),
        (1, 2, 2),
        (0, 0, 0),
    )


def test_per_stage_drop_path_sets_that_stages_peak():
    text = TINY.replace("  stages {", "  train drop_path 0.3\n  stages {")
    rates = [b.drop_path for b in mvitdsl.load_spec(text=text).model.blocks]
    assert rates == pytest.approx([0.0, 0.15, 0.3])
    cell = text.replace("2x2\n", "2x2  drop_path=0.6\n")
    rates = [b.drop_path for b in mvitdsl.load_spec(text=cell).model.blocks]
    assert rates == pytest.approx([0.0, 0.3, 0.6])


def test_dim_out_changes_channels_in_the_final_block():
    text = TINY.replace("  stages {", "  attention dim_change mlp\n  stages {")
    m = mvitdsl.load_spec(text=text.replace("2x2\n", "2x2  dim_out=24\n")).model
    assert [b.dim_out for b in m.blocks] == [16, 16, 24]


@pytest.mark.parametrize(
    "cell,code",
    [
        ("mlp_ratio=0", "E205"),
        ("drop_path=1", "E205"),
        ("kernel_q=3x3x3", "E206"),
        ("pool=mean", "E203"),
        ("kernal_q=3x3", "E203"),
        ("qkv_bias=on qkv_bias=off", "E201"),
    ],
)
def test_bad_cells_are_located_diagnostics(cell, code):
    text = TINY.replace("2x2\n", f"2x2  {cell}\n")
    with pytest.raises(mvitdsl.SpecError) as info:
        mvitdsl.load_spec(text=text)
    (d,) = info.value.diagnostics
    assert d.code == code and d.span is not None and d.span.line == 7 and d.span.column >= 24


@pytest.mark.parametrize(
    "setting",
    [
        "train drop_path 1",
        "attention dropout 1",
        "head dropout 1",
        "norm eps 0",
        "head classes 0",
        "attention mlp_ratio 0",
        "budget params 0",
    ],
)
def test_declared_ranges_refuse_values_at_the_open_end(setting):
    assert _codes(TINY.replace("  stages {", f"  {setting}\n  stages {{")) == ["E205"]


def test_ranges_live_in_the_settings_table():
    table = {(s.key, o.word): o for s in settings.SETTINGS for o in s.options}
    assert str(table["train", "drop_path"].range) == "[0, 1)"
    assert str(table["norm", "eps"].range) == "(0, 1]"
    assert 0.999 in table["head", "dropout"].range and 1 not in table["head", "dropout"].range


def test_cls_and_head_norm_defaults_agree_written_or_omitted():
    omitted = mvitdsl.load_spec(text=TINY.replace("  tokens cls, position none\n", "")).model
    written = mvitdsl.load_spec(
        text=TINY.replace("tokens cls, position none", "tokens position none")
    )
    assert omitted.tokens.cls == written.model.tokens.cls is True
    head = mvitdsl.load_spec(text=TINY.replace("  stages {", "  head classes 3\n  stages {")).model
    assert head.head.norm == omitted.head.norm is True
    assert head.head.pool == omitted.head.pool == "cls"
    no_cls = TINY.replace("tokens cls", "tokens no_cls").replace(
        "  stages {", "  head norm\n  stages {"
    )
    assert mvitdsl.load_spec(text=no_cls).model.head.pool == "mean"  # never cls without a cls token


def test_budget_is_read_once_into_the_ir():
    m = mvitdsl.load_spec(text=TINY.replace("  stages {", "  budget params 4e9\n  stages {")).model
    assert (m.budget.params, m.budget.activation_gib) == (4e9, 128.0)
    assert m.setting_loc("budget").line == 5


def test_the_checker_runs_on_the_ir_alone():
    spec = mvitdsl.load_spec(text=TINY.replace("s1  1   8  2", "s1  1   8  3"), check=False)
    with pytest.raises(mvitdsl.SpecError) as info:
        check_model(spec.model)  # no AST, no statements, no sources
    (d,) = info.value.diagnostics
    assert (d.code, d.span.line, d.span.column, d.span.end_column) == ("E300", 6, 13, 14)
    assert spec.model.stages[0].column("heads").column == 16


def test_resolved_shows_per_stage_cells_with_their_line():
    from mvitdsl.language.resolved import render_resolved

    spec = mvitdsl.load_spec(text=TINY.replace("2x2\n", "2x2  mlp_ratio=2\n"))
    text = render_resolved(spec)
    (line,) = [x for x in text.splitlines() if "mlp_ratio=2" in x]
    assert line.rstrip().endswith("# <spec>:7")
    again = mvitdsl.load_spec(text=text)
    assert [b.mlp_hidden for b in again.model.blocks] == [b.mlp_hidden for b in spec.model.blocks]


# ---------------------------------------------------------------- against the references

MEAN_WITH_CLS = """\
model mean_with_cls {
  input      image 3x8x8
  patch      conv 4x4 stride 4x4 -> 8
  tokens     cls
  stages {
    s0  1  8  1  1x1
  }
  head       norm, mean, classes 2
}
"""


def test_head_mean_with_a_cls_token_averages_the_patch_tokens_only_as_timm():
    torch = pytest.importorskip("torch")
    pytest.importorskip("timm")
    from timm.models.mvitv2 import MultiScaleVit, MultiScaleVitCfg

    from mvitdsl.backend.weights import convert_state_dict

    cfg = MultiScaleVitCfg(
        depths=(1,),
        embed_dim=8,
        num_heads=1,
        use_cls_token=True,
        stride_q=((1, 1),),
        stride_kv=((1, 1),),
        stride_kv_adaptive=None,
        kernel_qkv=(1, 1),
        residual_pooling=False,
        rel_pos_type="none",
        patch_kernel=(4, 4),
        patch_stride=(4, 4),
        patch_padding=(0, 0),
    )
    torch.manual_seed(0)
    ref = MultiScaleVit(cfg, img_size=(8, 8), num_classes=2, global_pool="avg").eval()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.5)
    spec = mvitdsl.load_spec(text=MEAN_WITH_CLS)
    gm = mvitdsl.build(spec).eval()
    gm.load_state_dict(convert_state_dict(ref.state_dict(), "timm", spec=spec), strict=True)
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), ref(x), atol=1e-5, rtol=0)


def test_per_block_kernels_and_a_final_block_channel_change_match_torchvision():
    """torchvision's generic MViT(block_setting=[MSBlockConfig...]): kernels that differ per
    block and output_channels != input_channels in the final block (v1)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    from torchvision.models.video.mvit import MSBlockConfig, MViT

    blocks = [
        MSBlockConfig(1, 8, 8, [1, 1, 1], [3, 3, 3], [1, 1, 1], [1, 2, 2]),
        MSBlockConfig(2, 8, 16, [3, 3, 3], [1, 3, 3], [1, 2, 2], [1, 2, 2]),
        MSBlockConfig(2, 16, 24, [1, 1, 1], [3, 3, 3], [1, 1, 1], [1, 1, 1]),
    ]
    torch.manual_seed(0)
    ref = MViT(
        spatial_size=(32, 32),
        temporal_size=4,
        block_setting=blocks,
        residual_pool=False,
        residual_with_cls_embed=True,
        rel_pos_embed=False,
        proj_after_attn=False,
        num_classes=5,
    ).eval()
    gm = mvitdsl.build(mvitdsl.load_spec(ROOT / "examples" / "per_stage.mv")).eval()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    gm.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), ref(x), atol=1e-4, rtol=0)


def test_head_order_and_no_norm_are_emitted_and_counted():
    torch = pytest.importorskip("torch")
    base = MEAN_WITH_CLS.replace("tokens     cls", "tokens     no_cls")
    specs = {
        order: mvitdsl.load_spec(text=base.replace("classes 2", f"classes 2, order {order}"))
        for order in ("norm_pool", "pool_norm")
    }
    built = {order: mvitdsl.build(spec).eval() for order, spec in specs.items()}
    built["pool_norm"].load_state_dict(built["norm_pool"].state_dict(), strict=True)
    for order, gm in built.items():
        assert mvitdsl.analyze(specs[order]).params == sum(p.numel() for p in gm.parameters())
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        stem = built["norm_pool"].get_submodule("conv_proj")(x).flatten(2).transpose(1, 2)
        feats = built["norm_pool"].blocks[0](stem)
        gm = built["norm_pool"]
        want = gm.get_submodule("head.1")(gm.get_submodule("norm")(feats.mean(1)))
        torch.testing.assert_close(built["pool_norm"](x), want)
    bare = mvitdsl.build(mvitdsl.load_spec(text=base.replace("norm, mean", "no_norm, mean")))
    assert "norm.weight" not in bare.state_dict()


def test_the_report_states_each_stages_own_mlp_ratio():
    report = mvitdsl.analyze(mvitdsl.load_spec(text=TINY.replace("2x2\n", "2x2  mlp_ratio=2\n")))
    assert [s.operators for s in report.stages] == ["MHPA(8), MLP(32)", "MHPA(16), MLP(32)"]


def test_a_cell_before_the_columns_is_a_syntax_error_with_a_hint():
    text = TINY.replace("s2  2  16  4  2x2", "s2  2  mlp_ratio=2  16  4  2x2")
    with pytest.raises(mvitdsl.SpecError) as info:
        mvitdsl.load_spec(text=text)
    (d,) = info.value.diagnostics
    assert d.code == "E101" and d.hint is not None and "after its columns" in d.hint


def _msblock_spec(blocks: list, classes: int) -> str:
    """torchvision MSBlockConfigs (v1: channels change in the MLP) as a spec: one stage per
    block, the per-block kernels as cells, the last block's output width as `dim_out`."""
    x = lambda v: "x".join(map(str, v))  # noqa: E731
    rows = []
    for i, b in enumerate(blocks):
        cells = f"kernel_q={x(b.kernel_q)} kernel_kv={x(b.kernel_kv)}"
        if i == len(blocks) - 1:
            cells += f" dim_out={b.output_channels}"
        rows.append(
            f"    b{i}  1  {b.input_channels}  {b.num_heads}  {x(b.stride_q)}  {x(b.stride_kv)}"
            f"  {cells}"
        )
    return "\n".join(
        [
            "model msblocks {",
            "  input      video 3x4x32x32",
            f"  patch      conv 3x7x7 stride 2x4x4 pad 1x3x3 -> {blocks[0].input_channels}",
            "  tokens     cls, position separable",
            "  attention  pool conv, pool_q_blocks all, dim_change mlp",
            "  stages {",
            *rows,
            "  }",
            f"  head       norm, cls, classes {classes}",
            "}",
        ]
    )


@pytest.mark.parametrize("seed", range(int(os.environ.get("MVITDSL_MSBLOCK_SEEDS", "8"))))
def test_random_msblock_configs_are_writable_and_equal_torchvision(seed):
    """Random per-block kernels, strides, heads and channel changes (any block, the final one
    included) drawn as torchvision MSBlockConfig lists: written with cells, equal logits."""
    import random

    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    from torchvision.models.video.mvit import MSBlockConfig, MViT

    rng = random.Random(seed)
    blocks, dim, spatial = [], 8, 8
    for _ in range(rng.randint(2, 5)):  # torchvision divides by (blocks - 1)
        heads = rng.choice([1, 2])
        out = rng.choice([dim, dim * 2]) if dim < 32 else dim
        s = 2 if spatial > 2 and rng.random() < 0.4 else 1
        spatial //= s
        blocks.append(
            MSBlockConfig(
                heads,
                dim,
                out,
                [rng.choice([1, 3]) for _ in range(3)],
                [rng.choice([1, 3]) for _ in range(3)],
                [1, s, s],
                [1, rng.choice([1, 2]), rng.choice([1, 2])],
            )
        )
        dim = out
    torch.manual_seed(seed)
    ref = MViT(
        spatial_size=(32, 32),
        temporal_size=4,
        block_setting=blocks,
        residual_pool=False,
        residual_with_cls_embed=True,
        rel_pos_embed=False,
        proj_after_attn=False,
        num_classes=3,
    ).eval()
    spec = mvitdsl.load_spec(text=_msblock_spec(blocks, 3))
    assert mvitdsl.analyze(spec).params == sum(p.numel() for p in ref.parameters())
    gm = mvitdsl.build(spec).eval()
    gm.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), ref(x), atol=1e-4, rtol=0)


def test_head_cls_without_a_cls_token_is_refused():
    text = TINY.replace("tokens cls", "tokens no_cls").replace(
        "  stages {", "  head norm, cls\n  stages {"
    )
    assert _codes(text) == ["E210"]
