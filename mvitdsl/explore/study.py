"""The Optuna side of a search: the storage (a journal file, or an RDB URL for workers on many
machines), the study and its identity (objectives and design space, kept as study attributes),
the recovery of trials a killed worker left RUNNING, and the cache of results by variant id.

The cache lives in the study: each evaluated trial carries its result as the user attribute
`result` with its variant id, so every worker and every restart sees it; a re-proposed variant
is told the cached result (`cached` marks it) without being lowered or measured again.
"""

from __future__ import annotations

import os
import socket
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from .objectives import Goal, SearchError

FINISHED = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
CONNECT_TIMEOUT_S = 10


def is_url(storage: str) -> bool:
    return "://" in storage


def _redacted(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not even a URL: say it as given
        return url.split("@")[-1]


def _driver_url(url: str) -> str:
    """`postgresql://` means psycopg (v3) to SQLAlchemy 2.1; the pinned driver is psycopg2."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def open_storage(storage: str) -> BaseStorage:
    """A journal file (created when missing) or an RDB URL; a SearchError if unreachable."""
    if not is_url(storage):
        path = Path(storage)
        if not path.parent.is_dir():
            raise SearchError(f"--storage {storage}: the folder {path.parent} does not exist")
        try:
            return JournalStorage(JournalFileBackend(str(path)))
        except OSError as e:
            raise SearchError(f"--storage {storage}: {e.strerror or e}") from e
    url = _driver_url(storage)
    kw: dict[str, Any] = {}
    if url.startswith("postgresql"):
        kw["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    try:
        return RDBStorage(url, engine_kwargs=kw)
    except Exception as e:  # sqlalchemy's OperationalError, ArgumentError, a missing driver
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise SearchError(f"--storage {_redacted(storage)}: cannot open it ({first})") from e


def identity(goals: Sequence[Goal], space: list[list[Any]]) -> dict[str, Any]:
    """What a study must agree on to be shared or resumed."""
    return {"objectives": [str(g) for g in goals], "space": space}


def open_study(
    storage: BaseStorage, name: str, goals: Sequence[Goal], space: list[list[Any]], sampler: Any
) -> optuna.Study:
    """The study `name`, created with these objectives or loaded when it agrees with them."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the table says what happened
    want = identity(goals, space)
    directions = [
        optuna.study.StudyDirection.MAXIMIZE if g.maximise else optuna.study.StudyDirection.MINIMIZE
        for g in goals
    ]
    try:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    except KeyError:
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            sampler=sampler,
            directions=directions,
            load_if_exists=True,  # another worker may create it at the same moment
        )
        if "mvitdsl" not in study.user_attrs:
            study.set_user_attr("mvitdsl", want)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # set_metric_names is "experimental"
                study.set_metric_names([g.column for g in goals])
    have = study.user_attrs.get("mvitdsl")
    if have is None or have["objectives"] != want["objectives"]:
        said = ", ".join(have["objectives"]) if have else "its own objectives"
        raise SearchError(
            f"study '{name}' was created with other objectives ({said}); "
            f"give another --study NAME for {', '.join(want['objectives'])}"
        )
    if have["space"] != want["space"]:
        raise SearchError(
            f"study '{name}' was created over another design space; give another --study NAME"
        )
    return study


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(study: optuna.Study) -> list[int]:
    """Fail the RUNNING trials of this host's workers that are gone (the journal has no
    heartbeat) and ask their variants again; the numbers of the trials failed."""
    host = socket.gethostname()
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        who = str(t.user_attrs.get("worker", ""))
        where, _, pid = who.rpartition(":")
        if where != host or not pid.isdigit() or _alive(int(pid)):
            continue
        if lose(study, t.number, t.params, "its worker was killed"):
            failed.append(t.number)
    return failed


def lose(study: optuna.Study, number: int, params: dict[str, Any], why: str) -> bool:
    """Mark a trial failed without a result and queue its variant again."""
    try:
        study._storage.set_trial_user_attr(_trial_id(study, number), "lost", why)
        study.tell(number, state=TrialState.FAIL)
    except (RuntimeError, ValueError, optuna.exceptions.UpdateFinishedTrialError):
        return False  # finished meanwhile, by its worker or another's recovery
    if params:
        study.enqueue_trial(params, skip_if_exists=True)
    return True


def _trial_id(study: optuna.Study, number: int) -> int:
    return study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)


def counted(study: optuna.Study) -> int:
    """Trials towards --trials: finished with a result, or running; lost ones do not count."""
    states = (*FINISHED, TrialState.RUNNING)
    return sum(1 for t in study.get_trials(deepcopy=False, states=states) if not _lost(t))


def _lost(t: FrozenTrial) -> bool:
    return "lost" in t.user_attrs


class Cache:
    """Results by variant id, read from the study's finished trials (any worker's)."""

    def __init__(self, study: optuna.Study) -> None:
        self.study = study
        self.results: dict[str, tuple[int, dict[str, Any]]] = {}
        self.seen: set[int] = set()

    def get(self, variant: str) -> tuple[int, dict[str, Any]] | None:
        hit = self.results.get(variant)
        if hit is None:
            self.refresh()
            hit = self.results.get(variant)
        return hit

    def refresh(self) -> None:
        for t in self.study.get_trials(deepcopy=False, states=FINISHED):
            if t.number in self.seen:
                continue
            self.seen.add(t.number)
            result = t.user_attrs.get("result")
            if result is not None and not t.user_attrs.get("cached"):
                self.results.setdefault(str(t.user_attrs.get("variant")), (t.number, result))
