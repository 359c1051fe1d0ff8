"""`mvitdsl sweep`: axes and modes, linked and derived values, constraints, budgets, the
rejection summary against `check`, emitted specs against their rows, the Pareto front against
brute force, reproducible pictures, and no torch on the way."""

from __future__ import annotations

import csv
import io
import json
import random
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from conftest import SPECS

import mvitdsl
from mvitdsl.analysis.analyze import analyze
from mvitdsl.cli import main
from mvitdsl.diagnostics import SpecError
from mvitdsl.explore.axes import AxisError, parse_values
from mvitdsl.explore.engine import Budgets
from mvitdsl.explore.expr import ExprError, evaluate, parse_expr
from mvitdsl.explore.pareto import RunningFront, brute_force, dominates, parse_objectives
from mvitdsl.explore.run import SweepRun
from mvitdsl.explore.sweepfile import read_sweep_file
from mvitdsl.language import overrides
from mvitdsl.language.overrides import PathError
from mvitdsl.spec import load_spec

MVIT_B = SPECS / "mvit_b.mv"
GIB = 2**30


def rows(**kw: object) -> list[dict[str, object]]:
    return list(mvitdsl.sweep(MVIT_B, **kw))  # type: ignore[arg-type]


# ---------------------------------------------------------------- values, expressions, modes


def test_values_ranges_steps_and_lists():
    assert parse_values("1..4") == ("1", "2", "3", "4")
    assert parse_values("8..16:4") == ("8", "12", "16")
    assert parse_values("96, 1x2x2,all") == ("96", "1x2x2", "all")
    for bad in ("5..1", "1..3:0", "1,,2"):
        with pytest.raises(AxisError):
            parse_values(bad)


def test_expressions_are_a_small_language_not_python():
    env = {"scale3.dim": 192, "scale3.blocks": 2}.__getitem__
    assert evaluate(parse_expr("scale3.dim/64"), env) == 3
    assert evaluate(parse_expr("scale3.dim // 100 + 2*scale3.blocks"), env) == 5
    assert evaluate(parse_expr("scale3.dim >= 2*96 and not scale3.blocks == 3"), env) == 1
    assert evaluate(parse_expr("1 < scale3.blocks <= 2"), env) == 1
    with pytest.raises(ExprError, match="not a whole number"):
        evaluate(parse_expr("scale3.dim/100"), env)
    for hostile in ("__import__('os')", "scale3.dim.__class__", "a[0]", "lambda: 1", "2 ** 3"):
        with pytest.raises(ExprError):
            evaluate(parse_expr(hostile), env)


def test_grid_visits_every_combination_once_with_stable_ids():
    first = rows(vary={"scale4.blocks": "8..10", "scale5.blocks": "1,2"})
    assert [r["values"] for r in first] == [
        {"scale4.blocks": b4, "scale5.blocks": b5} for b4 in (8, 9, 10) for b5 in (1, 2)
    ]
    again = rows(vary={"scale4.blocks": "8..10", "scale5.blocks": "1,2"})
    assert [r["id"] for r in first] == [r["id"] for r in again]
    assert len({r["id"] for r in first}) == 6
    assert all(r["ok"] and r["schema"] for r in first)


def test_grid_is_refused_above_max_variants_with_its_size():
    with pytest.raises(AxisError, match="1,000,000 variants"):
        SweepRun(
            MVIT_B,
            ["scale4.blocks=1..100", "scale3.dim=1..100", "scale5.dim=1..100"],
            max_variants=10**5,
        )


def test_random_is_seeded_without_replacement_and_never_loops():
    vary = {"scale4.blocks": "1..20", "scale3.dim": "96..480:96", "scale5.blocks": "1..4"}
    a = rows(vary=vary, mode="random", samples=15, seed=7)
    b = rows(vary=vary, mode="random", samples=15, seed=7)
    c = rows(vary=vary, mode="random", samples=15, seed=8)
    assert [r["id"] for r in a] == [r["id"] for r in b] != [r["id"] for r in c]
    assert len({r["id"] for r in a}) == 15
    # more samples than variants: every variant once, and the run ends
    small = rows(vary={"scale5.blocks": "1..3"}, mode="random", samples=100)
    assert sorted(r["values"]["scale5.blocks"] for r in small) == [1, 2, 3]
    # a 10^12 grid is sampled by index, never listed
    huge = {f"{s}.dim": "1..10000" for s in ("scale2", "scale3", "scale4")}
    assert len(list(SweepRun(MVIT_B, huge, mode="random", samples=3, pareto=None).outcomes())) == 3


