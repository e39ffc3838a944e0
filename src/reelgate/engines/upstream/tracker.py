"""Tracking every upstream task of an engine with one scheduler, not one loop per task.

A heap orders the tasks by their next poll time; one loop pops the due ones and polls them
concurrently, at most ``max_inflight`` requests at once. Each task's interval starts at its
upstream's ``poll_min_s`` and grows by ``BACKOFF`` per poll up to ``poll_max_s``: a short task
is seen finishing soon after it does, a long one costs a poll every ``poll_max_s``. ``poke``
polls a task at once (the upstream's callback said it changed). The loop is watched: if it dies,
every tracked task fails with its error instead of waiting forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .client import Rejected, UpstreamError
from .config import Upstream

log = logging.getLogger("reelgate.engines.upstream")

BACKOFF = 1.6
FINAL = ("succeed", "failed")

Poll = Callable[[Upstream, str], Awaitable[dict[str, Any] | None]]
Seen = Callable[[dict[str, Any]], None]


@dataclass(eq=False)
class Tracked:
    upstream: Upstream
    upstream_id: str
    seen: Seen  # called with every answer (progress)
    done: asyncio.Future[dict[str, Any]]
    polls: int = 0
    failing_since: float | None = None
    due: float = 0.0
    stats: dict[str, int] = field(default_factory=dict)


class Tracker:
    def __init__(
        self,
        poll: Poll,
        *,
        max_inflight: int = 32,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._poll = poll
        self._clock = clock
        self._slots = asyncio.Semaphore(max_inflight)
        self._heap: list[tuple[float, int, Tracked]] = []
        self._order = itertools.count()
        self._by_id: dict[str, Tracked] = {}
        self._changed = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._polling: set[asyncio.Task[None]] = set()
        self.requests = 0  # polls sent, for measurement

    def track(self, upstream: Upstream, upstream_id: str, seen: Seen) -> Tracked:
        """Start polling; ``Tracked.done`` resolves with the upstream's final task data."""
        self._ensure_loop()
        entry = Tracked(upstream, upstream_id, seen, asyncio.get_running_loop().create_future())
        self._by_id[upstream_id] = entry
        self._schedule(entry, 0.0)
        return entry

    def forget(self, entry: Tracked) -> None:
        """Stop polling ``entry`` (its task was cancelled)."""
        self._by_id.pop(entry.upstream_id, None)
        if not entry.done.done():
            entry.done.cancel()

    def poke(self, upstream_id: str) -> bool:
        """Poll that task now; False when it is not tracked here."""
        entry = self._by_id.get(upstream_id)
        if entry is None:
            return False
        self._schedule(entry, 0.0)
        return True

    @property
    def tracked(self) -> int:
        return len(self._by_id)

    async def aclose(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
        for task in list(self._polling):
            task.cancel()
        await asyncio.gather(*self._polling, return_exceptions=True)

    # -- the loop ---------------------------------------------------------------------------

    def _ensure_loop(self) -> None:
        if self._loop is None or self._loop.done():
            self._loop = asyncio.create_task(self._run(), name="upstream-tracker")
            self._loop.add_done_callback(self._loop_ended)

    def _loop_ended(self, loop: asyncio.Task[None]) -> None:
        if loop.cancelled():
            return
        error = loop.exception()
        if error is None:
            return
        log.error("upstream tracker died: %r; failing its tasks", error)
        for entry in list(self._by_id.values()):
            if not entry.done.done():
                entry.done.set_exception(error)
        self._by_id.clear()

    def _schedule(self, entry: Tracked, delay: float) -> None:
        entry.due = self._clock() + delay
        heapq.heappush(self._heap, (entry.due, next(self._order), entry))
        self._changed.set()

    async def _run(self) -> None:
        while True:
            self._changed.clear()
            now = self._clock()
            while self._heap and self._heap[0][0] <= now:
                due, _, entry = heapq.heappop(self._heap)
                if due != entry.due or self._by_id.get(entry.upstream_id) is not entry:
                    continue  # rescheduled (poked) or finished meanwhile: a stale heap item
                entry.due = float("inf")  # in flight; a poke meanwhile schedules it again
                await self._slots.acquire()
                task = asyncio.create_task(self._poll_once(entry))
                self._polling.add(task)
                task.add_done_callback(self._polling.discard)
            wait = self._heap[0][0] - self._clock() if self._heap else 3600.0
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=wait)

    async def _poll_once(self, entry: Tracked) -> None:
        up = entry.upstream
        try:
            self.requests += 1
            data = await self._poll(up, entry.upstream_id)
        except UpstreamError as exc:
            self._failed_poll(entry, exc)
            return
        except Exception as exc:  # a bug: fail that task, keep tracking the others
            self._finish(entry, exc)
            return
        finally:
            self._slots.release()
        entry.failing_since = None
        if data is None:
            self._finish(entry, UpstreamError(f"upstream {up.label} lost task {entry.upstream_id}"))
            return
        entry.seen(data)
        if data.get("task_status") in FINAL:
            self._by_id.pop(entry.upstream_id, None)
            if not entry.done.done():
                entry.done.set_result(data)
            return
        entry.polls += 1
        if self._by_id.get(entry.upstream_id) is entry and entry.due == float("inf"):
            self._schedule(entry, min(up.poll_max_s, up.poll_min_s * BACKOFF**entry.polls))

    def _failed_poll(self, entry: Tracked, exc: UpstreamError) -> None:
        up = entry.upstream
        now = self._clock()
        if entry.failing_since is None:
            entry.failing_since = now
        if isinstance(exc, Rejected) or now - entry.failing_since >= up.unreachable_s:
            self._finish(entry, exc)
            return
        log.warning("polling %s task %s: %s", up.label, entry.upstream_id, exc)
        entry.polls += 1
        if self._by_id.get(entry.upstream_id) is entry:
            self._schedule(entry, min(up.poll_max_s, up.poll_min_s * BACKOFF**entry.polls))

    def _finish(self, entry: Tracked, exc: BaseException) -> None:
        self._by_id.pop(entry.upstream_id, None)
        if not entry.done.done():
            entry.done.set_exception(exc)
