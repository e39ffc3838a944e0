"""Engine creation per dialect, and the transactions every part of the store uses.

SQLite takes one writer at a time on the whole file. Pooled connections racing for that lock
wait inside SQLite's busy handler, in no order (p99 of seconds at 16 concurrent creates), so a
SQLite store writes through ONE connection, with write transactions queued in the process by a
FIFO lock; BEGIN IMMEDIATE still orders it against other processes on the same file. Reads
go through their own pool in autocommit mode: WAL never blocks them, and a statement without
BEGIN/COMMIT around it saves two thread round trips. PostgreSQL gets one pool; its reads run in
autocommit too (no BEGIN/COMMIT round trips), its writes in a transaction.

The reads on a request's path (credentials, one task, a page of tasks) take a few rows by
index: on SQLite they run on a plain sqlite3 connection, on the event loop itself. In WAL mode
such a read never waits for a writer and costs microseconds, less than the thread hop aiosqlite
makes for every call (a GET cost 8 thread round trips of about 0.1 ms CPU each). Scans
(statistics, sums) stay on the threaded connections, where a long one does not stall the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import event
from sqlalchemy.engine import Connection, CursorResult, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

SQLITE_BUSY_TIMEOUT_MS = 30_000
# In WAL mode both modes survive a crash of the process: a commit is in the WAL file (the
# OS page cache) before it returns. FULL also fsyncs the WAL at every commit, so a commit
# survives power loss too; NORMAL fsyncs only at checkpoints and may lose the last commits.
# Measured in bench/sqlite_durability.py; the default is FULL (settings.py).
SQLITE_SYNCHRONOUS = ("FULL", "NORMAL")
SQLITE_READERS = 8  # read connections of one SQLite store


@dataclass
class _Access:
    """How one engine's store reads and writes (shared by every store object on the engine)."""

    reads: AsyncEngine
    write_lock: asyncio.Lock | None = None  # SQLite: writers queue here, in order
    extra: list[AsyncEngine] = field(default_factory=list)  # engines to dispose with it
    lookups: Engine | None = None  # SQLite: point reads on the loop (see the docstring)


_ACCESS: weakref.WeakKeyDictionary[Engine, _Access] = weakref.WeakKeyDictionary()


def create_engine(url: str) -> AsyncEngine:
    """An engine for ``url``. A SQLite URL may carry ``?synchronous=FULL|NORMAL`` (default FULL)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        _ACCESS[engine.sync_engine] = _Access(
            reads=engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        return engine

    synchronous = str(parsed.query.get("synchronous", "FULL")).upper()
    if synchronous not in SQLITE_SYNCHRONOUS:
        raise ValueError(
            f"synchronous={synchronous!r} in the SQLite store URL (REELGATE_SQLITE_SYNCHRONOUS)"
            f" is not one of {', '.join(SQLITE_SYNCHRONOUS)}"
        )
    parsed = parsed.difference_update_query(["synchronous"])
    memory = not parsed.database or parsed.database == ":memory:"
    if not memory:
        Path(str(parsed.database)).parent.mkdir(parents=True, exist_ok=True)
    if memory:  # one database per connection: SQLAlchemy's single shared connection
        engine = create_async_engine(parsed)
        _configure_sqlite(engine, synchronous, writer=True)
        _ACCESS[engine.sync_engine] = _Access(reads=engine, write_lock=asyncio.Lock())
        return engine
    # The writer: one connection (a second one would only wait for the file lock).
    engine = create_async_engine(
        parsed, poolclass=AsyncAdaptedQueuePool, pool_size=1, max_overflow=0, pool_timeout=None
    )
    _configure_sqlite(engine, synchronous, writer=True)
    reads = create_async_engine(
        parsed, poolclass=AsyncAdaptedQueuePool, pool_size=SQLITE_READERS, max_overflow=0
    )
    _configure_sqlite(reads, synchronous, writer=False)
    lookups = create_sync_engine(
        parsed.set(drivername="sqlite"),
        pool_size=SQLITE_READERS,
        max_overflow=0,
        connect_args={"check_same_thread": False},
    )
    _configure_sqlite(lookups, synchronous, writer=False)
    _ACCESS[engine.sync_engine] = _Access(
        reads=reads.execution_options(isolation_level="AUTOCOMMIT"),
        write_lock=asyncio.Lock(),
        extra=[reads],
        lookups=lookups,
    )
    return engine


def _configure_sqlite(engine: AsyncEngine | Engine, synchronous: str, *, writer: bool) -> None:
    target = engine.sync_engine if isinstance(engine, AsyncEngine) else engine

    @event.listens_for(target, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let the "begin" event below issue BEGIN itself.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    if not writer:
        return  # reads run in autocommit (see the module docstring): no BEGIN at all

    @event.listens_for(target, "begin")
    def _on_begin(conn: Any) -> None:
        # The writer takes the lock up front: a deferred transaction that later writes can hit
        # SQLITE_BUSY without waiting (another process holding the file's write lock).
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _access(engine: AsyncEngine) -> _Access:
    found = _ACCESS.get(engine.sync_engine)
    if found is None:  # an engine made elsewhere: plain transactions, as SQLAlchemy makes them
        found = _ACCESS[engine.sync_engine] = _Access(reads=engine)
    return found


@contextlib.asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A write transaction; on SQLite, queued in this process behind the ones before it."""
    lock = _access(engine).write_lock
    if lock is None:
        async with engine.begin() as conn:
            yield conn
        return
    async with lock, engine.begin() as conn:
        yield conn


def read_connection(engine: AsyncEngine) -> Any:
    """A connection for reads (autocommit where the engine came from :func:`create_engine`)."""
    return _access(engine).reads.connect()


class _LoopReads:
    """A sync connection used from the event loop, with AsyncConnection's ``execute``."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def execute(self, statement: Any, parameters: Any = None) -> CursorResult[Any]:
        return self._conn.execute(statement, parameters)


@contextlib.asynccontextmanager
async def lookup_connection(engine: AsyncEngine) -> AsyncIterator[Any]:
    """A connection for a read of a few rows by index (on SQLite: on the loop, no thread)."""
    lookups = _access(engine).lookups
    if lookups is None:
        async with read_connection(engine) as conn:
            yield conn
        return
    with lookups.connect() as conn:
        yield _LoopReads(conn)


async def dispose(engine: AsyncEngine) -> None:
    """Close the engine and the read pools made with it."""
    found = _ACCESS.pop(engine.sync_engine, None)
    for extra in found.extra if found is not None else []:
        await extra.dispose()
    if found is not None and found.lookups is not None:
        found.lookups.dispose()
    await engine.dispose()


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"
