"""The frictions a new user met on the everyday path (issue 26, item 4): each test failed
before its fix."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, need
from hypothesis import given, settings
from hypothesis import strategies as st

from mvitdsl.cli import main, parser

TINY = (ROOT / "examples" / "tiny.mv").read_text()
# tiny without a cls token and with one joint position table (Hiera's layout)
NO_CLS = (
    TINY.replace("tokens     cls, position separable", "tokens     no_cls, position joint")
    .replace("head       norm, cls,", "head       norm, mean,")
    .replace("  expect     params 67946, output 64x2x4x4\n", "")
)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- shipped spec names wherever a spec is taken -------------------------------------------


def test_diff_and_sweep_take_shipped_spec_names(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "diff", "mvit_b", "mvitv2_s", "--format", "json")
    assert code == 0, err
    assert json.loads(out)
    code, out, err = cli(capsys, "sweep", "mvit_b", "--vary", "scale4.blocks=4,8")
    assert code == 0, err
    assert "2 variants" in out or "variants" in out


def test_extends_a_shipped_spec_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    child = tmp_path / "child.mv"
    child.write_text("model small extends mvitv2_s {\n  head       norm, classes 10\n}\n")
    code, out, err = cli(capsys, "check", str(child))
    assert code == 0, err
    assert "small" in out


def test_an_unknown_parents_hint_does_not_lead_to_a_second_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    child = tmp_path / "child.mv"
    child.write_text("model small extends nosuch {\n  head       norm, classes 10\n}\n")
    code, _, err = cli(capsys, "check", str(child))
    assert code == 1 and "E209" in err
    assert "mvitdsl list" in err  # the hint names where the shipped names are


# --- a checkpoint that does not fit: summary first, folded list ----------------------------


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from safetensors.torch import save_file

    import mvitdsl

    torch.manual_seed(0)
    gm = mvitdsl.build(mvitdsl.load_spec(text=TINY))
    state = {k: v.detach().clone().contiguous() for k, v in gm.state_dict().items()}
    state["head.1.bias"][3] = float("nan")
    state["norm.weight"][0] = float("inf")
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    save_file(state, str(path))
    return path


def test_a_checkpoint_that_does_not_fit_says_the_closest_shipped_spec_first(
    tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "check", "mvit_b", "--against", str(tiny_checkpoint))
    assert code == 1
    lines = err.splitlines()
    assert re.match(r"closest shipped spec: \w+; \d+ tensors differ", lines[0]), lines[0]
    assert any("--verbose" in line and "more" in line for line in lines)
    assert len(lines) < 20
    code, out, err_all = cli(
        capsys, "check", "mvit_b", "--against", str(tiny_checkpoint), "--verbose"
    )
    assert len(err_all.splitlines()) > 100 and "--verbose" not in err_all


def test_shipped_fit_names_the_matching_spec() -> None:
    from mvitdsl.analysis.naming import expected_shapes
    from mvitdsl.cli.common import shipped_fit
    from mvitdsl.spec import load_spec

    found = expected_shapes(load_spec(name="mvitv2_s").model)
    assert shipped_fit(found, "torchvision") == "matches shipped spec mvitv2_s: 34,537,744 params"


def test_compile_weights_that_do_not_fit_are_summarised_and_folded(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(
        capsys, "compile", "mvit_b", "--weights", str(tiny_checkpoint), "-o", str(tmp_path / "o")
    )
    assert code == 1
    assert err.splitlines()[0].startswith("mvitdsl: closest shipped spec: ")
    assert len(err.splitlines()) < 20 and "--verbose" in err


# --- check --batch/--dtype: the memory line, not the per-block dump -----------------------


def test_check_batch_prints_the_memory_line_without_the_blocks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = cli(capsys, "check", "mvit_b", "--batch", "8", "--dtype", "bf16")
    assert code == 0
    assert "activation memory for a training step at batch 8, bf16" in out
    assert "C_in>C_out" not in out
    code, out, _ = cli(capsys, "check", "mvit_b", "--batch", "8", "--blocks")
    assert "C_in>C_out" in out and "at batch 8" in out


# --- bench: a real peak memory on the CPU, flags in range ---------------------------------


def test_cpu_peak_memory_sees_an_allocation_the_warm_heap_would_hide() -> None:
    import torch

    from mvitdsl.backend.bench import peak_memory_gib

    need(Path("/proc/self/status").exists(), "RSS counters are Linux's")
    piece = 2**14  # 64 KiB of float32: below glibc's mmap threshold, so it comes from the heap

    def allocate() -> int:
        xs = [torch.ones(piece) for _ in range(8192)]  # 512 MiB, all touched
        return len(xs)

    warm = [torch.ones(piece) for _ in range(8192)]  # a warm-up leaves the heap full of
    pin = torch.ones(16)  # free, resident memory (the pin keeps it from the heap's top)
    del warm
    gib, how = peak_memory_gib(allocate, "cpu")
    assert gib >= 0.5, (gib, how)
    assert "malloc_trim" in how
    del pin


@pytest.mark.parametrize(
    ("command", "flag", "value"),
    [
        ("bench", "--reps", "0"),
        ("bench", "--threads", "0"),
        ("bench", "--warmup", "-1"),
        ("bench", "--batch", "0"),
        ("sweep", "--batch", "0"),
        ("sweep", "--samples", "0"),
        ("sweep", "--max-variants", "0"),
        ("check", "--classes", "0"),
        ("compile", "--classes", "-3"),
    ],
)
def test_number_flags_out_of_range_fail_with_one_line(
    command: str, flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        parser().parse_args([command, "mvit_b", flag, value])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"{flag} must be" in err
    assert err.strip().splitlines()[-1].startswith(f"mvitdsl {command}: error:")


def test_bench_options_refuse_what_the_flags_refuse() -> None:
    from mvitdsl.backend.bench import BenchOptions

    for bad in ({"reps": 0}, {"warmup": -1}, {"threads": 0}, {"batch": 0}):
        with pytest.raises(ValueError, match="must be a whole number"):
            BenchOptions(**bad)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(
    flag=st.sampled_from(["--reps", "--threads", "--warmup", "--batch"]),
    value=st.integers(-(10**9), 10**9),
)
def test_property_bench_number_flags_are_in_range_or_refused(flag: str, value: int) -> None:
    lo = 0 if flag == "--warmup" else 1
    try:
        args = parser().parse_args(["bench", "mvit_b", flag, str(value)])
    except SystemExit as e:
        assert e.code == 2 and not lo <= value <= 1_000_000
        return
    assert lo <= getattr(args, flag[2:]) <= 1_000_000


# --- output: | head, list, help ---------------------------------------------------------------


def test_a_closed_pipe_ends_quietly() -> None:
    r = subprocess.run(
        f"{sys.executable} -m mvitdsl list | head -n 1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.stdout.startswith("name")
    assert r.stderr == ""


def test_list_does_not_cut_words(capsys: pytest.CaptureFixture[str]) -> None:
    from mvitdsl.catalog import describe, names, specs_dir

    code, out, _ = cli(capsys, "list")
    assert code == 0
    words = set(out.split())
    for name in names():
        for word in describe(specs_dir() / f"{name}.mv").split():
            assert word in words, (name, word)


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_help_shows_each_default_once() -> None:
    for name, sub in _subparsers().items():
        text = sub.format_help()
        assert "(default: None)" not in text, name
        assert "(default: False)" not in text, name
        flat = " ".join(text.split())
        assert not re.search(r"default[^()]*\)\s*\(default:", flat), (name, flat)


def test_draw_help_says_costs_takes_several_specs() -> None:
    text = " ".join(_subparsers()["draw"].format_help().split())
    assert "spec [SPEC ...]" in text, text
    assert re.search(r"--costs per-stage bars .* takes several specs", text), text


# --- artifacts and the load report ----------------------------------------------------------


def test_compile_writes_with_the_users_umask_and_names_nan_or_inf_weights(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    spec = tmp_path / "tiny.mv"
    spec.write_text(TINY)
    out = tmp_path / "art"
    r = subprocess.run(
        f"umask 022 && {sys.executable} -m mvitdsl compile {spec} -o {out} "
        f"--weights {tiny_checkpoint}",
        shell=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    assert out.stat().st_mode & 0o777 == 0o755
    for path in out.iterdir():
        want = 0o755 if path.is_dir() else 0o644
        assert path.stat().st_mode & 0o777 == want, path.name
    warning = [line for line in r.stderr.splitlines() if "NaN or Inf" in line]
    assert warning and "head.1.bias" in warning[0] and "norm.weight" in warning[0]


def test_the_load_report_folds_identical_lines() -> None:
    from mvitdsl.backend.load import LoadEntry, LoadReport

    entries = tuple(
        LoadEntry("resized", f"blocks.{i}.attn.rel_pos_h", (27, 96), (55, 96), "linear")
        for i in range(16)
    ) + (LoadEntry("initialised", "head.1.weight", None, (10, 768), "a new classifier"),)
    text = LoadReport("ckpt.pt", "torchvision", "m", entries).render()
    resized = [line for line in text.splitlines() if "resized" in line]
    assert len(resized) == 1, text
    assert "blocks.{0..15}.attn.rel_pos_h" in resized[0] and "16 tensors" in resized[0]


def test_the_resize_message_names_no_cls_row_for_a_model_without_one() -> None:
    import torch

    import mvitdsl
    from mvitdsl.backend.load import plan_report

    small = mvitdsl.load_spec(text=NO_CLS)
    state = mvitdsl.build(small).state_dict()
    big = mvitdsl.load_spec(text=NO_CLS, input_size=(3, 4, 64, 64))
    report = plan_report(big.model, {k: torch.as_tensor(v) for k, v in state.items()})
    resized = report.of("resized")
    assert resized and all("cls" not in e.reason for e in resized), resized
    joint = TINY.replace("separable", "joint").replace("params 67946, ", "")
    state = mvitdsl.build(mvitdsl.load_spec(text=joint)).state_dict()
    bigger = mvitdsl.load_spec(text=joint, input_size=(3, 4, 64, 64))
    report = plan_report(bigger.model, dict(state))
    assert any("cls row kept" in e.reason for e in report.of("resized"))


# --- the README's JSON layout ---------------------------------------------------------------


def test_the_readmes_json_keys_are_where_the_output_has_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"--format json\s+# the same report for tools \(schema 1:\s*#?([^)]*)\)", readme)
    assert m, "the README's check --format json line"
    keys = re.findall(r"[\w.]+", m.group(1).replace("#", " "))
    _, out, _ = cli(capsys, "check", "mvit_b", "--format", "json")
    data = json.loads(out)
    for key in keys:
        node = data
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, (key, sorted(data))
            node = node[part]


def test_the_language_server_follows_extends_of_a_shipped_spec(tmp_path: Path) -> None:
    from lsprotocol import types as lsp

    from mvitdsl.lsp.document import check_document
    from mvitdsl.lsp.navigate import definition

    text = "model small extends mvitv2_s {\n  head       norm, classes 10\n}\n"
    doc = check_document(text, tmp_path / "small.mv")
    assert not doc.diagnostics
    found = definition(doc, lsp.Position(line=0, character=22))
    assert found is not None and found.uri.endswith("/specs/mvitv2_s.mv")
