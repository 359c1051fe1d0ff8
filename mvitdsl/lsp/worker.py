"""One daemon thread that runs the pipeline for the server, so the event loop stays free.

A check of a huge or pathological spec can take seconds; meanwhile the server still reads the
protocol (a `shutdown`, an `exit`, the next change). One thread, so checks never overlap (they
change the working folder); a daemon, so `exit` never waits for a check to finish.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

R = TypeVar("R")
Job = tuple[Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any]", asyncio.AbstractEventLoop]


class Worker:
    """Runs functions one at a time on its thread; `run` awaits one's result."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        threading.Thread(target=self._loop, name="mvitdsl-check", daemon=True).start()

    async def run(self, fn: Callable[..., R], *args: Any) -> R:
        """fn(*args) on the worker thread; its exception, if any, raised here."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self.jobs.put((fn, args, future, loop))
        return await future

    def _loop(self) -> None:
        while True:
            fn, args, future, loop = self.jobs.get()
            try:
                result = fn(*args)
            except BaseException as e:  # handed to the awaiting handler, which guards it
                loop.call_soon_threadsafe(_settle, future, None, e)
            else:
                loop.call_soon_threadsafe(_settle, future, result, None)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the awaiting handler was cancelled (a newer change came)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
