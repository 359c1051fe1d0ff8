"""`mvitdsl search`: the sweep's design space searched by Optuna (ask and tell), the variants
measured on devices, the study shared by workers (processes, machines) through its storage.

One trial: Optuna proposes a value per axis; the sweep's engine assigns the variant (derived
values, --where) and the real lowering and checker judge it. A rejected variant is a FAILED trial
with its diagnostic code; a kept one is measured (analytic costs, latency, peak memory, a user's
function) and told its objective values, with the budgets as Optuna constraints (value - limit,
feasible at 0 or less). Results are cached in the study by variant id (explore/study.py).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import Trial, TrialState

from ..language.lower import Lowering
from ..spec import Spec
from .axes import text_of
from .engine import Budgets, Outcome
from .objectives import (
    ANALYTIC,
    Bench,
    Goal,
    SearchError,
    UserObjectiveError,
    measure,
    parse_goals,
    user_function,
    value,
)
from .run import SweepRun, _diag
from .study import Cache, counted, lose, open_storage, open_study, recover, worker_id

SAMPLERS = ("tpe", "nsga2", "random")


@dataclass(frozen=True)
class SearchConfig:
    """Everything a worker needs (picklable: workers are started as fresh processes)."""

    base: Spec | str | Path
    space: Mapping[str, Any]  # SweepRun's keywords: vary, set, where, mode, emit_parent
    goals: tuple[Goal, ...]
    trials: int
    storage: str
    study: str
    devices: tuple[str, ...] = ("cpu",)
    workers: int = 1
    bench: Bench = Bench()
    budgets: Budgets = Budgets()
    sampler: str = "tpe"
    seed: int | None = None


@dataclass
class Counts:
    """What one worker did."""

    evaluated: int = 0
    cached: int = 0
    recovered: list[int] = field(default_factory=list)

    def add(self, other: Counts) -> None:
        self.evaluated += other.evaluated
        self.cached += other.cached
        self.recovered += other.recovered


def design(cfg: SearchConfig, emit: Path | None = None) -> SweepRun:
    """The sweep that defines the design space (no budgets: they are constraints here)."""
    kw = dict(cfg.space)
    return SweepRun(cfg.base, pareto=None, emit=emit, **kw)


def space_identity(run: SweepRun) -> list[list[Any]]:
    """The axes, derived values and constraints, as the study remembers them."""
    return [
        *([a.label, list(a.values)] for a in run.axes),
        *(["set", d.path, d.text] for d in run.derived),
        *(["where", w.text] for w in run.wheres),
        ["mode", "zip" if run.mode == "zip" else "grid"],
    ]


def sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise SearchError(f"--sampler {name}: one of {', '.join(SAMPLERS)}")


def validate(cfg: SearchConfig) -> SweepRun:
    """Everything that can be refused before a trial runs: the space, the objectives' functions,
    the storage and the study's identity."""
    if cfg.trials < 1:
        raise SearchError("--trials must be at least 1")
    run = design(cfg)
    for g in cfg.goals:
        if g.kind == "user":
            user_function(g.name)
    open_study(
        open_storage(cfg.storage), cfg.study, cfg.goals, space_identity(run), sampler("tpe", 0)
    )
    return run


