"""`mvitdsl bench`: runs on a small spec, prints text and JSON with the shared keys, compares
with torchvision side by side, and does not import torch before the spec is checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
TINY = str(ROOT / "examples" / "tiny.mv")


def test_a_spec_error_is_reported_before_torch_is_imported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mv"
    bad.write_text("model broken {\n  input video 3x4x32x32\n}\n")
    script = (
        "import sys\nfrom mvitdsl.cli import main\n"
        f"rc = main(['bench', {str(bad)!r}])\n"
        "assert rc == 1, rc\nassert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_bench_json_has_the_shared_keys(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    from mvitdsl.cli import main

    rc = main(
        [
            "bench",
            TINY,
            "--batch",
            "2",
            "--reps",
            "2",
            "--train",
            "--dtype",
            "bf16",
            "--format",
            "json",
            "--peak-tflops",
            "1.0",
        ]
    )
    assert rc == 0
    r = json.loads(capsys.readouterr().out)
    for key in (
        "schema",
        "params",
        "gmacs",
        "gmacs_fvcore",
        "activation_gib",
        "clips_per_s",
        "latency_ms_median",
        "peak_mem_gib",
        "tflops",
        "mfu",
        "stages_ms",
    ):
        assert key in r, key
    assert r["mode"] == "train" and r["dtype"] == "bf16 autocast"
    assert r["peak_source"].startswith("vendor")
    assert r["mfu"] == pytest.approx(r["tflops"] / 1.0)
    assert r["tflops"] == pytest.approx(
        2 * 3 * r["gmacs"] * 1e9 * r["batch"] / (r["latency_ms_median"] / 1e3) / 1e12
    )
    assert set(r["stages_ms"]) >= {"stem", "scale2", "scale3"}


def test_bench_text_against_torchvision(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torchvision")
    from mvitdsl.cli import main

    rc = main(
        [
            "bench",
            str(ROOT / "specs" / "mvit_b.mv"),
            "--input",
            "3x4x64x64",
            "--reps",
            "1",
            "--against",
            "torchvision",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "clips/s" in out and "torchvision mvit_v1_b" in out and "ratio" in out
    assert "measured: dense fp32 matmul probe" in out


def test_against_an_unknown_reference_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    from mvitdsl.cli import main

    assert main(["bench", TINY, "--reps", "1", "--against", "timm"]) == 2
    assert "no timm model is known for tiny" in capsys.readouterr().err


def _table() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("table", ROOT / "benchmarks" / "table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_table_quick_prints_a_row_per_model_and_mode_hiera_included(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("timm")
    table = _table()
    argv = ["--quick", "--only", "hiera_t_image", "--modes", "eval", "--threads", "1"]
    assert table.main(argv) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and " vs " in line]
    assert len(rows) == 1, out
    assert "| hiera_t_image vs timm hiera_tiny_224 | eval | 1x3x64x64 | 1 |" in out
    assert all(line.rstrip(" |").endswith("x") for line in rows)
    assert all(line.count("x |") == 2 for line in rows)  # the ratio and the paired ratio


def test_table_reps_fill_the_seconds_and_never_fall_under_reps() -> None:
    table = _table()
    calls: list[str] = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    assert table.reps_for(fns, table.parse(["--reps", "3", "--seconds", "0"])) == 3
    assert calls == []  # no probe call when --seconds is 0
    assert table.reps_for(fns, table.parse(["--reps", "3", "--seconds", "1"])) > 1000
    slow = {"a": lambda: __import__("time").sleep(0.05)}
    assert table.reps_for(slow, table.parse(["--reps", "3", "--seconds", "0.01"])) == 3


def _stated(name: str) -> tuple[str, str] | None:
    """(source, model) of a shipped spec's `reference` line."""
    import mvitdsl

    ref = mvitdsl.load_spec(name=name, check=False).reference
    return (ref.source, ref.name) if ref is not None else None


def test_hiera_has_a_timm_reference_and_no_torchvision_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _stated("hiera_t_image") == ("timm", "hiera_tiny_224")
    assert _stated("hiera_b_image") == ("timm", "hiera_base_224")
    hiera = str(ROOT / "specs" / "hiera_t_image.mv")
    argv = ["bench", hiera, "--input", "3x64x64", "--reps", "1", "--against", "torchvision"]
    from mvitdsl.cli import main

    assert main(argv) == 2
    assert "no torchvision model is known for hiera_t_image" in capsys.readouterr().err


