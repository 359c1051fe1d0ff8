# ruff: noqa: E501
"""Every diagnostic code: a minimal failing spec and the exact text a user sees.

docs/DIAGNOSTICS.md is generated from this table and mvitdsl.diagnostics.CODES;
`MVITDSL_UPDATE_GOLDEN=1 pytest tests/test_diagnostics.py` rewrites it (review the diff).
"""

from __future__ import annotations

import os

import pytest
from conftest import ROOT

import mvitdsl
from mvitdsl.diagnostics import CODES
from mvitdsl.language.lower import DEFAULT_BUDGET

DOC = ROOT / "docs" / "DIAGNOSTICS.md"
BASE = """\
model tiny {
  input image 3x32x32
  patch conv 4x4 stride 4x4 -> 8
  tokens cls, position none
  stages {
    s1  1   8  2  1x1
    s2  1  16  4  2x2
  }
}
"""

# code: (the example shown in the docs, edits applied to BASE to make it fail)
CASES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "E100": ("input image 3x32x32 $", [("  input image 3x32x32\n", "  input image 3x32x32 $\n")]),
    "E101": ("stages {{", [("  stages {\n", "  stages {{\n")]),
    "E102": ("(the model's closing '}' missing)", [("  }\n}\n", "  }\n")]),
    "E103": (
        "(a file over 10,000 lines or 1 MB, or a word over 200 characters)",
        [("}\n", "}\n" + "#\n" * 10_000)],
    ),
    "E104": (
        "(a NUL byte or another control character in the text, or bytes that are not UTF-8)",
        [("  tokens cls", "  tokens\x00cls")],
    ),
    "E200": ("tokns cls", [("  tokens cls", "  tokns cls")]),
    "E201": (
        "tokens cls, position none, position joint",
        [("position none", "position none, position joint")],
    ),
    "E202": ("(no 'patch' line)", [("  patch conv 4x4 stride 4x4 -> 8\n", "")]),
    "E203": ("tokens cls, positon none", [("position none", "positon none")]),
    "E204": ("patch conv 4x4 stride 4x4 -> eight", [("-> 8", "-> eight")]),
    "E205": ("s1  0  8  2  1x1", [("s1  1", "s1  0")]),
    "E206": ("patch conv 4x4 stride 4x4x4 -> 8", [("stride 4x4", "stride 4x4x4")]),
    "E207": (
        "1  8  2  1x1  (a stage row without its name)",
        [("    s1  1   8  2  1x1\n", "    1   8  2  1x1\n")],
    ),
    "E208": ("s1  1  16  4  2x2  (a second row named s1)", [("    s2  1  16", "    s1  1  16")]),
    "E209": ("model tiny extends base {", [("model tiny {", "model tiny extends base {")]),
    "E210": (
        "`attention dim_change attention` and `s1  1  8  2  1x1  dim_out=16`",
        [
            ("  stages {", "  attention dim_change attention\n  stages {"),
            ("s1  1   8  2  1x1", "s1  1   8  2  1x1  dim_out=16"),
        ],
    ),
    "E211": (
        "scale_5  1  16  4  2x2  (in a child of a spec whose stages are scale2 ... scale5)",
        [
            ("model tiny {", 'model tiny extends "specs/mvitv2_t_image.mv" mvitv2_t_image {'),
            ("    s1  1   8  2  1x1\n", ""),
            ("    s2  1  16  4  2x2", "    scale_5  1  16  4  2x2"),
        ],
    ),
    "E300": ("s1  1  8  3  1x1", [("s1  1   8  2", "s1  1   8  3")]),
    "E301": (
        "attention pool max 2x2, pool_q_blocks all",
        [("  stages {", "  attention pool max 2x2, pool_q_blocks all\n  stages {")],
    ),
    "E302": ("s2  1  16  4  3x3  (on an 8x8 grid)", [("2x2\n", "3x3\n")]),
    "E303": (
        "patch conv 40x40 stride 4x4 -> 8  (on a 32x32 input)",
        [("patch conv 4x4", "patch conv 40x40")],
    ),
    "E304": (
        "`input video 3x2x32x32` and `attention pool avg 3x3x3`",
        [
            ("input image 3x32x32", "input video 3x2x32x32"),
            ("conv 4x4 stride 4x4", "conv 1x4x4 stride 1x4x4"),
            ("1x1\n", "1x1x1\n"),
            ("2x2\n", "1x2x2\n"),
            ("  stages {", "  attention pool avg 3x3x3\n  stages {"),
        ],
    ),
    "E305": ("patch conv 4x4 stride 4x4 -> 16  (first stage dim 8)", [("-> 8", "-> 16")]),
    "E306": ("budget params 1000", [("  stages {", "  budget params 1000\n  stages {")]),
    "E307": (
        "`patch conv 3x3 stride 2x2` and `tokens cls, position joint` (on 32x32)",
        [("position none", "position joint"), ("conv 4x4 stride 4x4", "conv 3x3 stride 2x2")],
    ),
    "E308": (
        "expect params 22036, gmacs 0.0004",
        [("  }\n}\n", "  }\n  expect params 22036, gmacs 0.0004\n}\n")],
    ),
    "E309": (
        "`attention mask_unit 3x3` with `scope=mask_unit` on an 8x8 grid",
        [
            ("tokens cls", "tokens no_cls"),
            (
                "  stages {",
                "  attention pool max, kernel_q 2x2, pool_pad zero, mask_unit 3x3\n  stages {",
            ),
            ("8  2  1x1\n", "8  2  1x1  scope=mask_unit\n"),
        ],
    ),
    # rename_vocab: off (the old spelling of stride_kv, still read)
    "W001": (
        "attention kv_stride 2x2  (the old spelling of stride_kv; still read)",
        [("  stages {", "  attention kv_stride 2x2\n  stages {")],
    ),
    # rename_vocab: on
}

