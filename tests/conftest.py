"""Shared fixtures: the shipped specs, and golden-file comparison."""

from __future__ import annotations

import os
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
