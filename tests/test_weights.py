"""Checkpoint dialects and `check --against`: names and shapes from the spec alone."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SPECS

import mvitdsl
from mvitdsl.backend.weights import compare_shapes, detect_source, expected_shapes

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

ALL_SPECS = sorted(p.name for p in SPECS.glob("*.mv"))

# How SlowFast names torchvision's entries (video_model_builder.MViT, attention.MultiScaleBlock),
# written out here independently of mvitdsl.backend.weights.
TO_SLOWFAST = [
    (r"^conv_proj\.", "patch_embed.proj."),
    (r"^pos_encoding\.class_token$", "cls_token"),
    (r"^pos_encoding\.spatial_pos$", "pos_embed_spatial"),
    (r"^pos_encoding\.temporal_pos$", "pos_embed_temporal"),
    (r"^pos_encoding\.class_pos$", "pos_embed_class"),
    (r"\.attn\.project\.0\.", ".attn.proj."),
    (r"\.attn\.pool_([qkv])\.pool\.", r".attn.pool_\1."),
    (r"\.attn\.pool_([qkv])\.norm_act\.0\.", r".attn.norm_\1."),
    (r"\.mlp\.0\.", ".mlp.fc1."),
    (r"\.mlp\.3\.", ".mlp.fc2."),
    (r"^blocks\.(\d+)\.project\.", r"blocks.\1.proj."),
    (r"^head\.1\.", "head.projection."),
]


def to_slowfast(state_dict: dict) -> dict:
    out = {}
    for name, tensor in state_dict.items():
        for pattern, repl in TO_SLOWFAST:
            name = re.sub(pattern, repl, name)
        if name in ("cls_token", "pos_embed_class"):
            tensor = tensor.reshape(1, 1, -1)  # SlowFast keeps (1, 1, C) and (1, N, C)
        elif name.startswith("pos_embed_"):
            tensor = tensor.unsqueeze(0)
        out[name] = tensor
    return out


@pytest.mark.parametrize("name", ALL_SPECS)
def test_expected_shapes_are_what_build_makes(name):
    spec = mvitdsl.load_spec(SPECS / name)
    gm = mvitdsl.build(spec, device="meta", features=False)  # the whole model, with its head
    built = {k: tuple(v.shape) for k, v in gm.state_dict().items()}
    assert expected_shapes(spec.model) == built


@pytest.mark.parametrize(
    "factory,spec_name", [("mvit_v1_b", "mvit_b.mv"), ("mvit_v2_s", "mvitv2_s.mv")]
)
def test_slowfast_names_round_trip(factory, spec_name):
    torch.manual_seed(0)
    ref = getattr(torchvision.models.video, factory)().state_dict()
    spec = mvitdsl.load_spec(SPECS / spec_name)
    slowfast = to_slowfast(ref)
    assert set(slowfast).isdisjoint({"conv_proj.weight", "head.1.weight"})
    assert detect_source(list(slowfast)) == "slowfast"
    back = mvitdsl.convert_state_dict({"model_state": slowfast}, "slowfast", spec=spec)
    assert list(back) == list(ref)
    for k in ref:
        assert torch.equal(back[k], ref[k]), k
    gm = mvitdsl.build(spec, device="meta")
    gm.load_state_dict(back, strict=True, assign=True)


def test_torchvision_names_pass_unchanged(mvit_b_spec):
    ref = torchvision.models.video.mvit_v1_b().state_dict()
    out = mvitdsl.convert_state_dict(ref, "torchvision", spec=mvit_b_spec)
    assert list(out) == list(ref) and all(out[k] is ref[k] for k in ref)


def test_timm_names_and_shapes_match_the_image_spec():
    timm = pytest.importorskip("timm")
    found = {
        k: tuple(v.shape)
        for k, v in timm.create_model("mvitv2_tiny", pretrained=False).state_dict().items()
    }
    source, mismatches = compare_shapes(mvitdsl.load_spec(SPECS / "mvitv2_t_image.mv").model, found)
    assert source == "timm" and mismatches == []


def test_unknown_source_is_refused(mvit_b_spec):
    with pytest.raises(ValueError, match="unknown source"):
        mvitdsl.convert_state_dict({}, "keras", spec=mvit_b_spec)


# ---------------------------------------------------------------- the command line


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mvitdsl", *args],
        cwd=ROOT,
        text=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.fixture(scope="module")
def mvitv2_s_checkpoints(tmp_path_factory, mvit_v2_s_state) -> dict[str, Path]:
    from safetensors.torch import save_file

    sd = mvit_v2_s_state
    folder = tmp_path_factory.mktemp("ckpt")
    torch.save(sd, folder / "tv.pt")
    torch.save({"model_state": to_slowfast(sd)}, folder / "slowfast.pyth")
    broken = dict(sd)
    broken["blocks.3.attn.qkv.weight"] = torch.zeros(576, 192)
    del broken["blocks.7.attn.rel_pos_h"]
    save_file({k: v.contiguous() for k, v in broken.items()}, str(folder / "broken.safetensors"))
    return {
        "tv": folder / "tv.pt",
        "slowfast": folder / "slowfast.pyth",
        "broken": folder / "broken.safetensors",
    }


def test_check_against_a_matching_checkpoint(mvitv2_s_checkpoints):
    for key in ("tv", "slowfast"):
        r = run_cli("check", "specs/mvitv2_s.mv", "--against", str(mvitv2_s_checkpoints[key]))
        assert r.returncode == 0, r.stderr
        assert "all 397 entries (34,537,744 parameters" in r.stdout
    assert "slowfast names" in r.stdout


def test_check_against_reports_each_mismatch_in_words(mvitv2_s_checkpoints):
    r = run_cli("check", "specs/mvitv2_s.mv", "--against", str(mvitv2_s_checkpoints["broken"]))
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert lines[0] == "closest shipped spec: mvitv2_s; 2 tensors differ"  # issue 26: first
    assert lines[1:] == [
        "specs/mvitv2_s.mv:13: shape: blocks.3.attn.qkv.weight is [576, 192] in the checkpoint "
        "but [1152, 192] in the spec (block 3, stage 'scale4': 192->384 channels, 4 heads of 96)",
        "specs/mvitv2_s.mv:13: missing: the spec makes blocks.7.attn.rel_pos_h [27, 96] (block 7,"
        " stage 'scale4': 384->384 channels, 4 heads of 96); the checkpoint has no such entry",
        f"{mvitv2_s_checkpoints['broken']}: 2 mismatches against mvitv2_s (read as torchvision "
        "names)",
    ]


def test_safetensors_are_compared_without_torch(mvitv2_s_checkpoints):
    code = (
        "import sys, mvitdsl; from mvitdsl.backend.weights import render_comparison; "
        "s = mvitdsl.load_spec('specs/mvitv2_s.mv'); "
        f"text, n = render_comparison(s, {str(mvitv2_s_checkpoints['broken'])!r}, None); "
        "print(json.dumps([n, 'torch' in sys.modules]))"
    )
    r = subprocess.run(
        [sys.executable, "-c", "import json; " + code],
        cwd=ROOT,
        text=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert json.loads(r.stdout) == [2, False], r.stderr