def test_zip_pairs_values_and_wants_equal_lengths():
    zipped = rows(vary={"scale3.dim": "192,384", "scale3.heads": "2,4"}, mode="zip")
    assert [r["values"] for r in zipped] == [
        {"scale3.dim": 192, "scale3.heads": 2},
        {"scale3.dim": 384, "scale3.heads": 4},
    ]
    with pytest.raises(AxisError, match="zip needs axes of one length"):
        rows(vary={"scale3.dim": "192,384", "scale3.heads": "2,4,8"}, mode="zip")


def test_linked_axis_sets_every_path_with_one_value():
    linked = rows(vary=["scale2.dim,patch.dim=64,96"])
    assert [r["values"] for r in linked] == [
        {"scale2.dim,patch.dim": 64},
        {"scale2.dim,patch.dim": 96},
    ]
    assert all(r["ok"] for r in linked)
    alone = rows(vary=["scale2.dim=64"])  # the patch stays at 96: the checker says why
    assert not alone[0]["ok"] and alone[0]["diagnostics"][0]["code"] == "E305"


def test_derived_values_and_inexact_division():
    out = rows(vary={"scale3.dim": "96,128,192"}, set={"scale3.heads": "scale3.dim/64"})
    by_dim = {r["values"]["scale3.dim"]: r for r in out}
    assert by_dim[128]["values"]["scale3.heads"] == 2 and by_dim[128]["ok"]
    assert by_dim[192]["values"]["scale3.heads"] == 3 and by_dim[192]["ok"]
    assert by_dim[96]["diagnostics"][0]["code"] == "S100"
    assert "96/64 is not a whole number" in by_dim[96]["diagnostics"][0]["message"]


def test_where_excludes_before_evaluation():
    run = mvitdsl.sweep(
        MVIT_B,
        vary={"scale3.blocks": "1..4", "scale4.blocks": "2..8:2"},
        where="scale4.blocks >= 2*scale3.blocks",
    )
    out = list(run)
    assert all(r["values"]["scale4.blocks"] >= 2 * r["values"]["scale3.blocks"] for r in out)
    assert run.summary.total == len(out) and run.summary.excluded == 16 - len(out) > 0


def test_paths_with_typos_are_refused_with_a_hint():
    with pytest.raises(PathError, match="did you mean 'blocks'"):
        SweepRun(MVIT_B, ["scale4.block=1..3"])
    with pytest.raises(PathError, match="did you mean 'scale4'"):
        SweepRun(MVIT_B, ["scale44.blocks=1..3"])
    old = SweepRun(MVIT_B, ["scale3.pool_q=1x2x2"])  # the older column word  # rename_vocab: keep
    assert old.evaluator.target("scale3.pool_q").word == "stride_q"  # rename_vocab: keep
    with pytest.raises(PathError, match="not a value"):
        SweepRun(MVIT_B, ["scale4.blocks=1;2"])


# ---------------------------------------------------------------- verdicts and costs


def test_budgets_reject_with_e306_and_the_summary_counts_by_code():
    run = mvitdsl.sweep(
        MVIT_B,
        vary={"scale4.blocks": "6..16:2", "scale3.stride_q": "1x2x2,1x3x3"},
        budgets=Budgets(params=40e6),
    )
    out = list(run)
    kept = [r for r in out if r["ok"]]
    assert all(r["params"] <= 40e6 for r in kept)
    over = [r for r in out if not r["ok"] and r["diagnostics"][0]["code"] == "E306"]
    assert over and all(r["params"] > 40e6 for r in over)
    assert run.summary.line() == (
        f"12 variants: {len(kept)} kept, 6 E302 stride does not fit the grid, "
        f"{len(over)} E306 over the params budget"
    )


