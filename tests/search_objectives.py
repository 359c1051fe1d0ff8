"""User objectives for tests/test_search.py (`--objective search_objectives:NAME`): each is
called with the built model."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def weights(model: Any) -> float:
    """The number of parameters, counted on the built module."""
    return float(sum(p.numel() for p in model.parameters()))


def boom(model: Any) -> float:
    raise ValueError("boom")


def slow(model: Any) -> float:
    """A marker file in $SEARCH_MARKS when it starts, then $SEARCH_SLEEP seconds' sleep (half a
    second unless set): a stand-in for a proxy training that a test can kill in the middle of."""
    marks = Path(os.environ["SEARCH_MARKS"])
    (marks / f"{time.time_ns()}-{os.getpid()}").touch()
    time.sleep(float(os.environ.get("SEARCH_SLEEP", "0.5")))
    return weights(model)


def together(model: Any) -> float:
    """A marker file named by this process in $SEARCH_MARKS, then a wait (60 s at most) until
    two processes have left one: the first trial of each worker meets the other's, so a test
    of two workers sees both work however fast the first would have finished alone."""
    marks = Path(os.environ["SEARCH_MARKS"])
    (marks / str(os.getpid())).touch()
    deadline = time.monotonic() + 60
    while len(list(marks.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    return weights(model)
