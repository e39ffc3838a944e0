"""Pacing: stretch a task to a least duration while progress advances smoothly.

Waiting happens on the event loop (``asyncio.sleep``), never in a worker thread. The sandbox
paces its renders with it (``[[sandbox:slow=N]]``, ``delay_s``) and the worker paces every
engine to a model's ``processing_s`` (see :mod:`reelgate.domain.timing`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

from reelgate.engines.base import Cancelled, Progress, TaskCancelledError

POLL_S = 0.1  # how often cancelled() is checked and progress forwarded


class Pacer:
    """The loop's side: stretches a task to ``min_seconds``, reports whole percents, polls."""

    def __init__(self, progress: Progress, cancelled: Cancelled, min_seconds: float) -> None:
        self._progress = progress
        self._cancelled = cancelled
        self.min_seconds = min_seconds
        self._start = time.monotonic()
        self._reported = -1

    def elapsed_fraction(self) -> float:
        if self.min_seconds <= 0:
            return 1.0
        return min(1.0, (time.monotonic() - self._start) / self.min_seconds)

    def report(self, fraction: float) -> None:
        """Forward ``fraction`` (0..1) as a whole percent below 100, only when it grows."""
        percent = math.floor(99 * min(max(fraction, 0.0), 1.0))
        if percent > self._reported:
            self._reported = percent
            self._progress(float(percent))

    async def follow(
        self, work: asyncio.Future[Any] | None, work_fraction: Callable[[], float]
    ) -> None:
        """Until ``work`` is done and ``min_seconds`` have passed, report progress and poll.

        Progress is the smaller of the work done and the time passed, so a slowed-down task
        advances smoothly. Returns early when ``work`` fails (the caller reads its exception);
        raises :class:`TaskCancelledError` as soon as ``cancelled()`` turns true.
        """
        while True:
            if self._cancelled():
                raise TaskCancelledError()
            finished = work is None or work.done()
            if work is not None and finished and work.exception() is not None:
                return
            time_fraction = self.elapsed_fraction()
            self.report(min(work_fraction(), time_fraction))
            if finished and time_fraction >= 1.0:
                return
            if work is None or finished:
                await asyncio.sleep(POLL_S)
            else:
                await asyncio.wait({work}, timeout=POLL_S)

    async def stall(self) -> None:
        """Never return; raise :class:`TaskCancelledError` once ``cancelled()`` is true."""
        self.report(0.0)
        while True:
            if self._cancelled():
                raise TaskCancelledError()
            await asyncio.sleep(POLL_S)