def _child(run: SweepRun, row: dict[str, object], tmp: Path) -> Path:
    """The rejected variant as a spec file, as --emit would write a kept one."""
    out = run.evaluator.assign(run.axes, _combo(run, row), run.derived)
    run.evaluator.evaluate(out)
    targets = {run.evaluator.target(p): t for p, t in out.assigned.items()}
    stmts = overrides.apply(run.base.statements, targets, run.base.ast.span)
    text = overrides.child_text("v", str(MVIT_B), "mvit_b", run.base.statements, stmts)
    path = tmp / f"{row['id']}.mv"
    path.write_text(text)
    return path


def _combo(run: SweepRun, row: dict[str, object]) -> tuple[int, ...]:
    values = row["values"]
    assert isinstance(values, dict)
    return tuple(a.values.index(str(values[a.label])) for a in run.axes)


def test_rejections_match_check_on_the_same_variant(tmp_path: Path):
    run = mvitdsl.sweep(
        MVIT_B,
        vary={
            "scale3.stride_q": "1x2x2,1x3x3,1x8x8",
            "scale4.heads": "4,5",
            "scale2.stride_kv": "1x4x4,1x3x3",
        },
        pareto=None,
    )
    out = list(run)
    assert {r["ok"] for r in out} == {True, False}
    for row in out:
        path = _child(run, row, tmp_path)
        if row["ok"]:
            load_spec(path)
            continue
        with pytest.raises(SpecError) as e:
            load_spec(path)
        assert [d.code for d in e.value.diagnostics] == [d["code"] for d in row["diagnostics"]]
        assert [d.message for d in e.value.diagnostics] == [
            d["message"] for d in row["diagnostics"]
        ]


def test_fast_path_equals_lowering_every_variant(tmp_path: Path):
    vary = {
        "scale4.blocks": "1,11",
        "scale3.stride_q": "1x2x2,1x3x3",
        "attention.mlp_ratio": "2,4",
        "input.size": "3x16x224x224,3x8x160x160",
        "attention.stride_kv": "1x4x4,1x8x8",
    }
    fast = list(mvitdsl.sweep(MVIT_B, vary=vary, pareto=None))
    slow_run = SweepRun(MVIT_B, vary, pareto=None)
    slow_run.evaluator.fast = False
    slow = list(slow_run)
    assert fast == slow
    assert {r["ok"] for r in fast} == {True, False}


@pytest.mark.parametrize(
    "name, vary",
    [
        ("mvit_b.mv", {"scale3.blocks": "1,2,3", "scale4.blocks": "1,9,11", "train.drop_path":
                       "0,0.2", "scale3.stride_q": "1x2x2,1x3x3", "scale5.dim": "768,512"}),
        ("hiera_t_image.mv", {"scale2.blocks": "1,2", "scale3.blocks": "1,2,3", "scale3.scope":
                              "mask_unit,global", "scale4.scope": "global,mask_unit",
                              "attention.mask_unit": "8x8,4x4"}),
        ("mvitv2_s.mv", {"scale2.blocks": "1,2", "scale3.heads": "2,3", "scale4.blocks": "4,16",
                         "scale3.mlp_ratio": "2,4", "attention.rel_pos": "off,decomposed"}),
    ],
)  # fmt: skip
def test_the_memoised_lowering_builds_the_same_ir_as_a_fresh_one(
    name: str, vary: dict[str, str]
) -> None:
    """Variants share stages and blocks through the lowering's memo (language/expand.py); each
    variant's IR equals the one a fresh Lowering of its own statements builds, in random order."""
    from mvitdsl.explore.axes import combinations
    from mvitdsl.language.lower import Lowering

    run = SweepRun(SPECS / name, vary, pareto=None)
    ev, base = run.evaluator, run.evaluator.base
    combos = list(combinations(run.axes, "grid"))
    random.Random(0).shuffle(combos)
    same = 0
    for combo in combos[:48]:
        out = ev.assign(run.axes, combo, run.derived)
        targets = {ev.target(p): text for p, text in out.assigned.items()}
        fast = ev.lower_fast(targets, out)
        statements = overrides.apply(base.statements, targets, base.ast.span)
        full = Lowering(base.ast, statements, base.sources).run()
        assert (fast is None) == (full is None)
        if fast is not None:
            assert fast == full, out.values
            same += 1
    assert same > 10


