"""The options of the references: separate q/k/v projections and pool-first against
pytorchvideo 0.1.5's MViT builder (weights converted from its names), and the checkpoints of
pytorchvideo and SlowFast (separate-qkv names) loading strictly through convert_state_dict."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
import torch  # noqa: E402

import mvitdsl  # noqa: E402
from mvitdsl.backend.weights import convert_state_dict, detect_source  # noqa: E402

PTV_SPEC = """\
model ptv_tiny {
  input      video 3x8x32x32
  patch      conv 3x7x7 stride 2x4x4 pad 1x3x3 -> 8
  tokens     cls, position separable
  attention  pool MODE 3x3x3, stride_kv adaptive 1x4x4, qkv separate, pool_first FIRST
  norm       eps 1e-6, pool_eps 1e-5
  stages {
    s0  1   8  1  1x1x1
    s1  2  16  2  1x2x2
    s2  1  32  4  1x2x2
  }
  head       norm, cls, classes 5
}
"""


def _pytorchvideo(mode: str, pool_first: bool) -> torch.nn.Module:
    pytest.importorskip("pytorchvideo")
    from pytorchvideo.models.vision_transformers import create_multiscale_vision_transformers

    torch.manual_seed(0)
    ref = create_multiscale_vision_transformers(
        spatial_size=32,
        temporal_size=8,
        depth=4,
        patch_embed_dim=8,
        num_heads=1,
        embed_dim_mul=[[1, 2.0], [3, 2.0]],
        atten_head_mul=[[1, 2.0], [3, 2.0]],
        pool_q_stride_size=[[1, 1, 2, 2], [3, 1, 2, 2]],
        pool_kv_stride_adaptive=[1, 4, 4],
        pool_kvq_kernel=[3, 3, 3],
        pooling_mode=mode,
        pool_first=pool_first,
        head_num_classes=5,
    )
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return ref.eval()


@pytest.mark.parametrize("mode", ["conv", "avg", "max"])
@pytest.mark.parametrize("pool_first", [False, True])
def test_separate_qkv_and_pool_first_match_pytorchvideo(mode, pool_first):
    ref = _pytorchvideo(mode, pool_first)
    text = PTV_SPEC.replace("MODE", mode).replace("FIRST", "on" if pool_first else "off")
    spec = mvitdsl.load_spec(text=text)
    assert mvitdsl.analyze(spec).params == sum(p.numel() for p in ref.parameters())
    assert detect_source(list(ref.state_dict())) == "pytorchvideo"
    gm = mvitdsl.build(spec).eval()
    gm.load_state_dict(convert_state_dict(ref.state_dict(), spec=spec), strict=True)
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        want, got = ref(x), gm(x)
    scale = float(want.abs().max())
    assert float((got - want).abs().max()) <= 1e-4 * scale


def test_a_pytorchvideo_checkpoint_loads_strictly():
    """pytorchvideo's names (patch_model, cls_positional_encoding, norm_embed, head.proj),
    wrapped as its trainer saves them, load strictly and run."""
    ref = _pytorchvideo("conv", True)
    spec = mvitdsl.load_spec(text=PTV_SPEC.replace("MODE", "conv").replace("FIRST", "on"))
    state = convert_state_dict({"model_state": ref.state_dict()}, "pytorchvideo", spec=spec)
    gm = mvitdsl.build(spec).eval()
    gm.load_state_dict(state, strict=True)


def test_a_slowfast_separate_qkv_checkpoint_loads_strictly():
    """SlowFast's names with SEPARATE_QKV (attn.q / attn.k / attn.v) and POOL_FIRST, built
    from its key names and shapes (SlowFast does not install here)."""
    spec = mvitdsl.load_spec(text=PTV_SPEC.replace("MODE", "conv").replace("FIRST", "on"))
    ours = mvitdsl.build(spec).state_dict()
    to_slowfast = {
        "conv_proj.": "patch_embed.proj.",
        "pos_encoding.class_token": "cls_token",
        "pos_encoding.spatial_pos": "pos_embed_spatial",
        "pos_encoding.temporal_pos": "pos_embed_temporal",
        "pos_encoding.class_pos": "pos_embed_class",
        ".attn.project.0.": ".attn.proj.",
        ".pool.weight": ".weight",
        "head.1.": "head.projection.",
        ".mlp.0.": ".mlp.fc1.",
        ".mlp.3.": ".mlp.fc2.",
        ".project.": ".proj.",
    }
    slowfast = {}
    for name, tensor in ours.items():
        for a, b in to_slowfast.items():
            name = name.replace(a, b)
        name = name.replace(".attn.pool_q.norm_act.0.", ".attn.norm_q.")
        name = name.replace(".attn.pool_k.norm_act.0.", ".attn.norm_k.")
        name = name.replace(".attn.pool_v.norm_act.0.", ".attn.norm_v.")
        if name in ("cls_token", "pos_embed_class"):
            tensor = tensor.reshape(1, 1, -1)
        elif name.startswith("pos_embed_"):
            tensor = tensor.unsqueeze(0)
        slowfast[name] = tensor.clone()
    assert "blocks.1.attn.q.weight" in slowfast and "blocks.1.attn.norm_q.weight" in slowfast
    assert detect_source(list(slowfast)) == "slowfast"
    gm = mvitdsl.build(spec).eval()
    gm.load_state_dict(convert_state_dict({"model_state": slowfast}, spec=spec), strict=True)
    for name, tensor in gm.state_dict().items():
        torch.testing.assert_close(tensor, ours[name].reshape(tensor.shape))


def test_qkv_and_pool_first_are_per_stage_cells():
    text = PTV_SPEC.replace("MODE", "conv").replace(", qkv separate, pool_first FIRST", "")
    text = text.replace("s1  2  16  2  1x2x2", "s1  2  16  2  1x2x2  qkv=separate")
    text = text.replace("s2  1  32  4  1x2x2", "s2  1  32  4  1x2x2  pool_first=on")
    m = mvitdsl.load_spec(text=text).model
    assert [(b.attention_op.qkv, b.attention_op.pool_first) for b in m.blocks] == [
        ("fused", False),
        ("separate", False),
        ("separate", False),
        ("separate", True),
    ]
    gm = mvitdsl.build(mvitdsl.load_spec(text=text))
    names = gm.state_dict()
    assert "blocks.0.attn.qkv.weight" in names and "blocks.1.attn.q.weight" in names
    assert tuple(names["blocks.3.attn.pool_q.pool.weight"].shape)[0] == 32 // 4  # input heads
    assert mvitdsl.analyze(mvitdsl.load_spec(text=text)).params == sum(
        p.numel() for p in gm.parameters()
    )


# ---------------------------------------------------------------- SlowFast: sin-cos, layer scale


def _slowfast_1d(embed_dim, pos):  # slowfast/models/utils.py, get_1d_sincos_pos_embed_from_grid
    import numpy as np

    omega = np.arange(embed_dim // 2, dtype=float)
    omega /= embed_dim / 2.0
    omega = 1.0 / 10000**omega
    out = np.einsum("m,d->md", pos.reshape(-1), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def _slowfast_3d(embed_dim, grid_size, t_size, cls_token=False):  # get_3d_sincos_pos_embed
    import numpy as np

    spatial, temporal = embed_dim // 4 * 3, embed_dim // 4
    grid = np.stack(
        np.meshgrid(np.arange(grid_size, dtype=np.float32), np.arange(grid_size, dtype=np.float32)),
        axis=0,
    )
    grid = grid.reshape([2, 1, grid_size, grid_size])
    emb_s = np.concatenate(
        [_slowfast_1d(spatial // 2, grid[0]), _slowfast_1d(spatial // 2, grid[1])], axis=1
    )
    emb_t = _slowfast_1d(temporal, np.arange(t_size, dtype=np.float32))
    emb_t = np.repeat(emb_t[:, np.newaxis, :], grid_size**2, axis=1)
    emb_s = np.repeat(emb_s[np.newaxis, :, :], t_size, axis=0)
    table = np.concatenate([emb_t, emb_s], axis=-1).reshape([-1, embed_dim])
    if cls_token:
        table = np.concatenate([np.zeros([1, embed_dim]), table], axis=0)
    return table


SINCOS_SPEC = """\
model sincos_tiny {
  input      video 3x4x32x32
  patch      conv 3x7x7 stride 2x4x4 pad 1x3x3 -> 32
  tokens     cls, position sincos
  attention  pool conv 3x3x3, stride_kv adaptive 1x4x4
  stages {
    s0  1  32  1  1x1x1
    s1  1  64  2  1x2x2
  }
  head       norm, cls, classes 5
}
"""


def test_sincos_positions_are_slowfasts_table_and_fixed():
    from mvitdsl.backend.runtime import sincos_positions

    for dim, grid, t, cls in ((32, 8, 2, True), (16, 4, 3, False), (96, 14, 8, True)):
        want = torch.from_numpy(_slowfast_3d(dim, grid, t, cls_token=cls)).float()
        got = sincos_positions(dim, (t, grid, grid), cls)
        assert float((got - want).abs().max()) < 1e-6
    spec = mvitdsl.load_spec(text=SINCOS_SPEC)
    gm = mvitdsl.build(spec).eval()
    assert "pos_encoding.pos_embed" not in dict(gm.named_parameters())  # fixed: a buffer
    assert mvitdsl.analyze(spec).params == sum(p.numel() for p in gm.parameters())
    # the same model with a learned joint table set to SlowFast's values: equal logits
    joint = mvitdsl.build(mvitdsl.load_spec(text=SINCOS_SPEC.replace("sincos", "joint"))).eval()
    state = gm.state_dict()
    state["pos_encoding.pos_embed"] = torch.from_numpy(_slowfast_3d(32, 8, 2, True)).float()[None]
    joint.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), joint(x), atol=1e-5, rtol=0)


def test_sincos_needs_a_width_divisible_by_16():
    with pytest.raises(mvitdsl.SpecError) as info:
        mvitdsl.load_spec(
            text=SINCOS_SPEC.replace("-> 32", "-> 24").replace("s0  1  32", "s0  1  24")
        )
    assert [d.code for d in info.value.diagnostics] == ["E307"]


def test_layer_scale_is_slowfasts_gamma_on_both_branches():
    """SlowFast's block: x = x_res + gamma_1 * attn(x); x = x + gamma_2 * mlp(x), gammas
    initialised to LAYER_SCALE_INIT_VALUE. The same as scaling the attention projection's and
    the MLP output's rows (weights and biases) of a model without layer scale."""
    text = PTV_SPEC.replace("MODE", "conv").replace("FIRST", "off")
    scaled = text.replace("qkv separate,", "qkv separate, layer_scale 0.1,")
    spec = mvitdsl.load_spec(text=scaled)
    gm = mvitdsl.build(spec).eval()
    assert mvitdsl.analyze(spec).params == sum(p.numel() for p in gm.parameters())
    state = gm.state_dict()
    assert torch.equal(state["blocks.0.gamma_1"], torch.full((8,), 0.1))
    assert tuple(state["blocks.0.gamma_2"].shape) == (16,)  # the block's output width
    g = torch.Generator().manual_seed(5)
    for name in state:
        state[name] = state[name] + torch.randn(state[name].shape, generator=g) * 0.05
    gm.load_state_dict(state, strict=True)
    plain = mvitdsl.build(mvitdsl.load_spec(text=text)).eval()
    folded = {k: v.clone() for k, v in state.items() if "gamma" not in k}
    for i in range(len(spec.model.blocks)):
        for branch, gamma in (("attn.project.0", "gamma_1"), ("mlp.3", "gamma_2")):
            g_ = state[f"blocks.{i}.{gamma}"]
            folded[f"blocks.{i}.{branch}.weight"] *= g_[:, None]
            folded[f"blocks.{i}.{branch}.bias"] *= g_
    plain.load_state_dict(folded, strict=True)
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), plain(x), atol=1e-5, rtol=0)
    # SlowFast's names (gamma_1, gamma_2) are ours: a SlowFast checkpoint keeps them
    gammas = {k: v for k, v in state.items() if "gamma" in k}
    assert convert_state_dict(gammas, "slowfast", spec=spec).keys() == gammas.keys()


def test_check_against_converts_pytorchvideo_names(tmp_path, capsys):
    from mvitdsl.cli import main

    spec_file = tmp_path / "ptv.mv"
    spec_file.write_text(PTV_SPEC.replace("MODE", "conv").replace("FIRST", "on"))
    ref = _pytorchvideo("conv", True)
    ckpt = tmp_path / "ptv.pt"
    torch.save({"model_state": ref.state_dict()}, ckpt)
    assert main(["check", str(spec_file), "--against", str(ckpt)]) == 0
    out = capsys.readouterr().out
    assert "pytorchvideo" in out and "mismatch" not in out.lower().replace("0 mismatches", "")
    broken = {k: v for k, v in ref.state_dict().items() if k != "blocks.1.attn.q.weight"}
    torch.save(broken, ckpt)
    assert main(["check", str(spec_file), "--against", str(ckpt)]) != 0
    assert "blocks.1.attn.q.weight" in capsys.readouterr().err