class Worker:
    """Asks, evaluates and tells trials until the study holds `trials` of them."""

    def __init__(self, cfg: SearchConfig, index: int) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.cfg = cfg
        self.run = design(cfg)
        self.bench = replace(cfg.bench, device=cfg.devices[index % len(cfg.devices)])
        self.users = {g.name: user_function(g.name) for g in cfg.goals if g.kind == "user"}
        seed = None if cfg.seed is None else cfg.seed + index
        self.study = open_study(
            open_storage(cfg.storage),
            cfg.study,
            cfg.goals,
            space_identity(self.run),
            sampler(cfg.sampler, seed),
        )
        self.cache = Cache(self.study)
        self.counts = Counts()

    def work(self) -> Counts:
        self.counts.recovered = recover(self.study)
        while counted(self.study) < self.cfg.trials:
            trial = self.study.ask()
            trial.set_user_attr("worker", worker_id())
            try:
                self.trial(trial)
            except KeyboardInterrupt:
                lose(self.study, trial.number, trial.params, "interrupted")
                raise
            except Exception as e:
                lose(self.study, trial.number, trial.params, f"{type(e).__name__}: {e}")
                raise
        return self.counts

    def propose(self, trial: Trial) -> Outcome:
        run = self.run
        if run.mode == "zip":
            i = trial.suggest_categorical("index", list(range(len(run.axes[0].values))))
            combo = tuple(i for _ in run.axes)
        else:
            combo = tuple(
                a.values.index(trial.suggest_categorical(a.label, list(a.values))) for a in run.axes
            )
        return run.evaluator.assign(run.axes, combo, run.derived)

    def trial(self, trial: Trial) -> None:
        out = self.propose(trial)
        trial.set_user_attr("variant", out.id)
        hit = self.cache.get(out.id)
        if hit is not None:
            trial.set_user_attr("cached", hit[0])
            result = hit[1]
            self.counts.cached += 1
        else:
            result = self.evaluate(out)
            self.counts.evaluated += 1
        trial.set_user_attr("result", result)
        self.tell(trial, result)
        if hit is None:
            self.cache.results.setdefault(out.id, (trial.number, result))

    def tell(self, trial: Trial, result: Mapping[str, Any]) -> None:
        for name, amount in result.get("constraints", {}).items():
            trial.set_constraint(name, amount)
        if result["state"] == "COMPLETE":
            self.study.tell(trial, result["values"])
        else:
            if result.get("code"):
                trial.set_user_attr("code", result["code"])
            self.study.tell(trial, state=TrialState[result["state"]])

    def evaluate(self, out: Outcome) -> dict[str, Any]:
        """The variant judged by the real checker, then measured: a JSON-ready result."""
        run, ev = self.run, self.run.evaluator
        values = {k: text_of(v) if isinstance(v, tuple) else v for k, v in out.values.items()}
        if not out.diagnostics and run.wheres and not ev.admits(out, run.wheres):
            return {"variant_values": values, "state": "PRUNED", "excluded": "--where"}
        ev.evaluate(out)
        costs = {c: getattr(out, c) for c in ANALYTIC}
        result: dict[str, Any] = {"variant_values": values, "costs": costs}
        if not out.ok:
            diags = [_diag(d) for d in out.diagnostics]
            return {**result, "state": "FAIL", "code": diags[0]["code"], "diagnostics": diags}
        goals = self.cfg.goals
        measured: dict[str, Any] = {}
        if any(g.kind != "analytic" for g in goals):
            measured = measure(goals, self.model(out), self.bench, self.users)
        return {
            **result,
            "state": "COMPLETE",
            "measured": measured,
            "values": [value(g, costs, measured) for g in goals],
            "constraints": self.constraints(out),
        }

    def constraints(self, out: Outcome) -> dict[str, float]:
        b = self.cfg.budgets
        limits = {"params": b.params, "gmacs": b.gmacs, "activation_gib": b.activation_gib}
        return {k: float(getattr(out, k)) - v for k, v in limits.items() if v is not None}

    def model(self, out: Outcome) -> Any:
        """The variant's IR, lowered from its own statements (measuring needs the model)."""
        base = self.run.base
        lowering = Lowering(base.ast, self.run.evaluator.statements(out), base.sources)
        model = lowering.run()
        assert model is not None, "the checker kept this variant, so it lowers"
        return model


