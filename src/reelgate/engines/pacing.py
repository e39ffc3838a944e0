"""Pacing: stretch a task to a least duration while progress advances smoothly.

Waiting happens on the event loop (``asyncio.sleep``), never in a worker thread. The sandbox
paces its renders with it (``[[sandbox:slow=N]]``, ``delay_s``) and the worker paces every
engine to a model's ``processing_s`` (see :mod:`reelgate.domain.timing`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from reelgate.domain.scenarios import ControlState
from reelgate.engines.base import Cancelled, Progress, TaskCancelledError

POLL_S = 0.1  # how often cancelled() is checked and progress forwarded
CONTROL_POLL_S = 0.25  # how often the /_sandbox signals are read (a store query)

ReadControl = Callable[[], Awaitable[ControlState]]


class Pacer:
    """The loop's side: stretches a task to ``min_seconds``, reports whole percents, polls.

    With ``control`` (the sandbox's ``/_sandbox`` signals for this task), a release ends a
    stall, a finish skips every remaining wait, and an advance moves the task's clock ahead.
    """

    def __init__(
        self,
        progress: Progress,
        cancelled: Cancelled,
        min_seconds: float,
        control: ReadControl | None = None,
    ) -> None:
        self._progress = progress
        self._cancelled = cancelled
        self.min_seconds = min_seconds
        self._start = time.monotonic()
        self._reported = -1
        self._control = control
        self._state = ControlState()
        self._state_read_at = -math.inf

    async def _refresh(self) -> None:
        now = time.monotonic()
        if self._control is not None and now - self._state_read_at >= CONTROL_POLL_S:
            self._state_read_at = now
            self._state = await self._control()

    def elapsed_fraction(self) -> float:
        if self.min_seconds <= 0 or self._state.finish:
            return 1.0
        elapsed = time.monotonic() - self._start + self._state.advanced_s
        return min(1.0, elapsed / self.min_seconds)

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
            await self._refresh()
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
        """Return once released or finished through ``control`` (never without it); raise
        :class:`TaskCancelledError` once ``cancelled()`` is true. The stalled time does not
        count towards ``min_seconds``."""
        self.report(0.0)
        while True:
            if self._cancelled():
                raise TaskCancelledError()
            await self._refresh()
            if self._state.released or self._state.finish:
                self._start = time.monotonic()
                return
            await asyncio.sleep(POLL_S)
