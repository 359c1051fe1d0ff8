# ruff: noqa: E501
"""`reference SOURCE MODEL`: the implementation a spec's model equals, stated in the spec (it was
backend/reference.py's REFERENCES table): read, never inherited, formatted, its mistakes located,
and read by `bench --against`."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT, SPECS
from hypothesis import given
from hypothesis import strategies as st

import mvitdsl
from mvitdsl.language.fmt import format_text
from mvitdsl.language.parse import parse
from mvitdsl.language.reference import MODEL_NAME, SOURCES, read_reference, split_reference

# the pairs the removed table held, spec by spec: every one is now the spec's own line
MIGRATED = {
    "mvit_b": ("torchvision", "mvit_v1_b"),
    "mvitv2_s": ("torchvision", "mvit_v2_s"),
    "mvitv2_t_image": ("timm", "mvitv2_tiny"),
    "mvitv2_s_image": ("timm", "mvitv2_small"),
    "mvitv2_b_image": ("timm", "mvitv2_base"),
    "mvitv2_l_image": ("timm", "mvitv2_large"),
    # the table said mvitv2_huge, a name timm does not know; its model is mvitv2_huge_cls (the
    # spec's header and test_timm_parity name it)
    "mvitv2_h_image": ("timm", "mvitv2_huge_cls"),
    "swin_t": ("timm", "swin_tiny_patch4_window7_224"),
    "swin_s": ("timm", "swin_small_patch4_window7_224"),
    "swin_b": ("timm", "swin_base_patch4_window7_224"),
    "pvt_v2_b0": ("timm", "pvt_v2_b0"),
    "pvt_v2_b1": ("timm", "pvt_v2_b1"),
    "pvt_v2_b2": ("timm", "pvt_v2_b2"),
    "pvt_v2_b3": ("timm", "pvt_v2_b3"),
    "pvt_v2_b4": ("timm", "pvt_v2_b4"),
    "pvt_v2_b5": ("timm", "pvt_v2_b5"),
    "pvt_v2_b2_li": ("timm", "pvt_v2_b2_li"),
    "hiera_t_image": ("timm", "hiera_tiny_224"),
    "hiera_s_image": ("timm", "hiera_small_224"),
    "hiera_b_image": ("timm", "hiera_base_224"),
    "hiera_b_plus_image": ("timm", "hiera_base_plus_224"),
    "hiera_l_image": ("timm", "hiera_large_224"),
    "hiera_h_image": ("timm", "hiera_huge_224"),
    "sam2_hiera_t": ("timm", "sam2_hiera_tiny"),
    "sam2_hiera_s": ("timm", "sam2_hiera_small"),
    "sam2_hiera_b_plus": ("timm", "sam2_hiera_base_plus"),
    "sam2_hiera_l": ("timm", "sam2_hiera_large"),
}

TINY = """\
model tiny {
  input image 3x32x32
  patch conv 4x4 stride 4x4 -> 8
  tokens cls, position none
  stages {
    s1  1   8  2  1x1
    s2  1  16  4  2x2
  }
  reference timm tiny_model
}
"""
LINE = "  reference timm tiny_model\n"


def stated(spec: mvitdsl.Spec) -> tuple[str, str] | None:
    ref = spec.reference
    return (ref.source, ref.name) if ref is not None else None


def shipped() -> dict[str, tuple[str, str]]:
    """Every shipped spec that states a reference: name -> (source, model)."""
    out = {}
    for path in sorted(SPECS.glob("*.mv")):
        pair = stated(mvitdsl.load_spec(path, check=False))
        if pair is not None:
            out[path.stem] = pair
    return out


def test_the_shipped_specs_state_the_pairs_the_table_held() -> None:
    assert shipped() == MIGRATED


def test_each_stated_model_is_one_its_source_builds() -> None:
    timm = pytest.importorskip("timm")
    import torchvision

    for name, (source, model) in shipped().items():
        if source == "timm":
            assert timm.is_model(model), (name, model)
        else:
            assert callable(getattr(torchvision.models.video, model, None)), (name, model)


def test_a_reference_is_read_where_it_is_written() -> None:
    spec = mvitdsl.load_spec(text=TINY)
    assert stated(spec) == ("timm", "tiny_model")
    assert spec.reference is not None and (spec.reference.loc.line, spec.reference.loc.column) == (
        9,
        13,
    )
    assert mvitdsl.load_spec(text=TINY.replace(LINE, "")).reference is None


def test_a_reference_is_not_inherited_through_extends() -> None:
    """A child is another model: mvit_b_32x3 extends mvit_b and states none; mvitv2_s_image
    extends mvitv2_t_image and states its own."""
    assert mvitdsl.load_spec(name="mvit_b_32x3", check=False).reference is None
    child = mvitdsl.load_spec(name="mvitv2_s_image", check=False)
    assert stated(child) == ("timm", "mvitv2_small")
    text = "model child extends mvitv2_t_image {\n  train drop_path 0.2\n}\n"
    assert mvitdsl.load_spec(text=text, check=False).reference is None


def test_resize_keeps_the_reference_and_a_new_head_drops_it() -> None:
    spec = mvitdsl.load_spec(text=TINY)
    assert stated(mvitdsl.resize(spec, (3, 64, 64))) == ("timm", "tiny_model")
    assert stated(mvitdsl.load_spec(text=TINY, input_size=(3, 64, 64))) == ("timm", "tiny_model")
    assert mvitdsl.with_classes(spec, 10).reference is None  # the reference's head is its own


def test_the_lowered_model_and_the_check_report_do_not_change() -> None:
    """The line is data beside the IR: the IR and `check --format json`'s report are those of
    the spec without it."""
    with_line = mvitdsl.load_spec(text=TINY)
    without = mvitdsl.load_spec(text=TINY.replace(LINE, "  # no reference\n"))  # same lines
    assert with_line.model == without.model
    assert mvitdsl.analyze(with_line).to_dict() == mvitdsl.analyze(without).to_dict()


# line written in place of LINE: the exact text a user sees
MISTAKES = {
    "  reference timmm tiny_model\n": """\
