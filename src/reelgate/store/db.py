"""Engine creation per dialect, and the transactions every part of the store uses.

SQLite takes one writer at a time on the whole file. Pooled connections racing for that lock
wait inside SQLite's busy handler, in no order (p99 of seconds at 16 concurrent creates), so a
SQLite store writes through ONE connection, with write transactions queued in the process by a
FIFO lock (:class:`_SqliteWriter`); BEGIN IMMEDIATE still orders it against other processes on
the same file. Its statements run on the event loop: inside a transaction that holds the file's
write lock, under WAL, a statement never waits for anything and costs microseconds. Only BEGIN
(which may wait for another process) and COMMIT (the fsync) go to a thread. And the commits
are grouped: the write transactions queued while one commits run as savepoints of one
transaction, committed by one fsync, and none of them returns before that commit, so an
acknowledged write is as durable as before, at a fraction of the fsyncs under load.

Reads go through their own pool in autocommit mode: WAL never blocks them, and a statement
without BEGIN/COMMIT around it saves two thread round trips. PostgreSQL gets one pool; its reads
run in autocommit too (no BEGIN/COMMIT round trips), its writes in a transaction.

The reads on a request's path (credentials, one task, a page of tasks) take a few rows by
index: on SQLite they run on a plain sqlite3 connection, on the event loop itself. In WAL mode
such a read never waits for a writer and costs microseconds, less than the thread hop aiosqlite
makes for every call (a GET cost 8 thread round trips of about 0.1 ms CPU each). Each thread
keeps its one lookup connection open (no pool checkout, no reset per read). Scans (statistics,
sums) stay on the threaded connections, where a long one does not stall the loop.

On those on-loop connections (lookups and the writer), the statements of the request path,
marked with :func:`prepared`, skip SQLAlchemy's execution machinery: each is compiled once to
its SQL, its parameters' converters and its columns' converters, and runs on the sqlite3
connection directly (a task read: 64 us -> 24 us). On PostgreSQL the lookups run on an asyncpg
pool of their own (:class:`_PgLookups`): SQLAlchemy's pool checkout, its greenlet hop and
asyncpg's reset query at each release were most of a GET's CPU. A write that is one statement
runs there too, in autocommit (:func:`statement_writer`; a create without limits: one round
trip instead of BEGIN, four statements and COMMIT). Everything else runs through SQLAlchemy as
usual; both paths give the same rows.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import Insert, Select, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import Connection, Dialect, Engine, RootTransaction, make_url
from sqlalchemy.engine.result import IteratorResult, Result, SimpleResultMetaData
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, NullPool
from sqlalchemy.sql.schema import ScalarElementColumnDefault

SQLITE_BUSY_TIMEOUT_MS = 30_000
# In WAL mode both modes survive a crash of the process: a commit is in the WAL file (the
# OS page cache) before it returns. FULL also fsyncs the WAL at every commit, so a commit
# survives power loss too; NORMAL fsyncs only at checkpoints and may lose the last commits.
# Measured in bench/sqlite_durability.py; the default is FULL (settings.py).
SQLITE_SYNCHRONOUS = ("FULL", "NORMAL")
SQLITE_READERS = 8  # read connections of one SQLite store
# PostgreSQL: connections kept per process (above them, extra ones are opened and closed per
# use: at 64 concurrent requests that churn was a tenth of a GET's CPU), and the extra ones
POOL_SIZE = 20
POOL_OVERFLOW = 10
PING_IDLE_S = 2.0  # a pooled connection idle this long is checked before use
LOOKUP_POOL_SIZE = 10  # PostgreSQL: the lookups' own connections (see _PgLookups)

T = TypeVar("T")


@dataclass
class _Access:
    """How one engine's store reads and writes (shared by every store object on the engine)."""

    reads: AsyncEngine
    write_lock: asyncio.Lock | None = None  # in-memory SQLite: writers queue here, in order
    writer: _SqliteWriter | None = None  # SQLite file: the one writer (see the docstring)
    extra: list[AsyncEngine] = field(default_factory=list)  # engines to dispose with it
    lookups: _Lookups | _PgLookups | None = None  # point reads without SQLAlchemy's pool


_ACCESS: weakref.WeakKeyDictionary[Engine, _Access] = weakref.WeakKeyDictionary()


