"""`mvitdsl search`: Optuna ask-and-tell over the sweep's design space. Rejected variants are
failed trials with their codes, budgets are constraints, the cache in the study makes a
re-proposed variant free, two processes share a journal, two workers share a PostgreSQL study,
a killed worker's trials survive and a restart resumes, latency on the CPU gives a front, and
bad input is one line with nothing lost from the study."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from conftest import ROOT, SPECS, need
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna.trial import TrialState

import mvitdsl
from mvitdsl.cli import main
from mvitdsl.explore import engine
from mvitdsl.explore.engine import Budgets
from mvitdsl.explore.objectives import ANALYTIC, MEASURED, SearchError, parse_goal
from mvitdsl.explore.pareto import brute_force
from mvitdsl.explore.study import open_storage
from mvitdsl.spec import load_spec

MVIT_B = SPECS / "mvit_b.mv"
TINY = ROOT / "examples" / "tiny.mv"
TESTS = Path(__file__).resolve().parent
# 12 variants, 6 of them E302 (a 1x3x3 stride does not fit mvit_b's grid)
SPACE = {"scale4.blocks": "6..16:2", "scale3.stride_q": "1x2x2,1x3x3"}
VARY = ["--vary", "scale4.blocks=6..16:2", "--vary", "scale3.stride_q=1x2x2,1x3x3"]
TINY_VARY = ["--vary", "scale3.dim=64,96,128", "--vary", "scale2.blocks=1,2"]


def env() -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mvitdsl", "search", *args]


def trials(storage: str, study: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study, storage=open_storage(storage)).get_trials()


@pytest.fixture
def evaluations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the variants the real checker evaluated in this process."""
    seen: list[str] = []
    real = engine.Evaluator.evaluate

    def counted(self: engine.Evaluator, out: engine.Outcome) -> engine.Outcome:
        seen.append(out.id)
        return real(self, out)

    monkeypatch.setattr(engine.Evaluator, "evaluate", counted)
    return seen


# ---------------------------------------------------------------- the engine, in process


def test_rejected_variants_fail_with_codes_budgets_constrain_and_the_cache_is_free(
    tmp_path: Path, evaluations: list[str]
) -> None:
    journal = str(tmp_path / "s.journal")
    kw = dict(objectives=["params", "gmacs"], storage=journal, seed=0)
    result = mvitdsl.search(MVIT_B, SPACE, trials=24, budgets=Budgets(params=40e6), **kw)
    ts = trials(journal, "mvit_b")
    assert len(ts) == 24
    # every variant went through the checker once; re-proposals were told the cached result
    assert len(evaluations) == len(set(evaluations)) == result.counts.evaluated
    assert result.counts.cached == 24 - result.counts.evaluated > 0
    searched = set(evaluations)
    sweep = {r["id"]: r for r in mvitdsl.sweep(MVIT_B, SPACE, budgets=Budgets(params=40e6))}
    for t in ts:
        row = sweep[t.user_attrs["variant"]]
        if not row["ok"] and row["diagnostics"][0]["code"] == "E302":
            assert t.state == TrialState.FAIL and t.user_attrs["code"] == "E302"
            assert t.values is None  # a rejected variant is never a measurement
        else:  # kept, or only over the budget: a constraint, not a rejection
            assert t.state == TrialState.COMPLETE
            assert t.values == [row["params"], row["gmacs"]]
            assert (t.constraints["params"] > 0) == (row["params"] > 40e6)
    over = {r["id"] for r in result.rows if r["ok"] and not r["feasible"]}
    assert over and not over & set(result.front)
    # a second call on the study resumes it to --trials; known variants cost nothing
    before = len(evaluations)
    again = mvitdsl.search(MVIT_B, SPACE, trials=32, budgets=Budgets(params=40e6), **kw)
    assert len(again.rows) == 32 and again.rows[:24] == result.rows
    assert again.counts.evaluated == len(evaluations) - before
    assert again.counts.evaluated + again.counts.cached == 8
    assert not searched & set(evaluations[before:])  # no variant evaluated twice, ever


