"""Shared fixtures: the shipped specs, and golden-file comparison; one compute thread per
pytest-xdist worker (`make test` runs two workers on two cores)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
GOLDEN = Path(__file__).resolve().parent / "golden"

settings.register_profile(
    "ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "fuzz", max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "dev", max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Each xdist worker computes on one thread: two workers on two cores, not two pools of two
# threads fighting over them. Set before torch is imported (test modules import it after this
# file), and inherited by the subprocesses the tests start (CLI runs, wheel installs).
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _var in THREAD_VARS:
        os.environ[_var] = "1"
    os.environ["TORCHINDUCTOR_COMPILE_THREADS"] = "1"  # no compile pool beside the worker


def pytest_configure(config: pytest.Config) -> None:
    """torch.set_num_threads(1) in an xdist worker, in case torch was imported before us."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        try:
            import torch
        except ImportError:  # the torch-less install runs the torch-free tests only
            return
        torch.set_num_threads(1)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """torch on one thread for the test (outside xdist too), the count restored after: modules
    that compare many small runs use it (`pytestmark = pytest.mark.usefixtures("one_thread")`)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def need(present: bool, what: str) -> None:
    """A tool the tests need: skipped where it is missing, but a failure on CI, whose
    `.ci/run` (scripts/setup.sh) installs it, so that a skip there cannot hide a test."""
    if present:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} (missing on CI, where scripts/setup.sh installs it)")
    pytest.skip(what)


def rel(text: str) -> str:
    """Text with the repository root's absolute path removed, so paths read as from the root
    (`specs/mvit_b.mv`) wherever the clone is; tests give absolute paths and never chdir."""
    return text.replace(f"{ROOT}/", "")


def assert_golden(name: str, text: str) -> None:
    """Compare text with tests/golden/NAME; MVITDSL_UPDATE_GOLDEN=1 (make golden) rewrites it."""
    path = GOLDEN / name
    if os.environ.get("MVITDSL_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}; run `make golden` and review the diff"
    assert text == path.read_text(), f"{name} differs from its golden file; `make golden` + review"


@pytest.fixture(scope="session")
def mvit_b_spec():
    import mvitdsl

    return mvitdsl.load_spec(SPECS / "mvit_b.mv")


# Built once per worker and shared by the files that run there: torchvision's video MViTs at
# seed 0 (their state dicts; read them, never write into them).
@pytest.fixture(scope="session")
def mvit_v1_b_state():
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    return torchvision.models.video.mvit_v1_b().state_dict()


@pytest.fixture(scope="session")
def mvit_v2_s_state():
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    return torchvision.models.video.mvit_v2_s().state_dict()


# `make test` runs `pytest -n 2 --dist loadfile --no-loadscope-reorder`: a file's tests stay on
# one worker (its module fixtures, a built model or files written once, are made once and
# its counts written whole), and files go out in this order: the longest first (measured with
# `--durations`), so that the two workers finish together. A hint only: a file missing here
# runs after these, in collection order.
LONGEST_FIRST = (
    "test_export.py",
    "test_entrances.py",
    "test_artifact.py",
    "test_family.py",
    "test_workflow_examples.py",
    "test_workflows.py",
    "test_hiera.py",
    "test_weights.py",
    "test_grad_parity.py",
    "test_distributed.py",
    "test_plugin.py",
    "test_setup.py",
    "test_examples.py",
    "test_timm_parity.py",
    "test_cli.py",
    "test_properties.py",
    "test_draw.py",
    "test_mixed_precision.py",
    "test_sweep.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In an xdist worker, the longest files first (see LONGEST_FIRST); a plain run keeps the
    collection order."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
