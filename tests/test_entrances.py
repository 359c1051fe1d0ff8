"""Every entrance answers bad input with a clear error: the CLI's flags, the API's arguments,
spec bytes, child specs and checkpoint files. One regression test per defect of issue 10."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SPECS

import mvitdsl
from mvitdsl import SpecError

MVIT_B = SPECS / "mvit_b.mv"


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mvitdsl", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=600,
    )


def assert_clean_failure(r: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and r.stderr.strip()
    return r.stderr


# ---------------------------------------------------------------- CLI flags


@pytest.mark.parametrize(
    "size",
    [
        "3x16",
        "16x224x224",
        "3x16x224x224x9",
        "0x16x224x224",
        "3x-16x224x224",
        "3x16x224xabc",
        "x",
        "",
    ],
)
def test_bad_input_sizes_are_refused_in_words(size: str):
    r = cli("check", str(MVIT_B), "--input", size)
    assert r.returncode in (1, 2), r.stderr  # 2: argparse's usage error, 1: the spec's kind
    assert "Traceback" not in r.stderr
    assert "--input" in r.stderr or "takes video input" in r.stderr, r.stderr


def test_an_image_size_for_a_video_spec_names_the_kind():
    stderr = assert_clean_failure(cli("check", str(MVIT_B), "--input", "16x224x224"))
    assert "mvit_b takes video input (C, T, H, W)" in stderr


@pytest.mark.parametrize("batch", ["0", "-5", "two", "1e3"])
def test_batch_must_be_a_positive_whole_number(batch: str):
    stderr = assert_clean_failure(cli("check", str(MVIT_B), "--batch", batch), code=2)
    assert "--batch" in stderr


def test_block_out_of_range_is_a_usage_error():
    r = cli("draw", str(MVIT_B), "--level", "block", "--block", "99", "-o", "/tmp/x.dot")
    assert r.returncode == 2 and "out of range" in r.stderr
    stderr = assert_clean_failure(cli("draw", str(MVIT_B), "--block", "-1"), code=2)
    assert "--block" in stderr


def test_version_and_help_with_defaults_and_examples():
    r = cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"mvitdsl {mvitdsl.__version__}"
    top = cli("--help").stdout
    assert "examples:" in top and "mvitdsl compile specs/mvit_b.mv" in top
    helps = {c: cli(c, "--help").stdout for c in ("check", "compile", "draw")}
    assert "(default: 1)" in helps["check"] and "(default: fp32)" in helps["check"]
    assert "(default: stage)" in helps["draw"]
    for text in helps.values():
        assert "--input INPUT" in text and "CxTxHxW" in text


# ---------------------------------------------------------------- spec files and bytes


def test_a_non_utf8_spec_gets_a_located_E104(tmp_path):
    path = tmp_path / "latin1.mv"
    path.write_bytes(MVIT_B.read_text().replace("# ", "# caf\u00e9 ", 1).encode("latin-1"))
    stderr = assert_clean_failure(cli("check", str(path)))
    assert stderr.startswith(f"{path}:1:") and "error[E104]" in stderr and "0xe9" in stderr
    with pytest.raises(SpecError) as info:
        mvitdsl.load_spec(path)
    assert [d.code for d in info.value.diagnostics] == ["E104"]


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f"])
def test_control_characters_get_a_located_E104(char: str):
    text = MVIT_B.read_text().replace("model mvit_b", f"model {char}mvit_b")
    with pytest.raises(SpecError) as info:
        mvitdsl.load_spec(text=text)
    (d,) = info.value.diagnostics
    assert d.code == "E104" and d.span is not None and d.span.column == 7


def test_a_negative_number_is_named_as_one():
    text = MVIT_B.read_text().replace("drop_path 0.2", "drop_path -0.2")
    with pytest.raises(SpecError) as info:
        mvitdsl.load_spec(text=text)
    message = info.value.diagnostics[0].message
    assert "negative number '-0.2'" in message and "3x7x7" not in str(info.value)


def test_a_missing_file_is_file_not_found_not_a_syntax_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="typo.mv"):
        mvitdsl.load_spec("typo.mv")
    with pytest.raises(FileNotFoundError, match="typo.mv"):
        mvitdsl.load_spec(tmp_path / "typo.mv")
    with pytest.raises(FileNotFoundError):
        mvitdsl.compile("typo.mv")
    stderr = assert_clean_failure(cli("check", "typo.mv"))
    assert stderr == "mvitdsl: error: no spec file 'typo.mv'\n"


def test_spec_text_goes_through_text_only():
    text = MVIT_B.read_text()
    assert mvitdsl.load_spec(text=text).name == "mvit_b"
    with pytest.raises(FileNotFoundError, match="text="):
        mvitdsl.load_spec(text)  # a str is a file name
    with pytest.raises(TypeError):
        mvitdsl.load_spec()
    with pytest.raises(TypeError):
        mvitdsl.load_spec(MVIT_B, text=text)
    with pytest.raises(TypeError, match="text="):
        mvitdsl.load_spec(text.encode())  # type: ignore[arg-type]


# ---------------------------------------------------------------- API arguments


@pytest.mark.parametrize(
    "size, error",
    [
        ((3, 16), ValueError),
        ((16, 224, 224), ValueError),
        ((0, 16, 224, 224), ValueError),
        ((3, 16, 224, 224, 9), ValueError),
        ((3, 16, -1, 224), ValueError),
        ((3.0, 16, 224, 224), TypeError),
        ("3x16x224x224", TypeError),
        (3, TypeError),
        ((True, 16, 224, 224), TypeError),
    ],
)
def test_input_sizes_are_checked_at_every_entrance(size, error):
    with pytest.raises(error) as info:
        mvitdsl.load_spec(MVIT_B, input_size=size)
    assert str(info.value)
    spec = mvitdsl.load_spec(MVIT_B)
    with pytest.raises(error):
        mvitdsl.resize(spec, size)


def test_spec_error_is_a_value_error():
    assert issubclass(SpecError, ValueError)


def test_py_typed_ships():
    assert (Path(mvitdsl.__file__).parent / "py.typed").is_file()


def test_compile_spells_out_its_keywords():
    import inspect

    params = inspect.signature(mvitdsl.compile).parameters
    assert not any(p.kind is p.VAR_KEYWORD for p in params.values())
    assert {"text", "input", "check", "device", "dtype", "checkpoint"} <= set(params)
    build_keywords = set(inspect.signature(mvitdsl.build).parameters) - {"spec"}
    assert build_keywords <= set(params)


def test_build_takes_a_file_name_and_refuses_other_things_in_words():
    pytest.importorskip("torch")
    gm = mvitdsl.build(SPECS / "mvitv2_t_image.mv", device="meta")
    assert gm.conv_proj.weight.is_meta
    with pytest.raises(TypeError, match="load_spec"):
        mvitdsl.build(42)  # type: ignore[arg-type]
    spec = mvitdsl.load_spec(SPECS / "mvitv2_t_image.mv")
    with pytest.raises(ValueError, match="device"):
        mvitdsl.build(spec, device="gpu:zero")
    with pytest.raises(TypeError, match="dtype"):
        mvitdsl.build(spec, dtype="fp16")
    with pytest.raises(TypeError, match="checkpoint"):
        mvitdsl.build(spec, checkpoint=2.5)
    with pytest.raises(ValueError, match="scale9"):
        mvitdsl.build(spec, checkpoint=["scale9"], device="meta")
    with pytest.raises(ValueError, match="image input"):
        mvitdsl.build(spec, input=(3, 16, 224, 224), device="meta")


# ---------------------------------------------------------------- child specs


def child(tmp_path: Path, rows: str, parent: str = "mvitv2_s") -> Path:
    path = tmp_path / "child.mv"
    path.write_text(
        f'model child extends "{SPECS / parent}.mv" {parent} {{\n  stages {{\n{rows}  }}\n}}\n'
    )
    return path


@pytest.mark.parametrize("row", ["scale_5 1 768 8 1x1x1", "scale_5 2 768 8 1x2x2"])
def test_a_typo_in_a_childs_stage_name_is_an_error_with_did_you_mean(tmp_path, row):
    with pytest.raises(SpecError) as info:
        mvitdsl.load_spec(child(tmp_path, f"    {row}\n"))
    (d,) = info.value.diagnostics
    assert d.code == "E211" and d.span is not None and d.span.line == 3
    assert d.hint is not None
    assert "the parent has scale2, scale3, scale4, scale5; did you mean 'scale5'?" in d.hint
    assert "add scale_5" in d.hint


def test_add_appends_a_stage_and_drop_removes_one(tmp_path):
    spec = mvitdsl.load_spec(child(tmp_path, "    drop scale5\n    add scale6 1 768 8 1x1x1\n"))
    assert [s.name for s in spec.model.stages] == ["scale2", "scale3", "scale4", "scale6"]
    with pytest.raises(SpecError, match="already has a stage 'scale5'"):
        mvitdsl.load_spec(child(tmp_path, "    add scale5 1 768 8 1x1x1\n"))
    with pytest.raises(SpecError, match="'drop scale9'"):
        mvitdsl.load_spec(child(tmp_path, "    drop scale9\n"))
    with pytest.raises(SpecError, match="no parent stage to drop"):
        mvitdsl.load_spec(text=MVIT_B.read_text().replace("  }\n", "    drop scale5\n  }\n", 1))


# ---------------------------------------------------------------- checkpoints


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("ckpts")
    spec = mvitdsl.load_spec(SPECS / "mvitv2_t_image.mv")
    torch.manual_seed(0)
    sd = mvitdsl.build(spec).state_dict()
    torch.save(sd, folder / "good.pt")
    data = (folder / "good.pt").read_bytes()
    (folder / "truncated.pt").write_bytes(data[: len(data) // 2])
    (folder / "empty.pt").write_bytes(b"")
    (folder / "garbage.pt").write_bytes(b"not a checkpoint at all\n" * 10)
    (folder / "list.pt").write_bytes(b"")
    torch.save([1, 2, 3], folder / "list.pt")
    save_file({k: v.contiguous() for k, v in sd.items()}, str(folder / "good.safetensors"))
    st = (folder / "good.safetensors").read_bytes()
    (folder / "truncated.safetensors").write_bytes(st[: len(st) // 2])
    (folder / "garbage.safetensors").write_bytes(b"\x9a\x13" * 64)
    (folder / "huge_header.safetensors").write_bytes((2**62).to_bytes(8, "little") + b"{}")
    (folder / "empty.safetensors").write_bytes(b"")
    (folder / "pt_in_disguise.safetensors").write_bytes(data)
    nan = dict(sd)
    nan["head.1.weight"] = torch.full_like(sd["head.1.weight"], float("nan"))
    save_file({k: v.contiguous() for k, v in nan.items()}, str(folder / "nan.safetensors"))
    torch.save(nan, folder / "nan.pt")
    torch.save({f"module.{k}": v for k, v in sd.items()}, folder / "ddp.pt")
    return {p.name: p for p in folder.iterdir()}


@pytest.mark.parametrize(
    "name",
    [
        "truncated.pt",
        "empty.pt",
        "garbage.pt",
        "list.pt",
        "truncated.safetensors",
        "garbage.safetensors",
        "huge_header.safetensors",
        "empty.safetensors",
        "pt_in_disguise.safetensors",
        "missing.pt",
    ],
)
def test_a_broken_checkpoint_gives_one_clear_line(checkpoints, name):
    path = checkpoints.get(name, Path("/nonexistent") / name)
    stderr = assert_clean_failure(
        cli("check", str(SPECS / "mvitv2_t_image.mv"), "--against", str(path))
    )
    assert len(stderr.strip().splitlines()) == 1 and name in stderr
    from mvitdsl.backend.weights import load_checkpoint

    with pytest.raises((ValueError, FileNotFoundError)):
        load_checkpoint(path)


@pytest.mark.parametrize("name", ["nan.pt", "nan.safetensors"])
def test_nan_and_inf_in_a_checkpoint_are_reported(checkpoints, name):
    r = cli("check", str(SPECS / "mvitv2_t_image.mv"), "--against", str(checkpoints[name]))
    assert r.returncode == 1
    assert "nonfinite: head.1.weight holds NaN or Inf values" in r.stderr


def test_a_ddp_checkpoint_is_recognised(checkpoints):
    r = cli("check", str(SPECS / "mvitv2_t_image.mv"), "--against", str(checkpoints["ddp.pt"]))
    assert r.returncode == 0, r.stderr
    from mvitdsl.backend.weights import load_checkpoint

    assert "conv_proj.weight" in load_checkpoint(checkpoints["ddp.pt"])


def test_check_against_prints_json(checkpoints):
    spec = str(SPECS / "mvitv2_t_image.mv")
    good = json.loads(
        cli(
            "check", spec, "--against", str(checkpoints["good.safetensors"]), "--format", "json"
        ).stdout
    )
    assert good["ok"] is True and good["mismatches"] == [] and good["source"] == "torchvision"
    r = cli("check", spec, "--against", str(checkpoints["nan.pt"]), "--format", "json")
    bad = json.loads(r.stdout)
    assert r.returncode == 1 and bad["ok"] is False
    assert [m["kind"] for m in bad["mismatches"]] == ["nonfinite"]
    r = cli("check", spec, "--against", str(checkpoints["garbage.pt"]), "--format", "json")
    assert r.returncode == 1 and "garbage.pt" in json.loads(r.stdout)["error"]


def test_convert_state_dict_names_a_key_that_is_not_a_name():
    """Found by the entrance properties: an int key escaped as AttributeError."""
    spec = mvitdsl.load_spec(SPECS / "mvitv2_t_image.mv")
    with pytest.raises(TypeError, match="names must be str; got 4"):
        mvitdsl.convert_state_dict({"conv_proj.bias": [0.0], 4: "x"}, spec=spec)  # type: ignore[dict-item]