def test_bench_against_timm_runs_hiera(capsys: pytest.CaptureFixture[str]) -> None:
    """`bench --against timm` on a Hiera spec: timm's hiera_tiny_224 at the same input, the
    same weights, and a ratio in the JSON."""
    pytest.importorskip("timm")
    import json

    from mvitdsl.cli import main

    hiera = str(ROOT / "specs" / "hiera_t_image.mv")
    argv = ["bench", hiera, "--input", "3x64x64", "--reps", "1", "--warmup", "0"]
    assert main([*argv, "--against", "timm", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["against"]["reference"] == "timm hiera_tiny_224" and out["against"]["ratio"] > 0


@pytest.mark.parametrize("mode", [[], ["--train", "--batch", "2"]], ids=["eval", "train"])
def test_bench_against_timm_runs_the_sam2_trunk(
    mode: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A feature spec against timm: sam2_hiera_tiny (num_classes=0, no head.norm) called through
    forward_intermediates, the same weights, eval and a training step on the four maps."""
    pytest.importorskip("timm")
    import json

    from mvitdsl.cli import main

    assert _stated("sam2_hiera_t") == ("timm", "sam2_hiera_tiny")
    sam2 = str(ROOT / "specs" / "sam2_hiera_t.mv")
    argv = ["bench", sam2, "--input", "3x64x64", "--reps", "1", "--warmup", "0", *mode]
    assert main([*argv, "--against", "timm", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["against"]["reference"] == "timm sam2_hiera_tiny" and out["against"]["ratio"] > 0


def test_a_feature_reference_gives_the_maps_of_the_feature_model() -> None:
    """The reference bench builds for a feature spec returns what the spec's feature model
    returns, with the weights bench copies: equal maps at a padded size."""
    pytest.importorskip("timm")
    import torch

    import mvitdsl
    from mvitdsl.backend import bench

    spec = mvitdsl.load_spec(ROOT / "specs" / "sam2_hiera_t.mv", input_size=(3, 64, 96))
    opts = bench.BenchOptions()
    ref = bench.reference_model(spec, "timm", opts).eval()
    ours = bench.build_model(spec, opts).eval()
    bench.load_reference_weights(ours, ref, spec, "timm")
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        want, got = ref(x), ours(x)
    got = list(got.values()) if isinstance(got, dict) else list(got)
    assert len(got) == len(want) == 4
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-4, rtol=1e-4)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(
                ["--reps", "--threads", "--seconds", "--only", "--modes", "--quick", "eval"]
            ),
            st.sampled_from(
                ["0", "-1", "3", "x", "2.5", "nan", "inf", "hiera_t_image", "swin_t", "resnet"]
            ),
            st.text(max_size=6),
        ),
        max_size=6,
    )
)
def test_property_table_options_parse_or_exit_2(argv: list[str]) -> None:
    table = _table()
    try:
        args = table.parse(argv)
    except SystemExit as e:
        assert e.code == 2
    else:
        assert args.reps >= 1 and args.threads >= 1 and 0 <= args.seconds < float("inf")
        assert set(args.only) <= set(table.ROWS) and set(args.modes) <= {"eval", "train"}


def _benchmark(name: str) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["--reps", "--threads", "--undo", "eval", "train", "attention"]),
            st.sampled_from(["0", "-1", "3", "x", "hiera_t_image", "tiny", "../specs/mvit_b"]),
            st.text(max_size=6),
        ),
        max_size=6,
    )
)
def test_property_layer_ab_options_parse_or_exit_2(argv: list[str]) -> None:
    """benchmarks/layer_ab.py: any argv parses to a shipped spec with a reference, a mode,
    whole numbers >= 1 and known changes to undo, or exits 2 with a message."""
    layer_ab = _benchmark("layer_ab")
    try:
        args = layer_ab.parse(argv)
    except SystemExit as e:
        assert e.code == 2
    else:
        assert (ROOT / "specs" / f"{args.spec}.mv").is_file() and args.mode in {"eval", "train"}
        assert args.reps >= 1 and args.threads >= 1 and set(args.undo) <= set(layer_ab.UNDO)


def test_layer_ab_refuses_a_spec_without_a_reference_in_words(
    capsys: pytest.CaptureFixture[str],
) -> None:
    layer_ab = _benchmark("layer_ab")
    for argv, words in ((["tiny", "eval"], "no shipped spec"), (["nope", "eval"], "no shipped")):
        with pytest.raises(SystemExit) as e:
            layer_ab.parse(argv)
        assert e.value.code == 2 and words in capsys.readouterr().err
    no_reference = next(n for n in ("mvit_b_32x3", "mvitv2_b_det") if _stated(n) is None)
    with pytest.raises(SystemExit):
        layer_ab.parse([no_reference, "train"])
    assert "no 'reference' line" in capsys.readouterr().err
    assert layer_ab.parse(["hiera_t_image", "train", "--undo", "linear"]).undo == ["linear"]


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["--reps", "--threads", "--only", "swin_t", "hiera_b_image"]),
            st.sampled_from(["0", "-1", "3", "x", "resnet"]),
            st.text(max_size=6),
        ),
        max_size=6,
    )
)
def test_property_attention_kernels_options_parse_or_exit_2(argv: list[str]) -> None:
    attention_kernels = _benchmark("attention_kernels")
    try:
        args = attention_kernels.parse(argv)
    except SystemExit as e:
        assert e.code == 2
    else:
        assert args.reps >= 1 and args.threads >= 1
        assert set(args.only) <= set(attention_kernels.SPECS)