def test_latency_on_cpu_gives_a_front_with_records_plot_and_emitted_specs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = str(tmp_path / "lat.journal")
    args = [str(TINY), *TINY_VARY, "--objective", "params", "--objective", "latency:min"]
    args += ["--trials", "5", "--storage", journal, "--reps", "2", "--seed", "1"]
    plot, emit = tmp_path / "front.svg", tmp_path / "front"
    assert main(["search", *args, "--plot", str(plot), "--emit", str(emit)]) == 0
    out = capsys.readouterr().out
    assert "latency_ms" in out and "study 'tiny': 5 trials" in out and plot.stat().st_size > 0
    ts = [t for t in trials(journal, "tiny") if t.state == TrialState.COMPLETE]
    records = [t.user_attrs["result"]["measured"]["latency"] for t in ts]
    for r in records:
        assert r["device"].startswith("cpu") and r["batch"] == 1 and r["dtype"] == "fp32"
        assert r["input"] == [3, 4, 32, 32] and r["reps"] == 2
        assert {"mvitdsl", "torch", "optuna", "python"} <= set(r["versions"])
        assert r["latency_ms_min"] <= r["latency_ms"] <= r["latency_ms_max"]
        assert r["latency_ms_iqr"] >= 0
    points = {t.user_attrs["variant"]: tuple(t.values) for t in ts}  # both minimised
    front = sorted(p.stem for p in emit.glob("*.mv"))
    assert front and set(front) == brute_force(points.items())
    for path in emit.glob("*.mv"):  # each emitted child spec is the variant it names
        spec = load_spec(path)
        t = next(t for t in ts if t.user_attrs["variant"] == path.stem)
        assert mvitdsl.analyze(spec).params == t.values[0]
    # the same search again as JSON lines: every variant cached, nothing measured again
    assert main(["search", *args, "--format", "jsonl"]) == 0
    cap = capsys.readouterr()
    assert "0 evaluated and 0 cached" in cap.err and cap.out.count('"kind":"search"') == 5


def test_peak_memory_is_a_training_step_measured_in_a_fresh_process(tmp_path: Path) -> None:
    result = mvitdsl.search(
        TINY,
        {"scale3.dim": "64"},
        objectives=["params", "peak_memory"],
        trials=1,
        storage=tmp_path / "mem.journal",
    )
    (row,) = result.rows
    record = row["peak_memory"]
    assert row["ok"] and row["peak_memory_gib"] == record["peak_memory_gib"] > 0
    assert record["peak_memory_source"].startswith("RSS high-water growth")
    assert record["input"] == [3, 4, 32, 32] and record["device"].startswith("cpu")


# ---------------------------------------------------------------- workers and storages


def test_two_processes_share_a_journal_study(tmp_path: Path) -> None:
    """Two `mvitdsl search` processes work one journal study at the same time: the second starts
    while the first is inside a (slow) trial, so both ask and tell trials; each variant is
    measured once between them (the cache is the study)."""
    journal, marks = str(tmp_path / "shared.journal"), tmp_path / "marks"
    marks.mkdir()
    vary = [*TINY_VARY, "--vary", "scale3.blocks=1,2"]  # 12 variants
    args = cli(str(TINY), *vary, "--objective", "params", "--objective",
               "search_objectives:slow", "--trials", "16", "--storage", journal)  # fmt: skip
    run_env = {**env(), "SEARCH_MARKS": str(marks), "SEARCH_SLEEP": "1.0"}

    def start(seed: int) -> subprocess.Popen[str]:
        pipe = subprocess.PIPE
        return subprocess.Popen(
            [*args, "--seed", str(seed)], env=run_env, stdout=pipe, stderr=pipe, text=True
        )

    first = start(0)
    deadline = time.monotonic() + 120
    while not any(marks.iterdir()):  # the first process is inside its first trial
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    procs = [first, start(1)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    ts = trials(journal, "tiny")
    assert 16 <= len(ts) <= 17  # each checks the count before asking: at most one more
    assert len({t.user_attrs["worker"] for t in ts}) == 2  # both processes worked the study
    assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in ts)
    measured = len(list(marks.iterdir()))
    assert measured <= 12 + 2  # each variant measured once, but for a race or two