def test_emitted_files_check_to_their_own_rows(tmp_path: Path):
    vary = {
        "scale4.blocks": "6,9",
        "attention.mlp_ratio": "3",
        "input.size": "3x8x224x224",
        "scale2.dim,patch.dim": "64",
    }
    out = rows(vary=vary, emit=tmp_path / "variants", batch=2, dtype="bf16")
    assert out and all(r["ok"] for r in out)
    for row in out:
        path = Path(str(row["file"]))
        assert path.name == f"{row['id']}.mv"
        text = path.read_text()
        assert "scale3" not in text and "head" not in text  # only what changed
        spec = load_spec(path)
        report = analyze(spec, batch=2, dtype="bf16")
        assert report.params == row["params"]
        assert report.macs / 1e9 == row["gmacs"]
        assert report.macs_fvcore / 1e9 == row["gmacs_fvcore"]
        assert report.activation_bytes / GIB == row["activation_gib"]
        with redirect_stdout(io.StringIO()):
            assert main(["check", str(path)]) == 0


def test_base_values_reproduce_the_base():
    (row,) = rows(vary={"scale4.blocks": "11"})
    report = analyze(load_spec(MVIT_B))
    assert row["params"] == report.params == 36_610_672
    assert row["gmacs"] == report.macs / 1e9


# ---------------------------------------------------------------- Pareto, join, output


@pytest.mark.parametrize("seed", range(8))
def test_running_front_equals_brute_force(seed: int):
    rng = random.Random(seed)
    dims = rng.choice((2, 3))
    points = [(str(i), tuple(rng.randint(0, 12) for _ in range(dims))) for i in range(150)]
    front = RunningFront()
    for key, p in points:
        front.add(key, p)
    assert set(front.points) == brute_force(points)
    assert not dominates((1, 1), (1, 1))


def test_pareto_flags_match_brute_force_on_a_sweep():
    objectives = parse_objectives("gmacs,params:max")
    out = rows(
        vary={"scale4.blocks": "4..12:2", "scale3.dim": "128,192,256"},
        set={"scale3.heads": "scale3.dim/64"},
        pareto="gmacs,params:max",
    )
    points = [(r["id"], (r["gmacs"], -r["params"])) for r in out if r["ok"]]
    assert {r["id"] for r in out if r["pareto"]} == brute_force(points)
    assert objectives[1].maximise and not objectives[0].maximise
    assert parse_objectives("accuracy")[0].maximise


def test_join_adds_measured_columns_by_id(tmp_path: Path):
    out = rows(vary={"scale4.blocks": "6,8,10"})
    results = tmp_path / "results.csv"
    with results.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "accuracy", "latency_ms"])
        for i, r in enumerate(out):
            w.writerow([r["id"], 70 + i, 10.0 * (i + 1)])
    joined = rows(vary={"scale4.blocks": "6,8,10"}, join=results, pareto="latency_ms,accuracy")
    assert [r["accuracy"] for r in joined] == [70, 71, 72]
    assert all(r["pareto"] for r in joined)  # faster is worse here: every one is a trade-off


