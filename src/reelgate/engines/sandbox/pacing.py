"""Progress, pacing and cancellation for one task, on the event loop.

Waiting happens on the event loop (``asyncio.sleep``), never in a thread or in the render's
process: a stalled or slowed-down task holds nothing but a timer. The render runs in a child
process (:mod:`.process`) and reports its frames through shared memory; ``progress()`` and
``cancelled()`` are only ever called from the event loop. The loop's side, :class:`Pacer`,
lives in :mod:`reelgate.engines.pacing` (the worker paces every engine with it) and is
re-exported here.
"""

from __future__ import annotations

from reelgate.engines.pacing import CONTROL_POLL_S, POLL_S, Pacer, ReadControl

__all__ = ["CONTROL_POLL_S", "POLL_S", "Pacer", "ReadControl"]
