"""The one table (language/settings.py) and the lexical module (language/lexical.py): every
option and every per-stage cell is varied through a sweep PATH by its own name (the cases are
generated from the table, so a new option is covered without touching this file), old spellings
load with W001 and `fmt` rewrites them, and the grammar's value terminals are lexical.py's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import SPECS
from hypothesis import given
from hypothesis import strategies as st

import mvitdsl
from mvitdsl.cli import main
from mvitdsl.language import lexical, overrides, settings
from mvitdsl.language.atoms import dims3, pad3
from mvitdsl.language.fmt import format_text
from mvitdsl.language.lower import Lowering
from mvitdsl.language.parse import _parser, parse
from mvitdsl.spec import load_spec

MVIT_B = SPECS / "mvit_b.mv"
STAGE = "scale3"  # a row of mvit_b without an `off` column
PARTS = 3  # mvit_b is a video model: sizes have T, H and W


def sample(o: settings.Option) -> str:
    """A value text the table allows for the option, other than its default."""
    if o.kind == "flag":
        return o.word
    if o.choices:
        return next(c for c in reversed(o.choices) if c != o.default)
    if o.kind == "switch":
        return "off" if o.default else "on"
    if o.kind in ("number", "integer"):
        assert o.range is not None
        candidates = (2, 3, 0.5, 0.25) if o.kind == "number" else (2, 3, 7)
        return str(next(v for v in candidates if v in o.range and v != o.default))
    if o.kind == "indexes":
        return "0,1"
    if o.path == "size":  # the input's size: channels first
        return "3x8x64x64"
    return "x".join(["2"] * PARTS)  # sizes and the K/V stride


def expected(o: settings.Option, text: str) -> tuple[str, Any]:
    """The draft field the reader sets from the text, and the value it sets there."""
    if o.kind == "flag":
        return o.field, o.default
    if o.word == "pool":
        return "pool_mode", text
    if o.kind == "switch":
        return o.field, text == "on"
    if o.kind == "indexes":
        return o.field, lexical.indexes_parts(text)
    value = lexical.word_value(text)
    if isinstance(value, tuple):
        return o.field, pad3(value) if o.field == "padding" else dims3(value)
    return o.field, value


def _options() -> list[tuple[str, settings.Option]]:
    out = []
    for s in settings.SETTINGS:
        for o in s.options:
            if o.field == "kind" and o.word != "video":
                continue  # mvit_b is a video: the image's size is read by its own spec
            out.append((s.key, o))
    return out


def _cells() -> list[tuple[str, settings.Option]]:
    return [(key, o) for key, (_, o) in settings.stage_cells().items()]


@pytest.fixture(scope="module")
def base() -> Lowering:
    spec = load_spec(MVIT_B)
    return Lowering(spec.ast, spec.statements, spec.sources)


@pytest.mark.parametrize(("key", "option"), _options(), ids=lambda x: getattr(x, "word", x))
def test_every_option_is_varied_by_its_own_name(
    key: str, option: settings.Option, base: Lowering
) -> None:
    path = f"{key}.{option.word}"
    target = overrides.locate(path, base.statements)
    text = sample(option)
    reading = base.read_value(target, text)
    assert reading.diagnostics == [], (path, text)
    if option.field == "kind":
        assert reading.draft.input is not None
        assert (reading.draft.input.channels, reading.draft.input.size) == (3, (8, 64, 64))
        return
    field, value = expected(option, text)
    if key == "input":  # the input's options are read into the draft's ir.Input
        assert reading.draft.input is not None
        assert getattr(reading.draft.input, field) == value, (path, text)
    else:
        assert reading.draft.values[key][field] == value, (path, text)
    if option.path:  # the other word the table gives the value, where it has one
        assert overrides.locate(f"{key}.{option.path}", base.statements) == target.__class__(
            f"{key}.{option.path}", "option", key, target.word
        )


@pytest.mark.parametrize(("cell", "option"), _cells(), ids=lambda x: getattr(x, "word", x))
def test_every_stage_cell_is_varied_by_its_own_name(
    cell: str, option: settings.Option, base: Lowering
) -> None:
    path = f"{STAGE}.{cell}"
    target = overrides.locate(path, base.statements)
    assert (target.kind, target.word) == ("cell", cell)
    text = sample(option)
    reading = base.read_value(target, text)
    assert reading.diagnostics == [], (path, text)
    row = next(r for r in reading.draft.rows if r.name == STAGE)
    field, value = expected(option, text)
    assert row.cells[field] == value, (path, text)
    others = [r.cells for r in reading.draft.rows if r.name != STAGE]
    assert all(field not in c for c in others)


@pytest.mark.parametrize("column", settings.COLUMNS[1:], ids=lambda c: c.word)
def test_every_column_is_varied_by_its_own_name(column: settings.Column, base: Lowering) -> None:
    target = overrides.locate(f"{STAGE}.{column.word}", base.statements)
    assert (target.kind, target.word) == ("column", column.word)
    size = column.kind in ("size", "stride_kv")
    reading = base.read_value(target, "1x2x2" if size else "3")
    assert reading.diagnostics == []
    row = next(r for r in reading.draft.rows if r.name == STAGE)
    field = {"blocks": "depth"}.get(column.word, column.word)  # StageDraft's name for it
    assert getattr(row, field) == ((1, 2, 2) if size else 3)


def test_pool_kv_is_the_cell_not_the_stride_kv_column(capsys: pytest.CaptureFixture[str]) -> None:
    spec = load_spec(MVIT_B)
    target = overrides.locate("scale3.pool_kv", spec.statements)
    assert (target.kind, target.word) == ("cell", "pool_kv")
    argv = ["sweep", str(MVIT_B), "--vary", "scale3.pool_kv=off,on", "--format", "jsonl"]
    assert main(argv) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    by = {r["values"]["scale3.pool_kv"]: r for r in rows}
    assert by["on"]["ok"] and by["off"]["ok"]
    assert by["on"]["params"] == mvitdsl.analyze(load_spec(MVIT_B)).params
    assert by["off"]["params"] < by["on"]["params"]  # scale3's K/V conv pools are gone


@pytest.mark.parametrize(
    "vary",
    [
        {"tokens.cls": "cls,no_cls", "head.pool": "mean"},
        {"scale3.pool_kv": "off,on", "scale4.pool": "avg,conv", "attention.qkv_bias": "off"},
        {"patch.->": "96,192", "head.norm": "no_norm,norm"},
    ],
)
def test_fast_path_equals_lowering_for_flags_and_cells(vary: dict[str, str]) -> None:
    from mvitdsl.explore.run import SweepRun

    fast = list(mvitdsl.sweep(MVIT_B, vary=vary, pareto=None))
    slow_run = SweepRun(MVIT_B, vary, pareto=None)
    slow_run.evaluator.fast = False
    assert fast == list(slow_run)
    assert any(r["ok"] for r in fast)


def test_flags_take_one_of_their_words() -> None:
    spec = load_spec(MVIT_B)
    target = overrides.locate("tokens.no_cls", spec.statements)
    assert (target.kind, target.key, target.word) == ("option", "tokens", "cls")
    assert overrides.locate("tokens.cls", spec.statements).word == "cls"
    with pytest.raises(overrides.PathError, match="takes one of cls, no_cls"):
        overrides.apply(spec.statements, {target: "mean"}, spec.ast.span)


def test_unknown_words_are_refused_from_the_table() -> None:
    spec = load_spec(MVIT_B)
    with pytest.raises(overrides.PathError, match="did you mean 'mlp_ratio'"):
        overrides.locate("attention.mlp_ration", spec.statements)
    with pytest.raises(overrides.PathError, match="did you mean 'pool_kv'"):
        overrides.locate("scale3.pool_kvv", spec.statements)
    with pytest.raises(overrides.PathError, match="cannot be varied"):
        overrides.locate("input.kind", spec.statements)


def test_an_option_written_after_a_value_of_its_word_is_found() -> None:
    # `scope mask_unit` holds the word as a value: the PATH names the `mask_unit` option after it
    text = (SPECS / "hiera_t_image.mv").read_text()
    moved = text.replace("mask_unit 8x8, scope global", "scope mask_unit, mask_unit 8x8")
    assert moved != text
    spec = mvitdsl.load_spec(text=moved, check=False)
    target = overrides.locate("attention.mask_unit", spec.statements)
    atom = overrides.written(target, spec.statements)
    assert atom is not None and atom.value == (8, 8)
    changed = overrides.apply(spec.statements, {target: "4x4"}, spec.ast.span)
    lowering = Lowering(spec.ast, changed, spec.sources)
    model = lowering.run()
    assert lowering.r.diagnostics == [] and model is not None
    assert model.attention.mask_unit == (1, 4, 4) and model.attention.scope == "mask_unit"


# ---------------------------------------------------------------- renamed words


def _renamed() -> list[tuple[str, settings.Option, str]]:
    return [(s.key, o, old) for s in settings.SETTINGS for o in s.options for old in o.old]


@pytest.mark.parametrize(("key", "option", "old"), _renamed(), ids=lambda x: str(x))
def test_old_spellings_load_with_w001_and_fmt_rewrites_them(
    key: str, option: settings.Option, old: str
) -> None:
    base = MVIT_B.read_text()
    clause = f"{option.word} {sample(option)}"
    text = base.replace("  head ", f"  {key} {clause}\n  head ", 1)
    old_text = text.replace(f"{key} {option.word} ", f"{key} {old} ", 1)
    assert old_text != text
    loaded = mvitdsl.load_spec(text=old_text, check=False)
    assert [w.code for w in loaded.warnings] == ["W001"]
    formatted = format_text(old_text)
    assert f" {old} " not in formatted and f"{key} {option.word}" in formatted.replace("  ", " ")
    assert mvitdsl.load_spec(text=formatted, check=False).warnings == ()
    assert formatted == format_text(text)  # the old spelling formats as the new one


def test_renamed_words_are_declared_in_the_table() -> None:
    assert {old: o.word for _, o, old in _renamed()} == settings.RENAMED_OPTIONS
    assert settings.RENAMED_OPTIONS  # issue 12's renames: the cases above are not empty


def test_merge_exclusive_groups_come_from_the_table() -> None:
    assert settings.BY_KEY["tokens"].exclusive() == (("cls", "no_cls"),)
    assert set(settings.BY_KEY["head"].exclusive()) == {("norm", "no_norm"), ("cls", "mean")}


@pytest.mark.parametrize("key", list(settings.required()))
def test_required_statements_come_from_the_table(key: str) -> None:
    text = MVIT_B.read_text()
    lines = text.splitlines()
    if key == "stages":
        start = next(i for i, line in enumerate(lines) if line.strip().startswith("stages {"))
        end = next(i for i in range(start, len(lines)) if lines[i].strip() == "}")
        kept = lines[:start] + lines[end + 1 :]
    else:
        kept = [line for line in lines if not line.strip().startswith(key + " ")]
    kept = [line for line in kept if not line.strip().startswith("expect")]
    with pytest.raises(mvitdsl.SpecError) as e:
        mvitdsl.load_spec(text="\n".join(kept) + "\n")
    codes = {(d.code, d.hint) for d in e.value.diagnostics}
    assert ("E202", settings.required()[key]) in codes


# ---------------------------------------------------------------- the lexical module


def test_the_grammar_terminals_are_the_lexical_patterns() -> None:
    patterns = {t.name: t.pattern.value for t in _parser().terminals}
    assert patterns["NAME"] == lexical.NAME
    assert patterns["SIZE"] == lexical.SIZE
    assert patterns["NUMBER"] == lexical.NUMBER


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("2", "number", 2),
        ("2.5", "number", 2.5),
        ("1e-4", "number", 1e-4),
        ("1x2x2", "size", (1, 2, 2)),
        ("1×2×2", "size", (1, 2, 2)),
        ("3x224x224", "size", (3, 224, 224)),
        ("mlp_ratio", "name", "mlp_ratio"),
    ],
)
def test_parser_and_lexical_agree_on_each_word(text: str, kind: str, value: Any) -> None:
    model = parse(f"model m {{\n  head dropout {text}\n}}\n")
    atom = model.statements[0].clauses[0].atoms[1]  # type: ignore[union-attr]
    assert (atom.kind, atom.value) == (kind, value) == (kind, lexical.word_value(text))
    made = overrides.make_atom(text, atom.span)
    assert (made.kind, made.value) == (kind, value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3x16x224x224", None),
        ("3×224×224", None),
        ("3x224", "has 2 sizes"),
        ("224", "has 1 sizes"),
        ("3xx224", "is not a size"),
        ("3x0x224", "between 1 and"),
        ("-3x224x224", "is not a size"),
    ],
)
def test_parse_size_says_what_is_wrong(text: str, message: str | None) -> None:
    if message is None:
        assert len(lexical.parse_size(text)) in (3, 4)
    else:
        with pytest.raises(ValueError, match=message):
            lexical.parse_size(text)


def test_words_that_are_not_values_are_refused_everywhere() -> None:
    for text in ("1;2", "-1", "1.", "1x", "2x3x"):
        with pytest.raises(ValueError):
            lexical.word_value(text)
        with pytest.raises(overrides.PathError, match="not a value"):
            overrides.make_atom(text, parse("model m {\n}\n").span)


def test_lowering_halves_equal_run(tmp_path: Path) -> None:
    spec = load_spec(MVIT_B)
    lowering = Lowering(spec.ast, spec.statements, spec.sources)
    draft = lowering.read()
    assert lowering.r.diagnostics == []
    assert lowering.finish(draft) == spec.model
    assert Lowering(spec.ast, spec.statements, spec.sources).run() == spec.model


_WORDS = [
    *(f"{s.key}.{o.word}" for s in settings.SETTINGS for o in s.options),
    *(f"{STAGE}.{w}" for w in (*settings.COLUMN_WORDS, *settings.stage_cells())),
]


@given(
    st.one_of(st.sampled_from(_WORDS), st.text(max_size=30)),
    st.one_of(st.sampled_from(["off", "2", "1x2x2", "0.5", "avg", "cls"]), st.text(max_size=12)),
)
def test_property_any_path_and_value_fail_cleanly(base: Lowering, path: str, text: str) -> None:
    """A PATH and a value text: a Target and a reading, or PathError; never anything else."""
    try:
        target = overrides.locate(path, base.statements)
        reading = base.read_value(target, text)
    except overrides.PathError:
        return
    assert all(d.span is not None for d in reading.diagnostics)