def test_cli_formats_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    args = [
        "sweep",
        str(MVIT_B),
        "--vary",
        "scale4.blocks=2,4",
        "--vary",
        "scale3.stride_q=1x2x2,1x3x3",
    ]
    assert main([*args, "--format", "jsonl"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(lines) == 4 and {
        "id",
        "values",
        "ok",
        "params",
        "gmacs",
        "gmacs_fvcore",
        "activation_gib",
        "pareto",
        "schema",
    } <= set(lines[0])
    assert "diagnostics" in lines[1] and lines[1]["diagnostics"][0]["code"] == "E302"
    assert main([*args, "--format", "csv"]) == 0
    cap = capsys.readouterr()
    table = list(csv.DictReader(io.StringIO(cap.out)))
    assert [r["scale4.blocks"] for r in table] == ["2", "2", "4", "4"]
    assert "4 variants: 2 kept, 2 E302 stride does not fit the grid" in cap.err
    assert main([*args]) == 0
    text = capsys.readouterr().out
    assert "GMACs matmul" in text and "GMACs fvcore" in text and "E302" in text
    assert (
        main(
            [
                "sweep",
                str(MVIT_B),
                "--vary",
                "scale4.blocks=1..9",
                "--vary",
                "scale3.dim=1..9",
                "--max-variants",
                "50",
            ]
        )
        == 2
    )
    assert "81 variants (9 x 9)" in capsys.readouterr().err


# ---------------------------------------------------------------- pictures, no torch


def test_plots_are_byte_identical_twice(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    for suffix in ("svg", "png"):
        outs = []
        for n in (1, 2):
            path = tmp_path / f"front{n}.{suffix}"
            assert (
                main(
                    [
                        "sweep",
                        str(MVIT_B),
                        "--vary",
                        "scale4.blocks=4..12:4",
                        "--vary",
                        "scale3.dim=128,192",
                        "--set",
                        "scale3.heads=scale3.dim/64",
                        "--max-params",
                        "38e6",
                        "--pareto",
                        "gmacs,params:max",
                        "--plot",
                        str(path),
                    ]
                )
                == 0
            )
            outs.append(path.read_bytes())
        assert outs[0] == outs[1] and len(outs[0]) > 1000
        costs = []
        for n in (1, 2):
            path = tmp_path / f"costs{n}.{suffix}"
            assert (
                main(["draw", str(MVIT_B), str(SPECS / "mvitv2_s.mv"), "--costs", "-o", str(path)])
                == 0
            )
            costs.append(path.read_bytes())
        assert costs[0] == costs[1]
    capsys.readouterr()


def test_sweep_path_imports_no_torch(tmp_path: Path):
    script = (
        "import sys\n"
        "from mvitdsl.cli import main\n"
        f"main(['sweep', {str(MVIT_B)!r}, '--vary', 'scale4.blocks=2..4', '--format', 'jsonl',"
        f" '--emit', {str(tmp_path / 'v')!r}])\n"
        f"main(['diff', {str(MVIT_B)!r}, {str(SPECS / 'mvitv2_s.mv')!r}, '--format', 'json'])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib was imported without --plot'\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------- diff


def test_diff_names_lines_and_cost_differences(capsys: pytest.CaptureFixture[str]):
    a, b = load_spec(MVIT_B), load_spec(SPECS / "mvitv2_s.mv")
    from mvitdsl.analysis.diff import diff_specs

    d = mvitdsl.diff(a, b)
    assert d == diff_specs(a, b) and (d["schema"], d["kind"]) == (1, "diff")
    changed = {(s["setting"], s["option"]) for s in d["settings"]}
    assert ("attention", "rel_pos") in changed
    assert changed & {("attention", "pool_q"), ("attention", "pool_q_blocks")}  # rename_vocab: keep
    rel = next(s for s in d["settings"] if s["option"] == "rel_pos")
    assert rel["a"] is None and rel["b_at"].endswith("mvitv2_s.mv:8")
    assert d["stages"] == []
    total = d["costs"]["total"]
    assert total["delta"]["params"] == 34_537_744 - 36_610_672
    assert main(["diff", str(MVIT_B), str(SPECS / "mvitv2_s.mv")]) == 0
    text = capsys.readouterr().out
    assert "attention.rel_pos:" in text and "-2,072,928" in text


def test_diff_of_a_child_shows_its_rows(tmp_path: Path):
    child = tmp_path / "deeper.mv"
    child.write_text(
        f'model deeper extends "{MVIT_B}" mvit_b {{\n'
        "  stages {\n    scale4 16 384 4 1x2x2\n  }\n}\n"
    )
    d = mvitdsl.diff(load_spec(MVIT_B), load_spec(child))
    (row,) = d["stages"]
    assert row["stage"] == "scale4" and row["b"] == "16 384 4 1x2x2"
    assert row["b_at"] == f"{child}:3"
    scale4 = next(s for s in d["costs"]["stages"] if s["stage"] == "scale4")
    assert scale4["delta"]["params"] > 0


# ---------------------------------------------------------------- sweep files


def test_sweep_file_runs_and_emits_children_of_its_parent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    example = SPECS.parent / "examples" / "sweep_depth_width.mv"
    out = tmp_path / "v"
    assert main(["sweep", str(example), "--format", "jsonl", "--emit", str(out)]) == 0
    cap = capsys.readouterr()
    got = [json.loads(x) for x in cap.out.splitlines()]
    assert "21 variants: 15 kept, 6 E306 over the params budget" in cap.err
    assert all(r["values"]["scale4.blocks"] >= 2 * 2 for r in got)  # the file's --where
    kept = [r for r in got if r["ok"]]
    assert {r["pareto"] for r in kept} == {True, False}
    for row in kept[:3]:
        spec = load_spec(Path(row["file"]))
        assert spec.model.input.size == (8, 224, 224)  # the sweep file's own change is kept
        assert analyze(spec).params == row["params"]


def test_sweep_file_mistakes_are_located(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    bad = tmp_path / "bad.mv"
    bad.write_text(
        f'model bad extends "{MVIT_B}" mvit_b {{\n'
        "  sweep {\n"
        '    vary   "scale4.blocsk=1..3"\n'
        '    vray   "scale3.dim=1,2"\n'
        "    mode   gird\n"
        "  }\n"
        "}\n"
    )
    assert main(["sweep", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:3:12: error[E203]: 'scale4.blocsk'" in err and "did you mean 'blocks'" in err
    assert f"{bad}:4:5: error[E203]: unknown sweep directive 'vray'" in err
    assert "did you mean 'grid'" in err


def test_sweep_file_states_its_base_figures_and_reference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    def written(params: int) -> Path:
        f = tmp_path / f"p{params}.mv"
        f.write_text(
            f'model fig extends "{MVIT_B}" mvit_b {{\n'
            f"  expect     params {params}\n"
            "  reference  torchvision mvit_v1_b\n"
            '  sweep {\n    vary   "scale4.blocks=1,2"\n  }\n}\n'
        )
        return f

    params = analyze(load_spec(MVIT_B)).params  # the base's figure holds: the sweep runs
    base = read_sweep_file(written(params))["base"]
    assert base.reference is not None and (base.reference.source, base.reference.name) == (
        "torchvision",
        "mvit_v1_b",
    )
    assert [e.value for e in base.expectations] == [params]
    assert main(["sweep", str(written(params))]) == 0
    capsys.readouterr()
    wrong = written(params + 1)  # a wrong figure is the base's mistake, located on its line
    assert main(["sweep", str(wrong)]) == 1
    assert f"{wrong}:2:" in capsys.readouterr().err


def test_rows_stream_through_a_chunked_spool(monkeypatch: pytest.MonkeyPatch):
    vary = {"scale4.blocks": "2..12", "scale3.dim": "128,192,256"}
    kw = {"set": {"scale3.heads": "scale3.dim/64"}, "pareto": "gmacs,params:max"}
    whole = rows(vary=vary, **kw)
    monkeypatch.setattr("mvitdsl.explore.run.SPOOL_AFTER", 4)  # 33 rows: 8 chunks on disk
    run = mvitdsl.sweep(MVIT_B, vary=vary, **kw)
    assert list(run) == whole
    summary = run.summary.to_dict()
    assert (summary["schema"], summary["total"]) == (1, 33)
    assert sorted(summary["pareto"]) == sorted(r["id"] for r in whole if r["pareto"])


def test_ids_name_values_not_spellings():
    a = rows(vary={"attention.mlp_ratio": "2.5"})
    b = rows(vary={"attention.mlp_ratio": "2.50"})
    assert a[0]["id"] == b[0]["id"] and a[0]["params"] == b[0]["params"]


def test_plot_needs_two_objectives_and_a_picture_suffix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    base = ["sweep", str(MVIT_B), "--vary", "scale4.blocks=2,4"]
    assert main([*base, "--pareto", "gmacs", "--plot", str(tmp_path / "f.svg")]) == 2
    assert main([*base, "--plot", str(tmp_path / "f.pdf")]) == 2
    assert "two --pareto objectives" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("name", "vary"),
    [
        ("mvit_b_32x3.mv", {"scale4.blocks": "4,11", "scale5.stride_kv": "1x1x1,1x2x2"}),
        (
            "mvitv2_t_image.mv",
            {
                "scale4.blocks": "3,5",
                "input.size": "3x224x224,3x192x192",
                "attention.stride_kv": "2x2,4x4",
            },
        ),
        ("mvitv2_s.mv", {"scale3.heads": "2,3", "head.classes": "400,700"}),
    ],
)
def test_other_bases_fast_path_and_emitted_children(
    name: str, vary: dict[str, str], tmp_path: Path
):
    fast = list(mvitdsl.sweep(SPECS / name, vary=vary, emit=tmp_path, pareto=None))
    slow_run = SweepRun(SPECS / name, vary, pareto=None)
    slow_run.evaluator.fast = False
    slow = list(slow_run)
    assert [{k: v for k, v in r.items() if k != "file"} for r in fast] == slow
    for row in fast:
        if row["ok"]:
            report = analyze(load_spec(Path(row["file"])))
            assert (report.params, report.macs / 1e9) == (row["params"], row["gmacs"])


def test_per_stage_cells_vary_like_any_column(tmp_path: Path):
    vary = {"scale3.mlp_ratio": "2,4", "scale4.blocks": "6,11"}
    fast = list(mvitdsl.sweep(MVIT_B, vary=vary, emit=tmp_path, pareto=None))
    slow_run = SweepRun(MVIT_B, vary, pareto=None)
    slow_run.evaluator.fast = False
    assert [{k: v for k, v in r.items() if k != "file"} for r in fast] == list(slow_run)
    assert all(r["ok"] for r in fast)
    by = {(r["values"]["scale3.mlp_ratio"], r["values"]["scale4.blocks"]): r for r in fast}
    assert by[(2, 11)]["params"] < by[(4, 11)]["params"]
    for row in fast:
        text = Path(str(row["file"])).read_text()
        assert f"mlp_ratio={row['values']['scale3.mlp_ratio']}" in text
        assert analyze(load_spec(Path(str(row["file"])))).params == row["params"]


def test_join_reads_bench_json_by_id_or_spec_name(tmp_path: Path):
    out = rows(vary={"scale4.blocks": "6,8"}, emit=tmp_path / "v")
    results = tmp_path / "results"
    results.mkdir()
    for i, r in enumerate(out):  # as `mvitdsl bench FILE --format json > results/<id>.json`
        bench = {"schema": 1, "spec": f"mvit_b_{r['id']}", "params": 1, "device": "cpu",
                 "latency_ms_median": 5.0 + i, "stages_ms": {"scale2": 1.0}}  # fmt: skip
        (results / f"{r['id']}.json").write_text(json.dumps(bench))
    joined = rows(
        vary={"scale4.blocks": "6,8"}, join=results, pareto="latency_ms_median,params:max"
    )
    assert [r["latency_ms_median"] for r in joined] == [5.0, 6.0]
    assert [r["params"] for r in joined] == [r["params"] for r in out]  # costs stay the sweep's
    assert "stages_ms" not in joined[0] and joined[0]["device"] == "cpu"
    lines = tmp_path / "bench.jsonl"  # one object per line, found by the spec's name
    lines.write_text("\n".join(json.dumps({"spec": f"x_{r['id']}", "acc": 1}) for r in out))
    assert [r["acc"] for r in rows(vary={"scale4.blocks": "6,8"}, join=lines)] == [1, 1]