def _user_for_postgres() -> list[str]:
    """initdb and postgres refuse root: as root, run them as an unprivileged user."""
    if os.geteuid() != 0:
        return []
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return ["runuser", "-u", name, "--"]
        except KeyError:
            continue
    pytest.fail("running as root, and neither a postgres nor a nobody user exists")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server: its own folder, a unix socket there, trust auth."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    bindir = found[-1].parent if found else None
    if bindir is None and shutil.which("postgres"):
        bindir = Path(shutil.which("postgres") or "").parent
    need(
        bindir is not None and (bindir / "initdb").exists(),
        "PostgreSQL's initdb and postgres are not installed (Debian's postgresql)",
    )
    assert bindir is not None
    as_user = _user_for_postgres()
    folder = Path(tempfile.mkdtemp(prefix="mvitdsl-pg-"))  # /tmp: the server's user can enter
    if as_user:
        shutil.chown(folder, as_user[2])
    data, port = folder / "data", _free_port()
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "mvitdsl",
                    "--auth=trust", "-E", "UTF8", "--no-sync"],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    log = open(folder / "server.log", "wb")  # noqa: SIM115 (closed below)
    server = subprocess.Popen([*as_user, str(bindir / "postgres"), "-D", str(data),
                               "-p", str(port), "-k", str(folder), "-c", "listen_addresses=",
                               "-c", "fsync=off"], stdout=log, stderr=log)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (folder / f".s.PGSQL.{port}").exists():
            assert server.poll() is None, (folder / "server.log").read_text()
            assert time.monotonic() < deadline, "postgres did not start in 60 s"
            time.sleep(0.1)
        yield f"postgresql://mvitdsl@/postgres?host={folder}&port={port}"
    finally:
        pid_file = data / "postmaster.pid"
        if pid_file.exists():  # SIGINT to the postmaster itself: a fast shutdown
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def test_two_workers_share_a_postgresql_study(
    postgres: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two worker processes (one per device) share a PostgreSQL study; each worker's first
    measured trial waits for the other's (search_objectives:together), since analysis trials
    are so fast that the first worker could finish all 16 before the second had started."""
    monkeypatch.syspath_prepend(str(TESTS))  # the spawned workers import the objective
    monkeypatch.setenv("SEARCH_MARKS", str(tmp_path))
    objectives = ["params", "search_objectives:together"]
    result = mvitdsl.search(
        MVIT_B, SPACE, objectives=objectives, trials=16, storage=postgres, devices="cpu,cpu", seed=0
    )
    assert 16 <= len(result.rows) <= 17  # each worker checks the count before asking
    ts = trials(postgres, "mvit_b")
    assert len({t.user_attrs["worker"] for t in ts}) == 2  # one worker process per device
    assert result.counts.evaluated + result.counts.cached == len(ts)
    codes = {t.user_attrs.get("code") for t in ts if t.state == TrialState.FAIL}
    assert codes <= {"E302"} and result.front


def test_a_killed_worker_loses_no_finished_trial_and_a_restart_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal, marks = str(tmp_path / "k.journal"), tmp_path / "marks"
    marks.mkdir()
    objectives = ["params", "search_objectives:slow"]
    args = cli(str(TINY), *TINY_VARY, "--objective", objectives[0], "--objective", objectives[1],
               "--trials", "5", "--storage", journal, "--seed", "0")  # fmt: skip
    monkeypatch.setenv("SEARCH_MARKS", str(marks))
    proc = subprocess.Popen(args, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    while len(list(marks.iterdir())) < 3:  # two trials measured, the third in its sleep
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=30)
    before = trials(journal, "tiny")
    finished = {t.number: t.values for t in before if t.state == TrialState.COMPLETE}
    (running,) = [t for t in before if t.state == TrialState.RUNNING]
    assert len(finished) >= 2
    # the restart (here in this process, which has torch already) resumes the study
    monkeypatch.syspath_prepend(str(TESTS))
    space = {"scale3.dim": "64,96,128", "scale2.blocks": "1,2"}
    result = mvitdsl.search(TINY, space, objectives=objectives, trials=5, storage=journal, seed=0)
    assert result.counts.recovered == [running.number]
    after = trials(journal, "tiny")
    assert {t.number: t.values for t in after if t.number in finished} == finished
    lost = after[running.number]
    assert lost.state == TrialState.FAIL and "killed" in lost.user_attrs["lost"]
    again = [t for t in after if t.number > running.number and t.params == running.params]
    assert again and again[0].state == TrialState.COMPLETE  # its variant was asked again
    assert sum("lost" not in t.user_attrs for t in after) == 5
    assert "1 lost (failed, asked again)" in result.line()


# ---------------------------------------------------------------- bad input: one line each


def test_bad_input_is_one_line_and_the_study_loses_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(TESTS))
    journal = str(tmp_path / "b.journal")
    base = [str(TINY), *TINY_VARY, "--storage", journal, "--trials", "3", "--seed", "0"]
    assert main(["search", *base]) == 0
    capsys.readouterr()
    kept = [(t.number, t.state, t.values) for t in trials(journal, "tiny")]
    cases = [
        (["--objective", "speed"], 2, "unknown objective 'speed'"),
        (["--objective", "no_such_module:f"], 2, "cannot import it (ModuleNotFoundError"),
        (["--objective", "params", "--objective", "activation_gib"], 2, "other objectives"),
        (["--study", "boom", "--objective", "search_objectives:boom"], 1, "raised ValueError"),
    ]
    for extra, code, words in cases:
        assert main(["search", *base, *extra]) == code
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1, err
    unreachable = "postgresql://someone:secret@127.0.0.1:1/none"
    assert main(["search", str(TINY), *TINY_VARY, "--storage", unreachable]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot open it" in err and "secret" not in err and len(err.splitlines()) == 1
    assert [(t.number, t.state, t.values) for t in trials(journal, "tiny")] == kept
    (boom,) = trials(journal, "boom")  # the raising objective's trial: failed, asked again later
    assert boom.state == TrialState.FAIL and "boom" in boom.user_attrs["lost"]


NAMES = st.sampled_from([*ANALYTIC, *MEASURED, "pkg.mod:fn", "m:accuracy"])


@settings(max_examples=40, deadline=None)
@given(name=NAMES, direction=st.sampled_from(["", ":min", ":max"]), junk=st.text(max_size=12))
def test_objective_specs_parse_or_are_refused_in_words(
    name: str, direction: str, junk: str
) -> None:
    goal = parse_goal(name + direction)
    assert goal.name == name and parse_goal(str(goal)) == goal
    assert goal.maximise == (direction == ":max" or (not direction and name == "m:accuracy"))
    try:
        parse_goal(junk)
    except SearchError as e:
        assert "objective" in str(e)


@settings(max_examples=25, deadline=None)
@given(
    scheme=st.sampled_from(["postgresql", "postgres", "mysql", "oracle+nothing", "nope"]),
    rest=st.text(alphabet="abc:/@?=&%.1", max_size=20),
)
def test_storage_urls_open_or_are_refused_in_one_line(scheme: str, rest: str) -> None:
    try:  # nothing listens on port 1: every URL here is refused, never raises anything else
        open_storage(f"{scheme}://u@127.0.0.1:1/{rest}")
    except SearchError as e:
        assert str(e).startswith("--storage ") and "\n" not in str(e)


@settings(max_examples=20, deadline=None)
@given(folder=st.text(alphabet="abcxyz/.", min_size=1, max_size=12))
def test_storage_paths_in_missing_folders_are_refused(folder: str) -> None:
    missing = Path(tempfile.gettempdir()) / "mvitdsl-no-such-folder" / folder.strip("/") / "s.j"
    with pytest.raises(SearchError, match="does not exist"):
        open_storage(str(missing))