EXPECTED = {
    "E100": """\
<spec>:2:23: error[E100]: unexpected character '$'
   2 |   input image 3x32x32 $
                             ^
  = hint: sizes are written like 3x7x7; comments start with '#'
""",
    "E101": """\
<spec>:5:11: error[E101]: unexpected '{'; expected '}', a value or end of line
   5 |   stages {{
                 ^
  = hint: tables such as 'stages { ... }' start on a line of their own
""",
    "E102": """\
<spec>:8:4: error[E102]: unexpected end of file; expected '}' or a name
   8 |   }
          ^
  = hint: every '{' needs a matching '}'
""",
    "E103": """\
<spec>:1:1: error[E103]: spec has 10,010 lines; the limit is 10,000
   1 | model tiny {
       ^
  = hint: a model spec is a few dozen lines
""",
    "E104": """\
<spec>:4:9: error[E104]: a NUL byte in the spec
   4 |   tokens\ufffdcls, position none
               ^
  = hint: a spec is plain text; was a binary file given, or text pasted with control codes?
""",
    "E200": """\
<spec>:4:3: error[E200]: unknown setting 'tokns'
   4 |   tokns cls, position none
         ^^^^^
  = hint: did you mean 'tokens'?
""",
    "E201": """\
<spec>:4:30: error[E201]: option 'position' given twice in 'tokens'
   4 |   tokens cls, position none, position joint
                                    ^^^^^^^^
""",
    "E202": """\
<spec>:1:1: error[E202]: model 'tiny' has no 'patch'
   1 | model tiny {
       ^^^^^
  = hint: add 'patch conv 3x7x7 stride 2x4x4 pad 1x3x3 -> 96'
""",
    "E203": """\
<spec>:4:15: error[E203]: unknown option 'positon' in 'tokens'
   4 |   tokens cls, positon none
                     ^^^^^^^
  = hint: did you mean 'position'?
""",
    "E204": """\
<spec>:3:32: error[E204]: embed dim must be a whole number, not 'eight'
   3 |   patch conv 4x4 stride 4x4 -> eight
                                      ^^^^^
""",
    "E205": """\
<spec>:6:9: error[E205]: blocks 0 is out of range [1, 512]
   6 |     s1  0   8  2  1x1
               ^
""",
    "E206": """\
<spec>:3:25: error[E206]: stride '4x4x4' has 3 sizes; expected 2
   3 |   patch conv 4x4 stride 4x4x4 -> 8
                               ^^^^^
  = hint: write 2 numbers joined by 'x'
""",
    "E207": """\
<spec>:6:5: error[E207]: a stage row starts with the stage's name
   6 |     1   8  2  1x1
           ^^^^^^^^^^^^^
  = hint: columns: name blocks dim heads stride_q [stride_kv]
""",
    "E208": """\
<spec>:7:5: error[E208]: stage 's1' appears twice
   7 |     s1  1  16  4  2x2
           ^^
""",
    "E209": """\
<spec>:1:12: error[E209]: 'extends base' names no file and no shipped spec
   1 | model tiny extends base {
                  ^^^^^^^^^^^^
  = hint: name the parent's file (extends "base.mv" base), or a shipped spec by its name (mvitdsl list shows them)
""",
    "E210": """\
<spec>:7:24: error[E210]: 'dim_out' in stage 's1' needs 'dim_change mlp'
   7 |     s1  1   8  2  1x1  dim_out=16
                              ^^^^^^^^^^
  = hint: with 'dim_change attention' a stage changes width in its first block: add a one-block stage at the new width
""",
    "E211": """\
<spec>:6:5: error[E211]: 'scale_5': the parent has no stage 'scale_5'
   6 |     scale_5  1  16  4  2x2
           ^^^^^^^^^^^^^^^^^^^^^^
  = hint: the parent has scale2, scale3, scale4, scale5; did you mean 'scale5'? (to add a \
stage, start its row with 'add scale_5')
""",
    "E300": """\
<spec>:6:13: error[E300]: dim 8 is not divisible by 3 heads (block 0, stage 's1')
   6 |     s1  1   8  3  1x1
                   ^
  = hint: dim 6 or 9 would be; or use 1, 2, 4, 8 heads with dim 8
""",
    "E301": """\
<spec>:7:19: error[E301]: block 0: attention output grid 9x9 differs from the residual grid 8x8 (Q kernel 2x2, stride 1x1)
   7 |     s1  1   8  2  1x1
                         ^^^
  = hint: use an odd Q kernel, e.g. 3x3, or the s+1 rule
""",
    "E302": """\
<spec>:7:19: error[E302]: stride_q 3x3 of block 1 leaves a fractional grid: 8x8 / 3x3 = 2.67x2.67
   7 |     s2  1  16  4  3x3
                         ^^^
  = hint: 2x2 or 4x4 would divide it; or pad partial windows: 'input ..., grid_rounding ceil'
""",
    "E303": """\
<spec>:3:3: error[E303]: the patch embedding leaves a -1x-1 grid from a 32x32 input
   3 |   patch conv 40x40 stride 4x4 -> 8
         ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = hint: use a smaller kernel or stride, or a larger input
""",
    "E304": """\
<spec>:5:3: error[E304]: K/V avg pooling kernel 3x3x3 of block 0 is larger than its 2x8x8 input grid
   5 |   attention pool avg 3x3x3
         ^^^^^^^^^^^^^^^^^^^^^^^^
  = hint: PyTorch's avg_pool3d needs the grid at least as large as the kernel; use a smaller kernel, or max or conv pooling
""",
    "E305": """\
<spec>:3:3: error[E305]: patch embedding width 16 differs from the first stage's dim 8
   3 |   patch conv 4x4 stride 4x4 -> 16
         ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = hint: write '-> 8' or change the first stage's dim (with 'dim_change mlp' a stage works at its own width)
""",
    "E306": """\
<spec>:5:3: error[E306]: model has 22,036 parameters; the budget is 1,000
   5 |   budget params 1000
         ^^^^^^^^^^^^^^^^^^
  = hint: raise it explicitly: 'budget params 23e3'
""",
    "E307": """\
<spec>:4:3: error[E307]: the patch embedding makes a 15x15 token grid, but 'position joint' is sized for 16x16 (input size 32x32 // patch stride 2x2)
   4 |   tokens cls, position joint
         ^^^^^^^^^^^^^^^^^^^^^^^^^^
  = hint: choose an input size divisible by the patch stride and an odd kernel with pad kernel//2, or 'position none'
""",
    "E308": """\
<spec>:9:30: error[E308]: expected gmacs 0.0004, computed 0.000310 (the digits written allow ±5e-05)
   9 |   expect params 22036, gmacs 0.0004
                                    ^^^^^^
  = hint: if the change is intended, write 'expect gmacs 0.0003'
""",
    "E309": """\
<spec>:7:24: error[E309]: block 0: grid 8x8 is not divisible by window 3x3
   7 |     s1  1   8  2  1x1  scope=mask_unit
                              ^^^^^^^^^^^^^^^
  = hint: choose an input size whose grids the mask unit divides
""",
    # rename_vocab: off (W001's text spells the old word)
    "W001": """\
<spec>:5:13: warning[W001]: 'kv_stride' is now spelled 'stride_kv'
   5 |   attention kv_stride 2x2
                   ^^^^^^^^^
  = hint: write 'stride_kv'
""",  # rename_vocab: on
}