def _worker_main(cfg: SearchConfig, index: int, queue: Any) -> None:
    """A worker process: its counts, or its one-line error, go back through the queue."""
    try:
        queue.put(("ok", Worker(cfg, index).work()))
    except KeyboardInterrupt:
        queue.put(("error", "interrupted"))
    except (SearchError, UserObjectiveError) as e:
        queue.put(("error", str(e)))
    except Exception as e:
        queue.put(("error", f"{type(e).__name__}: {e}"))


def run_workers(cfg: SearchConfig) -> Counts:
    """One worker in this process, or `workers` processes (one per device when several)."""
    n = max(cfg.workers, len(cfg.devices))
    if n == 1:
        return Worker(cfg, 0).work()
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker_main, args=(cfg, i, queue)) for i in range(n)]
    for p in procs:
        p.start()
    counts, errors = Counts(), []
    try:
        for _ in procs:
            status, payload = queue.get()
            if status == "ok":
                counts.add(payload)
            else:
                errors.append(payload)
    finally:
        for p in procs:
            p.join()
    if errors:
        raise SearchError(f"a worker stopped: {errors[0]}")
    return counts


@dataclass
class SearchResult:
    """A search's outcome: every trial of the study as a row, the front, what this run did."""

    study: optuna.Study
    run: SweepRun
    goals: tuple[Goal, ...]
    rows: list[dict[str, Any]]
    front: list[str]
    counts: Counts
    seconds: float

    def line(self) -> str:
        """One line: trials, distinct variants, evaluations, rejections, the front, the time."""
        from .search_output import summary

        return summary(self)


def run_search(cfg: SearchConfig, emit: Path | None = None) -> SearchResult:
    """Validate, work the study to `trials`, read it back as rows and a front."""
    from .search_output import emit_front, rows_of

    run = validate(cfg)
    start = time.perf_counter()
    counts = run_workers(cfg)
    seconds = time.perf_counter() - start
    study = optuna.load_study(study_name=cfg.study, storage=open_storage(cfg.storage))
    rows, front = rows_of(study, cfg.goals)
    if emit is not None:
        emit_front(design(cfg, emit), rows)
    return SearchResult(study, run, cfg.goals, rows, front, counts, seconds)


def default_storage(base: Spec | str | Path) -> str:
    """A journal file beside the base spec: specs/mvit_b.mv -> specs/mvit_b.optuna.journal."""
    path = Path(base.path if isinstance(base, Spec) else base)
    return str(path.with_name(path.stem + ".optuna.journal"))


def search(
    base: Spec | str | Path,
    vary: Mapping[Any, Any] | Sequence[str] = (),
    *,
    objectives: Sequence[str] | str = ("params", "gmacs"),
    trials: int = 20,
    storage: str | Path | None = None,
    study: str | None = None,
    workers: int = 1,
    devices: Sequence[str] | str = "cpu",
    bench: Bench | None = None,
    budgets: Budgets | None = None,
    sampler: str = "tpe",
    seed: int | None = None,
    emit: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
    **space: Any,
) -> SearchResult:
    """Search the sweep's design space (`vary`, `set`, `where`, `mode`) with Optuna; see
    SearchConfig. `storage`: a journal file (default beside the base) or an RDB URL."""
    spec_or_path = base if isinstance(base, Spec) else str(base)
    devs = tuple(d.strip() for d in devices.split(",")) if isinstance(devices, str) else devices
    probe = SweepRun(spec_or_path, vary, pareto=None, **space)
    cfg = SearchConfig(
        base=spec_or_path,
        space={"vary": vary, **space},
        goals=parse_goals(objectives),
        trials=trials,
        storage=str(storage) if storage is not None else default_storage(base),
        study=study or probe.base.name,
        devices=tuple(devs) or ("cpu",),
        workers=workers,
        bench=bench or Bench(),
        budgets=budgets or Budgets(),
        sampler=sampler,
        seed=seed,
    )
    if progress is not None:
        progress(f"searching study '{cfg.study}' in {cfg.storage}")
    return run_search(cfg, Path(emit) if emit is not None else None)
