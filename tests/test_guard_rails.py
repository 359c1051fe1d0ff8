"""Guard rails: oversized models are refused before allocation unless the budget is raised, and
pathological input is rejected with a located diagnostic, early and in bounded memory."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import SPECS

import mvitdsl
from mvitdsl.language import parse

# without its `expect` line: these tests change the input, and the stated figures with it
MVIT_B = "".join(
    line for line in (SPECS / "mvit_b.mv").read_text().splitlines(True) if "expect " not in line
)
TINY = """model tiny {
  input image 3x32x32
  patch conv 4x4 stride 4x4 -> 8
  stages {
    s1  1   8  2  1x1
  }
}
"""


def codes(text: str | Path, **kw: Any) -> list[str]:
    """Codes of the SpecError for spec text (a str) or a spec file (a Path)."""
    with pytest.raises(mvitdsl.SpecError) as info:
        if isinstance(text, Path):
            mvitdsl.load_spec(text, **kw)
        else:
            mvitdsl.load_spec(text=text, **kw)
    return [d.code for d in info.value.diagnostics]


def peak_mib(fn: Callable[[], object]) -> float:
    tracemalloc.start()
    with contextlib.suppress(mvitdsl.SpecError):
        fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


@pytest.fixture
def no_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if Lark is reached: size limits must act before any parsing work."""

    def refuse() -> None:
        raise AssertionError("the parser ran on input that should have been refused first")

    monkeypatch.setattr(parse, "_parser", refuse)


# ---------------------------------------------------------------- budgets


HUGE = TINY.replace("-> 8", "-> 32768").replace("s1  1   8  2", "s1  2  32768  256")


def test_a_model_over_the_parameter_budget_is_refused_with_its_size():
    with pytest.raises(mvitdsl.SpecError) as info:
        mvitdsl.load_spec(text=HUGE)
    (d,) = info.value.diagnostics
    params = mvitdsl.analyze(mvitdsl.load_spec(text=HUGE, check=False)).params
    assert d.code == "E306" and d.line == 1 and 25e9 < params < 26e9
    assert d.message == f"model has {params:,} parameters; the budget is 2,000,000,000"
    assert d.hint == "raise it explicitly: 'budget params 26e9'"


def test_raising_the_budget_explicitly_lets_it_through_without_allocating():
    raised = HUGE.replace("  stages {", "  budget params 26e9\n  stages {")
    spec = mvitdsl.load_spec(text=raised)
    assert mvitdsl.analyze(spec).params > 25e9
    assert peak_mib(lambda: mvitdsl.load_spec(text=raised)) < 64  # 103 GB of fp32 weights


def test_refusal_happens_before_any_allocation():
    assert peak_mib(lambda: mvitdsl.load_spec(text=HUGE)) < 64
    script = (
        "import sys, mvitdsl\n"
        f"try: mvitdsl.load_spec(text={HUGE!r})\n"
        "except mvitdsl.SpecError as e: assert e.diagnostics[0].code == 'E306'\n"
        "assert 'torch' not in sys.modules\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_activation_budget_is_for_the_declared_input():
    big = MVIT_B.replace("3x16x224x224", "3x64x896x896")
    with pytest.raises(mvitdsl.SpecError) as info:
        mvitdsl.load_spec(text=big)
    (d,) = info.value.diagnostics
    assert d.code == "E306" and d.line == 4  # the input line
    assert d.message.startswith("a training step at batch 1 (fp32) keeps about ")
    assert d.message.endswith(" GiB of activations; the budget is 128 GiB")
    ok = big.replace("  train", "  budget activation_gib 1e6\n  train")
    assert mvitdsl.analyze(mvitdsl.load_spec(text=ok)).activation_bytes > 128 * 2**30


def test_an_input_override_is_held_to_the_budget_too():
    assert codes(SPECS / "mvit_b.mv", input_size=(3, 64, 896, 896)) == ["E306"]


def test_the_shipped_specs_are_within_the_default_budget():
    for path in sorted(SPECS.glob("*.mv")):
        mvitdsl.load_spec(path)


# ---------------------------------------------------------------- pathological input


def test_a_5_mb_file_is_refused_before_parsing(no_parser: None):
    text = MVIT_B + "#" * 5_000_000 + "\n"
    assert codes(text) == ["E103"]
    assert peak_mib(lambda: mvitdsl.load_spec(text=text)) < 64


def test_100k_stage_rows_are_refused_before_parsing(no_parser: None):
    rows = "".join(f"    s{i} 1 96 1 1x1x1\n" for i in range(100_000))
    text = MVIT_B.replace("  stages {\n", "  stages {\n" + rows)
    assert codes(text) == ["E103"]


def test_a_very_long_token_is_refused_before_parsing(no_parser: None):
    assert codes(TINY.replace("tiny", "t" * 5000)) == ["E103"]
    assert codes(TINY.replace("-> 8", "-> " + "9" * 5000)) == ["E103"]


def test_deep_nesting_gives_one_message_per_line():
    text = TINY.replace("  stages {", "  stages " + "{ " * 40_000)
    found = codes(text)
    assert found[0] == "E101" and len(found) <= 3


def test_many_broken_lines_are_capped():
    text = TINY.replace("  stages {", "  x {\n" * 5000 + "  stages {")
    found = codes(text)
    assert 1 < len(found) <= parse.MAX_SYNTAX_ERRORS


@pytest.mark.parametrize(
    "old, new, code",
    [
        ("-> 8", "-> 1000000000000000000000000000000", "E205"),
        ("-> 8", "-> 1e30", "E204"),
        ("3x32x32", "3x1000000000000000000000000000000x32", "E205"),
        ("s1  1", "s1  1000000000000000000000000000000", "E205"),
        ("  stages {", "  attention mlp_ratio 1e30\n  stages {", "E205"),
        ("  stages {", "  budget params 1e300\n  stages {", "E205"),
        ("  stages {", "  norm eps 1e-400\n  stages {", "E205"),
    ],
)
def test_absurd_numbers_are_out_of_range(old: str, new: str, code: str):
    assert codes(TINY.replace(old, new)) == [code]


def test_largest_accepted_sizes_stay_cheap():
    """Sizes at the limits are refused by the budget, in bounded time and memory."""
    text = TINY.replace("3x32x32", "3x1000000x1000000").replace("s1  1", "s1  512")
    assert peak_mib(lambda: mvitdsl.load_spec(text=text)) < 64
    assert codes(text) == ["E306"]


def test_the_cli_never_shows_a_traceback_for_hostile_files(tmp_path):
    path = tmp_path / "big.mv"
    path.write_text("{ " * 200_000 + "\n" + "\x00\x01\x02" * 1000)
    r = subprocess.run(
        [sys.executable, "-m", "mvitdsl", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"{path}:2:1: error[E103]: a word of 3,000 characters")


def test_text_that_cannot_be_a_file_name_is_parsed_as_text():
    assert codes("model tiny " * 40) == ["E101"]
