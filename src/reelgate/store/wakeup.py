"""Wake-ups for idle workers: "a task may be claimable now".

In one process the store sets an event when it creates or releases a task. Other processes
hear of it per backend:

- PostgreSQL: the same transaction sends ``NOTIFY reelgate_tasks``, and waiters ``LISTEN`` on
  a dedicated connection, so workers in other processes and machines wake at once.
- SQLite (a file): waiters read ``PRAGMA data_version`` on a dedicated connection every
  :data:`SQLITE_POLL_S`. It changes whenever another connection, in any process, commits; a
  change wakes the waiter only when a ``submitted`` task newer than any seen before exists (the
  largest rowid among them, read from the status index alone), so heartbeats, progress writes
  and claims do not send every worker racing for the write lock. Both reads take microseconds
  and never wait for a lock, so they run on the event loop. A task given back to the queue
  (an older rowid) is found by the caller's next poll instead.

Polling at the caller's interval stays as the fallback (a lost listener connection, a
database that cannot be read), so a missed wake-up only delays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import urllib.parse
from typing import Any

from sqlalchemy import func, literal_column, select
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection

from reelgate.domain.tasks import TaskStatus

from .tables import tasks

CHANNEL = "reelgate_tasks"
# PostgreSQL: wakes the listeners when the statement's transaction commits
NOTIFY = func.pg_notify(CHANNEL, "")
# Measured in bench/taskqueue.py: create-to-claimed p50 for a worker in another process.
SQLITE_POLL_S = 0.005
log = logging.getLogger("reelgate.store")

_NEWEST_SUBMITTED = str(
    select(func.max(literal_column("rowid")))
    .select_from(tasks)
    .where(tasks.c.status == TaskStatus.SUBMITTED.value)
    .compile(dialect=sqlite_dialect.dialect(), compile_kwargs={"literal_binds": True})
)


class SqliteWatch:
    """Commits by other connections to one SQLite file, seen through ``PRAGMA data_version``."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._version: int | None = None
        self._newest = 0  # the largest rowid of a submitted task seen so far

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            # Autocommit, and no busy wait: a read that would block is skipped, not waited for.
            # Read-write but never create: a wrong path must not leave an empty database.
            self._conn = sqlite3.connect(
                f"file:{urllib.parse.quote(self._path)}?mode=rw",
                uri=True,
                timeout=0,
                isolation_level=None,
                check_same_thread=False,
            )
        return self._conn

    def task_waiting(self) -> bool:
        """True when, since the last call, a commit brought a ``submitted`` task newer than
        any seen before (at the first call: when any task is ``submitted``)."""
        try:
            conn = self._connection()
            version = int(conn.execute("PRAGMA data_version").fetchone()[0])
            if version == self._version:
                return False
            newest = conn.execute(_NEWEST_SUBMITTED).fetchone()[0] or 0
            self._version = version  # only once read: a failed read is retried next time
            woken = newest > self._newest
            self._newest = max(self._newest, newest)
            return bool(woken)
        except sqlite3.Error as exc:  # a missing table or a busy file: the caller polls anyway
            log.debug("cannot watch %s for new tasks: %s", self._path, exc)
            return False

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class TaskWakeup:
    def __init__(self, url: URL) -> None:
        backend = url.get_backend_name()
        self._postgres = backend == "postgresql"
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._event = asyncio.Event()
        self._listener: Any = None  # asyncpg connection, opened by the first waiter
        database = url.database or ""
        on_file = backend == "sqlite" and database not in ("", ":memory:")
        self._sqlite = SqliteWatch(database) if on_file else None

    async def notify_in(self, conn: AsyncConnection) -> None:
        """Within a transaction: other processes hear of it when it commits (PostgreSQL)."""
        if self._postgres:
            await conn.execute(select(NOTIFY))

    def notify_here(self) -> None:
        self._event.set()

    async def wait(self, seconds: float) -> bool:
        """Until a wake-up or ``seconds`` pass; True when woken."""
        if self._postgres and (self._listener is None or self._listener.is_closed()):
            await self._listen()
        try:
            if self._sqlite is None:
                return await self._wait_event(seconds)
            return await self._wait_sqlite(self._sqlite, seconds)
        finally:
            self._event.clear()

    async def _wait_event(self, seconds: float) -> bool:
        try:
            async with asyncio.timeout(seconds):
                await self._event.wait()
            return True
        except TimeoutError:
            return False

    async def _wait_sqlite(self, watch: SqliteWatch, seconds: float) -> bool:
        # The watch keeps its last version between waits: a commit that lands between the
        # caller's last claim and this wait still wakes it, at the first check.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            if self._event.is_set() or watch.task_waiting():
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            if await self._wait_event(min(remaining, SQLITE_POLL_S)):
                return True

    async def _listen(self) -> None:
        import asyncpg

        try:
            self._listener = await asyncpg.connect(self._dsn, timeout=5)
            await self._listener.add_listener(CHANNEL, lambda *_: self._event.set())
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            log.warning("cannot LISTEN for new tasks (%s); polling only", exc)
            self._listener = None

    async def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None