<spec>:9:13: error[E203]: unknown reference source 'timmm'
   9 |   reference timmm tiny_model
                   ^^^^^
  = hint: did you mean 'timm'?
""",
    "  reference hub tiny_model\n": """\
<spec>:9:13: error[E203]: unknown reference source 'hub'
   9 |   reference hub tiny_model
                   ^^^
  = hint: a reference source is one of torchvision, timm
""",
    "  reference timm Tiny_Model\n": """\
<spec>:9:18: error[E204]: 'Tiny_Model' is not a timm model name
   9 |   reference timm Tiny_Model
                        ^^^^^^^^^^
  = hint: a model name is lower-case letters, digits and '_', as timm spells it: reference timm swin_tiny_patch4_window7_224
""",
    '  reference torchvision "mvit v2"\n': """\
<spec>:9:25: error[E204]: '"mvit v2"' is not a torchvision model name
   9 |   reference torchvision "mvit v2"
                               ^^^^^^^^^
  = hint: a model name is lower-case letters, digits and '_', as torchvision spells it: reference torchvision mvit_v2_s
""",
    "  reference timm 3x3\n": """\
<spec>:9:18: error[E204]: '3x3' is not a timm model name
   9 |   reference timm 3x3
                        ^^^
  = hint: a model name is lower-case letters, digits and '_', as timm spells it: reference timm swin_tiny_patch4_window7_224
""",
    "  reference timm\n": """\
<spec>:9:13: error[E204]: 'reference timm' names no model
   9 |   reference timm
                   ^^^^
  = hint: a model name is lower-case letters, digits and '_', as timm spells it: reference timm swin_tiny_patch4_window7_224
""",
    "  reference timm tiny_model extra\n": """\
<spec>:9:29: error[E204]: 'reference timm' takes one model name
   9 |   reference timm tiny_model extra
                                   ^^^^^
  = hint: a model name is lower-case letters, digits and '_', as timm spells it: reference timm swin_tiny_patch4_window7_224
""",
    "  reference\n": """\
<spec>:9:3: error[E204]: 'reference' names no model
   9 |   reference
         ^^^^^^^^^
  = hint: for example: reference timm swin_tiny_patch4_window7_224
""",
    "  reference timm tiny_model, torchvision mvit_v2_s\n": """\
<spec>:9:30: error[E201]: 'reference' given twice
   9 |   reference timm tiny_model, torchvision mvit_v2_s
                                    ^^^^^^^^^^^^^^^^^^^^^
  = hint: a spec states one reference
""",
    "  reference timm tiny_model\n  reference timm other\n": """\
<spec>:10:13: error[E201]: 'reference' given twice
  10 |   reference timm other
                   ^^^^^^^^^^
  = hint: a spec states one reference
