"""Progress, pacing and cancellation for one task, split between the event loop and the thread.

Waiting happens on the event loop (``asyncio.sleep``), never in a worker thread: a stalled or
slowed-down task must not hold one of the loop's executor threads, which the worker also uses
for its own file work. Only the CPU-bound render runs in a thread, and it reports its frames
through a :class:`FrameTracker`. ``progress()`` and ``cancelled()`` are only ever called from
the event loop. The loop's side, :class:`Pacer`, lives in :mod:`reelgate.engines.pacing` (the
worker paces every engine with it) and is re-exported here.
"""

from __future__ import annotations

import threading

from reelgate.engines.base import TaskCancelledError
from reelgate.engines.pacing import CONTROL_POLL_S, POLL_S, Pacer, ReadControl

__all__ = ["CONTROL_POLL_S", "POLL_S", "FrameTracker", "Pacer", "ReadControl"]


class FrameTracker:
    """The render thread's side: frames produced so far, and a cancel flag it obeys."""

    def __init__(self, total: int) -> None:
        self.total = max(total, 1)
        self.done = 0  # written by the render thread only
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def before_frame(self, index: int) -> None:
        if self._cancel.is_set():
            raise TaskCancelledError()
        self.done = index

    def fraction(self) -> float:
        return self.done / self.total
