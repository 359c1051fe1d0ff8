"""From a checkpoint to your own task: weights into build() and artifacts, position tables
resized to new input sizes, new classifiers, multi-scale features, parameter groups, and the
shipped specs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import ROOT, SPECS

pytest.importorskip("torch")
import torch  # noqa: E402

torchvision = pytest.importorskip("torchvision")
timm = pytest.importorskip("timm")

import torch.nn.functional as F  # noqa: E402
from timm.layers import resample_abs_pos_embed  # type: ignore[attr-defined]  # noqa: E402
from torch import nn  # noqa: E402

import mvitdsl  # noqa: E402
from mvitdsl.backend import resize  # noqa: E402
from mvitdsl.backend.load import WeightsError  # noqa: E402
from mvitdsl.cli import main  # noqa: E402

TINY = ROOT / "examples" / "tiny.mv"


def _linear(table: torch.Tensor, n: int) -> torch.Tensor:
    """The named interpolation, written out: linear along the first dim (timm's rel-pos)."""
    return F.interpolate(table.t()[None], size=n, mode="linear")[0].t()


def _assert_same(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, atol=0, rtol=0)


# ---------------------------------------------------------------- resizing, directly


def test_spatial_table_is_resized_as_timm_resamples():
    table = torch.randn(14 * 14, 8)
    new = resize.resize_spatial(table, (8, 20, 20))
    ref = resample_abs_pos_embed(table[None], [20, 20], [14, 14], num_prefix_tokens=0)[0]
    _assert_same(new, ref)


def test_joint_image_table_keeps_the_cls_row_and_matches_timm():
    table = torch.randn(1, 1 + 8 * 8, 16)
    new = resize.resize_joint(table, (1, 12, 12), cls=True)
    _assert_same(new, resample_abs_pos_embed(table, [12, 12], [8, 8], num_prefix_tokens=1))
    _assert_same(new[:, 0], table[:, 0])


def test_joint_video_table_is_bicubic_in_space_then_linear_in_time():
    table = torch.randn(1, 4 * 6 * 6, 8)
    new = resize.resize_joint(table, (8, 9, 9), cls=False, old=(4, 6, 6))
    frames = torch.cat(
        [
            resample_abs_pos_embed(f[None], [9, 9], [6, 6], num_prefix_tokens=0)
            for f in table.reshape(4, 36, 8)
        ]
    )
    per_position = frames.permute(1, 2, 0).reshape(1, 81 * 8, 4)
    want = F.interpolate(per_position, size=8, mode="linear").reshape(81, 8, 8).permute(2, 0, 1)
    _assert_same(new, want.reshape(1, 8 * 81, 8))


def test_old_grid_follows_the_new_aspect_ratio():
    assert resize.old_spatial(56 * 56, (80, 80)) == (56, 56)
    assert resize.old_spatial(16 * 32, (8, 16)) == (16, 32)
    assert resize.old_joint_grid(8 * 56 * 56, (16, 56, 56)) == (8, 56, 56)


# ---------------------------------------------------------------- weights into build()


@pytest.fixture(scope="module")
def mvit_b() -> mvitdsl.Spec:
    return mvitdsl.load_spec(SPECS / "mvit_b.mv")


def _unchanged_but(gm: nn.Module, state: dict, changed: set[str]) -> None:
    """Every tensor of the built model equals the checkpoint's, except `changed`."""
    own = gm.state_dict()
    assert set(own) == set(state)
    for name, tensor in own.items():
        if name not in changed:
            _assert_same(tensor, state[name])


def test_mvit_b_16_frame_weights_at_32_frames(mvit_b, mvit_v1_b_state):
    gm = mvitdsl.build(mvit_b, input=(3, 32, 224, 224), weights=mvit_v1_b_state)
    report = gm.load_report
    assert [(e.name, e.old, e.new) for e in report.of("resized")] == [
        ("pos_encoding.temporal_pos", (8, 96), (16, 96))
    ]
    old = mvit_v1_b_state["pos_encoding.temporal_pos"]
    _assert_same(gm.state_dict()["pos_encoding.temporal_pos"], _linear(old, 16))
    _unchanged_but(gm, mvit_v1_b_state, {"pos_encoding.temporal_pos"})
    assert "resized      pos_encoding.temporal_pos [8, 96] -> [16, 96]" in report.render()


def test_mvit_b_weights_at_320_pixels(mvit_b, mvit_v1_b_state):
    gm = mvitdsl.build(mvit_b, input=(3, 16, 320, 320), weights=mvit_v1_b_state)
    (entry,) = gm.load_report.of("resized")
    assert (entry.name, entry.old, entry.new) == (
        "pos_encoding.spatial_pos",
        (3136, 96),
        (6400, 96),
    )
    old = mvit_v1_b_state["pos_encoding.spatial_pos"]
    want = resample_abs_pos_embed(old[None], [80, 80], [56, 56], num_prefix_tokens=0)[0]
    _assert_same(gm.state_dict()["pos_encoding.spatial_pos"], want)
    _unchanged_but(gm, mvit_v1_b_state, {"pos_encoding.spatial_pos"})


def test_mvitv2_s_rel_pos_tables_at_320_pixels(mvit_v2_s_state):
    state = mvit_v2_s_state
    spec = mvitdsl.load_spec(SPECS / "mvitv2_s.mv")
    gm = mvitdsl.build(spec, input=(3, 16, 320, 320), weights=state)
    resized = {e.name: e for e in gm.load_report.of("resized")}
    assert resized and all(".attn.rel_pos_" in n for n in resized)
    assert "blocks.0.attn.rel_pos_h" in resized and "blocks.0.attn.rel_pos_t" not in resized
    own = gm.state_dict()
    for name, e in resized.items():
        assert e.old == tuple(state[name].shape) and e.new == tuple(own[name].shape)
        _assert_same(own[name], _linear(state[name], e.new[0]))
    _unchanged_but(gm, state, set(resized))


def test_new_classes_change_only_the_classifier(mvit_b, mvit_v1_b_state):
    gm = mvitdsl.build(mvit_b, weights=mvit_v1_b_state, classes=174)
    assert gm.head[1].weight.shape == (174, 768)
    own = gm.state_dict()
    for name, tensor in mvit_v1_b_state.items():
        if not name.startswith("head.1."):
            _assert_same(own[name], tensor)
    assert {e.name for e in gm.load_report.of("initialised")} == {"head.1.weight", "head.1.bias"}
    assert {e.name for e in gm.load_report.of("ignored")} == {"head.1.weight", "head.1.bias"}


def test_head_swaps_as_on_torchvision():
    gm = mvitdsl.compile(TINY).eval()
    gm.head[1] = nn.Linear(64, 3)
    with torch.no_grad():
        assert gm(torch.randn(2, 3, 4, 32, 32)).shape == (2, 3)


def test_a_checkpoint_that_does_not_fit_names_every_tensor(mvit_v1_b_state):
    tiny = mvitdsl.load_spec(TINY)
    with pytest.raises(WeightsError) as e:
        mvitdsl.build(tiny, weights=mvit_v1_b_state)
    text = str(e.value)
    assert "conv_proj.weight is [96, 3, 3, 7, 7] in the checkpoint but [32, 3, 3, 7, 7]" in text
    assert "unexpected: the checkpoint has blocks.2." in text or "blocks.15" in text
    assert "nothing loaded" in text


def test_named_torchvision_weights_come_from_the_hub_cache(
    tmp_path, monkeypatch, mvit_b, mvit_v1_b_state
):
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(mvit_v1_b_state, cache / "mvit_v1_b-dbeb1030.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    gm = mvitdsl.build(mvit_b, weights="torchvision:MViT_V1_B_Weights.KINETICS400_V1")
    _unchanged_but(gm, mvit_v1_b_state, set())
    meta = gm.load_report.meta
    assert meta["preprocessing"]["mean"] == [0.45, 0.45, 0.45]
    assert meta["preprocessing"]["crop_size"] == [224, 224]
    assert meta["preprocessing"]["frames"] == 16 and meta["preprocessing"]["frame_rate"] == 7.5
    assert len(meta["categories"]) == 400 and meta["categories"][0] == "abseiling"
    assert gm.load_report.sha256 is not None


# ---------------------------------------------------------------- features


def test_features_equal_timms_forward_intermediates():
    torch.manual_seed(0)
    ref = timm.create_model("mvitv2_tiny").eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    spec = mvitdsl.load_spec(SPECS / "mvitv2_t_image.mv")
    gm = mvitdsl.build(spec, weights=ref.state_dict(), source="timm", features=4).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        maps = gm(x)
        want = ref.forward_intermediates(x, indices=4, intermediates_only=True)
    assert list(maps) == ["scale2", "scale3", "scale4", "scale5"]
    diffs = [(maps[k] - w).abs().max().item() for k, w in zip(maps, want)]
    print("max |ours - timm| per map:", diffs)
    assert max(diffs) < 1e-4
    info = gm.feature_info
    assert [(i["num_chs"], i["reduction"]) for i in info] == [
        (96, 4),
        (192, 8),
        (384, 16),
        (768, 32),
    ]
    assert [(i["num_chs"], i["reduction"]) for i in info] == [
        (d["num_chs"], d["reduction"]) for d in ref.feature_info
    ]
    assert not hasattr(gm, "head") and not hasattr(gm, "norm")


def test_video_features_prune_later_blocks_and_name_the_v1_width():
    spec = mvitdsl.load_spec(SPECS / "mvit_b.mv")
    spec = mvitdsl.resize(spec, (3, 4, 64, 64))
    gm = mvitdsl.build(spec, features=["scale2", -2], feature_norm=True).eval()
    assert len(gm.blocks) == 14  # scale5's two blocks pruned
    info = gm.feature_info
    # v1: the last block of a stage already projects to the next width
    assert [(i["name"], i["num_chs"], i["reduction"], i["temporal_stride"]) for i in info] == [
        ("scale2", 192, 4, 2),
        ("scale4", 768, 16, 2),
    ]
    with torch.no_grad():
        maps = gm(torch.randn(2, 3, 4, 64, 64))
    assert maps["scale2"].shape == (2, 192, 2, 16, 16)
    assert maps["scale4"].shape == (2, 768, 2, 4, 4)
    assert "scale2_norm.weight" in gm.state_dict()


def test_feature_selection_errors():
    spec = mvitdsl.load_spec(TINY)
    with pytest.raises(ValueError, match="no stage 'scale9'"):
        mvitdsl.build(spec, features=["scale9"])
    with pytest.raises(ValueError, match="no stage 5"):
        mvitdsl.build(spec, features=[5])


def test_features_export_with_dict_outputs():
    gm = mvitdsl.build(mvitdsl.load_spec(TINY), features=["scale2", "scale3"]).eval()
    x = torch.randn(2, 3, 4, 32, 32)
    from mvitdsl.backend.export import export_program

    program = export_program(gm, x)
    with torch.no_grad():
        got, want = program.module()(x), gm(x)
    assert list(got) == list(want)
    for k in want:
        torch.testing.assert_close(got[k], want[k])


# ---------------------------------------------------------------- parameter groups


def test_parameter_groups_for_layer_decay():
    from mvitdsl.backend.finetune import param_groups

    gm = mvitdsl.compile(TINY)
    groups = param_groups(gm, lr=1.0, weight_decay=0.05, layer_decay=0.5)
    by_name = {n: g for g in groups for n in g["names"]}
    assert len(by_name) == len(list(gm.parameters()))
    for name in (
        "pos_encoding.class_token",
        "pos_encoding.spatial_pos",
        "blocks.0.norm1.weight",
        "blocks.1.mlp.0.bias",
        "norm.weight",
    ):
        assert by_name[name]["weight_decay"] == 0.0, name
    assert by_name["blocks.1.mlp.0.weight"]["weight_decay"] == 0.05
    assert by_name["conv_proj.weight"]["layer_id"] == 0
    assert by_name["blocks.1.attn.qkv.weight"]["layer_id"] == 2
    assert by_name["head.1.weight"]["layer_id"] == 3 and by_name["head.1.weight"]["lr"] == 1.0
    assert by_name["conv_proj.weight"]["lr"] == 0.5**3
    torch.optim.AdamW(groups)  # accepted as they are


# ---------------------------------------------------------------- CLI and artifacts


def _tiny_checkpoint(tmp_path: Path) -> tuple[Path, dict]:
    torch.manual_seed(1)
    state = mvitdsl.compile(TINY).state_dict()
    path = tmp_path / "tiny.pt"
    torch.save(state, path)
    return path, state


def test_compile_weights_puts_exactly_the_checkpoints_tensors_into_the_artifact(tmp_path, capsys):
    from safetensors.torch import load_file

    from mvitdsl.backend.artifact import import_artifact

    ckpt, state = _tiny_checkpoint(tmp_path)
    out = tmp_path / "tiny_art"
    assert main(["compile", str(TINY), "--weights", str(ckpt), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"weights {ckpt} (torchvision names) -> tiny" in printed
    saved = load_file(str(out / "weights.safetensors"))
    assert set(saved) == set(state)
    for name in state:
        _assert_same(saved[name], state[name])
    pkg = import_artifact(out)
    model = pkg.load()
    _assert_same(model.state_dict()["pos_encoding.spatial_pos"], state["pos_encoding.spatial_pos"])
    assert pkg.meta()["weights"]["origin"] == str(ckpt)
    assert model.preprocessing == {} and model.categories is None
    model.head[1] = nn.Linear(64, 2)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 4, 32, 32)).shape == (1, 2)
    assert pkg.param_groups(model, lr=0.1)


def test_compile_classes_and_input_json(tmp_path, capsys):
    ckpt, state = _tiny_checkpoint(tmp_path)
    out = tmp_path / "art"
    argv = [
        "compile",
        str(TINY),
        "--weights",
        str(ckpt),
        "--classes",
        "7",
        "--input",
        "3x8x32x32",
        "-o",
        str(out),
        "--format",
        "json",
    ]
    assert main(argv) == 0
    body = json.loads(capsys.readouterr().out)
    actions = {e["name"]: e["action"] for e in body["load_report"]["entries"]}
    assert actions["pos_encoding.temporal_pos"] == "resized"
    assert actions["head.1.weight"] == "ignored" or actions["head.1.weight"] == "initialised"
    meta = json.loads((out / "meta.json").read_text())
    assert {e["name"] for e in meta["load_report"] if e["action"] == "initialised"} == {
        "head.1.weight",
        "head.1.bias",
    }


def test_compile_with_weights_that_do_not_fit_writes_nothing(tmp_path, capsys):
    ckpt, _ = _tiny_checkpoint(tmp_path)
    out = tmp_path / "never"
    assert main(["compile", str(SPECS / "mvit_b.mv"), "--weights", str(ckpt), "-o", str(out)]) == 1
    assert "do not fit mvit_b" in capsys.readouterr().err
    assert not out.exists()


def test_feature_artifact_keeps_feature_info(tmp_path):
    from mvitdsl.backend.artifact import import_artifact

    out = tmp_path / "feat_art"
    assert main(["compile", str(TINY), "--features", "scale2", "scale3", "-o", str(out)]) == 0
    model = import_artifact(out).load()
    assert [i["name"] for i in model.feature_info] == ["scale2", "scale3"]
    with torch.no_grad():
        maps = model(torch.randn(1, 3, 4, 32, 32))
    assert maps["scale3"].shape == (1, 64, 2, 4, 4)


# ---------------------------------------------------------------- shipped specs


def test_shipped_specs_by_name(tmp_path, monkeypatch, capsys):
    spec = mvitdsl.load_spec(name="mvit_b")
    assert spec.name == "mvit_b"
    with pytest.raises(FileNotFoundError, match="shipped: .*mvit_b"):
        mvitdsl.load_spec(name="nope")
    monkeypatch.chdir(tmp_path)
    assert main(["check", "mvitv2_t_image"]) == 0
    assert "mvitv2_t_image" in capsys.readouterr().out
    assert main(["list"]) == 0
    listing = capsys.readouterr().out
    assert "mvit_b " in listing and "36,610,672" in listing and "70.599" in listing
    assert main(["list", "--format", "json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["mvitv2_t_image"]["params"] == 24_173_320 and len(rows) >= 14


def test_feature_model_with_weights_exports_to_onnx_and_pt2(tmp_path):
    """`compile --weights --features --export onnx pt2`: dict outputs, named after the stages,
    carrying the checkpoint's weights."""
    ort = pytest.importorskip("onnxruntime")
    from mvitdsl.backend.artifact import import_artifact

    ckpt, state = _tiny_checkpoint(tmp_path)
    out = tmp_path / "feat_export"
    argv = [
        "compile",
        str(TINY),
        "--weights",
        str(ckpt),
        "--features",
        "scale2",
        "scale3",
        "--export",
        "onnx",
        "pt2",
        "-o",
        str(out),
    ]
    assert main(argv) == 0
    model = import_artifact(out).load()
    _assert_same(model.state_dict()["blocks.1.mlp.0.weight"], state["blocks.1.mlp.0.weight"])
    x = torch.randn(3, 3, 4, 32, 32)
    with torch.no_grad():
        want = model(x)
        program = torch.export.load(str(out / "tiny.pt2")).module()
        got = program(x)
    for k in want:
        torch.testing.assert_close(got[k], want[k], atol=1e-5, rtol=0)
    session = ort.InferenceSession(str(out / "tiny.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["scale2", "scale3"]
    maps = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    for k, m in zip(want, maps):
        torch.testing.assert_close(torch.from_numpy(m), want[k], atol=1e-4, rtol=0)


OUTPUTS_SPEC = (
    TINY.read_text()
    .replace("  train      drop_path 0.1", "  outputs    scale3, scale2, norm")
    .replace("model tiny", "model tiny_features")
)


def test_outputs_setting_makes_a_feature_model():
    spec = mvitdsl.load_spec(text=OUTPUTS_SPEC)
    assert spec.model.outputs.stages == ("scale2", "scale3") and spec.model.outputs.norm
    gm = mvitdsl.build(spec)
    assert [i["name"] for i in gm.feature_info] == ["scale2", "scale3"]
    assert "scale2_norm.weight" in gm.state_dict()
    report = mvitdsl.analyze(spec)  # analysis knows the outputs and the feature model's size
    assert report.outputs == gm.feature_info
    assert report.feature_params == sum(p.numel() for p in gm.parameters())
    from mvitdsl.analysis.report_text import render_table

    assert "outputs: scale2 64ch /4 t/2, scale3 64ch /8 t/2" in render_table(report)
    only = mvitdsl.build(spec, features=["scale3"], feature_norm=False)  # the keyword wins
    assert [i["name"] for i in only.feature_info] == ["scale3"]
    assert not any("_norm." in k for k in only.state_dict())
    logits = mvitdsl.build(spec, features=False).eval()
    with torch.no_grad():
        assert logits(torch.randn(1, 3, 4, 32, 32)).shape == (1, 10)


def test_outputs_setting_names_stages_that_exist():
    text = OUTPUTS_SPEC.replace("outputs    scale3, scale2", "outputs    scale3, scale4")
    with pytest.raises(mvitdsl.SpecError) as e:
        mvitdsl.load_spec(text=text)
    (d,) = e.value.diagnostics
    assert d.code == "E203" and "no stage 'scale4' to output" in d.message


def test_slowfast_names_and_shapes_resize_too():
    """SlowFast keeps (1, L, D) position tables under its own names."""
    torch.manual_seed(2)
    state = mvitdsl.compile(TINY).state_dict()
    renames = {
        "pos_encoding.spatial_pos": "pos_embed_spatial",
        "pos_encoding.temporal_pos": "pos_embed_temporal",
        "pos_encoding.class_pos": "pos_embed_class",
        "pos_encoding.class_token": "cls_token",
        "conv_proj.weight": "patch_embed.proj.weight",
        "conv_proj.bias": "patch_embed.proj.bias",
        "head.1.weight": "head.projection.weight",
        "head.1.bias": "head.projection.bias",
    }
    slowfast = {}
    for name, tensor in state.items():
        if name.startswith("pos_encoding."):
            tensor = tensor.reshape(1, -1, tensor.shape[-1])
        name = renames.get(name, name)
        for ours, theirs in (
            (r"\.mlp\.0\.", ".mlp.fc1."),
            (r"\.mlp\.3\.", ".mlp.fc2."),
            (r"\.attn\.project\.0\.", ".attn.proj."),
            (r"\.pool_(.)\.pool\.", r".pool_\1."),
            (r"\.pool_(.)\.norm_act\.0\.", r".norm_\1."),
            (r"\.project\.", ".proj."),
        ):
            name = re.sub(ours, theirs, name)
        slowfast[name] = tensor
    spec = mvitdsl.load_spec(TINY)
    gm = mvitdsl.build(spec, input=(3, 8, 48, 48), weights=slowfast, source="slowfast")
    resized = {e.name: (e.old, e.new) for e in gm.load_report.of("resized")}
    assert resized == {
        "pos_encoding.temporal_pos": ((1, 2, 32), (4, 32)),
        "pos_encoding.spatial_pos": ((1, 64, 32), (144, 32)),
    }
    own = gm.state_dict()
    _assert_same(own["pos_encoding.temporal_pos"], _linear(state["pos_encoding.temporal_pos"], 4))
    _assert_same(own["pos_encoding.class_pos"], state["pos_encoding.class_pos"])
    _unchanged_but(gm, state, set(resized))


def test_check_weights_prints_the_load_report_without_building(tmp_path, capsys):
    ckpt, _ = _tiny_checkpoint(tmp_path)
    assert main(["check", str(TINY), "--weights", str(ckpt), "--input", "3x8x48x48"]) == 0
    out = capsys.readouterr().out
    assert "resized      pos_encoding.spatial_pos [64, 32] -> [144, 32]" in out
    assert (
        main(["check", str(TINY), "--weights", str(ckpt), "--classes", "3", "--format", "json"])
        == 0
    )
    body = json.loads(capsys.readouterr().out)
    assert {e["name"] for e in body["load_report"]["entries"] if e["action"] == "initialised"} == {
        "head.1.weight",
        "head.1.bias",
    }
    assert main(["check", "mvitv2_t_image", "--weights", str(ckpt)]) == 1
    assert "do not fit mvitv2_t_image; nothing loaded" in capsys.readouterr().err


def test_draw_shows_the_outputs_instead_of_the_head():
    pytest.importorskip("graphviz")
    from mvitdsl.draw.render import draw

    text = OUTPUTS_SPEC.replace("outputs    scale3, scale2, norm", "outputs    scale2")
    spec = mvitdsl.load_spec(text=text)
    for level in ("model", "stage"):
        source = draw(spec, level).source
        assert "out_scale2" in source and '"head"' not in source and "head [" not in source
        assert "scale3" not in source  # pruned


def test_named_weights_carry_preprocessing_and_classes_into_the_artifact(
    tmp_path, monkeypatch, mvit_v1_b_state
):
    from mvitdsl.backend.artifact import import_artifact

    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(mvit_v1_b_state, cache / "mvit_v1_b-dbeb1030.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    out = tmp_path / "mvit_b_k400"
    argv = [
        "compile",
        "mvit_b",
        "--weights",
        "torchvision:MViT_V1_B_Weights.KINETICS400_V1",
        "-o",
        str(out),
    ]
    assert main(argv) == 0
    model = import_artifact(out).load()
    assert model.preprocessing["std"] == [0.225, 0.225, 0.225]
    assert model.preprocessing["resize_size"] == [256]
    assert len(model.categories) == 400
    meta = json.loads((out / "meta.json").read_text())
    assert meta["weights"]["origin"] == "torchvision:MViT_V1_B_Weights.KINETICS400_V1"
    assert len(meta["weights"]["sha256"]) == 64
    _assert_same(
        model.state_dict()["blocks.3.attn.qkv.weight"], mvit_v1_b_state["blocks.3.attn.qkv.weight"]
    )
