"""Wake-ups for idle workers: "a task may be claimable now".

In one process the store sets an event when it creates or releases a task. On PostgreSQL the
same transaction also sends ``NOTIFY reelgate_tasks``, and waiters ``LISTEN`` on a dedicated
connection, so workers in other processes and machines wake at once too. Polling stays as the
fallback (SQLite across processes, a lost listener connection), so a missed wake-up only delays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection

CHANNEL = "reelgate_tasks"
log = logging.getLogger("reelgate.store")


class TaskWakeup:
    def __init__(self, url: URL) -> None:
        self._postgres = url.get_backend_name() == "postgresql"
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._event = asyncio.Event()
        self._listener: Any = None  # asyncpg connection, opened by the first waiter

    async def notify_in(self, conn: AsyncConnection) -> None:
        """Within a transaction: other processes hear of it when it commits (PostgreSQL)."""
        if self._postgres:
            await conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})

    def notify_here(self) -> None:
        self._event.set()

    async def wait(self, seconds: float) -> bool:
        """Until a wake-up or ``seconds`` pass; True when woken."""
        if self._postgres and (self._listener is None or self._listener.is_closed()):
            await self._listen()
        try:
            async with asyncio.timeout(seconds):
                await self._event.wait()
            return True
        except TimeoutError:
            return False
        finally:
            self._event.clear()

    async def _listen(self) -> None:
        import asyncpg

        try:
            self._listener = await asyncpg.connect(self._dsn, timeout=5)
            await self._listener.add_listener(CHANNEL, lambda *_: self._event.set())
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            log.warning("cannot LISTEN for new tasks (%s); polling only", exc)
            self._listener = None

    async def close(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None