def create_engine(url: str) -> AsyncEngine:
    """An engine for ``url``. A SQLite URL may carry ``?synchronous=FULL|NORMAL`` (default FULL)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_async_engine(url, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)
        _ping_when_idle(engine.sync_engine)
        _ACCESS[engine.sync_engine] = _Access(
            reads=engine.execution_options(isolation_level="AUTOCOMMIT"),
            lookups=_PgLookups(engine) if engine.dialect.driver == "asyncpg" else None,
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
    # Migrations (Alembic runs on an AsyncConnection) go through this engine, at start; every
    # write of the store through the writer below.
    engine = create_async_engine(
        parsed, poolclass=AsyncAdaptedQueuePool, pool_size=1, max_overflow=0, pool_timeout=None
    )
    _configure_sqlite(engine, synchronous, writer=True)
    sync_url = parsed.set(drivername="sqlite")
    # COMMIT and BEGIN run in threads: the writer's connection is used from more than one
    # thread, never from two at once (its lock).
    writes = create_sync_engine(
        sync_url, pool_size=1, max_overflow=0, connect_args={"check_same_thread": False}
    )
    _configure_sqlite(writes, synchronous, writer=True)
    reads = create_async_engine(
        parsed, poolclass=AsyncAdaptedQueuePool, pool_size=SQLITE_READERS, max_overflow=0
    )
    _configure_sqlite(reads, synchronous, writer=False)
    # no pool: each thread keeps its connection (_Lookups); closed from another at dispose
    lookups = create_sync_engine(
        sync_url, poolclass=NullPool, connect_args={"check_same_thread": False}
    )
    _configure_sqlite(lookups, synchronous, writer=False)
    _ACCESS[engine.sync_engine] = _Access(
        # Not execution_options(isolation_level="AUTOCOMMIT"): these connections are in
        # autocommit already (no BEGIN is ever sent on them, _configure_sqlite), and that
        # option sets and resets the mode through aiosqlite's thread at every checkout,
        # an await inside the pool's checkout where a cancelled caller leaked the connection.
        reads=reads,
        writer=_SqliteWriter(writes),
        extra=[reads],
        lookups=_Lookups(lookups),
    )
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use when it sat idle for PING_IDLE_S (a server restart
    or an idle timeout in between closed it): the pool replaces a dead one unseen.

    SQLAlchemy's pool_pre_ping checks at every checkout, and on asyncpg a check is a BEGIN, a
    query and a ROLLBACK: three round trips before every read, a fifth of a GET's CPU. A
    connection that dies while busy fails its statement either way; SQLAlchemy then drops
    every connection of the pool opened before that moment.
    """

    @event.listens_for(engine.pool, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _taken(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")  # None: opened just now
        if returned is None or time.monotonic() - returned < PING_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # the pool retries with a fresh connection
            raise DisconnectionError(f"pooled connection is dead: {exc}") from exc


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
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[Any]:
    """A write transaction; on SQLite, queued in this process behind the ones before it."""
    access = _access(engine)
    if access.writer is not None:
        async with access.writer.transaction() as conn:
            yield conn
        return
    lock = access.write_lock
    if lock is None:
        async with engine.begin() as conn:
            yield conn
        return
    async with lock, engine.begin() as conn:
        yield conn


def read_connection(engine: AsyncEngine) -> Any:
    """A connection for reads (autocommit where the engine came from :func:`create_engine`)."""
    return _access(engine).reads.connect()


Prepared = Select[Any] | Insert
P = TypeVar("P", bound=Prepared)
_PREPARED: weakref.WeakSet[Prepared] = weakref.WeakSet()
_GIVEN = object()  # a parameter each call gives
# a statement, with the parameter names an INSERT was given (they are its columns)
_CompiledKey = tuple[Prepared, frozenset[str] | None]


def prepared(statement: P) -> P:
    """Mark ``statement`` (built once, at import) to run compiled-once on the SQLite
    connections that run on the loop (see the module docstring). A SELECT's parameters are
    bound by name (``bindparam``), every one given at each call; an INSERT writes the columns
    it is given, as SQLAlchemy's own execution does (compiled once per set of columns)."""
    _PREPARED.add(statement)
    return statement


class _Compiled:
    """One prepared statement for one dialect: its SQL, and how to convert its parameters and
    its rows, as SQLAlchemy would."""

    def __init__(self, statement: Prepared, dialect: Dialect, given: Collection[str]) -> None:
        column_keys = None
        if isinstance(statement, Insert):  # the columns written are the parameters given
            unknown = set(given) - set(statement.table.c.keys())
            if unknown:
                raise ValueError(f"{statement.table.name} has no column {sorted(unknown)}")
            column_keys = list(given)
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        if not compiled.positional or compiled.positiontup is None:
            raise ValueError(f"{dialect.name} does not take positional parameters")
        self.sql = compiled.string
        # Python-side column defaults of an INSERT (a column left out of its values)
        defaults: dict[str, Any] = {}
        for column in compiled.insert_prefetch:
            if not isinstance(column.default, ScalarElementColumnDefault):
                raise ValueError(f"{column.name}: only a constant default can be prepared")
            defaults[column.key] = column.default.arg
        # (name, value when not given or _GIVEN, converter), in the SQL's order
        self._params: list[tuple[str, Any, Callable[[Any], Any] | None]] = []
        for name in compiled.positiontup:
            bind = compiled.binds[name]
            if bind.callable is not None:
                raise ValueError(f"{name}: a value computed per execution cannot be prepared")
            fixed = defaults.get(name, _GIVEN if bind.value is None else bind.value)
            self._params.append((name, fixed, bind.type._cached_bind_processor(dialect)))
        columns = list(statement.selected_columns) if isinstance(statement, Select) else []
        self._meta = SimpleResultMetaData([str(column.key) for column in columns])
        self._results = [column.type._cached_result_processor(dialect, None) for column in columns]
        self._convert = any(processor is not None for processor in self._results)

    def parameters(self, given: Mapping[str, Any]) -> tuple[Any, ...]:
        values = []
        for name, fixed, processor in self._params:
            value = given.get(name, fixed)
            if value is _GIVEN:
                raise KeyError(f"parameter {name!r} of a prepared statement is not given")
            values.append(value if processor is None else processor(value))
        return tuple(values)

    def rows(self, raw: list[tuple[Any, ...]]) -> Result[Any]:
        if self._convert:
            processors = self._results
            raw = [
                tuple(v if p is None else p(v) for p, v in zip(processors, row, strict=True))
                for row in raw
            ]
        return IteratorResult(self._meta, iter(raw))


def _compiled(
    cache: dict[_CompiledKey, _Compiled],
    statement: Prepared,
    dialect: Dialect,
    given: Mapping[str, Any],
) -> _Compiled:
    """``statement`` compiled for ``dialect`` once, kept in ``cache``."""
    key = (statement, frozenset(given) if isinstance(statement, Insert) else None)
    found = cache.get(key)
    if found is None:
        found = cache[key] = _Compiled(statement, dialect, given)
    return found


class _OnLoop:
    """A sync SQLite connection used from the event loop, with AsyncConnection's
    ``execute``: statements marked :func:`prepared` run compiled-once on its sqlite3
    connection, others through SQLAlchemy."""

    def __init__(self, conn: Connection, compiled: dict[_CompiledKey, _Compiled]) -> None:
        self._conn = conn
        self._compiled = compiled

    @property
    def dialect(self) -> Dialect:
        return self._conn.dialect

    async def execute(self, statement: Any, parameters: Any = None) -> Result[Any]:
        if statement not in _PREPARED:
            return self._conn.execute(statement, parameters)
        given = parameters or {}
        compiled = _compiled(self._compiled, statement, self.dialect, given)
        params = compiled.parameters(given)
        dbapi = _dbapi(self._conn)
        try:
            cursor = dbapi.execute(compiled.sql, params)
            raw = cursor.fetchall()
        except _dbapi_errors(self.dialect) as exc:
            raise DBAPIError.instance(
                compiled.sql, params, exc, _dbapi_errors(self.dialect), dialect=self.dialect
            ) from exc
        return compiled.rows(raw)

    def end_reads(self) -> None:
        """End what SQLAlchemy began on a read (nothing is sent: autocommit), so the kept
        connection starts the next read clean."""
        if self._conn.in_transaction():
            self._conn.rollback()


def _dbapi_errors(dialect: Dialect) -> type[Exception]:
    error: type[Exception] = dialect.loaded_dbapi.Error
    return error


def _dbapi(conn: Connection) -> Any:
    """The DBAPI (sqlite3) connection under ``conn``."""
    return conn.connection.dbapi_connection


class _Lookups:
    """The on-loop read connections of a SQLite store: one per thread, kept open."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._local = threading.local()
        self._opened: list[Connection] = []
        self._guard = threading.Lock()
        self._compiled: dict[_CompiledKey, _Compiled] = {}

    def connection(self) -> _OnLoop:
        found: _OnLoop | None = getattr(self._local, "conn", None)
        if found is None:
            conn = self._engine.connect()
            with self._guard:
                self._opened.append(conn)
            found = self._local.conn = _OnLoop(conn, self._compiled)
        return found

    @contextlib.contextmanager
    def reading(self) -> Iterator[_OnLoop]:
        found = self.connection()
        try:
            yield found
        finally:
            found.end_reads()

    def dispose(self) -> None:
        with self._guard:
            opened, self._opened = self._opened, []
        for conn in opened:
            with contextlib.suppress(Exception):
                conn.close()
        self._local = threading.local()
        self._engine.dispose()


class _PgLookups:
    """The lookups of a PostgreSQL store, with AsyncConnection's ``execute``: LOOKUP_POOL_SIZE
    asyncpg connections of their own (:class:`_AsyncpgPool`), used without SQLAlchemy's pool
    and adapter (their checkout and greenlet hop were most of a GET's CPU), in autocommit.
    Each statement is compiled once (a :func:`prepared` one; others at each call) and asyncpg
    keeps it prepared on each connection. Connections get SQLAlchemy's JSON codecs, so rows
    come back as SQLAlchemy would return them."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.dialect = engine.dialect
        self._url = engine.url
        self._pool = _AsyncpgPool(self._connect, LOOKUP_POOL_SIZE)
        self._compiled: dict[_CompiledKey, _Compiled] = {}

    def _statement(self, statement: Any, given: Mapping[str, Any]) -> _Compiled:
        if statement not in _PREPARED:  # a rare read: compiled for this call only
            return _Compiled(statement, self.dialect, given)
        return _compiled(self._compiled, statement, self.dialect, given)

    async def execute(self, statement: Any, parameters: Any = None) -> Result[Any]:
        given = parameters or {}
        compiled = self._statement(statement, given)
        params = compiled.parameters(given)
        try:
            rows = await self._fetch(compiled.sql, params)
        except _CONNECTION_GONE:
            # The server closed it (a restart): open new ones; a read is safe to repeat.
            self._pool.expire()
            rows = await self._fetch(compiled.sql, params)
        return compiled.rows(rows)

    async def write(self, statement: Any, parameters: Mapping[str, Any]) -> Result[Any]:
        """Run one statement that writes, in autocommit: atomic, and committed when it
        returns. Run once: a broken constraint raises IntegrityError; a connection lost
        meanwhile raises DBAPIError with ``connection_invalidated`` (the statement may or may
        not have committed, so repeating it is the caller's decision)."""
        compiled = self._statement(statement, parameters)
        params = compiled.parameters(parameters)
        try:
            rows = await self._fetch(compiled.sql, params)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise IntegrityError(compiled.sql, params, exc) from exc
        except _CONNECTION_GONE as exc:
            self._pool.expire()
            raise DBAPIError(compiled.sql, params, exc, connection_invalidated=True) from exc
        return compiled.rows(rows)

    async def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        raw = await self._pool.acquire()
        try:
            rows = await raw.fetch(sql, *params)
        except asyncpg.PostgresError:  # the server refused the statement: the connection is fine
            self._pool.release(raw)
            raise
        except BaseException:  # lost, or cancelled mid-statement: the connection is in doubt
            self._pool.release(raw, broken=True)
            raise
        self._pool.release(raw)
        return [tuple(row) for row in rows]

    async def _connect(self) -> Any:
        args, kwargs = self.dialect.create_connect_args(self._url)
        dialect: Any = self.dialect
        raw = await asyncpg.connect(*args, **kwargs)
        try:
            adapted = _RawConnection(raw)  # what the dialect's codec setup reads
            await dialect.setup_asyncpg_json_codec(adapted)
            await dialect.setup_asyncpg_jsonb_codec(adapted)
        except BaseException:
            raw.terminate()
            raise
        return raw

    async def close(self) -> None:
        await self._pool.close()


class _AsyncpgPool:
    """At most ``size`` asyncpg connections, opened when first needed, handed out newest
    first, waited for in order. Leaner than asyncpg's own pool, whose acquire and release were
    a tenth of a GET's CPU: nothing is reset at release (autocommit statements leave nothing
    behind), and a connection in doubt is closed rather than cleaned."""

    def __init__(self, connect: Callable[[], Any], size: int) -> None:
        self._connect = connect
        self._size = size
        self._idle: list[Any] = []
        self._opened = 0  # connections open or being opened
        self._waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._generation = 0  # connections from before expire() are not used again
        self._born: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
        self._closed = False

    async def acquire(self) -> Any:
        while True:
            if self._closed:
                raise asyncpg.InterfaceError("the lookup pool is closed")
            while self._idle:
                raw = self._idle.pop()
                if not raw.is_closed():
                    return raw
                self._opened -= 1
            if self._opened < self._size:
                self._opened += 1
                try:
                    raw = await self._connect()
                except BaseException:
                    self._opened -= 1
                    self._hand_over(None)  # a waiter may open one in its place
                    raise
                self._born[raw] = self._generation
                return raw
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                raw = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # handed over as it was cancelled
                    handed = waiter.result()
                    if handed is not None:
                        self.release(handed)
                    else:
                        self._hand_over(None)
                raise
            if raw is not None:
                return raw

    def release(self, raw: Any, *, broken: bool = False) -> None:
        stale = self._born.get(raw) != self._generation
        if broken or stale or self._closed or raw.is_closed():
            raw.terminate()
            self._opened -= 1
            self._hand_over(None)
        elif not self._hand_over(raw):
            self._idle.append(raw)

    def _hand_over(self, raw: Any) -> bool:
        """Give ``raw`` (None: a free place to open one) to the first waiter still waiting."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(raw)
                return True
        return False

    def expire(self) -> None:
        """The server may have closed every connection (a restart): open new ones."""
        self._generation += 1
        idle, self._idle = self._idle, []
        for raw in idle:
            raw.terminate()
            self._opened -= 1
            self._hand_over(None)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for raw in idle:
            self._opened -= 1
            with contextlib.suppress(Exception):
                await raw.close(timeout=5)
        while self._waiters:
            self._hand_over(None)


StatementWriter = _PgLookups


@dataclass
class _RawConnection:
    _connection: Any


# a connection the server closed (a restart, an idle timeout, pg_terminate_backend): seen as
# one of these, or, when the server's last message came while it was idle, as a protocol state
# asyncpg calls an internal error
_CONNECTION_GONE = (
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    ConnectionError,
)


async def _in_thread(fn: Callable[[], T]) -> T:
    """``fn()`` in a thread, waited for to the end even if the caller is cancelled meanwhile
    (the cancellation is raised after): the writer's state must follow what SQLite did."""
    task = asyncio.ensure_future(asyncio.to_thread(fn))
    cancelled: asyncio.CancelledError | None = None
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError as exc:
            if task.done():
                raise
            cancelled = exc
        else:
            break
    if cancelled is not None:
        raise cancelled
    return result


class _SqliteWriter:
    """The one writer of a SQLite file, with group commit (see the module docstring).

    Writers take the FIFO lock in turn. The first opens a transaction (BEGIN IMMEDIATE, in a
    thread); each runs its statements as a savepoint of it on the loop (a writer that raises
    rolls back only its own) and then queues one flush on the same lock, unless one is queued
    already for this transaction. The flush commits (in a thread) everything the writers
    queued before it did, and wakes them all; writers that queued after it start the next
    transaction. A failed commit fails every writer of that transaction.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = asyncio.Lock()
        self._conn: Connection | None = None
        self._open: RootTransaction | None = None  # the transaction being filled
        self._committed: asyncio.Future[None] | None = None  # resolved by its flush
        self._flush_queued = False  # for the open transaction
        self._flushes: set[asyncio.Task[None]] = set()
        self._compiled: dict[_CompiledKey, _Compiled] = {}

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[_OnLoop]:
        async with self._lock:
            if self._open is None:
                try:
                    await self._begin()
                except asyncio.CancelledError:
                    self._queue_flush()  # the BEGIN went through: end it, whoever comes next
                    raise
            assert self._conn is not None and self._committed is not None
            committed, conn = self._committed, self._conn
            # Plain SQL rather than begin_nested(): a third of the CPU of a small write went
            # to SQLAlchemy's bookkeeping of the savepoint. One writer at a time: one name.
            _dbapi(conn).execute("SAVEPOINT writer")
            try:
                yield _OnLoop(conn, self._compiled)
            except BaseException:
                self._end_savepoint("ROLLBACK TO writer", "RELEASE writer")
                self._queue_flush()  # others' writes may wait in it; it holds the file's lock
                raise
            self._end_savepoint("RELEASE writer")
            self._queue_flush()
        await asyncio.shield(committed)

    def _queue_flush(self) -> None:
        if self._open is None or self._flush_queued:
            return
        self._flush_queued = True
        flush = asyncio.get_running_loop().create_task(self._flush())
        self._flushes.add(flush)
        flush.add_done_callback(self._flushes.discard)

    def _end_savepoint(self, *statements: str) -> None:
        """Release or roll back the savepoint (on the loop: no fsync); if that fails, the
        connection is in doubt: the whole transaction is rolled back and fails its writers."""
        assert self._conn is not None
        try:
            for statement in statements:
                _dbapi(self._conn).execute(statement)
        except Exception as exc:
            transaction, committed = self._take()
            with contextlib.suppress(Exception):
                if transaction is not None and transaction.is_active:
                    transaction.rollback()
            if committed is not None:
                committed.set_exception(exc)
            raise

    def _take(self) -> tuple[RootTransaction | None, asyncio.Future[None] | None]:
        taken = self._open, self._committed
        self._open = self._committed = None
        self._flush_queued = False
        return taken

    async def _begin(self) -> None:
        committed = asyncio.get_running_loop().create_future()
        # a writer cancelled while waiting for the commit leaves no one to read its error
        committed.add_done_callback(lambda f: f.cancelled() or f.exception())

        def begin() -> None:  # in a thread, to the end: the state follows what SQLite did
            if self._conn is None:
                self._conn = self._engine.connect()
            self._open = self._conn.begin()  # BEGIN IMMEDIATE: may wait for another process
            self._committed = committed

        await _in_thread(begin)

    async def _flush(self) -> None:
        async with self._lock:
            await self._commit()

    async def _commit(self) -> None:
        """Commit the open transaction (holding the lock) and wake its writers."""
        transaction, committed = self._take()
        if transaction is None or committed is None:
            return
        try:
            await _in_thread(transaction.commit)
        except asyncio.CancelledError:  # raised only once the commit went through
            committed.set_result(None)
            raise
        except Exception as exc:
            if transaction.is_active:
                with contextlib.suppress(Exception):
                    await _in_thread(transaction.rollback)
            committed.set_exception(exc)
        else:
            committed.set_result(None)

    async def close(self) -> None:
        while self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)
        async with self._lock:
            await self._commit()  # one whose flush was cancelled
            if self._conn is not None:
                await _in_thread(self._conn.close)
                self._conn = None
        await asyncio.to_thread(self._engine.dispose)


@contextlib.asynccontextmanager
async def lookup_connection(engine: AsyncEngine) -> AsyncIterator[Any]:
    """A connection for a read of a few rows by index (on SQLite: on the loop, no thread)."""
    lookups = _access(engine).lookups
    if lookups is None:
        async with read_connection(engine) as conn:
            yield conn
        return
    if isinstance(lookups, _PgLookups):
        yield lookups
        return
    with lookups.reading() as conn:
        yield conn


def statement_writer(engine: AsyncEngine) -> StatementWriter | None:
    """PostgreSQL on asyncpg: the lookups' pool, which also runs a write that is one
    statement (:meth:`_PgLookups.write`) in one round trip, without BEGIN and COMMIT."""
    lookups = _access(engine).lookups
    return lookups if isinstance(lookups, _PgLookups) else None


async def dispose(engine: AsyncEngine) -> None:
    """Close the engine and the read pools made with it."""
    found = _ACCESS.pop(engine.sync_engine, None)
    if found is not None and found.writer is not None:
        await found.writer.close()
    for extra in found.extra if found is not None else []:
        await extra.dispose()
    lookups = found.lookups if found is not None else None
    if isinstance(lookups, _PgLookups):
        await lookups.close()
    elif lookups is not None:
        lookups.dispose()
    await engine.dispose()


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"