""",
}


@pytest.mark.parametrize("line", list(MISTAKES), ids=range(len(MISTAKES)))
def test_a_mistake_is_located_with_a_caret_and_a_hint(line: str) -> None:
    with pytest.raises(mvitdsl.SpecError) as info:
        mvitdsl.load_spec(text=TINY.replace(LINE, line))
    assert info.value.render() + "\n" == MISTAKES[line]


def test_a_mistake_in_a_parents_reference_is_not_read(tmp_path: Path) -> None:
    """The parent's line is taken out unread: only the child's own is checked."""
    (tmp_path / "parent.mv").write_text(TINY.replace(LINE, "  reference hub x\n"))
    child = tmp_path / "child.mv"
    child.write_text('model child extends "parent.mv" tiny {\n  reference timm child_model\n}\n')
    assert stated(mvitdsl.load_spec(child)) == ("timm", "child_model")


def test_fmt_writes_the_line_in_the_key_column() -> None:
    messy = TINY.replace(LINE, "  reference    timm     tiny_model\n")
    formatted = format_text(messy)
    assert "\n  reference  timm tiny_model\n" in formatted
    assert format_text(formatted) == formatted
    assert stated(mvitdsl.load_spec(text=formatted)) == ("timm", "tiny_model")


def test_bench_against_a_source_the_spec_does_not_state_is_one_line() -> None:
    """The message names the line to add, and the one the spec states."""
    from mvitdsl.backend.reference import reference_name

    swin = mvitdsl.load_spec(name="swin_t", check=False)
    assert reference_name(swin, "timm") == "swin_tiny_patch4_window7_224"
    with pytest.raises(ValueError) as info:
        reference_name(swin, "torchvision")
    message = str(info.value)
    assert "\n" not in message
    assert "no torchvision model is known for swin_t" in message
    assert "'reference torchvision MODEL'" in message
    assert "it states 'reference timm swin_tiny_patch4_window7_224'" in message


@pytest.mark.parametrize(
    "source, message",
    [
        ("timm", "--against timm: timm has no model 'no_such_model'"),
        (
            "torchvision",
            "--against torchvision: torchvision.models.video has no model 'no_such_model'",
        ),
    ],
)
def test_a_model_its_source_does_not_know_is_one_line(source: str, message: str) -> None:
    pytest.importorskip(source)
    from mvitdsl.backend.bench import BenchOptions
    from mvitdsl.backend.reference import reference_model

    spec = mvitdsl.load_spec(text=TINY.replace(LINE, f"  reference {source} no_such_model\n"))
    with pytest.raises(ValueError) as info:
        reference_model(spec, source, BenchOptions())
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_the_editor_completes_and_explains_the_line() -> None:
    lsp = pytest.importorskip("lsprotocol.types")
    from mvitdsl.language import settings
    from mvitdsl.lsp.complete import option_items, setting_items
    from mvitdsl.lsp.document import check_document
    from mvitdsl.lsp.hover import OTHER_KEYS, hover

    assert set(settings.STATEMENTS) <= set(OTHER_KEYS)  # each statement beside the table hovers
    assert "reference" in {i.label for i in setting_items()}
    assert [i.label for i in option_items("reference", ["reference"])] == list(SOURCES)
    assert option_items("reference", ["reference", "timm"]) == []
    doc = check_document(TINY, None)
    texts = []
    for character in (4, 14):  # on `reference`, on `timm`
        found = hover(doc, lsp.Position(line=8, character=character))
        assert found is not None and isinstance(found.contents, lsp.MarkupContent)
        texts.append(found.contents.value)
    assert texts[0].startswith("**reference**: the implementation the model equals")
    assert texts[1].startswith("**reference timm**: a model of timm.create_model")


# ---------------------------------------------------------------- properties

WORDS = st.one_of(
    st.sampled_from([*SOURCES, "timmm", "torch_vision", "hub", "Timm"]),
    st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True),
    st.sampled_from(["3x3", "7", "1e-4", '"a b"', '""', "->"]),
)
CLAUSES = st.lists(WORDS, min_size=0, max_size=4).map(" ".join)
WELL_FORMED = st.tuples(
    st.sampled_from(SOURCES), st.from_regex(r"[a-z][a-z0-9_]{0,30}", fullmatch=True)
).map(" ".join)
# half the lines a source and a model name (each must load), half anything of these words
LINES = st.one_of(WELL_FORMED, st.lists(CLAUSES, min_size=1, max_size=3).map(", ".join))
SPACES = st.sampled_from([" ", "  ", "\t", "     "])


def _well_formed(line: str) -> tuple[str, str] | None:
    """What a line states when it is one clause of a source and a model name, else None."""
    words = line.split()
    if "," in line or len(words) != 2 or words[0] not in SOURCES:
        return None
    return (words[0], words[1]) if MODEL_NAME.fullmatch(words[1]) else None


@given(LINES, SPACES)
def test_property_any_reference_line_loads_or_is_located(line: str, gap: str) -> None:
    """A spec with any `reference` line loads with the pair it states, or raises SpecError
    whose every diagnostic is located on that line (E201/E203/E204, or a syntax error), never
    anything else; fmt is idempotent and keeps what loads."""
    text = TINY.replace(LINE, f"  reference{gap}{line}\n")
    try:
        spec = mvitdsl.load_spec(text=text, check=False)
    except mvitdsl.SpecError as e:
        assert _well_formed(line) is None, line
        # on the line, or (after a trailing comma, which continues it) on the next
        assert e.diagnostics and all(d.span and d.span.line in (9, 10) for d in e.diagnostics)
        assert {d.code for d in e.diagnostics} <= {"E100", "E101", "E201", "E203", "E204"}
        return
    assert stated(spec) == _well_formed(line), line
    formatted = format_text(text)
    assert format_text(formatted) == formatted
    assert stated(mvitdsl.load_spec(text=formatted, check=False)) == stated(spec)


def test_fmt_of_a_shipped_spec_keeps_its_reference() -> None:
    """Each shipped line as `mvitdsl fmt` writes it, read back from the formatted text."""
    for name, pair in MIGRATED.items():
        path = ROOT / "specs" / f"{name}.mv"
        text = path.read_text()
        assert format_text(text, str(path)) == text, name
        _, lines = split_reference(parse(text, str(path)))
        ref = read_reference(lines, {str(path): text})
        assert ref is not None and (ref.source, ref.name) == pair
        assert f"\n  reference  {pair[0]} {pair[1]}\n" in text
