"""scripts/rename_vocab.py (issue 12's renames): right words changed, others untouched, and a
second run changes nothing."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from conftest import ROOT

SCRIPT = ROOT / "scripts" / "rename_vocab.py"

# rename_vocab: off (the old words, on purpose)
BEFORE = """\
  attention  pool conv 3x3x3, pool_q first, kv_stride adaptive 1x8x8
    #        blocks  dim  heads  pool_q
a.kv_adaptive and att.pool_q == "all" and block.pool_q.stride
"error[E302]: pool_q stride 1x3x3", "columns: name blocks dim heads pool_q [pool_kv]"
kv_stride_big, Pool_Q stride, b.pool_kv, report.input, report.input_size, model.input.size
def f(flow: BlockShapes) -> None: block_shapes(m, b, g, n); shapes.skip_kernel(s)
x = kv_stride  # rename_vocab: keep
"""
# rename_vocab: on
AFTER = """\
  attention  pool conv 3x3x3, pool_q_blocks first, stride_kv adaptive 1x8x8
    #        blocks  dim  heads  stride_q
a.stride_kv_adaptive and att.pool_q_blocks == "all" and block.pool_q.stride
"error[E302]: stride_q 1x3x3", "columns: name blocks dim heads stride_q [stride_kv]"
kv_stride_big, Pool_Q stride, b.pool_kv, report.input_size, report.input_size, model.input.size
def f(flow: BlockFlow) -> None: block_flow(m, b, g, n); shapes.default_kernel(s)
"""


def load_script():
    spec = importlib.util.spec_from_file_location("rename_vocab", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_renames_the_words_and_nothing_else() -> None:
    script = load_script()
    before = BEFORE.splitlines(keepends=True)
    kept = before.pop()  # the marked line is left alone
    out = script.rename_text("".join(before) + kept, "mvitdsl/analysis/x.py")
    assert out == AFTER + kept


def test_a_second_run_changes_nothing(tmp_path: Path) -> None:
    script = load_script()
    once = script.rename_text(BEFORE, "tests/x.py")
    assert script.rename_text(once, "tests/x.py") == once
    (tmp_path / "a.mv").write_text(BEFORE)
    assert script.main([str(tmp_path)]) == 0
    assert script.main([str(tmp_path), "--check"]) == 0  # nothing left to change