def failing_spec(code: str) -> str:
    text = BASE
    for old, new in CASES[code][1]:
        assert old in text, (code, old)
        text = text.replace(old, new, 1)
    return text


def test_every_code_has_a_case_and_an_expected_text():
    assert set(CASES) == set(CODES) == set(EXPECTED)


@pytest.mark.parametrize("code", sorted(CODES))
def test_rendered_text_is_exact(code: str):
    if code.startswith("W"):  # a warning: the spec loads, the warning rides along
        spec = mvitdsl.load_spec(text=failing_spec(code))
        assert [d.code for d in spec.warnings] == [code]
        text = "\n".join(d.render(spec.sources["<spec>"]) for d in spec.warnings)
        assert text + "\n" == EXPECTED[code]
        return
    with pytest.raises(mvitdsl.SpecError) as info:
        mvitdsl.load_spec(text=failing_spec(code))
    assert [d.code for d in info.value.diagnostics] == [code]
    assert info.value.render() + "\n" == EXPECTED[code]


# E309 of a Swin window at the spec's written input: that one spec text refused whatever size
# it is built at (tests/test_swin.py holds the rule itself)
SWIN = """\
model swin_tiny {
  input image 3x32x32
  patch conv 4x4 stride 4x4 -> 8, norm on
  tokens no_cls, position none
  attention pool_kv off, dim_change merge, scope window, window 7x7, shift alternate
  stages {
    s1  2   8  2  1x1
    s2  2  16  4  2x2
  }
}
"""
SWIN_E309 = """\
<spec>:5:3: error[E309]: block 2: window 7x7 is larger than its 4x4 grid at the spec's input 3x32x32
   5 |   attention pool_kv off, dim_change merge, scope window, window 7x7, shift alternate
         ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = hint: write 'window=4x4' in stage 's2' (timm's window at that grid, unshifted), or a larger 'input' (the built module still runs at smaller sizes)
"""


