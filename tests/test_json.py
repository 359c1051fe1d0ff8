"""Every JSON shape `mvitdsl` prints, pinned by a golden file: one vocabulary (`params`, `gmacs`,
`gmacs_fvcore`, `activation_gib` beside the exact integers) and a `schema` version."""

from __future__ import annotations

import json
import struct
from math import prod
from pathlib import Path

import pytest
from conftest import ROOT, assert_golden

import mvitdsl
from mvitdsl.analysis.naming import expected_shapes
from mvitdsl.cli import JSON_SCHEMA, main

TINY = ROOT / "examples" / "tiny.mv"


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    code = main(list(args))
    return code, json.loads(capsys.readouterr().out)


def stable(data: dict[str, object], tmp_path: Path) -> str:
    """JSON text with the temporary folder written as TMP, so the golden file is stable."""
    return json.dumps(data, indent=2).replace(str(tmp_path), "TMP") + "\n"


def write_header_only_safetensors(path: Path, shapes: dict[str, tuple[int, ...]]) -> None:
    """A .safetensors file whose header names `shapes` (the comparison reads only the header)."""
    header, offset = {}, 0
    for name, shape in shapes.items():
        size = 4 * prod(shape)
        header[name] = {
            "dtype": "F32",
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(offset))


def test_check_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = run_json(capsys, "check", str(TINY), "--format", "json")
    assert code == 0 and data["schema"] == JSON_SCHEMA and data["kind"] == "check"
    report = data["report"]
    assert isinstance(report, dict)
    for key in ("params", "gmacs", "gmacs_fvcore", "activation_gib", "macs", "input_size"):
        assert key in report, key
    assert_golden("check_tiny.json", json.dumps(data, indent=2) + "\n")


def test_check_error_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    broken = tmp_path / "broken.mv"
    broken.write_text(TINY.read_text().replace("position separable", "positon separable"))
    code, data = run_json(capsys, "check", str(broken), "--format", "json")
    assert code == 1 and data["ok"] is False and data["schema"] == JSON_SCHEMA
    assert_golden("check_error.json", stable(data, tmp_path))


def test_against_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    shapes = expected_shapes(mvitdsl.load_spec(TINY).model)
    shapes["blocks.1.attn.qkv.weight"] = (96, 32)
    del shapes["norm.weight"]
    checkpoint = tmp_path / "tiny.safetensors"
    write_header_only_safetensors(checkpoint, shapes)
    code, data = run_json(
        capsys, "check", str(TINY), "--against", str(checkpoint), "--format", "json"
    )
    assert code == 1 and data["kind"] == "against" and data["schema"] == JSON_SCHEMA
    assert_golden("against_tiny.json", stable(data, tmp_path).replace(str(ROOT), "ROOT"))


def test_old_spellings_load_with_a_warning_in_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    old = tmp_path / "old.mv"
    # rename_vocab: off (the old spellings, on purpose)
    old.write_text(
        TINY.read_text()
        .replace("pool_q_blocks first", "pool_q first")
        .replace("stride_kv adaptive", "kv_stride adaptive")
    )
    # rename_vocab: on
    code, data = run_json(capsys, "check", str(old), "--format", "json")
    assert code == 0
    warnings = data["warnings"]
    assert isinstance(warnings, list)
    assert [w["code"] for w in warnings] == ["W001", "W001"]
    assert [w["severity"] for w in warnings] == ["warning", "warning"]
    was, now = mvitdsl.load_spec(old).model, mvitdsl.load_spec(TINY).model
    assert was.attention.model_dump(exclude={"loc"}) == now.attention.model_dump(exclude={"loc"})
    assert [b.pool_kv for b in was.blocks] == [b.pool_kv for b in now.blocks]
