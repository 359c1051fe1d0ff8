"""Sweeps over several bases (issue 23 item 5): per-base and shared PATHs, the family column in
every format, one joint front against brute force, sweep files naming more bases, the joint
picture, and one-line errors for every bad input (examples and hypothesis properties)."""

from __future__ import annotations

import csv
import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from conftest import SPECS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mvitdsl
from mvitdsl.analysis.analyze import analyze
from mvitdsl.cli import main
from mvitdsl.explore.axes import AxisError
from mvitdsl.explore.engine import Budgets
from mvitdsl.explore.multi import MultiSweep, per_base
from mvitdsl.explore.pareto import RunningFront, brute_force, flag_front, oriented
from mvitdsl.explore.run import SweepRun
from mvitdsl.explore.sweepfile import split_prefix
from mvitdsl.language.overrides import PathError, locate
from mvitdsl.spec import load_spec

BASES = ["mvitv2_t_image", "hiera_t_image", "swin_t"]
SPEC = {name: load_spec(SPECS / f"{name}.mv") for name in BASES}
TINY = load_spec(SPECS.parent / "examples" / "tiny_image.mv")  # three stages: no scale5
VARY = ["scale4.blocks=2,6", "swin_t:scale5.blocks=1,2"]
PROPERTY = settings(  # examples: the profile's (ci 40, make fuzz 3000)
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def joint(**kw: Any) -> tuple[MultiSweep, list[dict[str, Any]]]:
    run = mvitdsl.sweep(BASES, kw.pop("vary", VARY), **kw)
    assert isinstance(run, MultiSweep)
    return run, list(run)


# ---------------------------------------------------------------- rows, families, the front


def test_rows_carry_their_family_and_per_base_values() -> None:
    run, got = joint()
    assert [r["family"] for r in got] == ["mvitv2_t_image"] * 2 + ["hiera_t_image"] * 2 + [
        "swin_t"
    ] * 4
    assert all(list(r)[:3] == ["schema", "kind", "family"] for r in got)
    swin = [r["values"] for r in got if r["family"] == "swin_t"]
    assert {v["scale5.blocks"] for v in swin} == {1, 2}  # the prefixed axis: Swin only
    assert all("scale5.blocks" not in r["values"] for r in got if r["family"] != "swin_t")
    # each row's costs are its own base's: the same as a one-base sweep of that base
    alone = list(mvitdsl.sweep("hiera_t_image", ["scale4.blocks=2,6"], pareto=None))
    mine = [r for r in got if r["family"] == "hiera_t_image"]
    assert [(r["id"], r["params"], r["gmacs"]) for r in mine] == [
        (r["id"], r["params"], r["gmacs"]) for r in alone
    ]


def test_joint_front_equals_brute_force_and_the_summary_adds_up() -> None:
    run, got = joint(pareto="gmacs,params:max", budgets=Budgets(gmacs=4.6))
    points = [
        (f"{r['family']}:{r['id']}", oriented([r["gmacs"], r["params"]], run.objectives))
        for r in got
        if r["ok"]
    ]
    expected = brute_force(points)
    assert {f"{r['family']}:{r['id']}" for r in got if r["pareto"]} == expected
    assert set(run.summary.front) == expected and len({k.split(":")[0] for k in expected}) >= 2
    s = run.summary.to_dict()
    assert s["total"] == len(got) == 8 and s["kept"] == sum(r["ok"] for r in got)
    assert sum(f["total"] for f in s["families"].values()) == s["total"]
    assert (
        "E306 over the gmacs budget" in run.summary.line() and "kept by base:" in run.summary.line()
    )


def test_prefixed_text_replaces_an_unprefixed_one_for_its_base() -> None:
    out = per_base("vary", ["scale4.blocks=2,6", "swin_t:scale4.blocks=1,3"], SPEC)
    assert out == {
        "mvitv2_t_image": ["scale4.blocks=2,6"],
        "hiera_t_image": ["scale4.blocks=2,6"],
        "swin_t": ["scale4.blocks=1,3"],
    }
    # a PATH only some bases have goes to those: tiny_image has no scale5
    out = per_base("vary", ["scale5.blocks=1,2", "scale4.blocks=1"], {**SPEC, "tiny": TINY})
    assert out["tiny"] == ["scale4.blocks=1"]
    assert out["swin_t"] == ["scale5.blocks=1,2", "scale4.blocks=1"]


def test_one_base_with_its_own_prefix_is_a_plain_sweep() -> None:
    a = mvitdsl.sweep("swin_t", {"swin_t:scale4.blocks": "2..4"}, set=["swin_t:scale5.blocks=1"])
    b = mvitdsl.sweep("swin_t", {"scale4.blocks": "2..4"}, set=["scale5.blocks=1"])
    assert isinstance(a, SweepRun) and list(a) == list(b)


def test_flag_front_through_a_chunked_spool_equals_brute_force() -> None:
    rng = __import__("random").Random(0)
    rows = [{"id": str(i), "x": rng.random(), "y": rng.random(), "ok": True} for i in range(40)]
    front = RunningFront()
    got = list(
        flag_front(
            [dict(r) for r in rows], lambda r: (r["x"], r["y"]), lambda r: r["id"], front, chunk=3
        )
    )
    assert [r["id"] for r in got] == [r["id"] for r in rows]
    assert {r["id"] for r in got if r["pareto"]} == brute_force(
        (r["id"], (r["x"], r["y"])) for r in rows
    )


def test_emitted_variants_go_under_their_family_and_check_to_their_rows(tmp_path: Path) -> None:
    _, got = joint(vary=["scale4.blocks=2"], emit=tmp_path)
    for row in got:
        path = Path(row["file"])
        assert path.parent == tmp_path / row["family"]
        assert analyze(load_spec(path)).params == row["params"]


# ---------------------------------------------------------------- the command line


def test_cli_family_column_in_every_format(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["sweep", *BASES, "--vary", VARY[0], "--vary", VARY[1]]
    assert main([*args, "--format", "jsonl"]) == 0
    cap = capsys.readouterr()
    lines = [json.loads(x) for x in cap.out.splitlines()]
    assert [r["family"] for r in lines].count("swin_t") == 4 and len(lines) == 8
    assert "8 variants: 8 kept; kept by base: mvitv2_t_image 2/2" in cap.err
    assert main([*args, "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(table[0])[:2] == ["id", "family"]
    assert [r["family"] for r in table] == [r["family"] for r in lines]
    assert [r["scale5.blocks"] for r in table][:2] == ["", ""]  # not a mvitv2 path here
    assert main(args) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].split()[:2] == ["id", "family"]
    assert all(line.split()[1] in BASES for line in text[2:10])


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--vary", "swn_t:scale4.blocks=2"], "no base 'swn_t'; did you mean 'swin_t'?"),
        (["--vary", "swin_t:scale4.blocsk=2"], "swin_t: 'scale4.blocsk'"),
        (["--vary", "hiera_t_image:scale6.blocks=2"], "hiera_t_image: 'scale6.blocks'"),
        (["--set", "scale9.dim=64"], "--set 'scale9.dim=64' fits no base: mvitv2_t_image:"),
        (["--where", "nope:scale4.blocks > 1"], "no base 'nope'; bases are mvitv2_t_image,"),
        (["swin_t"], "base 'swin_t' given twice"),
        (["--max-variants", "5"], "the sweep has 8 variants (2 + 2 + 4), more than"),
    ],
)
def test_cli_bad_input_is_one_line(
    extra: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = [*BASES, *(x for x in extra if x in BASES)]
    flags = [x for x in extra if x not in BASES]
    assert main(["sweep", *specs, "--vary", VARY[0], "--vary", VARY[1], *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mvitdsl sweep: ") and words in err and err.count("\n") == 1, err


def test_a_sweep_file_is_given_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = SPECS.parent / "examples" / "sweep_depth_width.mv"
    assert main(["sweep", str(example), "swin_t"]) == 2
    err = capsys.readouterr().err
    assert "is a sweep file: give it alone" in err and err.count("\n") == 1


def test_joint_plot_is_reproducible(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outs = []
    for n in (1, 2):
        path = tmp_path / f"joint{n}.svg"
        args = ["sweep", *BASES, "--vary", VARY[0], "--pareto", "gmacs,params:max"]
        assert main([*args, "--max-params", "27e6", "--plot", str(path)]) == 0
        outs.append(path.read_text())
    assert outs[0] == outs[1]
    for name in BASES:
        assert f"{name} (" in outs[0] and f"base ({name})" in outs[0]
    assert "joint Pareto front" in outs[0] and "params budget" in outs[0]
    capsys.readouterr()


# ---------------------------------------------------------------- sweep files with more bases


def test_a_sweep_file_names_more_bases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "hiera.mv").write_text((SPECS / "hiera_t_image.mv").read_text())
    sweep = tmp_path / "cross.mv"
    sweep.write_text(
        f'model mvit_wide extends "{SPECS / "mvitv2_t_image.mv"}" mvitv2_t_image {{\n'
        "  attention  mlp_ratio 3\n"
        "  sweep {\n"
        '    base   "hiera.mv"\n'
        '    base   "swin_t"\n'
        '    vary   "scale4.blocks=2,4"\n'
        '    vary   "swin_t:scale5.blocks=1,2"\n'
        "    max_params 20e6\n"
        "  }\n"
        "}\n"
    )
    assert main(["sweep", str(sweep), "--format", "jsonl", "--emit", str(tmp_path / "v")]) == 0
    got = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["family"] for r in got].count("mvit_wide") == 2 and len(got) == 8
    wide = next(r for r in got if r["family"] == "mvit_wide" and r["ok"])
    child = load_spec(Path(wide["file"]))
    assert child.model.attention.mlp_ratio == 3  # the sweep file's own change is kept
    assert analyze(child).params == wide["params"]
    assert any(r["diagnostics"][0]["code"] == "E306" for r in got if not r["ok"])


def test_sweep_file_base_mistakes_are_located(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.mv"
    bad.write_text(
        f'model bad extends "{SPECS / "swin_t.mv"}" swin_t {{\n'
        "  sweep {\n"
        '    base   "nowhere.mv"\n'
        '    base   "hiera_t_image"\n'
        '    base   "hiera_t_image"\n'
        '    vary   "hiera_t_imag:scale4.blocks=2"\n'
        '    vary   "hiera_t_image:scale6.blocks=2"\n'
        '    vary   "scale9.blocks=2"\n'
        "  }\n"
        "}\n"
    )
    assert main(["sweep", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:3:12: error[E203]: no spec file 'nowhere.mv'" in err
    assert f"{bad}:5:12: error[E203]: base 'hiera_t_image' given twice" in err
    assert f"{bad}:6:12: error[E203]: no base 'hiera_t_imag'; did you mean" in err
    assert f"{bad}:7:12: error[E203]:" in err and f"{bad}:8:12: error[E203]:" in err


# ---------------------------------------------------------------- properties

NAMES = st.sampled_from([*BASES, "tiny", "swin", "pvt_v2_b2", "x"])
SPEC4 = {**SPEC, "tiny": TINY}
PATHS = st.sampled_from(
    ["scale4.blocks", "scale5.blocks", "attention.mask_unit", "attention.windw", "scale9.dim"]
)
TEXTS = st.tuples(st.none() | NAMES, PATHS).map(
    lambda t: (f"{t[0]}:" if t[0] else "") + f"{t[1]}=2"
)


def _has(spec: Any, path: str) -> bool:
    try:
        locate(path, spec.statements)
    except PathError:
        return False
    return True


@PROPERTY
@given(st.lists(TEXTS, max_size=5))
def test_property_per_base_is_the_documented_rule_or_one_line(texts: list[str]) -> None:
    """Every text goes to the base it names (an unknown name: AxisError), or without a name to
    every base that has its path (none: AxisError), minus the labels a base's own text replaces."""
    try:
        out = per_base("vary", texts, SPEC4)
    except AxisError as e:
        assert "\n" not in str(e) and str(e)
        named = [split_prefix(t) for t in texts]
        assert any(
            (n is not None and n not in SPEC4)
            or (n is None and not any(_has(s, t.split("=")[0]) for s in SPEC4.values()))
            for n, t in named
        )
        return
    for name, spec in SPEC4.items():
        own = [t for n, t in map(split_prefix, texts) if n == name]
        mine = {t.split("=")[0] for t in own}
        shared = [
            t
            for n, t in map(split_prefix, texts)
            if n is None and _has(spec, t.split("=")[0]) and t.split("=")[0] not in mine
        ]
        assert sorted(out[name]) == sorted(own + shared)


@PROPERTY
@given(
    st.lists(st.sampled_from([1, 2, 3, 5, 7]), min_size=1, max_size=3, unique=True),
    st.lists(st.sampled_from([1, 2]), min_size=1, max_size=2, unique=True),
    st.sampled_from(["params,gmacs", "gmacs,params:max", "activation_gib,gmacs"]),
    st.permutations(BASES),
)
def test_property_joint_front_is_brute_force_in_any_base_order(
    depths: list[int], last: list[int], pareto: str, order: list[str]
) -> None:
    vary = [f"scale4.blocks={','.join(map(str, depths))}"]
    vary.append(f"swin_t:scale5.blocks={','.join(map(str, last))}")
    run = mvitdsl.sweep(order, vary, pareto=pareto)
    got = list(run)
    assert isinstance(run, MultiSweep) and [r["family"] for r in got][0] == order[0]
    cols = [o.column for o in run.objectives]
    points = [
        (f"{r['family']}:{r['id']}", oriented([r[c] for c in cols], run.objectives)) for r in got
    ]
    assert {k for k, r in zip(points, got) if r["pareto"]} == {
        p for p in points if p[0] in brute_force(points)
    }
    assert len(got) == len(depths) * (2 + len(last))


@PROPERTY
@given(st.lists(st.tuples(st.none() | NAMES, PATHS, st.sampled_from(["=", ""])), max_size=3))
def test_property_cli_texts_exit_0_or_one_line(
    texts: list[tuple[str | None, str, str]],
) -> None:
    flags = []
    for name, path, eq in texts:
        flags += ["--vary", (f"{name}:" if name else "") + f"{path}{eq}{'2' if eq else ''}"]
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(["sweep", *BASES, "--pareto", "none", "--format", "jsonl", *flags])
    if rc == 0:
        assert all(json.loads(x)["family"] in BASES for x in out.getvalue().splitlines())
    else:
        assert rc == 2 and err.getvalue().count("\n") == 1, err.getvalue()
        assert err.getvalue().startswith("mvitdsl sweep: ")


# ---------------------------------------------------------------- the HTML report of such a sweep


def test_report_of_a_multi_base_sweep_names_rows_by_family(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mvitdsl.report import SweepError, read_sweep, sweep_page

    assert main(["sweep", *BASES, "--vary", VARY[0], "--format", "jsonl"]) == 0
    text = capsys.readouterr().out
    rows = read_sweep(text, "s.jsonl")  # one id per base: the same values give the same id
    assert len({r["id"] for r in rows}) == 2 and len(rows) == 6
    page = sweep_page(rows, "s.jsonl")
    assert "<th" in page and ">family<" in page
    for r in rows:
        assert f'id="row-{r["family"]}:{r["id"]}"' in page
        if r["pareto"]:
            assert f'href="#row-{r["family"]}:{r["id"]}"' in page
    first = text.splitlines()[0]
    with pytest.raises(SweepError, match="a second row with id 'mvitv2_t_image:"):
        read_sweep(first + "\n" + first, "s.jsonl")
    bad = json.dumps({**json.loads(first), "family": "a b"})
    with pytest.raises(SweepError, match='"family" must be a short word'):
        read_sweep(bad, "s.jsonl")


def test_search_refuses_a_sweep_file_with_more_bases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = tmp_path / "cross.mv"
    sweep.write_text(
        f'model wide extends "{SPECS / "swin_t.mv"}" swin_t {{\n'
        '  sweep {\n    base "hiera_t_image"\n    vary "scale4.blocks=2,4"\n  }\n}\n'
    )
    assert main(["search", str(sweep), "--trials", "1"]) == 2
    err = capsys.readouterr().err
    assert "`base` rows are for mvitdsl sweep" in err and err.count("\n") == 1, err


def test_join_by_family_and_id_or_by_id_alone(tmp_path: Path) -> None:
    _, plain = joint(vary=["scale4.blocks=2"], pareto=None)
    ident = plain[0]["id"]  # one set of values: one id in every base
    measured = tmp_path / "m.csv"
    measured.write_text(f"id,top1\n{ident},70\nswin_t:{ident},81\n")
    run, got = joint(vary=["scale4.blocks=2"], join=measured, pareto="gmacs,top1")
    assert {r["family"]: r["top1"] for r in got} == {
        "mvitv2_t_image": 70,
        "hiera_t_image": 70,
        "swin_t": 81,
    }
    assert [o.maximise for o in run.objectives] == [False, True]


@PROPERTY
@given(
    st.lists(
        st.sampled_from(["hiera_t_image", "swin_t", "nowhere.mv", "mvitv2_t_image"]), max_size=3
    ),
    st.lists(TEXTS, min_size=1, max_size=3),
)
def test_property_sweep_files_with_bases_run_or_point_at_each_mistake(
    tmp_path_factory: pytest.TempPathFactory, bases: list[str], vary: list[str]
) -> None:
    """A sweep file with any `base` rows and prefixed --vary texts runs (a row per base and
    variant), or exits 1 with located diagnostics only, or 2 with one line; no traceback."""
    sweep = tmp_path_factory.mktemp("sf") / "cross.mv"
    lines = [f'    base "{b}"' for b in bases] + [f'    vary "{v}"' for v in vary]
    sweep.write_text(
        f'model mine extends "{SPECS / "mvitv2_t_image.mv"}" mvitv2_t_image {{\n'
        "  sweep {\n" + "\n".join(lines) + "\n  }\n}\n"
    )
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(["sweep", str(sweep), "--format", "jsonl", "--pareto", "none"])
    if rc == 0:
        got = [json.loads(x).get("family", "mine") for x in out.getvalue().splitlines()]
        assert set(got) == {"mine", *bases}  # one base alone: a plain sweep, no family
        assert ("family" in json.loads(out.getvalue().splitlines()[0])) == bool(bases)
        assert len(bases) == len(set(bases)) and "nowhere.mv" not in bases
    elif rc == 2:  # a mistake between rows (a PATH varied twice): one line
        assert err.getvalue().startswith("mvitdsl sweep: ") and err.getvalue().count("\n") == 1
    else:
        assert rc == 1, err.getvalue()
        located = [x for x in err.getvalue().splitlines() if x.startswith(f"{sweep}:")]
        assert located and all("error[E203]" in x for x in located), err.getvalue()


def test_a_multi_base_sweep_imports_no_torch() -> None:
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from mvitdsl.cli import main\n"
        f"main(['sweep', *{BASES!r}, '--vary', {VARY[0]!r}, '--format', 'jsonl'])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib was imported without --plot'\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