@pytest.mark.parametrize("size", [None, (3, 224, 224)], ids=["written", "built at 224"])
def test_a_swin_window_larger_than_its_grid_is_located(size: tuple[int, ...] | None) -> None:
    with pytest.raises(mvitdsl.SpecError) as info:
        mvitdsl.load_spec(text=SWIN, input_size=size)
    assert info.value.render() + "\n" == SWIN_E309


def example_cell(example: str) -> str:
    """`spec text` (note), or just the note when the example is an absence."""
    if example.startswith("("):
        return example[1:-1]
    if "`" in example:
        return example
    code, _, note = example.partition("  (")
    return f"`{code}`" + (f" ({note}" if note else "")


def render_doc() -> str:
    """docs/DIAGNOSTICS.md: one line per code with a minimal failing example, then the texts."""
    lines = [
        "# Diagnostic codes",
        "",
        "Every error has a stable code, a `file:line:col` location, the source line with a caret",
        "under the exact span, and a hint where one helps. E1xx: syntax; E2xx: vocabulary and",
        "values; E3xx: shapes and budgets. Each pass reports all of its errors at once (the parser",
        "one per broken line); the next pass runs when the earlier ones found none.",
        "`mvitdsl check --format json` emits the same diagnostics as data.",
        "",
        "Guard rails: a file over 1 MB or 10,000 lines, or a word over 200 characters, is refused",
        f"before parsing (E103). A model over {DEFAULT_BUDGET['params']:,.0f} parameters or "
        f"{DEFAULT_BUDGET['activation_gib']:g} GiB",
        "of activations (a training step at batch 1 in fp32, for the declared input) is refused",
        "before anything is allocated (E306); raise the limits explicitly in the spec:",
        "`budget params 4e9, activation_gib 256`.",
        "",
        "Generated from `mvitdsl.diagnostics.CODES` and the cases in `tests/test_diagnostics.py`,",
        "which asserts each text below exactly:",
        "`MVITDSL_UPDATE_GOLDEN=1 pytest tests/test_diagnostics.py` regenerates this page.",
        "",
        "| code | meaning | minimal failing example |",
        "|---|---|---|",
    ]
    lines += [f"| {c} | {CODES[c]} | {example_cell(CASES[c][0])} |" for c in sorted(CODES)]
    lines += [
        "",
        "## What each one looks like",
        "",
        "Each example edits this spec:",
        "",
        "```",
        BASE.rstrip(),
        "```",
        "",
    ]
    for code in sorted(CODES):
        lines += [f"### {code}: {CODES[code]}", "", "```", EXPECTED[code].rstrip(), "```", ""]
    return "\n".join(lines)


