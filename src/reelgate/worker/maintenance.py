"""Retention: delete outputs older than the retention period, periodically."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from reelgate.settings import Settings
from reelgate.storage import Storage

log = logging.getLogger("reelgate.retention")


class RetentionSweeper:
    def __init__(self, storage: Storage, settings: Settings, interval_s: float = 3600.0) -> None:
        self.storage = storage
        self.max_age_s = settings.retention_days * 86400
        self.interval_s = min(interval_s, max(1.0, self.max_age_s / 10))
        self._task: asyncio.Task[None] | None = None

    async def sweep_once(self) -> int:
        removed = await asyncio.to_thread(self.storage.sweep, self.max_age_s)
        if removed:
            log.info("retention: deleted %d expired file(s)", removed)
        return removed

    async def _loop(self) -> None:
        while True:
            try:
                await self.sweep_once()
            except Exception:
                log.exception("retention sweep failed")
            await asyncio.sleep(self.interval_s)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="reelgate-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