def test_docs_page_is_current():
    text = render_doc()
    if os.environ.get("MVITDSL_UPDATE_GOLDEN") == "1":
        DOC.write_text(text)
    assert DOC.read_text() == text, "docs/DIAGNOSTICS.md is stale: MVITDSL_UPDATE_GOLDEN=1"


def test_all_errors_of_a_file_are_reported_at_once():
    broken = BASE.replace("stages {", "stages {{").replace("3x32x32", "3x32x32 $")
    with pytest.raises(mvitdsl.SpecError) as info:
        mvitdsl.load_spec(text=broken.replace("s2  1", "s2  1 @"))
    assert [(d.code, d.line) for d in info.value.diagnostics] == [
        ("E100", 2),
        ("E101", 5),
        ("E100", 7),
    ]
    wrong = BASE.replace("tokens cls", "tokns cls").replace("s1  1", "s1  0")
    with pytest.raises(mvitdsl.SpecError) as info:
        mvitdsl.load_spec(text=wrong.replace("-> 8", "-> eight"))
    assert [(d.code, d.line) for d in info.value.diagnostics] == [
        ("E204", 3),
        ("E200", 4),
        ("E205", 6),
    ]


def test_one_mistake_gives_one_message_not_a_cascade():
    with pytest.raises(mvitdsl.SpecError) as info:
        mvitdsl.load_spec(text=BASE.replace("model tiny {", "model tiny"))
    assert [d.code for d in info.value.diagnostics][:1] == ["E101"]
    assert len(info.value.diagnostics) <= 2


def test_every_terminal_has_words():
    from mvitdsl.language.parse import TERMINAL_WORDS, _parser

    names = {t.name for t in _parser().terminals if not t.name.startswith("__IGNORE")}
    assert names - {"COMMENT"} <= set(TERMINAL_WORDS)
